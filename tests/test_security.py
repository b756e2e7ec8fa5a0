"""``deploy/nats/secure.conf`` against a real nats-server: who may connect, publish and consume.

The shipped config runs as written but for its ports, store directory and certificate paths;
passwords reach it through its ``SWARM_*_PASSWORD`` variables. Certificates are made here.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from agent.config import Settings
from agent.runtime.connection import connect, connect_options
from agent.runtime.node import AgentNode
from tests.payloads import encode, task
from tests.security_fixture import (
    BCRYPT_HASH,
    BCRYPT_PASSWORD,
    SECURE_CONF,
    Certs,
    SecureServer,
    make_certs,
    new_user_seed,
    operator_setup,
    password_env,
    passwords,
    public_key,
    render,
)

pytestmark = [pytest.mark.nats, pytest.mark.slow]

AGENT = "prometheus-backend"
VERIFICATIONS = f"swarm.verifications.{AGENT}"
HAS_NKEYS = importlib.util.find_spec("nkeys") is not None
NO_NKEYS = "NKey and creds logins need the optional `nkeys` package (nats-py[nkeys])"


class Secure:
    def __init__(self, server: SecureServer, secrets: dict[str, str]) -> None:
        self.server = server
        self.certs = server.certs
        self.secrets = secrets

    async def client(self, user: str, errors: list[Exception] | None = None) -> Client:
        """A peer's bare nats-py connection as ``user``, its async errors kept in ``errors``."""

        async def error_cb(exc: Exception) -> None:
            if errors is not None:
                errors.append(exc)

        return await nats.connect(
            self.server.url,
            user=user,
            password=self.secrets[user],
            tls=self.certs.client_context(),
            allow_reconnect=False,
            connect_timeout=5,
            error_cb=error_cb,
        )

    def agent_settings(self, state_dir: Path, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "nats_url": self.server.url,
            "nats_user": AGENT,
            "nats_password": self.secrets[AGENT],
            "nats_tls_ca": self.certs.ca,
            "nats_tls_cert": self.certs.client_cert,
            "nats_tls_key": self.certs.client_key,
            "nats_start_retry_max_s": 5.0,
            "nats_drain_timeout_s": 5.0,
            "agent_id": AGENT,
            "state_dir": state_dir,
            "monitor_enabled": False,
            **overrides,
        }
        return Settings(**values)


@pytest.fixture(scope="module")
async def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
async def secure(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> AsyncIterator[Secure]:
    directory = tmp_path_factory.mktemp("secure-nats")
    secrets = passwords()
    env = password_env(secrets)
    secrets["kpi-tracker"] = BCRYPT_PASSWORD  # the server is given only its bcrypt hash
    env["SWARM_KPI_PASSWORD"] = BCRYPT_HASH
    text = render(SECURE_CONF.read_text(), store_dir=directory / "js", certs=certs)
    server = SecureServer(directory, certs, text, env=env)
    try:
        await server.start()
        yield Secure(server, secrets)
    finally:
        await server.stop()


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)


def verification(recommendation_id: str = "rec-1") -> bytes:
    return json.dumps(
        {
            "schema": "verification_result/v1",
            "verification_id": f"v-{recommendation_id}",
            "plan_id": "plan-forged",
            "recommendation_id": recommendation_id,
            "metric": "api_response_time",
            "baseline_value": 200.0,
            "measured_value": 20.0,
            "verified_at": "2026-11-28T10:30:00Z",
        }
    ).encode()


async def connect_error(**options: Any) -> Exception:
    """The error a bare nats-py connect with ``options`` ends in (it must not succeed)."""
    try:
        nc = await nats.connect(**options)
    except (nats.errors.Error, OSError) as exc:
        return exc
    await nc.close()
    raise AssertionError(f"connected with {sorted(options)}")


async def refused(settings: Settings, *, in_handshake: bool = False) -> None:
    """The agent's credentials from ``settings`` are turned away by the server.

    The agent's own ``connect`` keeps retrying a refused first connect (nats-py retries
    forever with ``max_reconnect_attempts=-1``), so the refusal is observed once, by
    nats-py with the agent's connect options and reconnecting off.
    """
    options = {**connect_options(settings, settings.servers), "allow_reconnect": False}
    error = await connect_error(**options)
    if in_handshake:  # a missing client certificate: a TLS alert, a reset or a broken pipe
        assert isinstance(error, OSError), error
    else:
        assert "Authorization Violation" in str(error), error


