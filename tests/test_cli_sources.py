"""``prometheus-backend sources`` as an operator runs it, against real Prometheus servers.

Three servers start together: one scraping the exporter of tests/prometheus_fixture.py
(OpenTelemetry's stable HTTP names, node_exporter, redis_exporter and the application's
own series), one scraping ``OldOtelExporter`` below (the HTTP histogram as OpenTelemetry's
instrumentation exports it without ``OTEL_SEMCONV_STABILITY_OPT_IN``, in ms with
``http_target`` and ``http_status_code``, beside postgres_exporter's series without
pg_stat_statements), and one scraping nothing. The command runs in a subprocess, as the
other CLI tests do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import Gauge, Histogram

from agent.config import ENV_PREFIX
from agent.runtime.embedded import free_port
from tests.prometheus_fixture import (
    OTEL_SDK_DEFAULT_BUCKETS,
    TRUTH,
    Exporter,
    PrometheusServer,
    _Served,
    prometheus_binary,
)

CLI = [sys.executable, "-m", "agent", "sources"]
MAX_CONNECTIONS = 100.0
BACKENDS = 5.0
"""postgres_exporter's view of the server: 5 backends of 100 allowed, a 5 % pool use."""


class OldOtelExporter(_Served):
    """What ``opentelemetry-instrumentation-asgi`` (Starlette, FastAPI) exports by default,
    through ``opentelemetry-exporter-prometheus``: ``http.server.duration`` in whole ms
    into the SDK's default buckets, labelled ``http_target`` (the route template) and
    ``http_status_code``, at the request mix of ``TRUTH``; and postgres_exporter's
    connection series (``pg_up``, ``pg_stat_activity_count``, ``pg_settings_max_connections``)
    as 0.11 exports them without pg_stat_statements."""

    def __init__(self, tick_s: float = 0.02) -> None:
        super().__init__("old-otel-load")
        self.tick_s = tick_s
        self.requests = Histogram(
            "http_server_duration_milliseconds",
            "Measures the duration of inbound HTTP requests.",
            ["http_method", "http_scheme", "http_status_code", "http_target", "otel_scope_name"],
            buckets=OTEL_SDK_DEFAULT_BUCKETS,
            registry=self.registry,
        )
        Gauge("pg_up", "Whether PostgreSQL answered.", registry=self.registry).set(1)
        Gauge("pg_settings_max_connections", "max_connections.", registry=self.registry).set(
            MAX_CONNECTIONS
        )
        activity = Gauge(
            "pg_stat_activity_count",
            "Connections by database and state.",
            ["datname", "state"],
            registry=self.registry,
        )
        activity.labels("app", "active").set(2)
        activity.labels("app", "idle").set(BACKENDS - 2)
        activity.labels("postgres", "idle in transaction").set(0)
        self.emitted = 0

    def _request(self, i: int) -> None:
        t = TRUTH
        feed = i % 2 == 0
        low, high = t.feed_ms if feed else t.chat_ms
        latency_ms = round(low + (high - low) * ((i // 2) % 25 + 0.5) / 25)
        status = "500" if i % t.error_every == t.error_every - 1 else "200"
        target = "/api/feed" if feed else "/api/chat/{room}"
        scope = "opentelemetry.instrumentation.asgi"
        self.requests.labels("GET", "http", status, target, scope).observe(latency_ms)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(self.tick_s):
            due = int((time.monotonic() - start) * TRUTH.request_rate)
            for i in range(self.emitted, due):
                self._request(i)
            self.emitted = max(self.emitted, due)


@pytest.fixture(scope="module")
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, str]]:
    """``stable``, ``old`` and ``bare`` Prometheus URLs, started and scraped concurrently."""
    if prometheus_binary() is None:
        pytest.skip("no `prometheus` binary on PATH (.ci/run installs Debian's package)")
    stable_exporter, old_exporter = Exporter(), OldOtelExporter()
    async with contextlib.AsyncExitStack() as stack:
        for exporter in (stable_exporter, old_exporter):
            exporter.start()
            stack.push_async_callback(asyncio.to_thread, exporter.stop)
        found = {
            "stable": PrometheusServer(
                tmp_path_factory.mktemp("prom-stable"), [stable_exporter.target]
            ),
            "old": PrometheusServer(tmp_path_factory.mktemp("prom-old"), [old_exporter.target]),
            "bare": PrometheusServer(tmp_path_factory.mktemp("prom-bare"), []),
        }
        for server in found.values():
            stack.push_async_callback(server.stop)
        started = await asyncio.gather(*(s.start() for s in found.values()), return_exceptions=True)
        for failure in started:
            if isinstance(failure, BaseException):
                raise failure
        await asyncio.gather(found["stable"].wait_for_scrapes(8), found["old"].wait_for_scrapes(8))
        yield {name: s.url for name, s in found.items()}


def env_for(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The caller's environment without settings of ours, a 1 s scrape interval (the test
    servers scrape every second) and quick failures."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k != "NATS_URL"}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env[f"{ENV_PREFIX}PROMETHEUS_SCRAPE_INTERVAL_S"] = "1"
    env[f"{ENV_PREFIX}PROMETHEUS_RETRIES"] = "1"
    env[f"{ENV_PREFIX}PROMETHEUS_TIMEOUT_S"] = "3"
    env.update({f"{ENV_PREFIX}{k.upper()}": v for k, v in settings.items()})
    return env


async def sources(args: list[str], tmp_path: Path, **settings: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        env=env_for(tmp_path, **settings),
        cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def by_metric(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["metric"]: row for row in doc["metrics"]}


@pytest.mark.slow
async def test_text_names_what_measures_each_metric_and_what_is_missing(
    servers: dict[str, str], tmp_path: Path
) -> None:
    code, out, err = await sources(["--prometheus", servers["stable"], "--window", "8s"], tmp_path)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"prometheus at {servers['stable']}: the last 8 s at 1 s steps " + (
        "(rate windows 4 s)"
    )
    assert lines[1] == "measured: 19 of 20 metrics, 5 of 12 auxiliary series"
    latency = next(line for line in lines if line.startswith("  api_response_time "))
    assert "p95 from otel_http_stable:" in latency
    assert "scraped every 1 s" in latency
    assert "reads 3 raw series" in latency  # /api/feed 200, /api/chat 200 and 500
    db = lines.index(next(line for line in lines if line.startswith("  database_query_time ")))
    assert lines[db].split() == ["database_query_time", "not", "measured"]
    assert lines[db + 1].strip().startswith("needs an OpenTelemetry DB-API driver instrumentation")
    assert lines[db + 2] == (
        "      tried, all empty: otel_db_stable, otel_db_old_label, "
        "postgres_exporter_stat_statements, postgres_exporter_queries_yaml, "
        "mysqld_exporter_perf_schema"
    )
    # a latency observed at one value fills one bucket: its mean, and why
    assert "feed_generation_time" in out
    assert "mean because every observation of feed_generation_duration_seconds" in out
    assert "http_request_rate              no query" in out


@pytest.mark.slow
async def test_json_falls_back_to_the_old_otel_names_and_the_exporters(
    servers: dict[str, str], tmp_path: Path
) -> None:
    code, out, err = await sources(
        ["--prometheus", servers["old"], "--window", "8s", "--json"], tmp_path
    )
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["source"], doc["window_s"], doc["step_s"]) == (
        f"prometheus at {servers['old']}",
        8.0,
        1.0,
    )
    rows = by_metric(doc)
    assert len(rows) == 32  # the 20 of the catalog and the 12 auxiliary series
    latency = rows["api_response_time"]
    assert (latency["status"], latency["alternative"], latency["statistic"]) == (
        "ok",
        "otel_http_old_ms",
        "p95",
    ), latency
    assert latency["alternatives"] == ["otel_http_stable", "otel_http_old_ms"]
    assert [(t["alternative"], t["status"]) for t in latency["tried"]] == [
        ("otel_http_stable", "empty")
    ]
    assert latency["query"].startswith("histogram_quantile(0.95, sum by (le) (rate(")
    low, high = TRUTH.p95_bucket_ms  # recorded in ms: no factor of 1000 either way
    assert low <= latency["latest"] <= high, latency
    assert (latency["raw_series"], latency["scrape_interval_s"]) == (3, 1.0)
    assert latency["unit"] == "ms"
    errors = rows["error_rate"]
    assert errors["alternative"] == "otel_http_old_ms"
    assert errors["latest"] == pytest.approx(TRUTH.error_pct, abs=1.5)
    throughput = rows["api_throughput"]
    assert throughput["latest"] == pytest.approx(TRUTH.request_rate, rel=0.2)
    by_endpoint = rows["api_response_time_by_endpoint"]
    assert (by_endpoint["alternative"], by_endpoint["series"]) == ("otel_http_old_ms", 2)
    assert rows["http_requests_total"]["alternative"] == "otel_http_old_ms"
    # the server's connections are no pool's: pool use stays unmeasured, and says why
    pool = rows["db_pool_utilization"]
    assert (pool["status"], pool["alternative"]) == ("not_measured", None)
    # postgres_exporter gives no query latency without pg_stat_statements, and says so
    db = rows["database_query_time"]
    assert (db["status"], db["alternative"]) == ("not_measured", None)
    assert db["needs"].startswith(
        "postgres_exporter is scraped (pg_up) but exports no statement latency"
    )
    notes = {t["alternative"]: t.get("note") for t in db["tried"]}
    assert notes["postgres_exporter_stat_statements"] == notes["postgres_exporter_queries_yaml"]
    assert notes["mysqld_exporter_perf_schema"] is None
    cache = rows["cache_hit_rate"]
    assert cache["status"] == "not_measured"
    assert cache["needs"].endswith("no standard instrumentation records it")
    assert doc["measured"] == {
        "catalog": 4,
        "catalog_total": 20,
        "auxiliary": 2,  # the pool is not measured from the server's connections
        "auxiliary_total": 12,
    }


@pytest.mark.slow
async def test_a_server_that_measures_nothing_exits_1(
    servers: dict[str, str], tmp_path: Path
) -> None:
    code, out, err = await sources(["--prometheus", servers["bare"], "--window", "1m"], tmp_path)
    assert code == 1
    assert "measured: 0 of 20 metrics, 0 of 12 auxiliary series" in out
    assert f"prometheus at {servers['bare']}: no metric measured in the last 1m" in err


async def test_no_server_exits_1_naming_it(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, out, err = await sources(["--prometheus", url, "--json"], tmp_path)
    assert code == 1
    assert out == ""
    assert f"prometheus at {url}: all 31 queries failed" in err
    assert "connection" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prometheus", "prometheus:9090"], "bad Prometheus URL 'prometheus:9090'"),
        (["--prometheus", "ftp://prom/"], "need http://host[:port][/path]"),
        (["--prometheus", "http://prom:port/"], "bad Prometheus URL 'http://prom:port/'"),
        (["--prometheus", "http://127.0.0.1:9", "--window", "soon"], "window 'soon'"),
        ([], "give --prometheus URL (or set prometheus_url)"),
    ],
    ids=["no_scheme", "not_http", "bad_port", "bad_window", "no_url"],
)
async def test_bad_arguments_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    code, out, err = await sources(args, tmp_path)
    assert code == 2, (out, err)
    assert out == ""
    assert message in err


async def test_the_configured_url_is_used_without_the_flag(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = await sources([], tmp_path, prometheus_url=url)
    assert code == 1
    assert f"prometheus at {url}" in err
