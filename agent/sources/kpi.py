"""The KPI stream: ``kpi_batch/v1`` from ``swarm.kpi.backend.>`` into the metric store.

Two parts, kept apart:

- ``ingest`` is pure (no I/O, no clock): it checks one message, validates each sample on
  its own (a batch with one bad sample keeps its good ones), groups the good samples by
  (metric, labels) and writes each group to the store in one vectorised call. What it
  refuses or cannot keep is counted in ``KpiStats`` by reason.
- ``KpiSource`` is the runtime shell: it makes sure a stream keeps the batches (so a
  restarted agent replays the last window instead of starting blind), subscribes with
  bounded pending limits, ingests inline in the callback (synchronous and fast; in a
  burst the messages waiting in the subscription's queue are written together, up to
  ``MAX_COALESCE``), dead-letters what is not a ``kpi_batch/v1`` at all and counts what a
  slow consumer dropped (``on_error``, called from the connection's ``error_cb``).

The hot path decodes a batch once, strictly; only a batch that fails that decode is read
again sample by sample to find and count the bad ones. Label objects are validated once
per distinct spelling, not once per sample.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Annotated, Any, Final, cast

import msgspec
import numpy as np
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import SlowConsumerError
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, StreamConfig, StreamSource
from nats.js.errors import BadRequestError, NotFoundError

from agent.analysis.catalog import AUXILIARY, CATALOG
from agent.config import Settings
from agent.runtime.streams import StreamSpec, add_stream, ensure_stream, stream_name
from agent.store.metric_store import LabelSet, MetricStore, label_set
from protocols import subjects
from protocols.codec import Envelope, ProtocolError, check_schema, read_envelope
from protocols.errors import ErrorCode
from protocols.messages import EpochSeconds, Finite, Labels, Name, Timestamp
from protocols.schemas import SchemaName

log = logging.getLogger(__name__)

SOURCE: Final = "kpi"
"""The ``source`` the store records for series written from the KPI stream."""
STREAM_KEY: Final = "KPI"
"""The KPI stream is ``<prefix>_KPI`` (or ``kpi_stream_name``, shared on purpose)."""
MAX_UNKNOWN_NAMES: Final = 256
"""How many distinct unknown metric names ``KpiStats`` remembers (all are still counted)."""
MIN_EPOCH_S: Final = 946_684_800.0
MAX_EPOCH_S: Final = 4_102_444_800.0
"""Sample times outside 2000-01-01 .. 2100-01-01 are a unit mistake, however they are spelt."""
LOG_EVERY_S: Final = 30.0
"""At most one warning per this many seconds about dropped, late or refused input."""
MAX_DEAD_LETTERS_IN_FLIGHT: Final = 64
MAX_COALESCE: Final = 64
"""At most this many queued messages are written to the store together."""

REJECT_INVALID: Final = "invalid_sample"
REJECT_NON_FINITE: Final = "non_finite"
REJECT_OUT_OF_RANGE: Final = "out_of_range"
REJECT_BAD_TIMESTAMP: Final = "bad_timestamp"

_KNOWN: Final = frozenset(CATALOG) | frozenset(AUXILIARY)
_KPI_TAG: Final = SchemaName.KPI_BATCH.tag
_MAX_SAMPLES: Final = 100_000


_NO_LABELS: Final = msgspec.Raw(b"{}")
"""The one object every sample without ``labels`` shares (msgspec reuses a field default)."""
_NO_LABELS_BYTES: Final = b"{}"


class _Sample(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``KpiSample`` with ``labels`` left raw: each distinct label set is validated once
    (``Labels``, the same rule), not once per sample; everything else as strict as the wire."""

    metric: Name
    value: Finite
    ts: Timestamp | EpochSeconds
    labels: msgspec.Raw = _NO_LABELS


