"""Continuous monitoring: every interval, a full assessment on the agent's own, and alerts.

- **Schedule**: runs at ``start + k × interval`` (no drift); an assessment that overruns
  skips the slots it missed, and they are counted.
- **One monitor per swarm**: a lease in KV (``monitor.lease``: holder and expiry, taken
  with the KV's optimistic concurrency) — a second replica waits, and takes over once
  the holder stops renewing it.
- **State survives restarts**: open episodes live in KV (``monitor.state``); alerts are
  written to an outbox in the same KV value before they are published (``Nats-Msg-Id``
  = alert id, so a re-send after a crash is stored once), then the outbox is cleared.
- The rules are the pure ``agent.monitoring``; this module only feeds and publishes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from agent.analysis.catalog import CATALOG
from agent.analysis.causes import DEPENDENCIES
from agent.analysis.series import parse_window
from agent.analysis.slo import slo_status
from agent.config import Settings
from agent.errors import AgentError
from agent.monitoring import AlertDraft, MonitorConfig, MonitorInputs, MonitorState, evaluate
from agent.planning.capacity import trigger_crossing
from agent.runtime.dispatcher import Dispatcher, configured_context
from agent.runtime.publisher import Publisher
from agent.sources.prometheus import PROMETHEUS_MAX_POINTS
from agent.store import MetricStore
from agent.strategies.domain import (
    SLO_KINDS,
    Assessment,
    DomainScope,
    assess,
    bottlenecks_of,
    data_quality,
)
from agent.strategies.strategic_backend_planning import SCALING_TRIGGERS
from protocols import Alert, AnalysisReport, TaskParams, TaskResult, TaskType, encode, subjects
from protocols.messages import CauseLink

log = logging.getLogger(__name__)

STATE_KEY = "monitor.state"
LEASE_KEY = "monitor.lease"
SLO_WINDOW_S = 3 * 86_400.0
"""Burn rates look back up to three days (the SRE workbook's slowest rule)."""

SCOPE = DomainScope(task_type="monitor", primary=tuple(CATALOG))
STRUCTURAL_LINK = 0.4
"""Score of a link by the dependency table alone (the cause ranking's dependency weight)."""


class Outgoing(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    msg_id: str
    payload: msgspec.Raw


class Stored(msgspec.Struct, frozen=True, kw_only=True):
    """The KV value: the rules' state and the alerts not yet acknowledged by the stream."""

    state: MonitorState
    outbox: list[Outgoing] = []
    skipped_runs: int = 0
    runs: int = 0


class LeaseValue(msgspec.Struct, frozen=True, kw_only=True):
    holder: str
    expires: float


_STORED = msgspec.json.Decoder(Stored)
_LEASE = msgspec.json.Decoder(LeaseValue)
_ENC = msgspec.json.Encoder()


class Lease:
    """Who runs the monitor: the holder renews before ``ttl_s`` runs out, or loses it."""

    def __init__(self, kv: KeyValue, holder: str, ttl_s: float) -> None:
        self.kv = kv
        self.holder = holder
        self.ttl_s = ttl_s

    async def acquire(self, now: float) -> bool:
        """Take or renew the lease at ``now``; False while another live holder has it."""
        value = _ENC.encode(LeaseValue(holder=self.holder, expires=now + self.ttl_s))
        try:
            entry = await self.kv.get(LEASE_KEY)
        except NotFoundError:  # never written, or deleted (KeyDeletedError)
            try:
                await self.kv.create(LEASE_KEY, value)
            except KeyWrongLastSequenceError:
                return False
            return True
        current = _LEASE.decode(entry.value) if entry.value else None
        if current is not None and current.holder != self.holder and current.expires > now:
            return False
        try:
            await self.kv.update(LEASE_KEY, value, last=entry.revision)
        except KeyWrongLastSequenceError:
            return False
        return True

    async def release(self) -> None:
        with contextlib.suppress(Exception):
            entry = await self.kv.get(LEASE_KEY)
            if entry.value and _LEASE.decode(entry.value).holder == self.holder:
                await self.kv.delete(LEASE_KEY, last=entry.revision)


@dataclass(frozen=True, slots=True)
class RunResult:
    alerts: list[AlertDraft]
    report: AnalysisReport | None
    reason: str = ""


class Monitor:
    def __init__(
        self,
        settings: Settings,
        dispatcher: Dispatcher,
        publisher: Publisher,
        kv: KeyValue,
        *,
        holder: str,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.dispatcher = dispatcher
        self.publisher = publisher
        self.kv = kv
        self.wall_clock = wall_clock
        self.interval_s = settings.monitor_interval_s
        self.lease = Lease(kv, holder, ttl_s=settings.monitor_lease_s or 3 * self.interval_s)
        self.runs = 0
        self.config = MonitorConfig(
            resolve_after=settings.monitor_resolve_after,
            trend_horizon_h=settings.monitor_trend_horizon_h,
            runway_days=settings.monitor_runway_days,
            anomaly_lookback_s=self.interval_s,
        )
        self.skipped = 0
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    # --- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        """Run at ``start + k·interval`` while holding the lease; count skipped slots."""
        start = self.wall_clock()
        slot = 0
        while not self._stopping.is_set():
            now = self.wall_clock()
            try:
                holding = await self.lease.acquire(now)
            except Exception:
                log.exception("monitor lease unavailable; trying again at the next slot")
                holding = False
            if holding:
                self.runs += 1
                try:
                    await self.run_once(now)
                except Exception:
                    log.exception("monitor run failed; next run at the next slot")
            finished = self.wall_clock()
            slot += 1
            due = start + slot * self.interval_s
            if finished > due:  # overran: skip the missed slots, on the same grid
                missed = math.floor((finished - due) / self.interval_s) + 1
                self.skipped += missed
                slot += missed
                due = start + slot * self.interval_s
                log.warning("monitor run overran; %d slot(s) skipped", missed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), max(0.0, due - self.wall_clock()))
        await self.lease.release()

    # --- one assessment ------------------------------------------------------------------

    async def run_once(self, now: float) -> RunResult:
        """Assess the live data at ``now``, evaluate the rules, publish what they raise."""
        stored, revision = await self._load()
        await self._flush(stored.outbox)  # a crash after the last save: send them now
        store = await self._store(now)
        window = self.settings.monitor_window
        ctx_now = datetime.fromtimestamp(now, UTC)
        ctx = configured_context(
            self.settings,
            task_id=f"monitor-{int(now)}",
            task_type=TaskType.API_OPTIMIZATION,
            now=ctx_now,
            params=TaskParams(window=window),
            store=store,
            # a directive's targets hold for all later work, the monitor's judging included
            directive=(
                await self.dispatcher.directives.in_force(ctx_now)
                if self.dispatcher.directives is not None
                else None
            ),
        )
        try:
            a = await asyncio.to_thread(assess, ctx, SCOPE)
        except AgentError as exc:
            log.info("monitor: nothing to assess (%s)", exc.message)
            return RunResult(alerts=[], report=None, reason=exc.message)
        inputs = MonitorInputs(
            judged=a.judged,
            slo=self._slo(store, a.judged, now),
            change_points=a.change_points,
            outliers=a.outliers,
            links=[*a.evidenced, *self._structural_links(a, now)],
            triggers=self._triggers(store, now),
        )
        drafts, state = evaluate(inputs, stored.state, now=now, config=self.config)
        outbox = [self._outgoing(d) for d in drafts]
        report = AnalysisReport(
            analysis_type="monitor",
            timestamp=ctx.now,
            window=window,
            performance={n: j.to_performance() for n, j in a.judged.items()},
            bottlenecks=bottlenecks_of(a),
            recommendations=[],
            data_quality=data_quality(ctx, SCOPE, a),
            change_points=a.change_points,
            outliers=a.outliers,
            slo=dict(inputs.slo),
            root_causes=a.links,
            findings={"alerts": [d.alert_id for d in drafts], "skipped_runs": self.skipped},
        )
        summary = TaskResult(
            task_id=ctx.task_id,
            task_type="monitor",
            agent_id=self.settings.agent_id,
            status="completed",
            started_at=ctx.now,
            completed_at=ctx.now,
            duration_ms=0.0,
            report=msgspec.to_builtins(report),
        )
        outbox.append(
            Outgoing(
                subject=subjects.monitor_results(self.settings.agent_id),
                msg_id=f"{ctx.task_id}:result",
                payload=msgspec.Raw(encode(summary)),
            )
        )
        saved = Stored(
            state=state,
            outbox=outbox,
            skipped_runs=self.skipped,
            runs=stored.runs + 1,
        )
        revision = await self._save(saved, revision)
        await self._flush(outbox)
        await self._save(
            Stored(state=state, outbox=[], skipped_runs=self.skipped, runs=saved.runs), revision
        )
        return RunResult(alerts=drafts, report=report)

    def _structural_links(self, a: Assessment, now: float) -> list[CauseLink]:
        """Links by the dependency table alone between metrics in trouble right now.

        Breached metrics are linked by the cause ranking; a symptom that only shifted
        (an anomaly, not yet a breach) is linked to its troubled dependencies here, so
        the alerts of one incident start as one problem.
        """
        since = now - 2 * self.interval_s
        shifted = {
            m
            for m, points in a.change_points.items()
            if any(p.worse and p.at.timestamp() >= since for p in points)
        }
        spiked = {
            m for m, found in a.outliers.items() if any(o.at.timestamp() >= since for o in found)
        }
        breached = {m for m, j in a.judged.items() if not j.meets_target}
        troubled = shifted | spiked | breached
        return [
            CauseLink(
                symptom=symptom,
                cause=cause,
                score=STRUCTURAL_LINK,
                cause_onset=None,
                symptom_onset=None,
                correlation=None,
            )
            for symptom in sorted(troubled)
            for cause in DEPENDENCIES.get(symptom, ())
            if cause in troubled
        ]

    async def _store(self, now: float) -> MetricStore:
        """Every sample a run reads: the judging window, the SLO's 3 days, the triggers'.

        From Prometheus in one range query per metric at as many steps as it serves
        (``PROMETHEUS_MAX_POINTS``): at a task's 240 steps, 7 days would leave 3 samples in
        the hour the trend, change-point and outlier rules judge.
        """
        window_s = max(
            parse_window(self.settings.monitor_window),
            SLO_WINDOW_S,
            parse_window(self.settings.monitor_trigger_window),
        )
        if self.dispatcher.prometheus is not None:
            store, _ = await self.dispatcher.prometheus.fetch_window(
                self.settings, window_s, now, max_points=PROMETHEUS_MAX_POINTS
            )
            return store
        if self.dispatcher.live_store is not None:
            return self.dispatcher.live_store.snapshot(window_s=window_s, end=now)
        return MetricStore()

    def _slo(self, store: MetricStore, judged: Any, now: float) -> dict[str, Any]:
        out = {}
        for name, kind in SLO_KINDS.items():
            if name not in judged:
                continue
            series = store.merged(name, window_s=SLO_WINDOW_S, end=now)
            status = slo_status(
                series, kind=kind, target=judged[name].target, window_s=SLO_WINDOW_S
            )
            if status is not None:
                out[name] = status
        return out

    def _triggers(self, store: MetricStore, now: float) -> list[dict[str, Any]]:
        triggers = {**SCALING_TRIGGERS, **self.settings.scaling_triggers}
        window_s = parse_window(self.settings.monitor_trigger_window)
        out = []
        for metric, threshold in triggers.items():
            spec = CATALOG.get(metric)
            series = store.merged(metric, window_s=window_s, end=now)
            if spec is None or len(series) == 0:
                continue
            crossing = trigger_crossing(
                series, threshold, spec.direction, now, self.settings.monitor_runway_days
            )
            out.append({"metric": metric, **crossing.to_dict()})
        return out

    def _outgoing(self, draft: AlertDraft) -> Outgoing:
        alert = Alert(
            alert_id=draft.alert_id,
            raised_at=datetime.fromtimestamp(draft.raised_at, UTC),
            metric=draft.metric,
            severity=draft.severity,
            kind=draft.kind,
            current=draft.current,
            target=draft.target,
            message=draft.message[:4000],
            problem_id=draft.problem_id,
            symptoms=list(draft.symptoms),
            caused_by=list(draft.caused_by),
        )
        suffix = {"raise": "", "renotify": f":{draft.severity}", "resolve": ":resolved"}
        return Outgoing(
            subject=subjects.alerts(draft.severity),
            msg_id=f"{draft.alert_id}{suffix[draft.notification]}",
            payload=msgspec.Raw(encode(alert)),
        )

    async def _flush(self, outbox: list[Outgoing]) -> None:
        for out in outbox:
            await self.publisher.to_stream(out.subject, bytes(out.payload), msg_id=out.msg_id)

    async def _load(self) -> tuple[Stored, int | None]:
        try:
            entry = await self.kv.get(STATE_KEY)
        except NotFoundError:  # never written, or deleted (KeyDeletedError)
            return Stored(state=MonitorState()), None
        if not entry.value:
            return Stored(state=MonitorState()), entry.revision
        return _STORED.decode(entry.value), entry.revision

    async def _save(self, stored: Stored, revision: int | None) -> int:
        """Write at the revision read: a second monitor (a lost lease) fails here, loudly."""
        if revision is None:
            return int(await self.kv.create(STATE_KEY, _ENC.encode(stored)))
        return int(await self.kv.update(STATE_KEY, _ENC.encode(stored), last=revision))
