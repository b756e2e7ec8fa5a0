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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import KeyValueConfig, StreamConfig

from agent.config import Settings
from agent.runtime.connection import connect, connect_options
from agent.runtime.node import AgentNode
from tests.payloads import encode, task
from tests.security_fixture import (
    ADMIN,
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
    with_admin,
)

pytestmark = [pytest.mark.nats, pytest.mark.slow]

AGENT = "prometheus-backend"
VERIFICATIONS = f"swarm.verifications.{AGENT}"
HAS_NKEYS = importlib.util.find_spec("nkeys") is not None
NO_NKEYS = "NKey and creds logins need the optional `nkeys` package (nats-py[nkeys])"


def inbox(user: str) -> str:
    """The inbox prefix ``secure.conf`` lets ``user`` (and only it) subscribe under."""
    return f"_INBOX_{user}"


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
            inbox_prefix=inbox(user),
        )

    def agent_settings(self, state_dir: Path, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "nats_url": self.server.url,
            "nats_user": AGENT,
            "nats_password": self.secrets[AGENT],
            "nats_tls_ca": self.certs.ca,
            "nats_tls_cert": self.certs.client_cert,
            "nats_tls_key": self.certs.client_key,
            "nats_inbox_prefix": inbox(AGENT),
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
    secrets[ADMIN] = env["SWARM_ADMIN_PASSWORD"] = passwords()[AGENT]
    text = render(with_admin(SECURE_CONF.read_text()), store_dir=directory / "js", certs=certs)
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


# --- inboxes are private -----------------------------------------------------------------


def refused_subscription(errors: list[Exception], subject: str) -> bool:
    return any(
        f'violation for subscription to "{subject}"'.lower() in str(e).lower() for e in errors
    )


def refused_publish(errors: list[Exception], subject: str) -> bool:
    return any(f'violation for publish to "{subject}"'.lower() in str(e).lower() for e in errors)


async def test_a_member_cannot_read_or_forge_another_members_replies(
    secure: Secure, tmp_path: Path
) -> None:
    helios_errors: list[Exception] = []
    helios = await secure.client("helios", helios_errors)
    taps: dict[str, tuple[Client, list[Exception]]] = {}
    for user in ("athena-api", "hephaestus-backend", "kpi-tracker", AGENT):
        errors: list[Exception] = []
        taps[user] = (await secure.client(user, errors), errors)
    tapped: list[Msg] = []
    try:
        async with AgentNode(secure.agent_settings(tmp_path / "state")) as node:
            # where replies go: the shared prefix of old, Helios's own, the agent's own
            wanted = ["_INBOX.>", "_INBOX_helios.>", f"_INBOX_{AGENT}.>", "*.>", ">"]
            for user, (client, _) in taps.items():
                for subject in wanted:
                    if subject == f"_INBOX_{user}.>":
                        continue  # its own: allowed, and nobody else's reply lands there
                    await client.subscribe(subject, cb=_append(tapped))
                await client.flush(timeout=5)
            helios_taps = [f"_INBOX_{AGENT}.>", "_INBOX_athena-api.>", "_INBOX.>"]
            for subject in helios_taps:
                await helios.subscribe(subject, cb=_append(tapped))
            await helios.flush(timeout=5)
            await eventually(
                lambda: (
                    all(
                        refused_subscription(errors, subject)
                        for user, (_, errors) in taps.items()
                        for subject in wanted
                        if subject != f"_INBOX_{user}.>"
                    )
                    and all(refused_subscription(helios_errors, s) for s in helios_taps)
                )
            )

            # Helios's replies reach Helios: an rpc answer (allow_responses) and a durable
            # task's result on its reply_to (the agent's one inbox publish right)
            reply = await helios.request(
                f"swarm.rpc.{AGENT}.api_optimization", encode(task()), timeout=30
            )
            assert reply.subject.startswith("_INBOX_helios.")
            assert json.loads(reply.data)["status"] == "completed"
            reply_to = helios.new_inbox()
            assert reply_to.startswith("_INBOX_helios.")
            answers: list[Msg] = []
            await helios.subscribe(reply_to, cb=_append(answers))
            body = task(reply_to=reply_to)
            await helios.jetstream().publish(
                f"swarm.tasks.{AGENT}.api_optimization", encode(body), timeout=10
            )
            await eventually(lambda: bool(answers), 30)
            assert json.loads(answers[0].data)["task_id"] == body["task_id"]
            assert node.nc is not None
            assert node.nc.new_inbox().startswith(f"_INBOX_{AGENT}.")

            # nobody else may write into Helios's inbox: no forged answer
            heph, heph_errors = taps["hephaestus-backend"]
            await heph.publish(reply_to, b'{"status": "completed"}')
            await heph.flush(timeout=5)
            await eventually(lambda: refused_publish(heph_errors, reply_to))
            await asyncio.sleep(0.3)  # room for anything that should not have come
            assert len(answers) == 1
            assert tapped == []  # no member saw a single reply of another
    finally:
        for client in (helios, *(c for c, _ in taps.values())):
            await client.close()


# --- the agent's JetStream rights stop at its own names ------------------------------------


async def test_the_agent_cannot_delete_or_touch_streams_and_buckets_it_does_not_own(
    secure: Secure, tmp_path: Path
) -> None:
    admin = await secure.client(ADMIN)
    ajs = admin.jetstream()
    await ajs.add_stream(StreamConfig(name="OTHER_TEAM", subjects=["other.team.>"]))
    await ajs.publish("other.team.x", b"theirs", timeout=10)
    bucket = await ajs.create_key_value(KeyValueConfig(bucket="OTHER_TEAM_STATE"))
    await bucket.put("k", b"theirs")
    errors: list[Exception] = []
    settings = secure.agent_settings(tmp_path)
    nc = await connect(settings, settings.servers, on_error=lambda e: errors.append(e) or True)
    try:
        js = nc.jetstream(timeout=1.0)
        attempts: dict[str, Awaitable[Any]] = {
            "$JS.API.STREAM.DELETE.OTHER_TEAM": js.delete_stream("OTHER_TEAM"),
            "$JS.API.STREAM.PURGE.OTHER_TEAM": js.purge_stream("OTHER_TEAM"),
            "$JS.API.STREAM.UPDATE.OTHER_TEAM": js.update_stream(
                StreamConfig(name="OTHER_TEAM", subjects=["other.team.>"], max_msgs=0)
            ),
            "$JS.API.STREAM.INFO.OTHER_TEAM": js.stream_info("OTHER_TEAM"),
            "$JS.API.STREAM.MSG.GET.OTHER_TEAM": js.get_msg("OTHER_TEAM", 1),
            "$JS.API.CONSUMER.CREATE.OTHER_TEAM": js.add_consumer("OTHER_TEAM"),
            "$JS.API.STREAM.DELETE.KV_OTHER_TEAM_STATE": js.delete_key_value("OTHER_TEAM_STATE"),
            "$JS.API.STREAM.INFO.KV_OTHER_TEAM_STATE": js.key_value("OTHER_TEAM_STATE"),
            # a stream of its own making that would capture another's subjects
            "$JS.API.STREAM.CREATE.SNOOP": js.add_stream(name="SNOOP", subjects=["other.team.>"]),
            # nor its own: removing a stream is the operator's act
            "$JS.API.STREAM.DELETE.PROMETHEUS_BACKEND_TASKS": js.delete_stream(
                "PROMETHEUS_BACKEND_TASKS"
            ),
            "$JS.API.STREAM.PURGE.PROMETHEUS_BACKEND_RESULTS": js.purge_stream(
                "PROMETHEUS_BACKEND_RESULTS"
            ),
        }
        outcomes = await asyncio.gather(*attempts.values(), return_exceptions=True)
        for subject, outcome in zip(attempts, outcomes, strict=True):
            assert isinstance(outcome, TimeoutError), (subject, outcome)  # never answered
        await nc.publish("$KV.OTHER_TEAM_STATE.k", b"mine")  # a write to their bucket
        await nc.flush(timeout=5)
        for subject in [*attempts, "$KV.OTHER_TEAM_STATE.k"]:
            await eventually(lambda subject=subject: refused_publish(errors, subject))
    finally:
        await nc.close()
    try:  # everything of theirs is as it was
        info = await ajs.stream_info("OTHER_TEAM")
        assert info.state.messages == 1
        assert info.config.max_msgs != 0
        entry = await bucket.get("k")
        assert entry.value == b"theirs"
        assert entry.revision == 1
        assert "SNOOP" not in [i.config.name for i in await ajs.streams_info()]
    finally:
        await ajs.delete_stream("OTHER_TEAM")
        await ajs.delete_key_value("OTHER_TEAM_STATE")
        await admin.close()


# --- everything the agent does, under these rights ----------------------------------------


async def test_the_agent_works_whole_under_least_privilege(secure: Secure, tmp_path: Path) -> None:
    """rpc, durable tasks, KPI replay, KV, learning, feedback and the monitor: nothing refused."""
    helios = await secure.client("helios")
    hephaestus = await secure.client("hephaestus-backend")
    athena = await secure.client("athena-api")
    kpi = await secure.client("kpi-tracker")
    log_from = len(secure.server.log_text)
    settings = secure.agent_settings(
        tmp_path / "state", monitor_enabled=True, monitor_interval_s=1.0
    )
    try:
        baselines: list[Msg] = []
        await athena.subscribe("swarm.baselines.athena-api", cb=_append(baselines))
        await athena.flush(timeout=5)
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        batch = {
            "schema": "kpi_batch/v1",
            "source": "kpi-tracker",
            "samples": [{"metric": "api_response_time", "value": 180.0, "ts": now}],
        }
        async with AgentNode(settings) as node:
            await kpi.jetstream().publish("swarm.kpi.backend.api", encode(batch), timeout=10)
            reply = await helios.request(
                f"swarm.rpc.{AGENT}.api_optimization", encode(task()), timeout=30
            )
            assert json.loads(reply.data)["status"] == "completed"
            body = task()
            await helios.jetstream().publish(
                f"swarm.tasks.{AGENT}.api_optimization", encode(body), timeout=10
            )
            await eventually(lambda: len(baselines) >= 2, 30)

            # Athena verifies a prediction of the baseline, Hephaestus reports progress on it
            baseline = json.loads(baselines[0].data)
            predicted = baseline["predictions"][0]
            stamp = now
            verdict = {
                "schema": "verification_result/v1",
                "verification_id": "v-least-privilege",
                "plan_id": baseline["plan_id"],
                "recommendation_id": predicted["recommendation_id"],
                "metric": predicted["metric"],
                "baseline_value": 200.0,
                "measured_value": 150.0,
                "verified_at": stamp,
            }
            await athena.jetstream().publish(
                f"swarm.verifications.{AGENT}", encode(verdict), timeout=10
            )
            update = {
                "schema": "implementation_update/v1",
                "update_id": "u-least-privilege",
                "plan_id": baseline["plan_id"],
                "recommendation_id": predicted["recommendation_id"],
                "status": "implemented",
                "reported_at": stamp,
            }
            await hephaestus.jetstream().publish(
                f"swarm.feedback.{AGENT}", encode(update), timeout=10
            )
            learning = node.learning

            async def learned() -> bool:
                state = await learning.snapshot()
                progress = state.plans.get(baseline["plan_id"])
                return (
                    state.totals.verifications >= 1
                    and progress is not None
                    and ("u-least-privilege" in progress.applied_updates)
                )

            await eventually(learned, 30)
            await learning.rebuild()  # the event log read back, message by message
            monitor = node.monitor
            assert monitor is not None
            await eventually(lambda: monitor.runs >= 2, 30)
            await eventually(lambda: node.kpi_stats.samples_accepted >= 1)  # its KPI stream
        await asyncio.sleep(0.2)  # the server logs a refusal as it reads it
        log = secure.server.log_text[log_from:]
        # not one right missing: neither the agent's nor any peer's, each doing its part
        assert [line for line in log.splitlines() if "violation" in line.lower()] == []
    finally:
        for client in (helios, hephaestus, athena, kpi):
            await client.close()


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
            nats_inbox_prefix=inbox(AGENT),  # the agent's rights came with the key
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


async def test_kpi_batches_another_stream_captures_reach_the_agent_through_its_own_copy(
    certs: Certs, tmp_path: Path
) -> None:
    """Another stream holds ``swarm.kpi.backend.>`` (another agent id's, an operator's): the
    agent keeps ``PROMETHEUS_BACKEND_KPI`` as a copy of it, with no right on the other."""
    secrets = passwords()
    env = password_env(secrets)
    secrets[ADMIN] = env["SWARM_ADMIN_PASSWORD"] = passwords()[AGENT]
    text = render(with_admin(SECURE_CONF.read_text()), store_dir=tmp_path / "js", certs=certs)
    server = SecureServer(tmp_path, certs, text, env=env)
    await server.start()
    secure = Secure(server, secrets)
    admin = await secure.client(ADMIN)
    kpi = await secure.client("kpi-tracker")
    try:
        ajs = admin.jetstream()
        await ajs.add_stream(StreamConfig(name="TRACKER_KPI", subjects=["swarm.kpi.backend.>"]))
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        batch = {
            "schema": "kpi_batch/v1",
            "source": "kpi-tracker",
            "samples": [{"metric": "api_response_time", "value": 180.0, "ts": now}],
        }
        await kpi.jetstream().publish("swarm.kpi.backend.api", encode(batch), timeout=10)
        async with AgentNode(secure.agent_settings(tmp_path / "state")) as node:
            assert node.services.kpi is not None
            assert node.services.kpi.stream == "PROMETHEUS_BACKEND_KPI"
            await eventually(lambda: node.kpi_stats.samples_accepted == 1)  # the replay
            await kpi.jetstream().publish("swarm.kpi.backend.api", encode(batch), timeout=10)
            await eventually(lambda: node.kpi_stats.samples_accepted == 2)  # and live
        info = await ajs.stream_info("PROMETHEUS_BACKEND_KPI")
        assert [source.name for source in info.config.sources or []] == ["TRACKER_KPI"]
        await asyncio.sleep(0.2)
        assert "violation" not in server.log_text.lower()
    finally:
        await admin.close()
        await kpi.close()
        await server.stop()


# --- the inbox prefix setting ----------------------------------------------------------------


def test_the_inbox_prefix_reaches_nats_py_and_must_be_literal() -> None:
    assert "inbox_prefix" not in connect_options(Settings(), [])  # nats-py's own `_INBOX`
    settings = Settings(nats_inbox_prefix=inbox(AGENT))
    assert connect_options(settings, [])["inbox_prefix"] == "_INBOX_prometheus-backend"
    assert Settings(nats_inbox_prefix="_INBOX.team-a").nats_inbox_prefix == "_INBOX.team-a"
    for bad in ("_INBOX_*", "_INBOX.>", "a..b", ".a", "has space", "tab\there", "é"):
        with pytest.raises(ValueError, match="nats_inbox_prefix"):
            Settings(nats_inbox_prefix=bad)


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