class _Batch(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    schema: str
    source: Name
    samples: Annotated[list[_Sample], msgspec.Meta(max_length=_MAX_SAMPLES)]


class _LooseBatch(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A batch whose samples are kept raw, to be validated one by one."""

    schema: str
    source: Name
    samples: Annotated[list[msgspec.Raw], msgspec.Meta(max_length=_MAX_SAMPLES)]


_BATCH: Final = msgspec.json.Decoder(_Batch)
_LOOSE: Final = msgspec.json.Decoder(_LooseBatch)
_SAMPLE: Final = msgspec.json.Decoder(_Sample)
_LABELS: Final = msgspec.json.Decoder(Labels)
_LABEL_CACHE_SIZE: Final = 4096
_label_cache: dict[bytes, LabelSet | None] = {}
"""Raw label JSON → its canonical label set (None: invalid). Pure memo, bounded."""
_metric_of = attrgetter("metric")
_value_of = attrgetter("value")
_ts_of = attrgetter("ts")
_labels_of = attrgetter("labels")


@dataclass
class KpiStats:
    """What the KPI stream brought and what became of it; ``snapshot`` is for ``$SRV.STATS``.

    Every sample of a readable batch ends in exactly one of ``samples_accepted``,
    ``late`` or ``samples_rejected[reason]``. ``unknown_metrics`` counts the accepted or
    late samples of names outside the catalog (kept as custom series).
    """

    batches: int = 0
    batches_rejected: int = 0
    samples_accepted: int = 0
    samples_rejected: dict[str, int] = field(default_factory=dict)
    unknown_metrics: int = 0
    unknown_metric_names: set[str] = field(default_factory=set)
    late: int = 0
    slow_consumer_drops: int = 0
    dead_letters_failed: int = 0
    """Refused batches whose dead letter could not be published (logged each time)."""

    def reject(self, reason: str, count: int = 1) -> None:
        self.samples_rejected[reason] = self.samples_rejected.get(reason, 0) + count

    def note_unknown(self, metric: str, count: int) -> None:
        self.unknown_metrics += count
        names = self.unknown_metric_names
        if len(names) < MAX_UNKNOWN_NAMES:
            names.add(metric)

    @property
    def troubles(self) -> int:
        """Everything that was not taken in as sent: what a warning is worth logging for."""
        return (
            self.batches_rejected
            + sum(self.samples_rejected.values())
            + self.late
            + self.slow_consumer_drops
            + self.dead_letters_failed
        )

    def snapshot(self) -> dict[str, int]:
        """Flat counters: totals first, then ``samples_rejected_<reason>`` per reason."""
        out = {
            "batches": self.batches,
            "batches_rejected": self.batches_rejected,
            "samples_accepted": self.samples_accepted,
            "samples_rejected": sum(self.samples_rejected.values()),
            "late": self.late,
            "unknown_metrics": self.unknown_metrics,
            "unknown_metric_names": len(self.unknown_metric_names),
            "slow_consumer_drops": self.slow_consumer_drops,
            "dead_letters_failed": self.dead_letters_failed,
        }
        for reason, count in sorted(self.samples_rejected.items()):
            out[f"samples_rejected_{reason}"] = count
        return out


# --- the pure core ------------------------------------------------------------------


def ingest(store: MetricStore, data: bytes, stats: KpiStats) -> bool:
    """Take one ``kpi_batch/v1`` message into ``store``; False when it is not one at all.

    False means the caller dead-letters the bytes (``stats.batches_rejected`` is counted
    here); ``ingest_batches`` says why, and takes many messages in one go.
    """
    return ingest_batches(store, (data,), stats)[0] is None


def ingest_batches(
    store: MetricStore, messages: Sequence[bytes], stats: KpiStats
) -> list[ProtocolError | None]:
    """Take several ``kpi_batch/v1`` messages into ``store`` in one write per series.

    Returns, per message, None when it was read (its bad samples counted by reason) or
    why it is not a ``kpi_batch/v1`` at all (count in ``stats.batches_rejected``; the
    caller dead-letters it). Writing many messages at once is what makes a burst cheap:
    the store is written once per (metric, labels), not once per message.
    """
    refusals: list[ProtocolError | None] = []
    samples: list[_Sample] = []
    for data in messages:
        refusal = _read(data, samples, stats)
        if refusal is None:
            stats.batches += 1
        else:
            stats.batches_rejected += 1
        refusals.append(refusal)
    if samples:
        _store_samples(store, samples, stats)
    return refusals


def _read(data: bytes, into: list[_Sample], stats: KpiStats) -> ProtocolError | None:
    """Append the samples of one message to ``into``; why not, if it is not a kpi_batch."""
    try:
        batch = _BATCH.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return _read_one_by_one(data, into, stats)
    if batch.schema != _KPI_TAG:
        try:
            check_schema(Envelope(schema=batch.schema), SchemaName.KPI_BATCH)
        except ProtocolError as exc:
            return exc
    into += batch.samples
    return None


def _read_one_by_one(data: bytes, into: list[_Sample], stats: KpiStats) -> ProtocolError | None:
    """The valid samples of a batch the strict decode refused; the others counted by reason."""
    try:
        check_schema(read_envelope(data), SchemaName.KPI_BATCH)
        loose = _LOOSE.decode(data)
    except ProtocolError as exc:
        return exc
    except msgspec.ValidationError as exc:
        return ProtocolError(ErrorCode.SCHEMA_VIOLATION, str(exc))
    except (msgspec.DecodeError, RecursionError) as exc:  # pragma: no cover - envelope read it
        return ProtocolError(ErrorCode.INVALID_PAYLOAD, str(exc))
    for raw in loose.samples:
        try:
            into.append(_SAMPLE.decode(raw))
        except msgspec.ValidationError as exc:
            stats.reject(_reason(str(exc)))
    return None


def _reason(message: str) -> str:
    """Why msgspec refused one sample, as a counter name."""
    if message.endswith("at `$.ts`"):
        return REJECT_BAD_TIMESTAMP
    if message.endswith("at `$.value`"):
        if message.startswith("Number out of range"):  # 1e400 and the like: ±Infinity
            return REJECT_NON_FINITE
        if message.startswith(("Expected `float` <=", "Expected `float` >=")):
            return REJECT_OUT_OF_RANGE
    return REJECT_INVALID


def _label_set(raw: bytes) -> LabelSet | None:
    """The canonical label set of one raw ``labels`` object; None when it breaks ``Labels``."""
    try:
        return _label_cache[raw]
    except KeyError:
        pass
    try:
        labels: LabelSet | None = label_set(_LABELS.decode(raw))
    except msgspec.DecodeError:  # ValidationError included
        labels = None
    if len(_label_cache) >= _LABEL_CACHE_SIZE:
        _label_cache.clear()
    _label_cache[raw] = labels
    return labels


def _store_samples(store: MetricStore, samples: list[_Sample], stats: KpiStats) -> None:
    """Columns of the samples, grouped by (metric, labels): one ``add_many`` per group.

    Everything per sample runs in C (attribute getters, ``np.fromiter``, dict look-ups
    through ``map``); Python only loops over the groups.
    """
    n = len(samples)
    try:
        t = np.fromiter(map(_ts_of, samples), np.float64, n)
    except TypeError:  # RFC 3339 times among them: datetimes, aware by the wire type
        t = np.array([x if isinstance(x, float) else x.timestamp() for x in map(_ts_of, samples)])
    v = np.fromiter(map(_value_of, samples), np.float64, n)
    metrics: list[str] = list(map(_metric_of, samples))
    raws: list[msgspec.Raw] = list(map(_labels_of, samples))
    keys: list[Hashable]
    if raws.count(_NO_LABELS) == n:  # identity is enough: absent labels all share the default
        keys = cast("list[Hashable]", metrics)
        uniq = dict.fromkeys(keys)
        groups = [(metric, _NO_LABELS_BYTES) for metric in cast("dict[str, None]", uniq)]
    else:
        keys = list(zip(metrics, map(bytes, raws), strict=True))
        uniq = dict.fromkeys(keys)
        groups = list(cast("dict[tuple[str, bytes], None]", uniq))
    in_range = (t >= MIN_EPOCH_S) & (t <= MAX_EPOCH_S)  # an RFC 3339 time may be absurd too
    if len(groups) == 1:
        codes = np.zeros(n, dtype=np.intp)
    else:
        index = {key: i for i, key in enumerate(uniq)}
        codes = np.fromiter(map(index.__getitem__, keys), np.intp, n)
    label_sets = [_label_set(raw) for _, raw in groups]
    bad_labels = [i for i, labels in enumerate(label_sets) if labels is None]
    if bad_labels:
        invalid = np.isin(codes, bad_labels)
        stats.reject(REJECT_INVALID, int(np.count_nonzero(invalid)))
        keep = in_range & ~invalid
        bad_ts = int(np.count_nonzero(~in_range & ~invalid))
    else:
        keep = in_range
        bad_ts = n - int(np.count_nonzero(in_range))
    if bad_ts:
        stats.reject(REJECT_BAD_TIMESTAMP, bad_ts)
    if bad_ts or bad_labels:
        t, v, codes = t[keep], v[keep], codes[keep]
    if len(groups) == 1:
        parts = [(t, v)]
    else:
        order = np.argsort(codes, kind="stable")
        ends = np.cumsum(np.bincount(codes, minlength=len(groups))).tolist()
        t, v = t[order], v[order]
        parts = [(t[a:b], v[a:b]) for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    for (metric, _), labels, (gt, gv) in zip(groups, label_sets, parts, strict=True):
        if labels is None or gt.size == 0:
            continue
        if metric not in _KNOWN:
            stats.note_unknown(metric, int(gt.size))
        taken = store.add_many(metric, gt, gv, labels, SOURCE)
        stats.samples_accepted += taken
        stats.late += int(gt.size) - taken


# --- the runtime shell --------------------------------------------------------------

DeadLetter = Callable[[str, bytes, Mapping[str, str] | None, ProtocolError], Awaitable[None]]
"""``(subject, data, headers, why)``: publish a refused message as ``dead_letter/v1``."""


def kpi_stream_spec(settings: Settings) -> StreamSpec:
    """``<prefix>_KPI``: the batches for ``kpi_stream_max_age_s``, replayed on a restart."""
    return StreamSpec(
        STREAM_KEY,
        (subjects.KPI_ALL,),
        "KPI batches, replayed by a restarted strategist",
        max_age_s=settings.kpi_stream_max_age_s,
    )


def kpi_stream_name(settings: Settings) -> str:
    """``kpi_stream_name`` when one is shared on purpose, else the agent's own ``<prefix>_KPI``."""
    return settings.kpi_stream_name or stream_name(settings, STREAM_KEY)


async def ensure_kpi_stream(js: JetStreamContext, settings: Settings) -> str:
    """Make sure a stream keeps ``swarm.kpi.backend.>`` for this agent; returns its name.

    The stream is the agent's own ``<prefix>_KPI`` (its name from the agent id, like every
    other), so the agent needs JetStream rights on its own names only. It captures the
    subjects when no stream does yet; when another stream already does (a second agent id
    on the account, or a stream an operator made) it is a copy sourced from that one, kept
    for ``kpi_stream_max_age_s``: nobody else's stream is read. A stream shared on purpose
    (``kpi_stream_name``) is used as it is, and created under that name when missing.
    """
    spec = kpi_stream_spec(settings)
    if settings.kpi_stream_name:
        return await _ensure_shared(js, settings, spec, settings.kpi_stream_name)
    own = stream_name(settings, STREAM_KEY)
    try:
        info = await js.stream_info(own)
    except NotFoundError:
        owner = await _capturing_stream(js)
        if owner is not None:
            return await _copy_from(js, settings, spec, own, owner)
    else:
        if info.config.sources:  # a copy made earlier: follow the stream that captures now
            return await _follow(js, info.config, own)
    name = await ensure_stream(js, settings, spec)  # creates or widens the agent's own
    if name != own:  # another agent made its stream meanwhile
        return await _copy_from(js, settings, spec, own, name)
    return own


async def _capturing_stream(js: JetStreamContext) -> str | None:
    try:
        name: str = await js.find_stream_name_by_subject(subjects.KPI_ALL)
    except NotFoundError:
        return None
    return name


async def _copy_from(
    js: JetStreamContext, settings: Settings, spec: StreamSpec, own: str, owner: str
) -> str:
    """Make ``own`` a copy of the KPI subjects of ``owner``, from as far back as it keeps."""
    config = spec.config(settings)
    config.subjects = None
    config.sources = _sourced_from(owner, settings.kpi_stream_max_age_s)
    try:
        await add_stream(js, config)
    except BadRequestError:
        await js.stream_info(own)  # made by a replica of this agent meanwhile: fine
        return own
    log.info("stream %s created: a copy of %s from stream %s", own, spec.subjects[0], owner)
    await _until_copying(js, own)
    return own


def _sourced_from(owner: str, max_age_s: float) -> list[StreamSource]:
    """A copy's source: the KPI subjects of ``owner``, from as far back as the copy keeps."""
    since = datetime.fromtimestamp(time.time() - max_age_s, UTC)
    return [StreamSource(name=owner, filter_subject=subjects.KPI_ALL, opt_start_time=since)]


async def _until_copying(js: JetStreamContext, name: str, timeout: float = 5.0) -> None:
    """Wait (bounded) until the server copies into ``name``: from then on a batch published
    is in the copy within milliseconds (setting the copy up takes the server ~0.2 s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        sources = (await js.stream_info(name)).sources or []
        if sources and all(s.active is not None and s.active >= 0 for s in sources):
            return
        await asyncio.sleep(0.05)
    log.warning("stream %s is not copying yet after %.0f s; it will catch up", name, timeout)


async def _follow(js: JetStreamContext, config: StreamConfig, own: str) -> str:
    """Keep the copy ``own`` sourced from the stream that captures the KPI subjects now."""
    owner = await _capturing_stream(js)
    sources = config.sources or []
    if owner is not None and any(s.name == owner for s in sources):
        return own
    if owner is None:  # the stream it copied is gone: capture the subjects itself
        config.sources, config.subjects = None, [subjects.KPI_ALL]
        log.warning("stream %s now captures %s itself: no other stream does", own, subjects.KPI_ALL)
    else:
        config.sources = _sourced_from(owner, config.max_age or 0.0)
        log.warning("stream %s now copies %s from stream %s", own, subjects.KPI_ALL, owner)
    await js.update_stream(config)
    if owner is not None:
        await _until_copying(js, own)
    return own


async def _ensure_shared(
    js: JetStreamContext, settings: Settings, spec: StreamSpec, name: str
) -> str:
    """The KPI stream ``name`` shared on purpose: as it is, or created with the KPI subjects."""
    try:
        await js.stream_info(name)
    except NotFoundError:
        config = spec.config(settings)
        config.name = name
        await add_stream(js, config)
        log.info("stream %s created for %s (kpi_stream_name)", name, list(spec.subjects))
    return name


class KpiSource:
    """Subscribes to the KPI subjects and keeps the store filled; counts in ``stats``.

    With ``settings.kpi_stream`` it reads the KPI stream through an ordered consumer that
    starts ``min(store.max_age_s, kpi_stream_max_age_s)`` before now: the replay of the
    last window and the live feed in one sequence, nothing counted twice. Otherwise a
    core subscription. Either way the client's pending limits are the ``kpi_pending_*``
    settings; what they drop is reported to ``on_error`` and counted.
    """

    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        settings: Settings,
        store: MetricStore,
        stats: KpiStats,
        dead_letter: DeadLetter,
        *,
        subject: str = subjects.KPI_ALL,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.nc = nc
        self.js = js
        self.settings = settings
        self.store = store
        self.stats = stats
        self.dead_letter = dead_letter
        self.subject = subject
        """What to read: all KPI subjects, or (tests, sharded readers) a part of them."""
        self.wall_clock = wall_clock
        self.stream: str | None = None
        """The stream read from (None: a core subscription)."""
        self._sub: Subscription | None = None
        self._letters: set[asyncio.Task[None]] = set()
        self._held: list[Msg] = []
        self._logged_at = -LOG_EVERY_S  # the first trouble is logged at once
        self._logged_troubles = stats.troubles

    async def start(self) -> None:
        msgs_limit = self.settings.kpi_pending_msgs_limit
        bytes_limit = self.settings.kpi_pending_bytes_limit
        if self.settings.kpi_stream:
            self.stream = await ensure_kpi_stream(self.js, self.settings)
            window = min(self.store.max_age_s, self.settings.kpi_stream_max_age_s)
            since = datetime.fromtimestamp(self.wall_clock() - window, UTC)
            psub = await self.js.subscribe(
                self.subject,
                stream=self.stream,
                cb=self._on_msg,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.BY_START_TIME,
                config=ConsumerConfig(opt_start_time=since),
                pending_msgs_limit=msgs_limit,
                pending_bytes_limit=bytes_limit,
            )
            self._sub = psub
            log.info(
                "reading %s from stream %s since %s", self.subject, self.stream, since.isoformat()
            )
        else:
            self._sub = await self.nc.subscribe(
                self.subject,
                cb=self._on_msg,
                pending_msgs_limit=msgs_limit,
                pending_bytes_limit=bytes_limit,
            )
            await self.nc.flush(timeout=5)  # the server has the interest before start returns
            log.info("reading KPI batches on %s (core NATS, no replay)", self.subject)

    async def stop(self, timeout: float = 5.0) -> None:
        """Unsubscribe, write what is held, let dead letters go out (bounded), log totals."""
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self.flush()
        if self._letters:
            _, pending = await asyncio.wait(self._letters, timeout=timeout)
            for task in pending:
                task.cancel()
        log.info("KPI source stopped: %s", self.stats.snapshot())

    def on_error(self, exc: BaseException) -> bool:
        """Count a slow-consumer drop on the KPI subscription; True when ``exc`` was ours.

        Call it from the connection's ``error_cb`` with every error (cheap; others are
        ignored and left to the caller to log).
        """
        if not isinstance(exc, SlowConsumerError):
            return False
        # A JetStream subscription reports drops with its inner core subscription, which
        # nats-py keeps private: a drop is ours by the subscription or by its subject.
        subject = exc.subject or ""
        ours = (exc.sub is not None and exc.sub is self._sub) or _matches(subject, self.subject)
        if not ours and not subject.startswith("swarm.kpi.backend."):
            return False
        self.stats.slow_consumer_drops += 1
        self._maybe_log()
        return True

    async def _on_msg(self, msg: Msg) -> None:
        """Collect while more messages wait in the subscription's queue, then write them all.

        Idle, every message is written at once; in a burst up to ``MAX_COALESCE`` messages
        share one write per series. The last message of a burst finds the queue empty.
        """
        self._held.append(msg)
        sub = self._sub
        if len(self._held) >= MAX_COALESCE or sub is None or sub.pending_msgs == 0:
            self.flush()

    def flush(self) -> None:
        """Write the messages held so far (``stop`` calls it; so may a test)."""
        held, self._held = self._held, []
        if not held:
            return
        refusals = ingest_batches(self.store, [m.data for m in held], self.stats)
        for msg, refusal in zip(held, refusals, strict=True):
            if refusal is not None:
                self._send_dead_letter(msg, refusal)
        if self.stats.troubles != self._logged_troubles:
            self._maybe_log()

    def _send_dead_letter(self, msg: Msg, refusal: ProtocolError) -> None:
        if len(self._letters) >= MAX_DEAD_LETTERS_IN_FLIGHT:
            self.stats.dead_letters_failed += 1
            log.error(
                "KPI batch on %s refused (%s) and not dead-lettered: %d letters in flight",
                msg.subject,
                refusal.code.value,
                len(self._letters),
            )
            return
        task = asyncio.create_task(self._dead_letter(msg.subject, msg.data, msg.headers, refusal))
        self._letters.add(task)
        task.add_done_callback(self._letters.discard)

    async def _dead_letter(
        self,
        subject: str,
        data: bytes,
        headers: Mapping[str, str] | None,
        refusal: ProtocolError,
    ) -> None:
        try:
            await self.dead_letter(subject, data, headers, refusal)
        except Exception:
            self.stats.dead_letters_failed += 1
            log.exception("could not dead-letter a KPI batch refused on %s", subject)

    def _maybe_log(self) -> None:
        now = time.monotonic()
        if now - self._logged_at < LOG_EVERY_S:
            return
        self._logged_at = now
        self._logged_troubles = self.stats.troubles
        snap = self.stats.snapshot()
        log.warning(
            "KPI input not taken in as sent: %d slow-consumer drops, %d late samples, "
            "%d samples rejected %s, %d batches refused (totals so far)",
            snap["slow_consumer_drops"],
            snap["late"],
            snap["samples_rejected"],
            dict(self.stats.samples_rejected),
            snap["batches_rejected"],
        )


def _matches(subject: str, pattern: str) -> bool:
    """Whether ``subject`` is one ``pattern`` (with ``*`` and ``>`` wildcards) subscribes to."""
    tokens, wanted = subject.split("."), pattern.split(".")
    for i, want in enumerate(wanted):
        if want == ">":
            return len(tokens) > i
        if i >= len(tokens) or (want != "*" and want != tokens[i]):
            return False
    return len(tokens) == len(wanted)


def describe(stats: KpiStats) -> dict[str, Any]:
    """``snapshot`` plus the remembered unknown metric names, for logs and ``$SRV.STATS``."""
    return {**stats.snapshot(), "unknown_metric_names": sorted(stats.unknown_metric_names)}
