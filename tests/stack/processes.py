"""The stack's processes: each a real binary on a free loopback port, its log kept.

Every class here starts one child process, waits (bounded) until it answers, and stops it
in ``stop`` whatever happened; a start that fails raises with the end of the child's log.
Nothing binds anything but 127.0.0.1, and nothing touches a system service: PostgreSQL
and Redis get their own port and data directory, so a server already running on this
machine (5432, 6379) is never used.

PostgreSQL refuses to run as root; as root the server and ``initdb`` run as the
``postgres`` user (Debian's package creates it; else ``nobody``) through ``Popen(user=…)``,
on a data directory outside the root-only pytest tmp dir, removed at stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from agent.runtime.embedded import free_port
from tests.prometheus_fixture import PrometheusServer

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
LOG_TAIL_CHARS = 3000


class MissingBinary(RuntimeError):
    """A binary the stack needs is not installed (``package`` is the Debian package)."""

    def __init__(self, binary: str, package: str) -> None:
        super().__init__(f"{binary} not found: apt-get install {package}")
        self.binary = binary
        self.package = package


def find_binary(name: str, package: str, extra_globs: Sequence[str] = ()) -> str:
    """``name`` on PATH, else the newest match of ``extra_globs``; ``MissingBinary`` if none."""
    found = shutil.which(name)
    if found:
        return found
    for pattern in extra_globs:
        matches = sorted(glob.glob(pattern), key=_version_key, reverse=True)
        if matches:
            return matches[0]
    raise MissingBinary(name, package)


def _version_key(path: str) -> tuple[int, ...]:
    """``/usr/lib/postgresql/15/bin/initdb`` → (15,): the newest version sorts last."""
    return tuple(int(part) for part in Path(path).parts if part.isdigit())


def pg_binary(name: str) -> str:
    """A PostgreSQL server binary: Debian keeps them off PATH, under its versioned dir."""
    return find_binary(name, "postgresql", (f"/usr/lib/postgresql/*/bin/{name}",))


REQUIRED: tuple[tuple[str, str], ...] = (
    ("initdb", "postgresql"),
    ("postgres", "postgresql"),
    ("redis-server", "redis-server"),
    ("prometheus", "prometheus"),
    ("prometheus-redis-exporter", "prometheus-redis-exporter"),
    ("prometheus-postgres-exporter", "prometheus-postgres-exporter"),
)
"""Every binary the stack runs, with the Debian package that has it."""


def missing_binaries() -> list[str]:
    """Why the stack cannot run here: one message per binary that is not installed."""
    missing = []
    for name, package in REQUIRED:
        try:
            find_binary(name, package, (f"/usr/lib/postgresql/*/bin/{name}",))
        except MissingBinary as exc:
            missing.append(str(exc))
    return missing


def log_tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"({path}: {exc.strerror})"
    return text[-chars:]


class Service:
    """One child process writing to ``<logdir>/<name>.log``: ``start`` waits until ``ready``
    answers True (bounded), ``stop`` always ends it (``stop_signal``, then SIGKILL)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        logdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = logdir / f"{name}.log"
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        self.process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    async def start(
        self, ready: Callable[[], Awaitable[bool]], timeout: float = START_TIMEOUT_S
    ) -> None:
        self._log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            env=self.env,
            cwd=self.cwd,
            **as_user(self.user),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                code = self.process.returncode
                await self.stop()
                raise RuntimeError(self.failure(f"exited with {code}"))
            with contextlib.suppress(Exception):
                if await ready():
                    return
            await asyncio.sleep(0.2)
        await self.stop()
        raise TimeoutError(self.failure(f"not ready within {timeout:g}s"))

    def failure(self, what: str) -> str:
        return f"{self.name} {what}; {self.log_path}:\n{log_tail(self.log_path)}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        proc, self.process = self.process, None
        try:
            if proc is not None and proc.returncode is None:
                proc.send_signal(self.stop_signal)
                try:
                    await asyncio.wait_for(proc.wait(), timeout)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None


def as_user(user: str | None) -> dict[str, Any]:
    """``Popen`` arguments that run a child as ``user`` (its own groups only), or nothing."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def unprivileged_user() -> str | None:
    """Who runs PostgreSQL: None (this user) unless we are root, then ``postgres`` or
    ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and neither a postgres nor a nobody user exists")


async def http_ok(url: str, contains: str | None = None) -> bool:
    async with httpx.AsyncClient(timeout=2.0) as client:
        response = await client.get(url)
        return response.status_code == 200 and (contains is None or contains in response.text)


