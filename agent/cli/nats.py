"""One bounded NATS connection for a command: an unreachable server is one line and exit 1."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from agent.config import Settings


async def open_connection(settings: Settings, servers: list[str], timeout: float) -> Any | None:
    """A connection that does not reconnect, or ``None`` after saying why on stderr.

    nats-py may keep retrying a refused first connect: the bound is ours.
    """
    import nats

    from agent.runtime.connection import connect_options

    async def quiet(exc: Exception) -> None:  # the one line below says it all
        return None

    options = {**connect_options(settings, servers), "allow_reconnect": False}
    # nats-py retries a refused first connect inside itself until a server has failed more
    # than max_reconnect_attempts times (0 and -1 mean forever): one retry, then say so
    options["max_reconnect_attempts"] = 1
    options |= {"connect_timeout": timeout, "error_cb": quiet}
    try:
        return await asyncio.wait_for(nats.connect(**options), timeout * 2)
    except Exception as exc:
        print(f"NATS not reachable at {','.join(servers)}: {exc!r}", file=sys.stderr)
        return None
