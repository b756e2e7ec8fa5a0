"""Episodes: the monitor's memory, so one problem is one alert and not one per assessment.

An episode opens when a rule fires for a key (``f"{rule}:{metric}"``) with no open
episode, and raises one alert. While it stays open nothing more is sent, except a
re-notification when a ``target_breach`` (plain or SLO burn) gets more severe. It
closes after ``resolve_after`` consecutive clear assessments with a ``resolved`` alert
naming the original id, or silently on a handover to another rule. The state is a
msgspec Struct the runtime keeps in a KV bucket: a restarted monitor continues the
same episodes and raises nothing twice.

``evaluate`` is pure: no clock (``now`` is passed in), no I/O, the old state unchanged.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

import msgspec
from msgspec.structs import replace as struct_replace

from agent.monitoring.rules import (
    SEVERITY_RANK,
    AlertKind,
    MonitorConfig,
    MonitorInputs,
    RuleName,
    Signal,
    signals,
    wire_float,
)
from protocols.messages import Alert, CauseLink, Severity

Notification = Literal["raise", "renotify", "resolve"]

ALERT_ID_LIMIT = 100
"""Leaves room for ``:resolved`` or ``:critical`` within the wire's 128-character Ident."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")
_RULE_ORDER: Mapping[str, int] = {
    "target_breach": 0,
    "slo_burn": 1,
    "anomaly": 2,
    "degradation_trend": 3,
    "capacity_runway": 4,
}
"""Which of a metric's alerts stands for it in a problem: the plainest statement first."""
_RENOTIFY: frozenset[str] = frozenset({"target_breach", "slo_burn"})
"""Rules re-notified on a rise in severity; the others say one thing once per episode."""
_ABSENCE_CLEARS: frozenset[str] = frozenset({"anomaly"})
"""Rules for which an assessment saying nothing about the metric is a quiet one."""


class Episode(msgspec.Struct, frozen=True, kw_only=True):
    """One open problem of one rule on one metric, as stored between assessments."""

    alert_id: str
    kind: AlertKind
    metric: str
    severity: Severity
    """The latest firing severity (it may fall while open)."""
    opened_at: float
    notified_severity: Severity
    """The highest severity sent: a re-notification needs a rise above it."""
    healthy_streak: int = 0
    problem_id: str | None = None
    last_seen: float
    current: float = 0.0
    """Latest value seen, so a ``resolved`` alert has numbers even without new data."""
    target: float = 0.0


class Totals(msgspec.Struct, frozen=True, kw_only=True):
    """Notifications sent over the monitor's life (survives restarts with the state)."""

    raised: int = 0
    renotified: int = 0
    resolved: int = 0


class MonitorState(msgspec.Struct, frozen=True, kw_only=True):
    """Open episodes by key (``f"{rule}:{metric}"``) and the running totals."""

    episodes: dict[str, Episode] = {}
    totals: Totals = Totals()


@dataclass(frozen=True, slots=True)
class AlertDraft:
    """An alert to publish; ``msg_id`` is its ``Nats-Msg-Id``, stable across retries.

    ``problem_id`` groups alerts of one problem: the cause's ``alert_id``. The cause's
    draft lists its ``symptoms`` (metrics), each symptom's draft its ``caused_by``.
    """

    alert_id: str
    kind: AlertKind
    metric: str
    severity: Severity
    current: float
    target: float
    message: str
    raised_at: float
    notification: Notification
    episode_key: str
    problem_id: str | None = None
    symptoms: list[str] = field(default_factory=list)
    caused_by: list[str] = field(default_factory=list)

    @property
    def msg_id(self) -> str:
        """``alert_id`` for a raise, ``alert_id:<severity>`` for a rise, ``alert_id:resolved``."""
        if self.notification == "renotify":
            return f"{self.alert_id}:{self.severity}"
        if self.notification == "resolve":
            return f"{self.alert_id}:resolved"
        return self.alert_id

    def to_alert(self) -> Alert:
        """The ``alert/v1`` message, grouping included."""
        return Alert(
            alert_id=self.alert_id,
            raised_at=datetime.fromtimestamp(self.raised_at, UTC),
            metric=self.metric,
            severity=self.severity,
            kind=self.kind,
            current=wire_float(self.current),
            target=wire_float(self.target),
            message=self.message,
            problem_id=self.problem_id,
            symptoms=list(self.symptoms),
            caused_by=list(self.caused_by),
        )


def alert_id_for(rule: RuleName | str, metric: str, opened_at: float) -> str:
    """``alert-{metric}-{rule}-{int(opened_at)}`` in ``[A-Za-z0-9._:-]``, at most 100 chars.

    The rule, not the wire kind, is in the id, so an SLO burn and a plain breach of the
    same metric opened in the same second differ. Too long a name keeps its head and a
    hash of the whole, so distinct metrics still get distinct ids.
    """
    raw = f"alert-{metric}-{rule}-{int(opened_at)}"
    safe = _UNSAFE.sub("_", raw)
    if safe == raw and len(raw) <= ALERT_ID_LIMIT:
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:12]
    return f"{safe[: ALERT_ID_LIMIT - 13]}-{digest}"


