"""The baselines of ``scripts/bench.py``: bare nats-py peers, each in a process of its own.

A baseline must get what the agent gets — a process (so a core) of its own — or the
ratio would flatter it. So each peer runs as a child: ``python _bench_common.py echo …``
or ``… pull-ack …``; it prints ``ready`` once subscribed and serves until SIGTERM/SIGINT.

- ``echo``: a core subscriber answering every request with a fixed reply of a given size
  (the size of the agent's typical reply), the floor of an rpc round trip.
- ``pull-ack``: a durable pull consumer that fetches and acks, and tells the bench on a
  core subject that it did (one message per task, carrying its stream sequence), the floor
  of the durable path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from agent.runtime.embedded import stop_process

HERE = Path(__file__).resolve()
READY = b"ready"


async def _serve_until_stopped(ready: Callable[[], Awaitable[None]]) -> asyncio.Event:
    """Install the stop signals, run ``ready``, say ``ready`` on stdout; returns the stop event."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await ready()
    sys.stdout.buffer.write(READY + b"\n")
    sys.stdout.flush()
    return stop


async def echo(url: str, subject: str, size: int) -> None:
    """Answer every request on ``subject`` with ``size`` bytes (a JSON string, like a result)."""
    nc = await nats.connect(url)
    reply = b'"' + b"x" * max(0, size - 2) + b'"'

    async def respond(msg: Msg) -> None:
        await msg.respond(reply)

    async def ready() -> None:
        await nc.subscribe(subject, cb=respond)
        await nc.flush()

    stop = await _serve_until_stopped(ready)
    await stop.wait()
    await nc.drain()


async def pull_ack(
    url: str, stream: str, subject: str, durable: str, done_subject: str, batch: int
) -> None:
    """Fetch up to ``batch`` at a time, ack each, announce its sequence on ``done_subject``."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    sub: JetStreamContext.PullSubscription | None = None

    async def ready() -> None:
        nonlocal sub
        sub = await js.pull_subscribe(subject, durable=durable, stream=stream)

    stop = await _serve_until_stopped(ready)
    assert sub is not None
    while not stop.is_set():
        try:
            msgs = await sub.fetch(batch, timeout=0.5)
        except (TimeoutError, nats.errors.TimeoutError):
            continue
        for msg in msgs:
            await msg.ack()
            await nc.publish(done_subject, str(msg.metadata.sequence.stream).encode())
    await sub.unsubscribe()  # draining a pull subscription waits out drain_timeout (nats-py)
    await nc.flush()
    await nc.close()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a live process has used so far (Linux ``/proc``; else None)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state is field 3
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """The child processes of a live process (Linux ``/proc``; else none): the agent's
    strategy workers, whose CPU is the agent's too."""
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        return []
    return out


def host_busy_seconds() -> float | None:
    """CPU time all processes of the machine have used (``/proc/stat``, all cores; else None):
    with the figures of our own processes, it tells how busy the machine was with others."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in first[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


async def start_peer(*args: str, timeout: float = 30.0) -> asyncio.subprocess.Process:
    """Start ``python _bench_common.py *args`` and wait for its ``ready`` line."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    except BaseException:
        await stop_process(proc)
        raise
    if line.strip() != READY:
        await stop_process(proc)
        raise RuntimeError(f"peer {args[0]} did not start (said {line!r}, rc {proc.returncode})")
    return proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    roles = parser.add_subparsers(dest="role", required=True)
    p_echo = roles.add_parser("echo", help="reply to every request with SIZE bytes")
    p_echo.add_argument("url")
    p_echo.add_argument("subject")
    p_echo.add_argument("size", type=int)
    p_pull = roles.add_parser("pull-ack", help="fetch, ack and announce every message")
    for name in ("url", "stream", "subject", "durable", "done_subject"):
        p_pull.add_argument(name)
    p_pull.add_argument("batch", type=int)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        if args.role == "echo":
            asyncio.run(echo(args.url, args.subject, args.size))
        else:
            asyncio.run(
                pull_ack(
                    args.url, args.stream, args.subject, args.durable, args.done_subject, args.batch
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
