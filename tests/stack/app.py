"""The backend under test: an item service with a Redis cache in front of PostgreSQL.

Run as its own process (``python -m tests.stack.app --port … --metrics-port … --pg-dsn …
--redis-url …``) with ``OTEL_SEMCONV_STABILITY_OPT_IN=http,database`` in its environment.
It is instrumented only by the stock OpenTelemetry packages: Starlette (HTTP server
metrics), psycopg (database client metrics), redis-py (spans only in the versions this was
written against), all read through ``opentelemetry-exporter-prometheus`` and served by
prometheus_client on ``--metrics-port``. Nothing here records a metric by hand: what
Prometheus gets is what a team gets by installing those packages.

``GET /items/{key}`` reads the cache (``item:<key>``), and on a miss runs
``SELECT … FROM items WHERE key = %s`` and fills the cache. ``/admin/*`` switches the cache
between scenarios (the URLs are excluded from the HTTP metrics by
``OTEL_PYTHON_STARLETTE_EXCLUDED_URLS``, the stock setting).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

SEMCONV_OPT_IN = "http,database"
"""The value ``OTEL_SEMCONV_STABILITY_OPT_IN`` must have: stable HTTP and database names."""
EXCLUDED_URLS = "admin,healthz"
"""``OTEL_PYTHON_STARLETTE_EXCLUDED_URLS``: the test's control requests are not traffic."""
POOL_SIZE = 4
"""Database connections the app keeps; a request waits for a free one."""
QUERY = "SELECT id, key, name, payload FROM items WHERE key = %s"
WARM_QUERY = "SELECT id, key, name, payload FROM items WHERE key = ANY(%s)"


@dataclass(slots=True)
class CacheMode:
    """How the app uses Redis: ``enabled`` False bypasses it (no GET, no SET)."""

    enabled: bool = True
    ttl_s: int = 600


def build_app(pg_dsn: str, redis_url: str) -> Any:
    """The Starlette app, instrumented. Imports are local: the OTel SDK must be set up first."""
    import psycopg
    import redis.asyncio as aioredis
    from opentelemetry.instrumentation.starlette import StarletteInstrumentor
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    mode = CacheMode()
    pool: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
    cache = aioredis.Redis.from_url(redis_url)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        """Open the connection pool before serving, close everything after."""
        connections = [
            await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) for _ in range(POOL_SIZE)
        ]
        for connection in connections:
            pool.put_nowait(connection)
        try:
            yield
        finally:
            for connection in connections:
                await connection.close()
            await cache.aclose()

    async def fetch(query: str, param: Any) -> list[tuple[Any, ...]]:
        connection = await pool.get()
        try:
            cursor = await connection.execute(query, (param,))
            return await cursor.fetchall()
        finally:
            pool.put_nowait(connection)

    def as_item(row: tuple[Any, ...]) -> dict[str, Any]:
        return {"id": row[0], "key": row[1], "name": row[2], "payload": row[3]}

    async def get_item(request: Request) -> Response:
        key = request.path_params["key"]
        if mode.enabled:
            cached = await cache.get(f"item:{key}")
            if cached is not None:
                return Response(cached, media_type="application/json")
        rows = await fetch(QUERY, key)
        if not rows:
            return JSONResponse({"error": "not found"}, status_code=404)
        body = json.dumps(as_item(rows[0]))
        if mode.enabled:
            await cache.set(f"item:{key}", body, ex=mode.ttl_s)
        return Response(body, media_type="application/json")

    async def set_cache(request: Request) -> Response:
        """``PUT /admin/cache {"enabled": bool, "ttl_s": int}``."""
        body = await request.json()
        mode.enabled = bool(body.get("enabled", mode.enabled))
        mode.ttl_s = int(body.get("ttl_s", mode.ttl_s))
        return JSONResponse({"enabled": mode.enabled, "ttl_s": mode.ttl_s})

    async def warm(request: Request) -> Response:
        """``POST /admin/warm {"keys": [...]}``: load those items into the cache (SETs only,
        so Redis counts no keyspace hit or miss for it)."""
        keys = list((await request.json())["keys"])
        rows = await fetch(WARM_QUERY, keys)
        async with cache.pipeline(transaction=False) as pipe:
            for row in rows:
                pipe.set(f"item:{row[1]}", json.dumps(as_item(row)), ex=mode.ttl_s)
            await pipe.execute()
        return JSONResponse({"warmed": len(rows)})

    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[
            Route("/items/{key}", get_item),
            Route("/admin/cache", set_cache, methods=["PUT"]),
            Route("/admin/warm", warm, methods=["POST"]),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )
    StarletteInstrumentor.instrument_app(app)
    return app


def setup_telemetry(metrics_port: int) -> None:
    """The stock wiring: a MeterProvider read by the Prometheus exporter, prometheus_client's
    HTTP server, and the psycopg and redis instrumentors (patching the libraries)."""
    from opentelemetry import metrics
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from prometheus_client import start_http_server

    start_http_server(metrics_port, addr="127.0.0.1")
    provider = MeterProvider(metric_readers=[PrometheusMetricReader()], resource=Resource.create())
    metrics.set_meter_provider(provider)
    PsycopgInstrumentor().instrument()
    RedisInstrumentor().instrument()


def main() -> None:
    parser = argparse.ArgumentParser(description="the item service of tests/stack")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--pg-dsn", required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    if os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN") != SEMCONV_OPT_IN:
        raise SystemExit(f"set OTEL_SEMCONV_STABILITY_OPT_IN={SEMCONV_OPT_IN} in the environment")
    setup_telemetry(args.metrics_port)

    import uvicorn

    app = build_app(args.pg_dsn, args.redis_url)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
