"""Benchmark of KPI ingestion (not a test): is taking samples into the store cheap next to decoding?

Publishes N samples (default 200 000) in ``kpi_batch/v1`` batches of 100 to an embedded
nats-server and measures, in the same run and from the same server:

- decode-only: a subscriber that only decodes each message with msgspec into ``KpiBatch``;
- ingest: ``KpiSource`` writing into a ``MetricStore`` (validation, grouping, store writes).

Two ways of delivery, each timed from the first message received to the last one handled:

- ``stream``: the batches sit in a JetStream stream and both readers replay them through an
  ordered consumer (what a restarted agent does); the publisher is out of the picture.
- ``core``: a child process publishes the batches over core NATS while the reader runs
  (live ingestion; drops by a slow consumer, if any, are reported).

Payload shapes: ``labelled`` (5 metrics × 4 endpoints, epoch seconds; the main figure),
``unlabelled`` and ``rfc3339`` (labelled, RFC 3339 times). Prints samples/s of both readers,
the ratio, the store's memory per stored sample (its numpy buffers' bytes / samples held)
and the goal line; writes ``--json`` (default reports/bench_ingest.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from agent.config import Settings
from agent.runtime.embedded import EmbeddedServer
from agent.sources.kpi import KpiSource, KpiStats, ensure_kpi_stream
from agent.store.metric_store import MetricStore
from protocols.codec import ProtocolError
from protocols.messages import KpiBatch

GOAL = "goal: ingest ≥ 0.5 × the decode-only rate; ≤ 24 bytes of store memory per sample"
MIN_RATIO = 0.5
MAX_BYTES_PER_SAMPLE = 24.0
PER_BATCH = 100
METRICS = ("api_response_time", "error_rate", "api_throughput", "cache_hit_rate", "cpu_utilization")
ENDPOINTS = ("/api/chat", "/api/feed", "/api/report", "/ws")
SHAPES = ("labelled", "unlabelled", "rfc3339")
_DECODER = msgspec.json.Decoder(KpiBatch)


def make_batches(samples: int, shape: str, start: float) -> list[bytes]:
    """``samples`` samples in batches of 100, each batch a mix of every series."""
    out = []
    enc = msgspec.json.Encoder()
    for b in range(samples // PER_BATCH):
        batch = []
        for j in range(PER_BATCH):
            i = b * PER_BATCH + j
            epoch = start + i * 0.01
            ts: float | str = epoch
            if shape == "rfc3339":
                ts = datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
            sample: dict[str, Any] = {"metric": METRICS[j % 5], "value": (i % 997) * 0.5, "ts": ts}
            if shape != "unlabelled":
                sample["labels"] = {"endpoint": ENDPOINTS[(j // 5) % 4], "region": "eu-west"}
            batch.append(sample)
        out.append(enc.encode({"schema": "kpi_batch/v1", "source": "bench", "samples": batch}))
    return out


class Clock:
    """First message seen to last message handled."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.seen = 0
        self.first = 0.0
        self.last = 0.0
        self.done = asyncio.Event()

    def tick(self) -> None:
        if self.seen == 0:
            self.first = time.perf_counter()
        self.seen += 1
        if self.seen == self.expected:
            self.last = time.perf_counter()
            self.done.set()

    @property
    def elapsed(self) -> float:
        return self.last - self.first


async def _no_dead_letters(
    subject: str, data: bytes, headers: object, why: ProtocolError
) -> None:  # pragma: no cover - the bench only sends good batches
    raise RuntimeError(f"bench batch refused on {subject}: {why}")


def _publish_core(url: str, subject: str, batches: list[bytes], ready: Any, go: Any) -> None:
    """Child process: publish every batch over core NATS as fast as the client allows."""

    async def run() -> None:
        nc = await nats.connect(url)
        ready.set()
        go.wait(30)
        for data in batches:
            await nc.publish(subject, data)
        await nc.flush(timeout=60)
        await nc.close()

    asyncio.run(run())


async def _deliver(
    mode: str, url: str, subject: str, batches: list[bytes], timeout: float
) -> Callable[[], Any] | None:
    """For ``core``: start the child publisher, return a function that lets it go."""
    if mode == "stream":
        return None
    ctx = multiprocessing.get_context("spawn")
    ready, go = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_publish_core, args=(url, subject, batches, ready, go))
    proc.start()
    if not await asyncio.to_thread(ready.wait, timeout):
        proc.kill()
        raise TimeoutError("publisher did not connect")

    def release() -> Any:
        go.set()
        return proc

    return release


