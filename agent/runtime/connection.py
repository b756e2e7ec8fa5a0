"""The NATS connection: first connect retried with bounded backoff, reconnects forever after.

nats-py does not retry the first connect (nats.py #663) and gives up reconnecting after
60 tries by default (#735): both are handled here. A closed connection is fatal to the
process (``on_closed``) so a supervisor restarts it, rather than a zombie agent.
"""

from __future__ import annotations

import inspect
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client
from nats.errors import NoServersError
from nats.js import JetStreamContext
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    stop_never,
    wait_exponential,
)

from agent.config import Settings

log = logging.getLogger(__name__)


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not (settings.nats_tls_ca or settings.nats_tls_cert):
        return None
    ctx = ssl.create_default_context(
        cafile=str(settings.nats_tls_ca) if settings.nats_tls_ca else None
    )
    if settings.nats_tls_cert:
        key = str(settings.nats_tls_key) if settings.nats_tls_key else None
        ctx.load_cert_chain(str(settings.nats_tls_cert), key)
    return ctx


def pull_follows_inbox_prefix() -> bool:
    """Whether this nats-py's pull consumers deliver to the connection's inbox prefix.

    Before nats.py #781 (the fix of #777, after 2.12.0) ``pull_subscribe`` took ``_INBOX.``
    whatever the connection's ``inbox_prefix``: under per-user inbox permissions every
    fetch would be refused.
    """
    default = inspect.signature(JetStreamContext.pull_subscribe).parameters["inbox_prefix"]
    return default.default is None


def connect_options(settings: Settings, servers: list[str]) -> dict[str, Any]:
    """``nats.connect`` keyword arguments from the configuration (credentials included)."""
    if settings.nats_inbox_prefix and not pull_follows_inbox_prefix():  # pragma: no cover
        raise RuntimeError(
            "nats_inbox_prefix needs a nats-py whose pull consumers use the connection's "
            "inbox prefix (nats.py #777, fixed after 2.12.0): upgrade nats-py"
        )
    opts: dict[str, Any] = {
        "servers": servers,
        "name": settings.agent_id,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": settings.nats_reconnect_wait_s,
        "connect_timeout": settings.nats_connect_timeout_s,
        "ping_interval": settings.nats_ping_interval_s,
        "max_outstanding_pings": settings.nats_max_outstanding_pings,
        "drain_timeout": settings.nats_drain_timeout_s,
    }
    if settings.nats_inbox_prefix:
        opts["inbox_prefix"] = settings.nats_inbox_prefix
    if settings.nats_user:
        opts["user"] = settings.nats_user
    if settings.nats_password:
        opts["password"] = settings.nats_password.get_secret_value()
    if settings.nats_token:
        opts["token"] = settings.nats_token.get_secret_value()
    if settings.nats_creds_file:
        opts["user_credentials"] = str(settings.nats_creds_file)
    if settings.nats_nkey_seed_file:
        opts["nkeys_seed"] = str(settings.nats_nkey_seed_file)
    tls = _tls_context(settings)
    if tls is not None:
        opts["tls"] = tls
    return opts


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    delay = state.next_action.sleep if state.next_action else 0.0
    log.warning(
        "NATS not reachable (attempt %d: %s); retrying in %.1fs", state.attempt_number, exc, delay
    )


async def connect(
    settings: Settings,
    servers: list[str],
    *,
    on_closed: Callable[[], Awaitable[None]] | None = None,
    on_error: Callable[[Exception], bool] | None = None,
) -> Client:
    """Connect, retrying the first connect with bounded exponential backoff (logged).

    ``on_error`` sees every asynchronous error first (e.g. to count slow-consumer drops);
    True means it was handled and needs no log line of its own.
    """

    async def error_cb(exc: Exception) -> None:
        try:
            if on_error is not None and on_error(exc):
                return
        except Exception:  # a callback must never raise into nats-py (#204)
            log.exception("error hook failed")
        log.error("NATS error: %r", exc)

    connected: list[Client] = []

    async def disconnected_cb() -> None:
        # nats-py calls this on every close too: only an unplanned loss is worth a warning
        if connected and (connected[0].is_closed or connected[0].is_draining):
            log.info("NATS disconnected: connection closing")
            return
        log.warning("NATS disconnected")

    async def reconnected_cb() -> None:
        log.info("NATS reconnected")

    async def closed_cb() -> None:
        log.info("NATS connection closed")
        if on_closed is not None:
            try:
                await on_closed()
            except Exception:  # a callback must never raise into nats-py (#204)
                log.exception("closed callback failed")

    opts = connect_options(settings, servers)
    stop = (
        stop_after_delay(settings.nats_start_retry_max_s)
        if settings.nats_start_retry_max_s
        else stop_never
    )
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type((OSError, NoServersError, TimeoutError)),
        wait=wait_exponential(multiplier=0.2, max=settings.nats_start_backoff_max_s),
        stop=stop,
        before_sleep=_log_retry,
        reraise=True,
    ):
        with attempt:
            # nats-py retries a first connect forever inside itself when reconnecting is on,
            # and a refused one until a server failed more than max_reconnect_attempts times
            # (-1: forever, an error log each): then our bound and our log never apply and a
            # wrong password would hang. Connect with both off; turn them on once connected.
            nc: Client = await nats.connect(
                **{**opts, "allow_reconnect": False, "max_reconnect_attempts": 1},
                error_cb=error_cb,
                disconnected_cb=disconnected_cb,
                reconnected_cb=reconnected_cb,
                closed_cb=closed_cb,
            )
    connected.append(nc)
    # nats-py has no public way to change these after connect, nor an option that keeps
    # them out of the first connect (nats.py #352, #663): its own options dict is the one
    # place the reconnect loop reads them.
    nc.options["allow_reconnect"] = True
    nc.options["max_reconnect_attempts"] = -1
    log.info("connected to NATS at %s", nc.connected_url.netloc if nc.connected_url else "?")
    return nc
