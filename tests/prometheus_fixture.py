"""A real Prometheus scraping an exporter with known figures, for the Prometheus source's tests.

``Exporter`` serves, from threads of its own, metrics made with the real Prometheus client
library: OTel's ``http_server_request_duration_seconds`` histogram by route and status,
node_exporter's CPU and memory series, redis_exporter's keyspace counters and a
WebSocket message counter, all at rates and values fixed below (``TRUTH``), so a test
knows what Prometheus must answer. ``HistogramExporter`` serves one histogram of chosen
buckets and observations (a database histogram recorded into the OTel SDK's default
boundaries, say). ``PrometheusServer`` runs the ``prometheus`` binary
(Debian's package; ``.ci/run`` installs it) on a free loopback port scraping it every
second, each wait bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from wsgiref.simple_server import WSGIServer

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from agent.runtime.embedded import free_port, stop_process

# OTel's recommended buckets for http.server.request.duration (seconds).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
OTEL_SDK_DEFAULT_BUCKETS = (
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0,
    1000.0, 2500.0, 5000.0, 7500.0, 10000.0,
)  # fmt: skip
"""The OTel SDK's default explicit boundaries (meant for ms): a histogram recorded in seconds
into them, as the stock psycopg instrumentation does, puts every call in the (0, 5] bucket."""
REGION = "eu-west"
"""A target label Prometheus adds to every series: the region breakdown."""


@dataclass(frozen=True, slots=True)
class Truth:
    """What the exporter produces, and so what a query over it must give."""

    request_rate: float = 100.0
    """Requests per second, alternating /api/feed and /api/chat."""
    error_every: int = 50
    """Every 50th request (always a /api/chat one) answers 500: a 2 % error rate."""
    feed_ms: tuple[float, float] = (55.0, 95.0)
    """/api/feed latencies spread evenly over this range."""
    chat_ms: tuple[float, float] = (25.0, 45.0)
    cpus: int = 2
    cpu_busy: float = 0.4
    """Each CPU is busy 40 % of the time (idle 60 %)."""
    mem_total_bytes: float = 8 * 2**30
    mem_available_bytes: float = 2 * 2**30
    redis_hits_per_s: float = 46.0
    redis_misses_per_s: float = 4.0
    ws_messages_per_s: float = 250.0

    @property
    def error_pct(self) -> float:
        return 100.0 / self.error_every

    @property
    def p95_bucket_ms(self) -> tuple[float, float]:
        """The histogram bucket holding the true p95 of all requests.

        Half the requests are chat (25–45 ms), half feed (55–95 ms, even): the overall
        p95 is feed's p90, 91 ms, in the (75, 100] ms bucket.
        """
        return 75.0, 100.0

    @property
    def cpu_pct(self) -> float:
        return 100.0 * self.cpu_busy

    @property
    def memory_pct(self) -> float:
        return 100.0 * (1 - self.mem_available_bytes / self.mem_total_bytes)

    @property
    def redis_hit_pct(self) -> float:
        hits, misses = self.redis_hits_per_s, self.redis_misses_per_s
        return 100.0 * hits / (hits + misses)


TRUTH = Truth()
_SLOTS = 25
"""Latencies of a route cycle through 25 evenly spaced values of its range."""


DOMAIN_LATENCIES_S: dict[str, float] = {
    "messaging_process_duration_seconds": 0.12,
    "websocket_message_delivery_duration_seconds": 0.03,
    "feed_content_retrieval_duration_seconds": 0.15,
    "feed_generation_duration_seconds": 0.7,
    "report_generation_duration_seconds": 0.45,
    "sentiment_analysis_duration_seconds": 0.12,
    "data_pipeline_duration_seconds": 0.25,
}
"""Latencies of the other domains (seconds), observed at a fixed value every tick."""


class _Served:
    """A registry on ``http://127.0.0.1:<port>/metrics`` plus a thread that feeds it
    (``_run``, until ``_stop`` is set): what every test exporter here shares."""

    def __init__(self, thread_name: str) -> None:
        self.port = free_port()
        self.registry = CollectorRegistry()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._server: WSGIServer | None = None
        self._server_thread: threading.Thread | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server, self._server_thread = start_http_server(
            self.port, addr="127.0.0.1", registry=self.registry
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop both threads (blocks up to a second: call it off the event loop)."""
        self._stop.set()
        self._thread.join(timeout=5)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._server_thread is not None:
            self._server_thread.join(timeout=5)

    def _run(self) -> None:
        raise NotImplementedError