async def decode_only(
    mode: str,
    url: str,
    stream: str,
    subject: str,
    batches: list[bytes],
    limits: Settings,
    timeout: float,
) -> float:
    """Seconds for a reader that only decodes each message (msgspec → KpiBatch)."""
    nc = await nats.connect(url)
    clock = Clock(len(batches))
    samples = 0

    async def cb(msg: Msg) -> None:
        nonlocal samples
        samples += len(_DECODER.decode(msg.data).samples)
        clock.tick()

    try:
        release = await _deliver(mode, url, subject, batches, timeout)
        if mode == "stream":
            await nc.jetstream().subscribe(
                subject,
                stream=stream,
                cb=cb,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.ALL,
                pending_msgs_limit=limits.kpi_pending_msgs_limit,
                pending_bytes_limit=limits.kpi_pending_bytes_limit,
            )
        else:
            await nc.subscribe(
                subject,
                cb=cb,
                pending_msgs_limit=limits.kpi_pending_msgs_limit,
                pending_bytes_limit=limits.kpi_pending_bytes_limit,
            )
            await nc.flush()
        proc = release() if release else None
        await asyncio.wait_for(clock.done.wait(), timeout)
        if proc is not None:
            await asyncio.to_thread(proc.join, timeout)
    finally:
        await nc.close()
    assert samples == len(batches) * PER_BATCH
    return clock.elapsed


async def ingest_run(
    mode: str,
    url: str,
    subject: str,
    batches: list[bytes],
    settings: Settings,
    timeout: float,
) -> tuple[float, MetricStore, KpiStats]:
    """Seconds for ``KpiSource`` to take every batch into a fresh store."""
    nc = await nats.connect(url)
    store = MetricStore(
        max_samples_per_series=settings.store_max_samples_per_series,
        max_series=settings.store_max_series,
        max_age_s=settings.store_max_age_s,
    )
    stats = KpiStats()
    clock = Clock(len(batches))
    source = KpiSource(
        nc, nc.jetstream(), settings, store, stats, _no_dead_letters, subject=subject
    )
    original = source._on_msg

    async def timed(msg: Msg) -> None:  # the clock around the source's own callback
        await original(msg)
        clock.tick()

    source._on_msg = timed  # type: ignore[method-assign]
    try:
        release = await _deliver(mode, url, subject, batches, timeout)
        await source.start()
        proc = release() if release else None
        await asyncio.wait_for(clock.done.wait(), timeout)
        source.flush()
        clock.last = time.perf_counter()
        if proc is not None:
            await asyncio.to_thread(proc.join, timeout)
    finally:
        await source.stop()
        await nc.close()
    return clock.elapsed, store, stats