def _rule_of(key: str) -> str:
    return key.split(":", 1)[0]


def _iso(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return f"{ts:g}"


def _raise(key: str, sig: Signal, now: float) -> tuple[Episode, AlertDraft]:
    sev: Severity = sig.severity or "low"
    alert_id = alert_id_for(sig.rule, sig.metric, now)
    episode = Episode(
        alert_id=alert_id,
        kind=sig.kind,
        metric=sig.metric,
        severity=sev,
        opened_at=now,
        notified_severity=sev,
        last_seen=now,
        current=wire_float(sig.current),
        target=wire_float(sig.target),
    )
    draft = AlertDraft(
        alert_id=alert_id,
        kind=sig.kind,
        metric=sig.metric,
        severity=sev,
        current=episode.current,
        target=episode.target,
        message=sig.message,
        raised_at=now,
        notification="raise",
        episode_key=key,
    )
    return episode, draft


def _step(
    key: str, ep: Episode, sig: Signal, now: float, config: MonitorConfig
) -> tuple[Episode | None, AlertDraft | None]:
    """One open episode against this assessment's signal: (episode or None if closed, draft)."""
    current = wire_float(sig.current)
    target = wire_float(sig.target)
    if sig.state == "handover":
        return None, None
    if sig.state in ("firing", "holding"):
        sev = sig.severity or ep.severity
        updated = struct_replace(
            ep,
            severity=sev,
            healthy_streak=0,
            last_seen=now,
            current=current,
            target=target,
        )
        rises = SEVERITY_RANK[sev] > SEVERITY_RANK[ep.notified_severity]
        if sig.state != "firing" or _rule_of(key) not in _RENOTIFY or not rises:
            return updated, None
        draft = AlertDraft(
            alert_id=ep.alert_id,
            kind=ep.kind,
            metric=ep.metric,
            severity=sev,
            current=current,
            target=target,
            message=(
                f"worse: {ep.notified_severity} → {sev}. {sig.message} "
                f"(alert {ep.alert_id}, open since {_iso(ep.opened_at)})"
            ),
            raised_at=now,
            notification="renotify",
            episode_key=key,
            problem_id=ep.problem_id,
        )
        return struct_replace(updated, notified_severity=sev), draft
    streak = ep.healthy_streak + 1
    if streak < config.resolve_after:
        return struct_replace(
            ep, healthy_streak=streak, last_seen=now, current=current, target=target
        ), None
    draft = AlertDraft(
        alert_id=ep.alert_id,
        kind="resolved",
        metric=ep.metric,
        severity=ep.notified_severity,
        current=current,
        target=target,
        message=(
            f"resolved {ep.alert_id} ({ep.kind} on {ep.metric}, open since "
            f"{_iso(ep.opened_at)}): {sig.message}, {streak} assessments in a row"
        ),
        raised_at=now,
        notification="resolve",
        episode_key=key,
        problem_id=ep.problem_id,
    )
    return None, draft


def evaluate(
    inputs: MonitorInputs,
    state: MonitorState | None,
    *,
    now: float,
    config: MonitorConfig,
) -> tuple[list[AlertDraft], MonitorState]:
    """One assessment against the open episodes: the alerts to send and the next state.

    Keys are visited in sorted order, so the same inputs and state always give the same
    drafts. A rule silent about an open key leaves it as it was (no data heals
    nothing), except ``anomaly``, where silence is a quiet assessment. New alerts are
    then grouped into problems by ``group``.
    """
    if not math.isfinite(now):
        raise ValueError(f"now must be a finite epoch time, not {now!r}")
    state = state if state is not None else MonitorState()
    found = signals(inputs, now=now, config=config)
    episodes = dict(state.episodes)
    drafts: list[AlertDraft] = []
    for key in sorted(found.keys() | episodes.keys()):
        sig = found.get(key)
        ep = episodes.get(key)
        if ep is None:
            if sig is not None and sig.state == "firing":
                episodes[key], raised = _raise(key, sig, now)
                drafts.append(raised)
            continue
        if sig is None:
            if _rule_of(key) not in _ABSENCE_CLEARS:
                continue
            sig = Signal(
                rule="anomaly",
                metric=ep.metric,
                state="clear",
                current=ep.current,
                target=ep.target,
                message=f"no new anomaly on {ep.metric}",
            )
        after, note = _step(key, ep, sig, now, config)
        if after is None:
            del episodes[key]
        else:
            episodes[key] = after
        if note is not None:
            drafts.append(note)
    drafts, episodes = group(drafts, inputs.links, episodes)
    totals = state.totals
    counts = {n: sum(d.notification == n for d in drafts) for n in ("raise", "renotify", "resolve")}
    totals = Totals(
        raised=totals.raised + counts["raise"],
        renotified=totals.renotified + counts["renotify"],
        resolved=totals.resolved + counts["resolve"],
    )
    return drafts, MonitorState(episodes=episodes, totals=totals)


def _representatives(items: Sequence[tuple[str, str]]) -> dict[str, str]:
    """metric → the key that stands for it, from (key, metric) pairs, by ``_RULE_ORDER``."""
    best: dict[str, str] = {}
    for key, metric in items:
        held = best.get(metric)
        if held is None or (_RULE_ORDER.get(_rule_of(key), 9), key) < (
            _RULE_ORDER.get(_rule_of(held), 9),
            held,
        ):
            best[metric] = key
    return best


def group(
    drafts: list[AlertDraft], links: Sequence[CauseLink], episodes: Mapping[str, Episode]
) -> tuple[list[AlertDraft], dict[str, Episode]]:
    """Join newly raised alerts linked cause → symptom into one problem.

    Among the alerts raised in this evaluation, one per metric stands for it (a breach
    before an SLO burn, an anomaly, a trend, a runway). Linked metrics form a problem
    whose root is the one no other member causes (several: the strongest links out,
    then the name); ``problem_id`` is the root's alert id. Each representative lists
    its direct ``symptoms`` and ``caused_by`` among the members; the metric's other
    new alerts carry the ``problem_id`` only. A problem whose root is linked as a
    symptom of a metric with an episode already open joins that episode's problem
    (its ``problem_id``, else its alert id): a symptom breaching an assessment after
    its cause is still the same problem; so does one whose root already has an open
    episode of another kind (its anomaly came first). Episodes remember ``problem_id``.
    """
    raised = [d for d in drafts if d.notification == "raise"]
    if not raised:
        return drafts, dict(episodes)
    rep = _representatives([(d.episode_key, d.metric) for d in raised])
    by_key = {d.episode_key: d for d in raised}
    new_keys = set(by_key)

    score: dict[tuple[str, str], float] = {}
    for link in links:
        pair = (link.cause, link.symptom)
        if link.cause in rep and link.symptom in rep and link.cause != link.symptom:
            score[pair] = max(score.get(pair, -math.inf), link.score)

    parent = {m: m for m in rep}

    def find(m: str) -> str:
        while parent[m] != m:
            parent[m] = parent[parent[m]]
            m = parent[m]
        return m

    for cause, symptom in sorted(score):
        a, b = find(cause), find(symptom)
        if a != b:
            parent[max(a, b)] = min(a, b)
    components: dict[str, list[str]] = {}
    for m in sorted(rep):
        components.setdefault(find(m), []).append(m)

    out_score = dict.fromkeys(rep, 0.0)
    for (cause, _), s in score.items():
        out_score[cause] += s
    open_rep = _representatives(
        [(k, e.metric) for k, e in episodes.items() if k not in new_keys and e.metric not in rep]
    )
    episodes = dict(episodes)
    problem: dict[str, str] = {}
    outside_cause: dict[str, str] = {}
    for members in components.values():
        symptoms = {s for (_, s) in score if s in members}
        roots = [m for m in members if m not in symptoms] or members
        root = min(roots, key=lambda m: (-out_score[m], m))
        pid: str | None = by_key[rep[root]].alert_id if len(members) > 1 else None
        upstream = [
            link
            for link in links
            if link.symptom == root and link.cause in open_rep and link.cause != root
        ]
        earlier = [e for k, e in episodes.items() if k not in new_keys and e.metric == root]
        if earlier and not upstream:
            # the same metric already alerted (an anomaly before its breach): one problem
            first = min(earlier, key=lambda e: (e.opened_at, e.alert_id))
            pid = first.problem_id or first.alert_id
        elif upstream:
            link = max(upstream, key=lambda lk: (lk.score, lk.cause))
            cause_key = open_rep[link.cause]
            cause_ep = episodes[cause_key]
            pid = cause_ep.problem_id or cause_ep.alert_id
            if cause_ep.problem_id is None:
                episodes[cause_key] = struct_replace(cause_ep, problem_id=pid)
            outside_cause[root] = link.cause
        if pid is not None:
            for m in members:
                problem[m] = pid

    grouped: list[AlertDraft] = []
    for d in drafts:
        pid = problem.get(d.metric) if d.notification == "raise" else None
        if pid is None:
            grouped.append(d)
            continue
        if rep[d.metric] == d.episode_key:
            causes = sorted(c for (c, s) in score if s == d.metric)
            if d.metric in outside_cause:
                causes.append(outside_cause[d.metric])
            d = replace(
                d,
                problem_id=pid,
                symptoms=sorted(s for (c, s) in score if c == d.metric),
                caused_by=causes,
            )
        else:
            d = replace(d, problem_id=pid)
        episodes[d.episode_key] = struct_replace(episodes[d.episode_key], problem_id=pid)
        grouped.append(d)
    return grouped, episodes
