"""The KPI stream: ``ingest`` (pure, no server) and ``KpiSource`` over a real nats-server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, cast

import msgspec
import nats
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nats.aio.client import Client
from nats.errors import SlowConsumerError
from nats.js.api import DeliverPolicy

from agent.config import Settings
from agent.sources.kpi import (
    KpiSource,
    KpiStats,
    describe,
    ensure_kpi_stream,
    ingest,
    ingest_batches,
)
from agent.store.metric_store import MetricStore
from protocols.codec import ProtocolError
from protocols.errors import ErrorCode

T0 = 1_790_000_000.0  # 2026-09-21, inside the wire's 2000–2100 range


def sample(metric: str = "api_response_time", value: Any = 1.0, ts: Any = T0, **labels: str) -> Any:
    out: dict[str, Any] = {"metric": metric, "value": value, "ts": ts}
    if labels:
        out["labels"] = labels
    return out


def batch(*samples: Any, schema: str = "kpi_batch/v1", source: str = "tracker") -> bytes:
    return msgspec.json.encode({"schema": schema, "source": source, "samples": list(samples)})


def big_store() -> MetricStore:
    return MetricStore(max_samples_per_series=200_000, max_series=1_000, max_age_s=30 * 86_400)


def rejected(stats: KpiStats) -> dict[str, int]:
    return dict(stats.samples_rejected)


# --- the pure core ------------------------------------------------------------------


def test_good_batch_with_epoch_and_rfc3339_times() -> None:
    store, stats = big_store(), KpiStats()
    data = batch(
        sample(value=120.0, ts=T0),
        sample(value=130.0, ts=int(T0) + 10),
        sample(value=140.0, ts="2026-09-21T13:07:00Z"),
        sample(value=150.0, ts="2026-09-21T15:07:00+02:00"),
    )
    assert ingest(store, data, stats)
    series = store.series("api_response_time")
    assert len(series) == 4
    assert sorted(series.values.tolist()) == [120.0, 130.0, 140.0, 150.0]
    assert store.source("api_response_time") == "kpi"
    assert stats.snapshot()["samples_accepted"] == 4
    assert stats.batches == 1
    assert stats.troubles == 0


def test_nan_literal_makes_the_batch_unreadable() -> None:
    store, stats = big_store(), KpiStats()
    data = (
        b'{"schema":"kpi_batch/v1","source":"t","samples":['
        b'{"metric":"error_rate","value":NaN,"ts":1790000000},'
        b'{"metric":"error_rate","value":1,"ts":1790000000}]}'
    )
    assert not ingest(store, data, stats)
    [refusal] = ingest_batches(store, [data], stats)
    assert refusal is not None
    assert refusal.code is ErrorCode.INVALID_PAYLOAD
    assert stats.batches_rejected == 2
    assert stats.batches == 0
    assert store.stats()["samples"] == 0


def test_infinite_and_huge_values_are_rejected_and_the_rest_kept() -> None:
    store, stats = big_store(), KpiStats()
    data = (
        b'{"schema":"kpi_batch/v1","source":"t","samples":['
        b'{"metric":"error_rate","value":1e400,"ts":1790000000},'
        b'{"metric":"error_rate","value":-1e400,"ts":1790000001},'
        b'{"metric":"error_rate","value":2e15,"ts":1790000002},'
        b'{"metric":"error_rate","value":"high","ts":1790000003},'
        b'{"metric":"error_rate","ts":1790000004},'
        b'{"metric":"error_rate","value":0.5,"ts":1790000005},'
        b'{"metric":"error_rate","value":0.7,"ts":1790000006}]}'
    )
    assert ingest(store, data, stats)
    assert store.series("error_rate").values.tolist() == [0.5, 0.7]
    assert rejected(stats) == {"non_finite": 2, "out_of_range": 1, "invalid_sample": 2}
    assert stats.samples_accepted == 2
    snap = stats.snapshot()
    assert snap["samples_rejected"] == 5
    assert snap["samples_rejected_non_finite"] == 2


@pytest.mark.parametrize(
    "ts",
    [1e12, 0, -5, 1_790_000_000_000, "2200-01-01T00:00:00Z", "1999-12-31T23:59:59Z"],
    ids=["ms", "zero", "negative", "ms-int", "year-2200", "year-1999"],
)
def test_absurd_timestamps_are_rejected(ts: Any) -> None:
    store, stats = big_store(), KpiStats()
    assert ingest(store, batch(sample(ts=ts), sample(value=2.0, ts=T0)), stats)
    assert rejected(stats) == {"bad_timestamp": 1}
    assert store.series("api_response_time").values.tolist() == [2.0]


def test_timestamps_without_offset_or_of_the_wrong_type_are_rejected() -> None:
    store, stats = big_store(), KpiStats()
    data = batch(
        sample(ts="2026-09-21T13:07:00"), sample(ts="yesterday"), sample(ts=None), sample()
    )
    assert ingest(store, data, stats)
    assert rejected(stats) == {"bad_timestamp": 3}
    assert stats.samples_accepted == 1


def test_unknown_metric_is_kept_as_a_custom_series() -> None:
    store, stats = big_store(), KpiStats()
    data = batch(
        sample("checkout_queue_depth", 3.0),
        sample("checkout_queue_depth", 4.0, T0 + 1),
        sample("http_requests_total", 10.0),  # an auxiliary metric: known
        sample("cpu_utilization", 50.0),
    )
    assert ingest(store, data, stats)
    assert store.series("checkout_queue_depth").values.tolist() == [3.0, 4.0]
    assert stats.unknown_metrics == 2
    assert stats.unknown_metric_names == {"checkout_queue_depth"}
    assert describe(stats)["unknown_metric_names"] == ["checkout_queue_depth"]
    assert stats.samples_accepted == 4


def test_unknown_metric_names_are_bounded_but_all_counted() -> None:
    store, stats = MetricStore(max_series=10_000), KpiStats()
    ingest(store, batch(*(sample(f"custom_{i}") for i in range(300))), stats)
    assert stats.unknown_metrics == 300
    assert len(stats.unknown_metric_names) == 256


def test_samples_are_grouped_by_metric_and_label_set() -> None:
    store, stats = big_store(), KpiStats()
    data = (
        b'{"schema":"kpi_batch/v1","source":"t","samples":['
        b'{"metric":"api_response_time","value":1,"ts":1790000000,'
        b'"labels":{"endpoint":"/a","region":"eu"}},'
        b'{"metric":"api_response_time","value":2,"ts":1790000001,'
        b'"labels":{"region":"eu","endpoint":"/a"}},'
        b'{"metric":"api_response_time","value":3,"ts":1790000002,'
        b'"labels":{ "endpoint" : "/a", "region" : "eu" }},'
        b'{"metric":"api_response_time","value":4,"ts":1790000003,"labels":{"endpoint":"/b"}},'
        b'{"metric":"api_response_time","value":5,"ts":1790000004},'
        b'{"metric":"api_response_time","value":6,"ts":1790000005,"labels":{}},'
        b'{"metric":"error_rate","value":7,"ts":1790000006,"labels":{"endpoint":"/a"}}]}'
    )
    assert ingest(store, data, stats)
    a = store.series("api_response_time", {"endpoint": "/a", "region": "eu"})
    assert a.values.tolist() == [1.0, 2.0, 3.0]
    assert store.series("api_response_time", {"endpoint": "/b"}).values.tolist() == [4.0]
    assert store.series("api_response_time").values.tolist() == [5.0, 6.0]
    assert store.series("error_rate", {"endpoint": "/a"}).values.tolist() == [7.0]
    assert store.stats()["series"] == 4
    assert stats.samples_accepted == 7


def test_invalid_labels_reject_only_their_samples() -> None:
    store, stats = big_store(), KpiStats()
    data = batch(
        sample(value=1.0, **{"bad-key": "x"}),
        sample(value=2.0, endpoint="x" * 300),
        sample(value=3.0, endpoint="/ok"),
        {"metric": "api_response_time", "value": 4.0, "ts": T0, "labels": None},
        {"metric": "api_response_time", "value": 5.0, "ts": T0, "labels": {"n": 1}},
    )
    assert ingest(store, data, stats)
    assert rejected(stats) == {"invalid_sample": 4}
    assert store.series("api_response_time", {"endpoint": "/ok"}).values.tolist() == [3.0]


def test_a_sample_with_bad_labels_and_a_bad_time_is_counted_once() -> None:
    store, stats = big_store(), KpiStats()
    y2200 = "2200-01-01T00:00:00Z"  # decodes, then fails the range check
    data = batch(sample(ts=y2200, **{"bad-key": "x"}), sample(ts=y2200), sample())
    assert ingest(store, data, stats)
    assert rejected(stats) == {"invalid_sample": 1, "bad_timestamp": 1}
    assert stats.samples_accepted == 1


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"not json", ErrorCode.INVALID_PAYLOAD),
        (b"[1, 2]", ErrorCode.INVALID_PAYLOAD),
        (b'{"schema":"kpi_batch/v1","source":"t","samples":[]', ErrorCode.INVALID_PAYLOAD),
        (b"\xff\xfe{}", ErrorCode.INVALID_PAYLOAD),
        (batch(sample(), schema="kpi_batch/v2"), ErrorCode.UNSUPPORTED_SCHEMA),
        (batch(sample(), schema="task_request/v1"), ErrorCode.UNSUPPORTED_SCHEMA),
        (b'{"source":"t","samples":[]}', ErrorCode.SCHEMA_VIOLATION),
        (b'{"schema":"kpi_batch/v1","samples":[]}', ErrorCode.SCHEMA_VIOLATION),
        (b'{"schema":"kpi_batch/v1","source":"t","samples":{}}', ErrorCode.SCHEMA_VIOLATION),
        (b'{"schema":"kpi_batch/v1","source":"","samples":[]}', ErrorCode.SCHEMA_VIOLATION),
    ],
)
def test_what_is_not_a_kpi_batch_is_refused_with_a_code(data: bytes, code: ErrorCode) -> None:
    store, stats = big_store(), KpiStats()
    [refusal] = ingest_batches(store, [data], stats)
    assert isinstance(refusal, ProtocolError)
    assert refusal.code is code
    assert stats.batches_rejected == 1
    assert store.stats()["samples"] == 0


def test_a_refused_message_does_not_stop_the_others_written_with_it() -> None:
    store, stats = big_store(), KpiStats()
    refusals = ingest_batches(store, [batch(sample()), b"garbage", batch(sample(ts=T0 + 1))], stats)
    assert [r is None for r in refusals] == [True, False, True]
    assert stats.batches == 2
    assert stats.batches_rejected == 1
    assert len(store.series("api_response_time")) == 2


def test_samples_older_than_the_store_horizon_are_counted_late() -> None:
    store, stats = MetricStore(max_age_s=3600), KpiStats()
    assert ingest(store, batch(sample(ts=T0)), stats)
    assert ingest(store, batch(sample(ts=T0 - 7200), sample(ts=T0 - 60)), stats)
    assert stats.late == 1
    assert stats.samples_accepted == 2
    assert stats.snapshot()["late"] == 1


def test_empty_batch_is_read() -> None:
    store, stats = big_store(), KpiStats()
    assert ingest(store, batch(), stats)
    assert stats.batches == 1


_good_sample = st.fixed_dictionaries(
    {
        "metric": st.sampled_from(["api_response_time", "error_rate", "custom_q"]),
        "value": st.floats(-1e6, 1e6),
        "ts": st.floats(946_684_800, 4_102_444_800) | st.integers(946_684_800, 4_102_444_800),
    },
    optional={"labels": st.dictionaries(st.sampled_from(["endpoint", "region"]), st.text())},
)
_any_sample = _good_sample | st.fixed_dictionaries(
    {
        "metric": st.text(max_size=3),
        "value": st.floats(allow_nan=False) | st.text(max_size=2) | st.none(),
        "ts": st.floats(allow_nan=False) | st.integers() | st.text(max_size=25),
    }
)


@given(st.lists(_any_sample, max_size=40))
def test_every_sample_is_accounted_for_once(samples: list[dict[str, Any]]) -> None:
    store, stats = MetricStore(max_age_s=200 * 365 * 86_400.0), KpiStats()
    assert ingest(store, batch(*samples), stats)
    taken = stats.samples_accepted + stats.late + sum(stats.samples_rejected.values())
    assert taken == len(samples)
    assert store.stats()["accepted"] == stats.samples_accepted + stats.late


def test_on_error_counts_slow_consumer_drops_on_kpi_subjects_only() -> None:
    stats = KpiStats()
    source = KpiSource(
        cast(Any, None),
        cast(Any, None),
        Settings(agent_id="pb-unit"),
        big_store(),
        stats,
        _refuse_to_dead_letter,
    )
    none = cast(Any, None)
    assert source.on_error(SlowConsumerError("swarm.kpi.backend.api", "", 7, none))
    assert not source.on_error(SlowConsumerError("swarm.tasks.x.y", "", 8, none))
    assert not source.on_error(RuntimeError("something else"))
    assert stats.slow_consumer_drops == 1
    assert stats.snapshot()["slow_consumer_drops"] == 1


async def _refuse_to_dead_letter(
    subject: str, data: bytes, headers: Mapping[str, str] | None, why: ProtocolError
) -> None:
    raise AssertionError(f"unexpected dead letter on {subject}: {why}")


# --- over a real nats-server --------------------------------------------------------


class Letters:
    def __init__(self) -> None:
        self.got: list[tuple[str, bytes, ErrorCode]] = []

    async def __call__(
        self, subject: str, data: bytes, headers: Mapping[str, str] | None, why: ProtocolError
    ) -> None:
        self.got.append((subject, data, why.code))


BATCHES = 1_000
PER_BATCH = 100
METRICS = ("api_response_time", "error_rate", "api_throughput", "cache_hit_rate", "custom_q")


def burst(subject_base: str, start: float) -> tuple[list[tuple[str, bytes]], int, int]:
    """1 000 batches of 100 samples (one non-finite value in every 50th), plus 5 garbage
    messages; returns the messages, the good sample count and the non-finite count."""
    msgs: list[tuple[str, bytes]] = []
    bad = 0
    for b in range(BATCHES):
        parts = []
        for j in range(PER_BATCH):
            i = b * PER_BATCH + j
            value = "1e400" if (b % 50 == 0 and j == 7) else repr(float(i % 997))
            bad += value == "1e400"
            parts.append(
                f'{{"metric":"{METRICS[i % 5]}","value":{value},"ts":{start + i * 0.001!r},'
                f'"labels":{{"endpoint":"/e{j % 4}","region":"eu"}}}}'
            )
        body = '{"schema":"kpi_batch/v1","source":"burst","samples":[' + ",".join(parts) + "]}"
        msgs.append((f"{subject_base}.{METRICS[b % 5]}", body.encode()))
        if b % 200 == 100:
            msgs.append((f"{subject_base}.junk", b'{"schema":"kpi_batch/v1","samples":NaN}'))
    return msgs, BATCHES * PER_BATCH - bad, bad


async def wait_until(cond: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def unique_base() -> str:
    return f"swarm.kpi.backend.t{uuid.uuid4().hex[:10]}"


async def publish_all(nc: Client, msgs: list[tuple[str, bytes]], jetstream: bool) -> None:
    if not jetstream:
        for subject, data in msgs:
            await nc.publish(subject, data)
        await nc.flush(timeout=10)
        return
    js = nc.jetstream()
    for k in range(0, len(msgs), 100):
        await asyncio.gather(*(js.publish(s, d, timeout=10) for s, d in msgs[k : k + 100]))


@pytest.mark.nats
@pytest.mark.parametrize("kpi_stream", [False, True], ids=["core", "jetstream"])
async def test_a_burst_of_100k_samples_is_ingested_with_exact_counts(
    nc: Client, make_settings: Callable[..., Settings], kpi_stream: bool
) -> None:
    settings = make_settings(kpi_stream=kpi_stream)
    agent_nc = await nats.connect(settings.servers)
    store, stats, letters = big_store(), KpiStats(), Letters()
    base = unique_base()
    source = KpiSource(
        agent_nc, agent_nc.jetstream(), settings, store, stats, letters, subject=f"{base}.>"
    )
    try:
        await source.start()
        msgs, good, bad = burst(base, time.time() - 3600)
        await publish_all(nc, msgs, jetstream=kpi_stream)
        await wait_until(lambda: stats.batches + stats.batches_rejected == len(msgs))
        await wait_until(lambda: len(letters.got) == 5)
    finally:
        await source.stop()
        await agent_nc.drain()
    assert stats.batches == BATCHES
    assert stats.batches_rejected == 5
    assert stats.samples_accepted == good == 100_000 - bad
    assert rejected(stats) == {"non_finite": bad}
    assert stats.late == 0
    assert stats.slow_consumer_drops == 0
    assert stats.unknown_metrics == 20_000  # custom_q; no non-finite value falls on it
    held = store.stats()
    assert held["samples"] == good
    assert held["series"] == len(METRICS) * 4
    assert (
        sum(
            len(store.series(m, {"endpoint": f"/e{e}", "region": "eu"}))
            for m in METRICS
            for e in range(4)
        )
        == good
    )
    assert {code for _, _, code in letters.got} == {ErrorCode.INVALID_PAYLOAD}
    assert (source.stream is not None) is kpi_stream


@pytest.mark.nats
async def test_a_restarted_source_replays_the_stream_then_follows_it_live(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(kpi_stream=True)
    js = nc.jetstream()
    stream = await ensure_kpi_stream(js, settings)
    base = unique_base()
    now = time.time()
    before = [
        batch(*(sample(ts=now - 600 + b * 10 + j * 0.01) for j in range(50))) for b in range(20)
    ]
    for data in before:
        await js.publish(f"{base}.api", data, timeout=10)

    agent_nc = await nats.connect(settings.servers)
    store, stats = big_store(), KpiStats()
    source = KpiSource(
        agent_nc,
        agent_nc.jetstream(),
        settings,
        store,
        stats,
        _refuse_to_dead_letter,
        subject=f"{base}.>",
    )
    try:
        await source.start()
        assert source.stream == stream
        await wait_until(lambda: stats.samples_accepted == 1_000)
        await js.publish(f"{base}.api", batch(sample(ts=now, value=9.0)), timeout=10)
        await wait_until(lambda: stats.samples_accepted == 1_001)
        await asyncio.sleep(0.2)  # nothing replayed twice
    finally:
        await source.stop()
        await agent_nc.drain()
    assert stats.batches == 21
    assert len(store.series("api_response_time")) == 1_001


@pytest.mark.nats
async def test_replay_reaches_back_no_further_than_the_shorter_horizon(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(kpi_stream=True, kpi_stream_max_age_s=1.0)
    js = nc.jetstream()
    await ensure_kpi_stream(js, settings)
    base = unique_base()
    await js.publish(f"{base}.api", batch(sample(ts=time.time(), value=1.0)), timeout=10)
    await asyncio.sleep(1.2)  # older than the replay window (1 s) by the time we start
    agent_nc = await nats.connect(settings.servers)
    store, stats = MetricStore(max_age_s=3600), KpiStats()
    source = KpiSource(
        agent_nc,
        agent_nc.jetstream(),
        settings,
        store,
        stats,
        _refuse_to_dead_letter,
        subject=f"{base}.>",
    )
    try:
        started = time.time()
        await source.start()
        psub = cast(Any, source)._sub
        config = (await psub.consumer_info()).config
        assert config.deliver_policy == DeliverPolicy.BY_START_TIME
        assert abs(config.opt_start_time.timestamp() - (started - 1.0)) < 1.0
        await js.publish(f"{base}.api", batch(sample(ts=time.time(), value=2.0)), timeout=10)
        await wait_until(lambda: stats.batches >= 1)
        await asyncio.sleep(0.2)
    finally:
        await source.stop()
        await agent_nc.drain()
    assert stats.batches == 1
    assert store.series("api_response_time").values.tolist() == [2.0]


@pytest.mark.nats
async def test_each_agent_id_has_its_own_kpi_stream_and_one_may_be_shared_on_purpose(
    nc: Client, make_settings: Callable[..., Settings]
) -> None:
    js = nc.jetstream()
    one, two = make_settings(kpi_stream=True), make_settings(kpi_stream=True)
    first = await ensure_kpi_stream(js, one)
    assert first == f"{one.streams_token}_KPI"  # from the agent id
    assert await ensure_kpi_stream(js, one) == first  # made once, reused
    # a second agent id: its own stream too, though another one captures the subjects
    second = await ensure_kpi_stream(js, two)
    assert second == f"{two.streams_token}_KPI"
    owner = await js.find_stream_name_by_subject("swarm.kpi.backend.>")
    assert owner not in (second, "")
    info = await js.stream_info(second)
    assert [s.name for s in info.config.sources or []] == [owner]  # a copy of it
    assert await ensure_kpi_stream(js, two) == second
    base = unique_base()
    await js.publish(f"{base}.api", batch(sample(ts=time.time())), timeout=10)
    for name in {owner, first, second}:  # in every one, the copies within milliseconds
        for _ in range(100):
            try:
                await js.get_last_msg(name, f"{base}.api")
                break
            except nats.js.errors.NotFoundError:
                await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"the batch never reached {name}")
    # shared on purpose: the named stream, as it is
    shared = make_settings(kpi_stream=True, kpi_stream_name=first)
    assert await ensure_kpi_stream(js, shared) == first


@pytest.mark.nats
async def test_slow_consumer_drops_are_counted_from_the_error_callback(
    make_settings: Callable[..., Settings], nats_url: str
) -> None:
    settings = make_settings(kpi_stream=False, kpi_pending_msgs_limit=5)
    holder: list[KpiSource] = []

    async def error_cb(exc: Exception) -> None:
        if holder:
            holder[0].on_error(exc)

    agent_nc = await nats.connect(nats_url, error_cb=error_cb)
    pub = await nats.connect(nats_url)
    store, stats = big_store(), KpiStats()
    base = unique_base()
    source = KpiSource(
        agent_nc,
        agent_nc.jetstream(),
        settings,
        store,
        stats,
        _refuse_to_dead_letter,
        subject=f"{base}.>",
    )
    holder.append(source)
    try:
        await source.start()
        for i in range(2_000):
            await pub.publish(f"{base}.api", batch(sample(ts=T0 + i)))
        await pub.flush(timeout=10)
        await wait_until(lambda: stats.batches + stats.slow_consumer_drops == 2_000)
    finally:
        await source.stop()
        await agent_nc.drain()
        await pub.drain()
    assert stats.slow_consumer_drops > 0
    assert stats.samples_accepted == stats.batches
    assert store.stats()["samples"] == stats.batches