def store_bytes_per_sample(store: MetricStore) -> tuple[float, int]:
    buffers = store._buffers.values()  # the bench may look inside: what the numpy arrays hold
    nbytes = sum(b._ts.nbytes + b._values.nbytes for b in buffers)
    samples = store.stats()["samples"]
    return nbytes / max(samples, 1), nbytes


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        async with EmbeddedServer(Path(tmp) / "nats") as server:
            settings = Settings(
                nats_url=server.url,
                agent_id="bench-ingest",
                state_dir=Path(tmp) / "state",
                kpi_stream_max_age_s=86_400.0,
            )
            nc: Client = await nats.connect(server.url)
            js = nc.jetstream()
            stream = await ensure_kpi_stream(js, settings)
            start = time.time() - 1800
            for shape in args.shapes:
                stored = f"swarm.kpi.backend.bench{shape}"  # in the KPI stream
                batches = make_batches(args.samples, shape, start)
                for k in range(0, len(batches), 200):  # the stream mode replays these
                    await asyncio.gather(
                        *(js.publish(stored, d, timeout=30) for d in batches[k : k + 200])
                    )
                for mode in args.modes:
                    mode_settings = settings.model_copy(update={"kpi_stream": mode == "stream"})
                    # core: a subject no stream keeps, so the stream runs replay only `stored`
                    subject = stored if mode == "stream" else f"bench.core.{shape}"
                    dec, ing = [], []
                    stats = KpiStats()
                    store = MetricStore()
                    for _ in range(args.repeat):
                        dec.append(
                            await decode_only(
                                mode,
                                server.url,
                                stream,
                                subject,
                                batches,
                                mode_settings,
                                args.timeout,
                            )
                        )
                        secs, store, stats = await ingest_run(
                            mode, server.url, subject, batches, mode_settings, args.timeout
                        )
                        ing.append(secs)
                    n = len(batches) * PER_BATCH
                    dec_rate = n / statistics.median(dec)
                    ing_rate = n / statistics.median(ing)
                    per_sample, nbytes = store_bytes_per_sample(store)
                    snap = stats.snapshot()
                    row = {
                        "samples": n,
                        "decode_only_samples_per_s": round(dec_rate),
                        "ingest_samples_per_s": round(ing_rate),
                        "ratio": round(ing_rate / dec_rate, 3),
                        "ns_per_sample_decode_only": round(1e9 / dec_rate),
                        "ns_per_sample_ingest": round(1e9 / ing_rate),
                        "store_bytes_per_sample": round(per_sample, 2),
                        "store_buffer_bytes": nbytes,
                        "store": store.stats(),
                        "kpi_stats": snap,
                        "runs_decode_only_s": [round(x, 4) for x in dec],
                        "runs_ingest_s": [round(x, 4) for x in ing],
                    }
                    results[f"{shape}/{mode}"] = row
                    print(
                        f"{shape:<10} {mode:<6} decode-only {dec_rate:>10,.0f}/s   ingest "
                        f"{ing_rate:>10,.0f}/s   ratio {ing_rate / dec_rate:4.2f}   "
                        f"store {per_sample:5.1f} B/sample   accepted {snap['samples_accepted']:,} "
                        f"drops {snap['slow_consumer_drops']}",
                        flush=True,
                    )
            await nc.close()
    return results


def steady_state_bytes_per_sample(settings: Settings) -> float:
    """Store memory per sample once every series holds its bound (a long-running agent)."""
    import numpy as np

    limit = settings.store_max_samples_per_series
    store = MetricStore(max_samples_per_series=limit, max_series=10, max_age_s=1e9)
    t = 1_790_000_000.0 + np.arange(limit * 2, dtype=np.float64)
    for k in range(0, t.size, 100):
        store.add_many("m", t[k : k + 100], t[k : k + 100])
    return store_bytes_per_sample(store)[0]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=200_000, help="samples per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES))
    parser.add_argument(
        "--modes", nargs="+", choices=("stream", "core"), default=["stream", "core"]
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="bound of every wait (s)")
    parser.add_argument("--json", default="reports/bench_ingest.json", help="output file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    started = time.perf_counter()
    results = asyncio.run(run(args))
    steady = steady_state_bytes_per_sample(Settings(agent_id="bench-ingest"))
    main_key = next(iter(results))
    ratios = {k: r["ratio"] for k, r in results.items()}
    worst_bytes = max(r["store_bytes_per_sample"] for r in results.values())
    ratio_met = all(x >= MIN_RATIO for x in ratios.values())
    bytes_met = steady <= MAX_BYTES_PER_SAMPLE
    print(f"store memory at steady state (every series at its bound): {steady:.1f} B/sample")
    print(GOAL)
    print(
        f"result: ratio {'met' if ratio_met else 'NOT met'} (min {min(ratios.values()):.2f}, "
        f"{main_key} {ratios[main_key]:.2f}); memory {'met' if bytes_met else 'NOT met'} "
        f"({steady:.1f} B/sample at steady state, up to {worst_bytes:.1f} while series grow)"
    )
    report = {
        "benchmark": "ingest",
        "run_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "goal": GOAL,
        "goal_met": ratio_met and bytes_met,
        "ratio_met": ratio_met,
        "memory_met": bytes_met,
        "batch_size": PER_BATCH,
        "elapsed_s": round(time.perf_counter() - started, 2),
        "steady_state_store_bytes_per_sample": round(steady, 2),
        "memory_judged_on": "steady state: every series at store_max_samples_per_series",
        "max_store_bytes_per_sample_in_runs": worst_bytes,
        "min_ratio": min(ratios.values()),
        "results": results,
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