async def run_to_log(
    argv: Sequence[str], log_path: Path, *, user: str | None = None, cwd: Path | None = None
) -> None:
    """Run a command to completion (bounded), its output appended to ``log_path``."""
    with log_path.open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=cwd,
            **as_user(user),
        )
        try:
            code = await asyncio.wait_for(proc.wait(), START_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    if code != 0:
        raise RuntimeError(f"{argv[0]} exited with {code}; {log_path}:\n{log_tail(log_path)}")


class Postgres:
    """A PostgreSQL server of our own: ``initdb`` into a fresh directory, trust auth on
    127.0.0.1:<free port>, no Unix socket, durability off (test data), pg_stat_statements
    preloaded (so what postgres_exporter makes of it is seen), no parallel scans (a
    sequential scan costs one core: the slow scenario stays slow, not CPU-starved)."""

    def __init__(self, logdir: Path) -> None:
        self.initdb = pg_binary("initdb")
        self.postgres = pg_binary("postgres")
        self.logdir = logdir
        self.port = free_port()
        self.user = unprivileged_user()
        self.superuser = "postgres"
        self.database = "postgres"
        self._root: Path | None = None
        self.service: Service | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{self.database}"

    async def start(self) -> None:
        import psycopg

        # the pytest tmp dir is root-only (0700): the server's user could not enter it
        root = Path(tempfile.mkdtemp(prefix="pb-stack-pg-"))
        self._root = root
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        data = root / "data"
        await run_to_log(
            [
                self.initdb,
                f"--pgdata={data}",
                f"--username={self.superuser}",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            self.logdir / "initdb.log",
            user=self.user,
            cwd=root,
        )
        settings = {
            "port": str(self.port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": "",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_parallel_workers_per_gather": "0",
            "shared_preload_libraries": "pg_stat_statements",
        }
        argv = [self.postgres, "-D", str(data)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        # SIGINT is PostgreSQL's fast shutdown; SIGTERM waits for every client to leave
        self.service = Service(
            "postgres", argv, self.logdir, user=self.user, cwd=root, stop_signal=signal.SIGINT
        )

        async def ready() -> bool:
            conn = await psycopg.AsyncConnection.connect(self.dsn, connect_timeout=2)
            await conn.close()
            return True

        await self.service.start(ready)

    async def stop(self) -> None:
        try:
            if self.service is not None:
                await self.service.stop()
        finally:
            if self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)
                self._root = None


class Redis:
    """``redis-server`` on 127.0.0.1:<free port>, persistence off, its dir in the tmp dir."""

    def __init__(self, logdir: Path) -> None:
        self.binary = find_binary("redis-server", "redis-server")
        self.port = free_port()
        workdir = logdir / "redis"
        workdir.mkdir(parents=True, exist_ok=True)
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
        self.service = Service("redis", argv, logdir)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        import redis.asyncio as aioredis

        async def ready() -> bool:
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=2)
            try:
                return bool(await client.ping())
            finally:
                await client.aclose()

        await self.service.start(ready)

    async def stop(self) -> None:
        await self.service.stop()


class Exporter:
    """One of Debian's Prometheus exporters as a plain process on a free port."""

    def __init__(self, service: Service, port: int, ready_text: str) -> None:
        self.service = service
        self.port = port
        self.ready_text = ready_text

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.target}/metrics"

    async def start(self) -> None:
        await self.service.start(lambda: http_ok(self.metrics_url, self.ready_text))

    async def stop(self) -> None:
        await self.service.stop()


def redis_exporter(logdir: Path, redis: Redis) -> Exporter:
    binary = find_binary("prometheus-redis-exporter", "prometheus-redis-exporter")
    port = free_port()
    argv = [binary, f"-redis.addr={redis.url}", f"-web.listen-address=127.0.0.1:{port}"]
    return Exporter(Service("redis-exporter", argv, logdir), port, "redis_up 1")


def postgres_exporter(logdir: Path, postgres: Postgres) -> Exporter:
    binary = find_binary("prometheus-postgres-exporter", "prometheus-postgres-exporter")
    port = free_port()
    env = {**os.environ, "DATA_SOURCE_NAME": f"{postgres.dsn}?sslmode=disable"}
    argv = [binary, f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    return Exporter(Service("postgres-exporter", argv, logdir, env=env), port, "pg_up 1")


class App:
    """The app of ``tests/stack/app.py`` in its own Python process (the venv's), with the
    stock OTel settings in its environment."""

    def __init__(self, logdir: Path, postgres: Postgres, redis: Redis, repo: Path) -> None:
        self.port = free_port()
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(repo),
            "OTEL_SEMCONV_STABILITY_OPT_IN": "http,database",
            "OTEL_SERVICE_NAME": "stack-app",
            "OTEL_PYTHON_STARLETTE_EXCLUDED_URLS": "admin,healthz",
        }
        argv = [
            sys.executable,
            "-m",
            "tests.stack.app",
            f"--port={self.port}",
            f"--metrics-port={self.metrics_port}",
            f"--pg-dsn={postgres.dsn}",
            f"--redis-url={redis.url}",
        ]
        self.service = Service("app", argv, logdir, env=env, cwd=repo)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.target}/metrics"

    async def start(self) -> None:
        async def ready() -> bool:
            return await http_ok(f"{self.url}/healthz") and await http_ok(self.metrics_url)

        await self.service.start(ready)

    async def stop(self) -> None:
        await self.service.stop()


class Prometheus(PrometheusServer):
    """The tests' ``PrometheusServer`` with one scrape job per target (``job`` says which
    part of the stack a series came from), every ``scrape_interval_s``."""

    def __init__(self, workdir: Path, jobs: Mapping[str, str], scrape_interval_s: float) -> None:
        super().__init__(workdir, list(jobs.values()), scrape_interval_s)
        self.jobs = dict(jobs)

    def _config(self) -> Path:
        interval = f"{self.scrape_interval_s:g}s"
        lines = [
            "global:",
            f"  scrape_interval: {interval}",
            f"  scrape_timeout: {interval}",
            f"  evaluation_interval: {interval}",
            "scrape_configs:",
        ]
        for job, target in self.jobs.items():
            lines += [
                f"  - job_name: {job}",
                "    static_configs:",
                f"      - targets: ['{target}']",
            ]
        path = self.workdir / "prometheus.yml"
        path.write_text("\n".join(lines) + "\n")
        return path
