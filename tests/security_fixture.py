"""Test certificates, passwords and a running copy of ``deploy/nats/secure.conf``.

Certificates come from the ``openssl`` command line (a throw-away CA, a server certificate
for 127.0.0.1/localhost and one client certificate); the shipped config is used as written
but for its ports, store directory and certificate paths. Passwords reach the server the
way an operator gives them, through the ``SWARM_*_PASSWORD`` environment variables.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.runtime.embedded import EmbeddedServer, free_port

ROOT = Path(__file__).resolve().parent.parent
SECURE_CONF = ROOT / "deploy" / "nats" / "secure.conf"

# user → the environment variable the shipped config reads its password from
PASSWORD_VARS = {
    "prometheus-backend": "SWARM_PROMETHEUS_PASSWORD",
    "helios": "SWARM_HELIOS_PASSWORD",
    "hephaestus-backend": "SWARM_HEPHAESTUS_PASSWORD",
    "athena-api": "SWARM_ATHENA_PASSWORD",
    "kpi-tracker": "SWARM_KPI_PASSWORD",
}

# A bcrypt test vector of OpenBSD's bcrypt tests: "U*U" hashed with cost 5 and salt "CCC…".
# The server takes a hash in place of a password, so its host need never hold the password.
BCRYPT_PASSWORD = "U*U"
BCRYPT_HASH = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def client_context(self, *, with_cert: bool = True) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if with_cert:
            ctx.load_cert_chain(str(self.client_cert), str(self.client_key))
        return ctx


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:  # pragma: no cover - the machine's image has it
        raise FileNotFoundError("openssl not found")
    subprocess.run([binary, *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_certs(directory: Path) -> Certs:
    """A CA, a server certificate (localhost, 127.0.0.1) and a client certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=swarm-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    leaf = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
    leaf += "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    extensions = {
        "server": leaf + "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
        "client": leaf + "extendedKeyUsage=clientAuth\nsubjectAltName=DNS:swarm-client\n",
    }
    for name, ext in extensions.items():
        (directory / f"{name}.ext").write_text(ext)
        _openssl(
            "req", *ec, "-keyout", f"{name}-key.pem", "-out", f"{name}.csr",
            "-subj", f"/CN=swarm-test-{name}",
            cwd=directory,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
            cwd=directory,
        )  # fmt: skip
    return Certs(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
    )


ADMIN = "swarm-admin"
"""A test-only user with every right, standing for an operator or another team's service."""


def with_admin(text: str) -> str:
    """``text`` with :data:`ADMIN` added to the SWARM account (password ``$SWARM_ADMIN_PASSWORD``).

    The shipped config has no such user: the tests need someone other than the agent to own
    a stream and a bucket, to show the agent cannot touch them.
    """
    user = f"      {{ user: {ADMIN}, password: $SWARM_ADMIN_PASSWORD }}  # test only\n"
    text, count = re.subn(r"(\n    users: \[\n)", lambda m: m.group(1) + user, text)
    assert count == 1
    return text


def render(text: str, *, store_dir: Path, certs: Certs) -> str:
    """The config with this test's store directory and certificate paths, nothing else."""
    swaps = {
        r"store_dir: .*": f'store_dir: "{store_dir}"',
        r"cert_file: .*": f'cert_file: "{certs.server_cert}"',
        r"key_file: .*": f'key_file: "{certs.server_key}"',
        r"ca_file: .*": f'ca_file: "{certs.ca}"',
    }
    for pattern, value in swaps.items():
        text, count = re.subn(pattern, value, text)
        assert count == 1, pattern
    return text


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for a moment (the server copies them when it starts)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@dataclass
class SecureServer:
    """A nats-server running a rendered config; ``url`` is its ``tls://`` address."""

    directory: Path
    certs: Certs
    config_text: str
    env: dict[str, str] = field(default_factory=dict)
    server: EmbeddedServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    @property
    def url(self) -> str:
        return f"tls://127.0.0.1:{self.port}"

    @property
    def log_text(self) -> str:
        assert self.server is not None
        return self.server.log_file.read_text(errors="replace")

    async def start(self) -> None:
        config = self.directory / "server.conf"
        config.write_text(self.config_text)
        self.server = EmbeddedServer(
            self.directory / "js", config_file=config, extra_args=("-m", str(free_port()))
        )
        with environment(self.env):
            await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()