def violations(errors: list[Exception], subject: str) -> list[Exception]:
    return [e for e in errors if "permissions violation" in str(e).lower() and subject in str(e)]


# --- who may connect -------------------------------------------------------------------------


async def test_unauthenticated_connections_are_refused(secure: Secure) -> None:
    url, certs = secure.server.url, secure.certs
    refusals: list[tuple[str, dict[str, Any]]] = [
        ("no credentials", {"tls": certs.client_context()}),
        ("a wrong password", {"tls": certs.client_context(), "user": "helios", "password": "x"}),
        ("another member's password", {
            "tls": certs.client_context(), "user": "helios", "password": secure.secrets[AGENT],
        }),
        ("no client certificate", {
            "tls": certs.client_context(with_cert=False),
            "user": "helios", "password": secure.secrets["helios"],
        }),
    ]  # fmt: skip
    for reason, options in refusals:
        error = await connect_error(
            servers=[url], allow_reconnect=False, connect_timeout=5, **options
        )
        if reason == "no client certificate":  # refused in the TLS handshake, before CONNECT
            assert isinstance(error, OSError), (reason, error)
        else:
            assert "Authorization Violation" in str(error), (reason, error)

    # a member whose password the server knows only as a bcrypt hash
    kpi = await secure.client("kpi-tracker")
    await kpi.close()

    # a plain-text client is never spoken to: the server wants TLS before CONNECT
    reader, writer = await asyncio.open_connection("127.0.0.1", secure.server.port)
    try:
        info = await asyncio.wait_for(reader.readline(), 5)
        assert b'"tls_required":true' in info
        writer.write(b'CONNECT {"verbose":false}\r\nPING\r\n')
        await writer.drain()
        reply = await asyncio.wait_for(reader.read(4096), 5)
        assert b"PONG" not in reply
    finally:
        writer.close()


# --- the agent under its permissions -----------------------------------------------------