class Exporter(_Served):
    """The figures of ``TRUTH`` on ``http://127.0.0.1:<port>/metrics``, from two threads."""

    def __init__(self, truth: Truth = TRUTH, tick_s: float = 0.02) -> None:
        super().__init__("exporter-load")
        self.truth = truth
        self.tick_s = tick_s
        self.requests = Histogram(
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests.",
            ["http_request_method", "http_route", "http_response_status_code"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.cpu = Counter(
            "node_cpu_seconds", "CPU seconds by mode.", ["cpu", "mode"], registry=self.registry
        )
        mem_total = Gauge("node_memory_MemTotal_bytes", "Memory.", registry=self.registry)
        mem_available = Gauge("node_memory_MemAvailable_bytes", "Memory.", registry=self.registry)
        mem_total.set(truth.mem_total_bytes)
        mem_available.set(truth.mem_available_bytes)
        self.redis_hits = Counter("redis_keyspace_hits", "Hits.", registry=self.registry)
        self.redis_misses = Counter("redis_keyspace_misses", "Misses.", registry=self.registry)
        self.ws_messages = Counter("websocket_messages", "Messages.", registry=self.registry)
        # one histogram per domain latency the query table reads, each at a fixed value
        self.latencies = {
            name: (
                Histogram(name, f"{name}.", buckets=BUCKETS, registry=self.registry),
                seconds,
            )
            for name, seconds in DOMAIN_LATENCIES_S.items()
        }
        self.ws_opened = Counter("websocket_connections_opened", "Opened.", registry=self.registry)
        self.ws_dropped = Counter(
            "websocket_connections_dropped", "Dropped.", registry=self.registry
        )
        self.cache_hits = Counter("cache_hits", "Hits.", registry=self.registry)
        self.cache_misses = Counter("cache_misses", "Misses.", registry=self.registry)
        self.feed_items = Counter(
            "feed_items_served", "Items served.", ["fresh"], registry=self.registry
        )
        Gauge("DCGM_FI_DEV_GPU_UTIL", "GPU utilisation %.", registry=self.registry).set(70.0)
        self.emitted = 0

    def _request(self, i: int) -> None:
        t = self.truth
        feed = i % 2 == 0
        low, high = t.feed_ms if feed else t.chat_ms
        slot = (i // 2) % _SLOTS
        latency_ms = low + (high - low) * (slot + 0.5) / _SLOTS
        status = "500" if i % t.error_every == t.error_every - 1 else "200"
        route = "/api/feed" if feed else "/api/chat"
        self.requests.labels("GET", route, status).observe(latency_ms / 1000.0)

    def _run(self) -> None:
        t = self.truth
        start = last = time.monotonic()
        while not self._stop.wait(self.tick_s):
            now = time.monotonic()
            due = int((now - start) * t.request_rate)
            for i in range(self.emitted, due):
                self._request(i)
            self.emitted = max(self.emitted, due)
            dt = now - last
            last = now
            for cpu in range(t.cpus):
                self.cpu.labels(str(cpu), "idle").inc(dt * (1 - t.cpu_busy))
                self.cpu.labels(str(cpu), "user").inc(dt * t.cpu_busy)
            self.redis_hits.inc(dt * t.redis_hits_per_s)
            self.redis_misses.inc(dt * t.redis_misses_per_s)
            self.ws_messages.inc(dt * t.ws_messages_per_s)
            for histogram, seconds in self.latencies.values():
                histogram.observe(seconds)
            self.ws_opened.inc(dt * 10)
            self.ws_dropped.inc(dt * 0.05)  # 99.5 % stability
            self.cache_hits.inc(dt * 85)
            self.cache_misses.inc(dt * 15)  # 85 % hits
            self.feed_items.labels("true").inc(dt * 97)
            self.feed_items.labels("false").inc(dt * 3)  # 97 % fresh


class HistogramExporter(_Served):
    """One unlabelled histogram on ``http://127.0.0.1:<port>/metrics``: ``rate`` observations
    a second, the i-th of value ``observe(i)`` (seconds), so a test knows what it holds."""

    def __init__(
        self,
        name: str,
        buckets: Sequence[float],
        observe: Callable[[int], float],
        rate: float = 50.0,
        tick_s: float = 0.02,
    ) -> None:
        super().__init__(f"{name}-load")
        self.observe = observe
        self.rate = rate
        self.tick_s = tick_s
        self.histogram = Histogram(name, f"{name}.", buckets=buckets, registry=self.registry)
        self.emitted = 0

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(self.tick_s):
            due = int((time.monotonic() - start) * self.rate)
            for i in range(self.emitted, due):
                self.histogram.observe(self.observe(i))
            self.emitted = max(self.emitted, due)


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


class PrometheusServer:
    """``async with PrometheusServer(dir, [target]) as prom: prom.url`` — a real Prometheus."""

    def __init__(self, workdir: Path, targets: list[str], scrape_interval_s: float = 1.0) -> None:
        binary = prometheus_binary()
        if binary is None:
            raise FileNotFoundError("prometheus not found: apt-get install prometheus")
        self.binary = binary
        self.workdir = workdir
        self.targets = targets
        self.scrape_interval_s = scrape_interval_s
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None
        self.log_path = workdir / "prometheus.log"
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _config(self) -> Path:
        interval = f"{self.scrape_interval_s:g}s"
        targets = ", ".join(f"'{t}'" for t in self.targets)
        path = self.workdir / "prometheus.yml"
        path.write_text(
            "global:\n"
            f"  scrape_interval: {interval}\n"
            f"  scrape_timeout: {interval}\n"
            f"  evaluation_interval: {interval}\n"
            "scrape_configs:\n"
            "  - job_name: exporter\n"
            "    static_configs:\n"
            f"      - targets: [{targets}]\n"
            f"        labels: {{region: {REGION}}}\n"
        )
        return path

    async def start(self, timeout: float = 20.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self._config()
        self._log = self.log_path.open("wb")
        self.process = await asyncio.create_subprocess_exec(
            self.binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        async with httpx.AsyncClient(timeout=1.0) as client:
            deadline = asyncio.get_running_loop().time() + timeout
            while asyncio.get_running_loop().time() < deadline:
                if self.process.returncode is not None:
                    raise RuntimeError(f"prometheus exited: {self.log_path.read_text()[-2000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{self.url}/-/ready")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        await self.stop()
        raise TimeoutError(f"prometheus not ready on {self.url} within {timeout}s")

    async def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.get(f"{self.url}/api/v1/query", params={"query": promql})
            response.raise_for_status()
            result: list[dict[str, Any]] = response.json()["data"]["result"]
            return result

    async def wait_for_scrapes(self, scrapes: int, timeout: float = 30.0) -> None:
        """Until every target is up and has been scraped ``scrapes`` times (bounded)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        count = 0.0
        while loop.time() < deadline:
            result = await self.query("min(count_over_time(up[1h])) and min(up) == 1")
            count = float(result[0]["value"][1]) if result else 0.0
            if count >= scrapes:
                return
            await asyncio.sleep(0.25)
        raise TimeoutError(f"{count:g} of {scrapes} scrapes within {timeout}s; see {self.log_path}")

    async def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        await stop_process(proc, timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    async def __aenter__(self) -> PrometheusServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