def passwords() -> dict[str, str]:
    """A fresh random password per user."""
    return {user: secrets.token_hex(16) for user in PASSWORD_VARS}


def password_env(values: dict[str, str]) -> dict[str, str]:
    return {PASSWORD_VARS[user]: value for user, value in values.items()}


# --- NKeys (by hand, so that only signing needs the optional ``nkeys`` package) --------------

_PREFIX_SEED = 18 << 3
_PREFIX_OPERATOR = 14 << 3
_PREFIX_ACCOUNT = 0
_PREFIX_USER = 20 << 3


def _crc16(data: bytes) -> bytes:
    return binascii.crc_hqx(data, 0).to_bytes(2, "little")


def _b32(data: bytes) -> bytes:
    return base64.b32encode(data + _crc16(data)).rstrip(b"=")


def new_seed(kind: int = _PREFIX_USER) -> bytes:
    """A fresh NKey seed (``SU…`` for a user), in the encoding of the ``nk`` tool."""
    raw = secrets.token_bytes(32)
    return _b32(bytes([_PREFIX_SEED | (kind >> 5), (kind & 31) << 3]) + raw)


def new_user_seed() -> bytes:
    return new_seed(_PREFIX_USER)


def public_key(seed: bytes) -> str:
    import nkeys  # the optional dependency of nats-py that NKey and creds logins need

    key_pair: Any = nkeys.from_seed(bytearray(seed))
    return str(key_pair.public_key.decode())


# --- decentralized auth: an operator, an account and a user's creds file -------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(issuer_seed: bytes, subject: str, name: str, nats_claims: dict[str, Any]) -> str:
    import nkeys

    issuer: Any = nkeys.from_seed(bytearray(issuer_seed))
    claims = {
        "jti": base64.b32encode(secrets.token_bytes(20)).decode(),
        "iat": int(time.time()),
        "iss": issuer.public_key.decode(),
        "name": name,
        "sub": subject,
        "nats": {**nats_claims, "version": 2},
    }
    head = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = issuer.sign(f"{head}.{body}".encode())
    return f"{head}.{body}.{_b64(signature)}"


@dataclass(frozen=True)
class Operator:
    """What ``nsc`` would make: the server's operator block and one user's creds file text."""

    server_block: str
    creds: str


def operator_setup(publish: list[str], subscribe: list[str]) -> Operator:
    """An operator, an account ``SWARM`` (memory resolver) and a user with these rights."""
    operator_seed, account_seed, user_seed = (
        new_seed(_PREFIX_OPERATOR),
        new_seed(_PREFIX_ACCOUNT),
        new_seed(_PREFIX_USER),
    )
    operator_pub, account_pub, user_pub = (
        public_key(s) for s in (operator_seed, account_seed, user_seed)
    )
    unlimited = {"subs": -1, "data": -1, "payload": -1}
    system_seed = new_seed(_PREFIX_ACCOUNT)  # JetStream (on in every test server) needs one
    system_pub = public_key(system_seed)
    operator_jwt = _jwt(
        operator_seed,
        operator_pub,
        "swarm-operator",
        {"type": "operator", "system_account": system_pub},
    )
    system_jwt = _jwt(operator_seed, system_pub, "SYS", {"type": "account"})
    account_jwt = _jwt(
        operator_seed,
        account_pub,
        "SWARM",
        {
            "type": "account",
            "limits": {**unlimited, "imports": -1, "exports": -1, "wildcards": True, "conn": -1},
        },
    )
    user_jwt = _jwt(
        account_seed,
        user_pub,
        "prometheus-backend",
        {
            "type": "user",
            "pub": {"allow": publish},
            "sub": {"allow": subscribe},
            "allow_responses": True,
            **unlimited,
        },
    )
    block = (
        f'operator: "{operator_jwt}"\nsystem_account: {system_pub}\nresolver: MEMORY\n'
        f'resolver_preload: {{\n  {account_pub}: "{account_jwt}"\n'
        f'  {system_pub}: "{system_jwt}"\n}}\n'
    )
    creds = (
        f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{user_seed.decode()}\n------END USER NKEY SEED------\n"
    )
    return Operator(server_block=block, creds=creds)