async def test_agent_serves_under_its_permissions_and_forgeries_are_refused(
    secure: Secure, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    helios = await secure.client("helios")
    heph_errors: list[Exception] = []
    hephaestus = await secure.client("hephaestus-backend", heph_errors)
    athena = await secure.client("athena-api")
    spy_errors: list[Exception] = []
    spy = await secure.client(AGENT, spy_errors)  # the agent's credentials, a second connection
    try:
        async with AgentNode(secure.agent_settings(tmp_path / "state")) as node:
            assert node.nc is not None
            # rpc, and the $SRV service API, answered across users (allow_responses)
            reply = await helios.request(
                f"swarm.rpc.{AGENT}.api_optimization", encode(task()), timeout=30
            )
            assert json.loads(reply.data)["status"] == "completed"
            ping = await helios.request(f"$SRV.PING.{AGENT}", b"", timeout=10)
            assert json.loads(ping.data)["name"] == AGENT

            # a JetStream task from Helios: consumed, answered on the results stream
            results: list[Msg] = []
            sub = await helios.subscribe(f"swarm.results.{AGENT}.>", cb=_append(results))
            body = task()
            ack = await helios.jetstream().publish(
                f"swarm.tasks.{AGENT}.api_optimization", encode(body), timeout=10
            )
            assert ack.stream == "PROMETHEUS_BACKEND_TASKS"
            await eventually(lambda: any(body["task_id"].encode() in m.data for m in results), 30)
            await sub.unsubscribe()

            js = node.nc.jetstream()
            before = (await js.stream_info("PROMETHEUS_BACKEND_VERIFICATIONS")).state.messages
            seen: list[Msg] = []
            await spy.subscribe(VERIFICATIONS, cb=_append(seen))
            await spy.flush()

            # the agent itself may not verify its own plans
            await node.nc.publish(VERIFICATIONS, verification("by-agent"))
            await node.nc.flush(timeout=5)
            await eventually(  # the agent's own error callback logs the server's refusal
                lambda: any(
                    r.name == "agent.runtime.connection"
                    and "permissions violation for publish" in r.getMessage().lower()
                    and VERIFICATIONS in r.getMessage()
                    for r in caplog.records
                )
            )
            # nor may the builder forge Athena's verdict
            await hephaestus.publish(VERIFICATIONS, verification("by-hephaestus"))
            await hephaestus.flush(timeout=5)
            await eventually(lambda: bool(violations(heph_errors, VERIFICATIONS)))
            with pytest.raises(TimeoutError):  # nothing acknowledges a refused JetStream publish
                await hephaestus.jetstream().publish(VERIFICATIONS, verification("js"), timeout=1)

            # Athena may: her message is the only one to arrive and be stored
            await athena.jetstream().publish(VERIFICATIONS, verification("by-athena"), timeout=10)
            await eventually(lambda: len(seen) == 1)
            await asyncio.sleep(0.3)  # room for anything that should not have come
            assert [json.loads(m.data)["recommendation_id"] for m in seen] == ["by-athena"]
            after = (await js.stream_info("PROMETHEUS_BACKEND_VERIFICATIONS")).state.messages
            assert after == before + 1

            # the agent's subscribe rights stop at its own subjects too
            await spy.subscribe("swarm.tasks.someone-else.>")
            await spy.flush(timeout=5)
            await eventually(lambda: bool(violations(spy_errors, "swarm.tasks.someone-else.>")))
    finally:
        for client in (helios, hephaestus, athena, spy):
            await client.close()

    for user, secret in secure.secrets.items():
        if secret == BCRYPT_PASSWORD:  # a published test vector, too short to search for
            continue
        assert secret not in caplog.text, f"{user}'s password was logged"
        assert secret not in secure.server.log_text, f"{user}'s password in the server log"


def _append(into: list[Msg]) -> Callable[[Msg], Awaitable[None]]:
    async def cb(msg: Msg) -> None:
        into.append(msg)

    return cb


# --- each credential type -------------------------------------------------------------------


async def test_user_password_and_client_certificate(secure: Secure, tmp_path: Path) -> None:
    # the agent's own connect code, as `prometheus-backend run` uses it (mutual TLS + password)
    settings = secure.agent_settings(tmp_path)
    nc = await connect(settings, settings.servers)
    try:
        info = await nc.jetstream().account_info()
        assert info.streams >= 1
    finally:
        await nc.close()
    # the same without a client certificate is refused at TLS
    no_cert = secure.agent_settings(tmp_path, nats_tls_cert=None, nats_tls_key=None)
    await refused(no_cert, in_handshake=True)
    await refused(secure.agent_settings(tmp_path, nats_password="not-the-password"))


def _tls_block(certs: Certs) -> str:
    return (
        f'tls {{\n  cert_file: "{certs.server_cert}"\n  key_file: "{certs.server_key}"\n'
        f'  ca_file: "{certs.ca}"\n  verify: true\n  timeout: 2\n}}\n'
    )


async def test_token(certs: Certs, tmp_path: Path) -> None:
    # a token is server-wide (no per-user permissions): for a single-tenant server only
    token = os.urandom(16).hex()
    text = (
        f"listen: 127.0.0.1:4222\n{_tls_block(certs)}authorization {{\n  token: $SWARM_TOKEN\n}}\n"
    )
    text += f'jetstream {{ store_dir: "{tmp_path / "js"}" }}\n'
    server = SecureServer(tmp_path, certs, text, env={"SWARM_TOKEN": token})
    try:
        await server.start()
        base = {
            "nats_url": server.url,
            "nats_tls_ca": certs.ca,
            "nats_tls_cert": certs.client_cert,
            "nats_tls_key": certs.client_key,
            "nats_start_retry_max_s": 5.0,
        }
        good = Settings(**base, nats_token=token)
        nc = await connect(good, good.servers)
        await nc.close()
        await refused(Settings(**base, nats_token="not-" + token))
    finally:
        await server.stop()


@pytest.mark.skipif(not HAS_NKEYS, reason=NO_NKEYS)
async def test_nkey_seed_file(certs: Certs, tmp_path: Path) -> None:
    seed = new_user_seed()
    seed_file = tmp_path / "agent.nk"
    seed_file.write_bytes(seed + b"\n")
    seed_file.chmod(0o600)
    text = render(SECURE_CONF.read_text(), store_dir=tmp_path / "js", certs=certs)
    text, count = re.subn(
        r"# (\{ nkey: )U\w+(, permissions: \$AGENT_PERMISSIONS \})",
        rf"\g<1>{public_key(seed)}\g<2>",
        text,
    )
    assert count == 1
    server = SecureServer(tmp_path, certs, text, env=password_env(passwords()))
    try:
        await server.start()
        settings = Settings(
            nats_url=server.url,
            nats_nkey_seed_file=seed_file,
            nats_tls_ca=certs.ca,
            nats_tls_cert=certs.client_cert,
            nats_tls_key=certs.client_key,
            nats_start_retry_max_s=5.0,
        )
        errors: list[Exception] = []
        nc = await connect(settings, settings.servers, on_error=lambda e: errors.append(e) or True)
        try:
            await nc.jetstream().account_info()  # the agent's rights came with the key
            await nc.publish(VERIFICATIONS, b"{}")
            await nc.flush(timeout=5)
            await eventually(lambda: bool(violations(errors, VERIFICATIONS)))
        finally:
            await nc.close()
        await refused(settings.model_copy(update={"nats_nkey_seed_file": _other_seed(tmp_path)}))
    finally:
        await server.stop()


@pytest.mark.skipif(not HAS_NKEYS, reason=NO_NKEYS)
async def test_creds_file(certs: Certs, tmp_path: Path) -> None:
    # decentralized (JWT) auth: an operator, an account and a user made here as `nsc` would
    setup = operator_setup(
        publish=["swarm.results.prometheus-backend.>", "_INBOX.>"],
        subscribe=["swarm.rpc.prometheus-backend.>", "_INBOX.>"],
    )
    text = f"listen: 127.0.0.1:4222\n{_tls_block(certs)}{setup.server_block}"
    text += f'jetstream {{ store_dir: "{tmp_path / "js"}" }}\n'
    creds = tmp_path / "agent.creds"
    creds.write_text(setup.creds)
    creds.chmod(0o600)
    server = SecureServer(tmp_path, certs, text)
    try:
        await server.start()
        settings = Settings(
            nats_url=server.url,
            nats_creds_file=creds,
            nats_tls_ca=certs.ca,
            nats_tls_cert=certs.client_cert,
            nats_tls_key=certs.client_key,
            nats_start_retry_max_s=5.0,
        )
        errors: list[Exception] = []
        nc = await connect(settings, settings.servers, on_error=lambda e: errors.append(e) or True)
        try:  # the user JWT's rights hold
            await nc.publish(VERIFICATIONS, b"{}")
            await nc.flush(timeout=5)
            await eventually(lambda: bool(violations(errors, VERIFICATIONS)))
        finally:
            await nc.close()
        forged = tmp_path / "forged.creds"  # a user of an account the operator never signed
        forged.write_text(operator_setup(publish=[">"], subscribe=[">"]).creds)
        await refused(settings.model_copy(update={"nats_creds_file": forged}))
    finally:
        await server.stop()


def _other_seed(directory: Path) -> Path:
    path = directory / "stranger.nk"
    path.write_bytes(new_user_seed())
    return path


# --- secrets stay secret -----------------------------------------------------------------------


async def test_config_output_masks_secrets(tmp_path: Path) -> None:
    password, token = os.urandom(12).hex(), os.urandom(12).hex()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_BACKEND_")},
        "NATS_URL": f"tls://{AGENT}:{password}@127.0.0.1:4222",
        "PROMETHEUS_BACKEND_NATS_USER": AGENT,
        "PROMETHEUS_BACKEND_NATS_PASSWORD": password,
        "PROMETHEUS_BACKEND_NATS_TOKEN": token,
        "PROMETHEUS_BACKEND_STATE_DIR": str(tmp_path / "state"),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "config",
        env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    for secret in (password, token):
        assert secret not in out.decode()
        assert secret not in err.decode()
    shown = json.loads(out)
    assert shown["nats_password"] == "***"
    assert shown["nats_token"] == "***"
    assert shown["nats_user"] == AGENT
