"""The agent against a real backend instrumented only by stock parts (issue 14).

One stack per module (``tests/stack``): PostgreSQL, Redis, Debian's postgres_exporter and
redis_exporter, a Starlette app instrumented by the stock OpenTelemetry packages, a real
Prometheus scraping them every second, and a steady load from this process. Three
scenarios run one after the other in place, each judged by the real CLI
(``prometheus-backend analyze api_optimization --prometheus URL``) with default settings:

- healthy (index, warm cache): no bottleneck above ``low``;
- the index dropped (every request a sequential scan of 1.5 million rows): the database is
  the first bottleneck and the API's latency names it as its cause. The window holds a
  minute of the healthy phase before the drop, so the onsets are inside it;
- a cache-miss storm (any of 1.5 million keys): ``redis_cache_hit`` is critical.

Each failure prints the report's table and the end of every log. Missing binaries skip
the module on a dev machine and fail it in CI (``CI=true``: ``.ci/run`` installs them).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.stack.processes import missing_binaries
from tests.stack.stack import (
    SAMPLE_FAMILIES,
    Analysis,
    Stack,
    families,
    running_stack,
    trimmed,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

HEALTHY_S = 100
"""Seconds of the healthy scenario before it is judged (over the same span)."""
LEAD_S = 60
"""Seconds of the healthy scenario inside the dropped-index window: the onset is seen."""
SLOW_S = 110
STORM_S = 120
STORM_WINDOW_S = 60
"""The storm is judged over its last minute only: ``rate()`` windows (60 s with default
settings) that reach back into the dropped-index phase would mix its slow queries in."""
API_METRICS = ("api_response_time", "api_availability", "error_rate")
"""Judged in every scenario: the defaults read them from the stock HTTP histogram."""


def _require_binaries() -> None:
    """Skip (a dev machine) or fail (CI) when a binary the stack runs is missing."""
    problems = missing_binaries()
    if problems:
        reason = "; ".join(problems)
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have the stack's binaries (.ci/run installs them): {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    _require_binaries()
    async with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="module")
async def healthy(stack: Stack) -> Analysis:
    await stack.scenario("healthy")
    await stack.hold(HEALTHY_S)
    return await stack.analyze("healthy", f"{HEALTHY_S}s")


@pytest.fixture(scope="module")
async def dropped_index(stack: Stack, healthy: Analysis) -> Analysis:
    """Straight after the healthy phase (the fixture above), so its window starts healthy."""
    assert time.time() - stack.started["healthy"] >= LEAD_S
    await stack.scenario("dropped_index")
    await stack.hold(SLOW_S)
    return await stack.analyze("dropped_index", f"{SLOW_S + LEAD_S}s")


@pytest.fixture(scope="module")
async def cache_miss_storm(stack: Stack) -> Analysis:
    await stack.scenario("cache_miss_storm")
    await stack.hold(STORM_S)
    return await stack.analyze("cache_miss_storm", f"{STORM_WINDOW_S}s")


@contextlib.contextmanager
def explained(stack: Stack, analysis: Analysis | None = None) -> Iterator[None]:
    """On any failure, print the report's performance table and the stack's logs."""
    try:
        yield
    except BaseException:
        if analysis is not None:
            print(f"=== {analysis.scenario} over {analysis.window} ({analysis.path}) ===")
            print(analysis.text)
            print(f"source problems: {analysis.source_problems}")
        print(stack.diagnostics())
        raise


def _judged(analysis: Analysis, *metrics: str) -> None:
    performance = analysis.report.get("performance", {})
    missing = [m for m in metrics if m not in performance]
    assert not missing, f"not judged (no data from the default queries): {missing}"


async def test_healthy_backend_has_no_bottleneck_above_low(stack: Stack, healthy: Analysis) -> None:
    with explained(stack, healthy):
        assert healthy.result["status"] == "completed"
        _judged(healthy, *API_METRICS, "redis_cache_hit", "database_query_time")
        above_low = [
            f"{b['metric']} {b['severity']}" for b in healthy.bottlenecks if b["severity"] != "low"
        ]
        assert not above_low


async def test_dropped_index_makes_the_database_the_root_bottleneck(
    stack: Stack, dropped_index: Analysis
) -> None:
    with explained(stack, dropped_index):
        assert dropped_index.result["status"] == "completed"
        _judged(dropped_index, *API_METRICS, "database_query_time")
        assert dropped_index.bottlenecks, "no bottleneck at all"
        assert dropped_index.bottlenecks[0]["metric"] == "database_query_time"
        api = dropped_index.bottleneck("api_response_time")
        assert api is not None, "the API's latency is not a bottleneck"
        assert "database_query_time" in (api.get("caused_by") or [])


async def test_cache_miss_storm_makes_redis_cache_hit_critical(
    stack: Stack, cache_miss_storm: Analysis
) -> None:
    with explained(stack, cache_miss_storm):
        assert cache_miss_storm.result["status"] == "completed"
        _judged(cache_miss_storm, *API_METRICS, "redis_cache_hit")
        redis = cache_miss_storm.bottleneck("redis_cache_hit")
        assert redis is not None, "redis_cache_hit is not a bottleneck"
        assert redis["severity"] == "critical"


@pytest.mark.usefixtures("healthy")  # after traffic: every family exists
async def test_stock_parts_expose_what_the_default_queries_read(stack: Stack) -> None:
    """The names and labels the defaults are written against, as the stock parts emit them;
    trimmed samples of every target are saved beside the logs (``samples/``; the ones in
    ``tests/stack/samples`` were made so)."""
    texts = await stack.metrics_text()
    samples = stack.workdir / "samples"
    samples.mkdir(exist_ok=True)
    for job, text in texts.items():
        (samples / f"{job}.txt").write_text(trimmed(text, SAMPLE_FAMILIES[job]))
    with explained(stack):
        _check_families(texts)


def _check_families(texts: dict[str, str]) -> None:
    app = families(texts["app"])
    http = app.get("http_server_request_duration_seconds_bucket", set())
    assert {"http_route", "http_response_status_code", "le"} <= http, sorted(app)
    assert "db_client_operation_duration_seconds_bucket" in app, sorted(app)
    # the redis instrumentation records spans only: the database histogram is SQL alone
    assert 'db_system_name="redis"' not in texts["app"], _lines(texts["app"], "redis")
    redis = families(texts["redis_exporter"])
    assert {"redis_keyspace_hits_total", "redis_keyspace_misses_total"} <= set(redis)
    postgres = families(texts["postgres_exporter"])
    assert "pg_stat_database_tup_returned" in postgres, sorted(postgres)
    # postgres_exporter 0.11 has no pg_stat_statements collector (a custom query file only)
    assert not [name for name in postgres if name.startswith("pg_stat_statements")]


def _lines(text: str, word: str) -> str:
    return "\n".join(line for line in text.splitlines() if re.search(word, line))[:2000]
