"""Continuous monitoring: every interval, a full assessment on the agent's own, and alerts.

- **Schedule**: runs at ``start + k × interval`` (no drift); an assessment that overruns
  skips the slots it missed, and they are counted.
- **One monitor per swarm**: a lease in KV (``monitor.lease``: holder and expiry, taken
  with the KV's optimistic concurrency) — a second replica waits, and takes over once
  the holder stops renewing it.
- **State survives restarts**: open episodes live in KV (``monitor.state``); alerts are
  written to an outbox in the same KV value before they are published (``Nats-Msg-Id``
  = alert id, so a re-send after a crash is stored once), then the outbox is cleared.
- The judging is the pure ``agent.monitoring`` (``judge_live``, run off the event loop);
  this module only schedules, holds the lease, loads and saves, and publishes.
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

import msgspec
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from agent.analysis.series import parse_window
from agent.config import Settings
from agent.errors import AgentError
from agent.monitoring import AlertDraft, MonitorConfig, MonitorState
from agent.monitoring.live import LiveConfig, judge_live
from agent.runtime.handler import DirectiveSource, configured_context
from agent.runtime.outbox import Outbox, Output, Publish
from agent.runtime.samples import SampleSource
from protocols import Alert, AnalysisReport, TaskParams, TaskResult, TaskType, encode, subjects

log = logging.getLogger(__name__)

STATE_KEY = "monitor.state"
LEASE_KEY = "monitor.lease"
CONTEXT_TASK_TYPE = TaskType.API_OPTIMIZATION
"""A strategy context needs a task type; the monitor's judging reads none of it (its window
is given and its scope is every catalog metric), so any would do."""


class Stored(msgspec.Struct, frozen=True, kw_only=True):
    """The KV value: the rules' state and the alerts not yet acknowledged by the stream."""

    state: MonitorState
    outbox: list[Output] = []
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
        samples: SampleSource,
        directives: DirectiveSource,
        outbox: Outbox,
        kv: KeyValue,
        *,
        holder: str,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.samples = samples
        self.directives = directives
        self.outbox = outbox
        self.kv = kv
        self.wall_clock = wall_clock
        self.interval_s = settings.monitor_interval_s
        self.lease = Lease(kv, holder, ttl_s=settings.monitor_lease_s or 3 * self.interval_s)
        self.runs = 0
        self.config = LiveConfig(
            rules=MonitorConfig(
                resolve_after=settings.monitor_resolve_after,
                trend_horizon_h=settings.monitor_trend_horizon_h,
                runway_days=settings.monitor_runway_days,
                anomaly_lookback_s=self.interval_s,
            ),
            interval_s=self.interval_s,
            trigger_window=settings.monitor_trigger_window,
            scaling_triggers=settings.scaling_triggers,
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
        window = self.settings.monitor_window
        store = await self.samples.history(max(parse_window(window), self.config.history_s), now)
        ctx_now = datetime.fromtimestamp(now, UTC)
        ctx = configured_context(
            self.settings,
            task_id=f"monitor-{int(now)}",
            task_type=CONTEXT_TASK_TYPE,
            now=ctx_now,
            params=TaskParams(window=window),
            store=store,
            # a directive's targets hold for all later work, the monitor's judging included
            directive=await self.directives.in_force(ctx_now),
        )
        try:
            judged = await asyncio.to_thread(
                judge_live,
                ctx,
                stored.state,
                now=now,
                config=self.config,
                skipped_runs=self.skipped,
            )
        except AgentError as exc:
            log.info("monitor: nothing to assess (%s)", exc.message)
            return RunResult(alerts=[], report=None, reason=exc.message)
        summary = TaskResult(
            task_id=ctx.task_id,
            task_type="monitor",
            agent_id=self.settings.agent_id,
            status="completed",
            started_at=ctx.now,
            completed_at=ctx.now,
            duration_ms=0.0,
            report=judged.report,
        )
        outbox: list[Output] = [self._outgoing(d) for d in judged.alerts]
        outbox.append(
            Publish(
                subject=subjects.monitor_results(self.settings.agent_id),
                msg_id=f"{ctx.task_id}:result",
                payload=msgspec.Raw(encode(summary)),
            )
        )
        state = judged.state
        saved = Stored(state=state, outbox=outbox, skipped_runs=self.skipped, runs=stored.runs + 1)
        revision = await self._save(saved, revision)
        await self._flush(outbox)
        await self._save(
            Stored(state=state, outbox=[], skipped_runs=self.skipped, runs=saved.runs), revision
        )
        return RunResult(alerts=judged.alerts, report=judged.report)

    def _outgoing(self, draft: AlertDraft) -> Publish:
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
        return Publish(
            subject=subjects.alerts(draft.severity),
            msg_id=f"{draft.alert_id}{suffix[draft.notification]}",
            payload=msgspec.Raw(encode(alert)),
        )

    async def _flush(self, outbox: list[Output]) -> None:
        """One at a time, in order: the alerts, then the run's summary."""
        for out in outbox:
            await self.outbox.send(out)

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
