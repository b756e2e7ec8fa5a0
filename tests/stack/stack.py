"""The whole stack, its scenarios, and the agent's analysis of it through the real CLI.

``running_stack`` starts, in order, PostgreSQL (an ``items`` table of ``rows`` rows with a
wide ``payload`` column), Redis, Debian's postgres_exporter and redis_exporter, the app
(``tests/stack/app.py``), and a real Prometheus scraping the app and both exporters every
second, and stops them in reverse order whatever happens. ``Stack.scenario`` switches the
data state in place:

- ``healthy``: an index on ``items.key``, the cache flushed and warmed with the hot items,
  97 % of requests for hot items, 3 % for any item (a miss, then an indexed query);
- ``dropped_index``: ``DROP INDEX``, the cache bypassed (so every request queries the
  database), any item: every query is a sequential scan of the table;
- ``cache_miss_storm``: the index back, the cache flushed and on, any item: nearly every
  lookup misses (1.5 million keys, a few hundred requests), the database stays fast.

``Stack.analyze`` runs ``prometheus-backend analyze api_optimization --prometheus URL
--window W --format json`` in a subprocess with no setting changed (no config file, no
``PROMETHEUS_BACKEND_*`` variable): the path an operator takes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.stack.load import KeyChooser, LoadGenerator, hot_and_cold, item_key, uniform
from tests.stack.processes import (
    App,
    Exporter,
    Postgres,
    Prometheus,
    Redis,
    Service,
    log_tail,
    postgres_exporter,
    redis_exporter,
)

REPO = Path(__file__).resolve().parents[2]
INDEX = "items_key_idx"
SCENARIOS = ("healthy", "dropped_index", "cache_miss_storm")
CLI_TIMEOUT_S = 180.0


@dataclass(frozen=True, slots=True)
class StackConfig:
    """Sizes and rates. 1.5 million rows of ~150 bytes make a sequential scan take
    150–250 ms on one core (the database target is 50 ms: a machine twice as fast still
    breaches it); an index lookup takes well under 1 ms."""

    rows: int = 1_500_000
    payload_chars: int = 100
    hot_keys: int = 1_000
    cold_share: float = 0.03
    """Share of requests for any item: the healthy cache hits ~97 % (target 95 %), and the
    database still sees a query every few seconds (its healthy level is measured)."""
    rate: float = 5.0
    """Requests a second. In ``dropped_index`` each is a sequential scan: about one core of
    the two a CI runner has, slow but not saturated."""
    cache_ttl_s: int = 600
    scrape_interval_s: float = 1.0


@dataclass(frozen=True, slots=True)
class Analysis:
    """One run of the CLI: the ``task_result/v1`` it printed, and its text rendering."""

    scenario: str
    window: str
    result: dict[str, Any]
    text: str
    path: Path

    @property
    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = self.result.get("report") or {}
        return report

    @property
    def bottlenecks(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.report.get("bottlenecks", [])
        return found

    def bottleneck(self, metric: str) -> dict[str, Any] | None:
        return next((b for b in self.bottlenecks if b["metric"] == metric), None)

    @property
    def source_problems(self) -> dict[str, Any]:
        """The Prometheus source's problems: every default query that came back empty or
        failed, by metric."""
        quality = self.report.get("data_quality", {})
        problems: dict[str, Any] = (
            quality.get("source_report", {}).get("prometheus", {}).get("problems", {})
        )
        return problems


@dataclass
class Stack:
    """The running parts (see the module doc); built by ``running_stack``."""

    workdir: Path
    config: StackConfig
    postgres: Postgres
    redis: Redis
    postgres_exporter: Exporter
    redis_exporter: Exporter
    app: App
    prometheus: Prometheus
    load: LoadGenerator
    started: dict[str, float] = field(default_factory=dict)
    """Scenario → epoch seconds it began (the latest time it was set)."""
    analyses: list[Analysis] = field(default_factory=list)
    cli_errors: list[str] = field(default_factory=list)

    # --- scenarios -----------------------------------------------------------------

    async def scenario(self, name: str) -> None:
        """Put the data and the load into ``name``'s state (see the module doc)."""
        cfg = self.config
        chooser: KeyChooser
        if name == "healthy":
            await self._sql(f"CREATE INDEX IF NOT EXISTS {INDEX} ON items (key)")
            await self._cache(enabled=True)
            await self._flush()
            await self._warm(range(1, cfg.hot_keys + 1))
            chooser = hot_and_cold(cfg.hot_keys, cfg.rows, cfg.cold_share)
        elif name == "dropped_index":
            await self._cache(enabled=False)
            await self._flush()
            await self._sql(f"DROP INDEX IF EXISTS {INDEX}")
            chooser = uniform(cfg.rows)
        elif name == "cache_miss_storm":
            await self._sql(f"CREATE INDEX IF NOT EXISTS {INDEX} ON items (key)")
            await self._flush()
            await self._cache(enabled=True)
            chooser = uniform(cfg.rows)
        else:
            raise ValueError(f"unknown scenario {name!r}; one of {SCENARIOS}")
        self.load.phase(name, chooser)
        if not self.load.running:
            self.load.start()
        self.started[name] = time.time()

    async def hold(self, seconds: float) -> None:
        """Let the load run; fail early if a part of the stack died meanwhile."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(5.0, left))
            dead = [s.name for s in self._services() if not s.running]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} died\n{self.diagnostics()}")

    async def _sql(self, statement: str) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(
            self.postgres.dsn, autocommit=True
        ) as conn:
            await conn.execute(statement)

    async def _flush(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.redis.url)
        try:
            await client.flushall()
        finally:
            await client.aclose()

    async def _cache(self, *, enabled: bool) -> None:
        async with httpx.AsyncClient(timeout=30.0) as client:
            body = {"enabled": enabled, "ttl_s": self.config.cache_ttl_s}
            response = await client.put(f"{self.app.url}/admin/cache", json=body)
            response.raise_for_status()

    async def _warm(self, ids: range) -> None:
        async with httpx.AsyncClient(timeout=60.0) as client:
            keys = [item_key(i) for i in ids]
            response = await client.post(f"{self.app.url}/admin/warm", json={"keys": keys})
            response.raise_for_status()

    # --- the agent ------------------------------------------------------------------

    async def analyze(self, scenario: str, window: str) -> Analysis:
        """``prometheus-backend analyze api_optimization`` over the last ``window``, as JSON
        (the CLI's own process, default settings); saved next to the logs."""
        from agent.reports.text import render_text
        from protocols import TaskResult, decode

        argv = [
            *cli_command(),
            "analyze",
            "api_optimization",
            "--prometheus",
            self.prometheus.url,
            "--window",
            window,
            "--format",
            "json",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_BACKEND_")}
        cwd = self.workdir / f"cli-{scenario}"  # no prometheus-backend.toml, no .env
        cwd.mkdir(exist_ok=True)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), CLI_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        stderr = err.decode(errors="replace")
        (cwd / "stderr.log").write_text(stderr)
        if proc.returncode not in (0, 1) or not out.strip():
            self.cli_errors.append(f"{scenario}: exit {proc.returncode}: {stderr[-2000:]}")
            raise RuntimeError(f"analyze exited {proc.returncode}:\n{stderr[-2000:]}")
        result: dict[str, Any] = json.loads(out)
        path = cwd / "result.json"
        path.write_text(json.dumps(result, indent=2))
        text = render_text(decode(TaskResult, out))
        (cwd / "result.txt").write_text(text + "\n")
        analysis = Analysis(scenario, window, result, text, path)
        self.analyses.append(analysis)
        return analysis

    # --- what a failure prints ------------------------------------------------------

    def _services(self) -> list[Service]:
        """The children ``hold`` watches (the server's is None until PostgreSQL started)."""
        services = [
            self.postgres.service,
            self.redis.service,
            self.postgres_exporter.service,
            self.redis_exporter.service,
            self.app.service,
        ]
        return [s for s in services if s is not None]

    def diagnostics(self) -> str:
        """The load's counts per phase, the scenario times, and the end of every log."""
        parts = [
            f"stack in {self.workdir}",
            "scenarios began: "
            + ", ".join(
                f"{n} at {time.strftime('%H:%M:%S', time.gmtime(t))} UTC"
                for n, t in self.started.items()
            ),
            "load generator:\n" + self.load.summary(),
        ]
        parts += [f"CLI error: {e}" for e in self.cli_errors]
        for service in self._services():
            parts.append(f"--- {service.log_path}:\n{log_tail(service.log_path, 1500)}")
        parts.append(f"--- {self.prometheus.log_path}:\n{log_tail(self.prometheus.log_path, 1500)}")
        return "\n".join(parts)

    async def metrics_text(self) -> dict[str, str]:
        """What each scraped target serves right now (``/metrics``), by job."""
        urls = {
            "app": self.app.metrics_url,
            "redis_exporter": self.redis_exporter.metrics_url,
            "postgres_exporter": self.postgres_exporter.metrics_url,
        }
        async with httpx.AsyncClient(timeout=10.0) as client:
            return {job: (await client.get(url)).text for job, url in urls.items()}


def cli_command() -> list[str]:
    """The installed ``prometheus-backend`` script next to this Python, else ``-m agent``."""
    script = Path(sys.executable).with_name("prometheus-backend")
    return [str(script)] if script.exists() else [sys.executable, "-m", "agent"]


async def load_items(dsn: str, rows: int, payload_chars: int) -> None:
    """The ``items`` table: ``rows`` rows, keys ``item-1`` …, a payload of ``payload_chars``
    characters, indexed on ``key`` and analysed; and pg_stat_statements created (its view
    exists for the exporter)."""
    import psycopg

    repeat = payload_chars // 32 + 1
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute(
            "CREATE TABLE items (id bigint PRIMARY KEY, key text NOT NULL, "
            "name text NOT NULL, payload text NOT NULL)"
        )
        await conn.execute(
            "INSERT INTO items SELECT i, 'item-' || i, 'Item ' || i, "
            "substr(repeat(md5(i::text), %s), 1, %s) FROM generate_series(1, %s) AS i",
            (repeat, payload_chars, rows),
        )
        await conn.execute(f"CREATE INDEX {INDEX} ON items (key)")
        await conn.execute("VACUUM ANALYZE items")


@asynccontextmanager
async def running_stack(workdir: Path, config: StackConfig | None = None) -> AsyncIterator[Stack]:
    """Every part started (bounded waits), yielded, and always stopped in reverse order."""
    cfg = config or StackConfig()
    logdir = workdir / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    # find every binary before starting anything: a missing one fails (or skips) at once
    postgres = Postgres(logdir)
    redis = Redis(logdir)
    pg_exporter = postgres_exporter(logdir, postgres)
    rd_exporter = redis_exporter(logdir, redis)
    app = App(logdir, postgres, redis, REPO)
    jobs = {"app": app.target, "redis": rd_exporter.target, "postgres": pg_exporter.target}
    prometheus = Prometheus(workdir / "prometheus", jobs, cfg.scrape_interval_s)
    load = LoadGenerator(app.url, uniform(cfg.rows), rate=cfg.rate)
    async with AsyncExitStack() as stack:
        # each stop is registered before its start: a start that fails half-way is undone
        stack.push_async_callback(postgres.stop)
        await postgres.start()
        stack.push_async_callback(redis.stop)
        await redis.start()
        await load_items(postgres.dsn, cfg.rows, cfg.payload_chars)
        for part in (pg_exporter, rd_exporter, app):
            stack.push_async_callback(part.stop)
            await part.start()
        stack.push_async_callback(prometheus.stop)
        await prometheus.start()
        await prometheus.wait_for_scrapes(3)
        stack.push_async_callback(load.stop)  # started by the first scenario
        yield Stack(
            workdir=workdir,
            config=cfg,
            postgres=postgres,
            redis=redis,
            postgres_exporter=pg_exporter,
            redis_exporter=rd_exporter,
            app=app,
            prometheus=prometheus,
            load=load,
        )


# --- evidence: what the stock parts expose ------------------------------------------

_VALUE = r'"(?:[^"\\]|\\.)*"'
"""A quoted label value (it may hold braces: ``http_route="/items/{key}"``)."""
_SAMPLE = re.compile(rf"^([A-Za-z_:][A-Za-z0-9_:]*)(\{{(?:[^\"}}]|{_VALUE})*\}})?\s")
_LABEL = re.compile(rf"([A-Za-z_][A-Za-z0-9_]*)={_VALUE}")


def families(text: str) -> dict[str, set[str]]:
    """Metric name (histograms by their ``_bucket``/``_count``/``_sum`` names) → the label
    names its samples carry, from an exposition text."""
    found: dict[str, set[str]] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            labels = set(_LABEL.findall(match.group(2) or ""))
            found.setdefault(match.group(1), set()).update(labels)
    return found


def trimmed(text: str, keep: re.Pattern[str], per_family: int = 20) -> str:
    """The exposition text of the families ``keep`` matches: HELP/TYPE and at most
    ``per_family`` samples each (one histogram's buckets fit), the rest counted."""
    out: list[str] = []
    shown: dict[str, int] = {}
    hidden: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("# "):
            parts = line.split(" ", 3)
            if len(parts) > 2 and keep.match(parts[2]):
                out.append(line)
            continue
        match = _SAMPLE.match(line)
        if not match or not keep.match(match.group(1)):
            continue
        family = re.sub(r"_(bucket|count|sum)$", "", match.group(1))
        if shown.get(family, 0) < per_family:
            out.append(line)
            shown[family] = shown.get(family, 0) + 1
        else:
            hidden[family] = hidden.get(family, 0) + 1
    out += [f"# … {n} more samples of {f}" for f, n in sorted(hidden.items())]
    return "\n".join(out) + "\n"


SAMPLE_FAMILIES: Mapping[str, re.Pattern[str]] = {
    # everything the stock OTel wiring adds (Python runtime and process metrics left out)
    "app": re.compile(r"(?!python_|process_)"),
    "redis_exporter": re.compile(
        r"redis_(up$|keyspace_|commands_total|commands_duration|latency_percentiles|"
        r"memory_used_bytes$|memory_max_bytes|config_maxmemory|evicted_keys|expired_keys|"
        r"db_keys|connected_clients)"
    ),
    "postgres_exporter": re.compile(
        r"pg_(up|stat_database_|stat_statements|stat_user_tables|stat_activity_count|"
        r"database_size|locks_count|exporter_last_scrape|static)"
    ),
}
