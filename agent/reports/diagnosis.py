"""The sections of an analysis beyond its verdicts: root causes, change points and
outliers, SLOs, request patterns, domain findings; and (every report's) data quality."""

from __future__ import annotations

import msgspec

from agent.reports.document import Block, Bullets, Paragraph, Section, Subheading, table
from agent.reports.format import NONE, num, pct, share, signed, text, when
from protocols.reports import AnalysisReport, DataQuality, Findings


def slo(report: AnalysisReport) -> Section | None:
    if not report.slo:
        return None
    blocks: list[Block] = []
    for metric, s in report.slo.items():
        blocks.append(
            Paragraph(
                f"{metric}: objective {pct(s.objective_pct, 6)}, bad events "
                f"{share(s.bad_fraction)}, error budget left "
                f"{share(s.error_budget_remaining)}."
            )
        )
        rates = s.burn_rates
        if rates:
            blocks.append(
                table(
                    (
                        "windows",
                        "threshold",
                        "severity",
                        "long burn",
                        "short burn",
                        "coverage",
                        "firing",
                    ),
                    [
                        (
                            f"{text(r.long_window)}/{text(r.short_window)}",
                            f"{num(r.threshold)}×",
                            text(r.severity),
                            num(r.long_burn, 4),
                            num(r.short_burn, 4),
                            share(r.coverage),
                            num(r.firing),
                        )
                        for r in rates
                    ],
                    numeric=(1, 3, 4, 5),
                    flagged=[i for i, r in enumerate(rates) if r.firing],
                )
            )
    return Section("slo", "Service-level objectives", tuple(blocks))


def root_causes(report: AnalysisReport) -> Section | None:
    if not report.root_causes:
        return None
    causes = table(
        ("symptom", "likely cause", "score", "cause onset", "symptom onset", "correlation"),
        [
            (
                text(c.symptom),
                text(c.cause),
                num(c.score, 3),
                when(c.cause_onset),
                when(c.symptom_onset),
                num(c.correlation, 3),
            )
            for c in report.root_causes
        ],
        numeric=(2, 5),
    )
    intro = Paragraph(
        "Score 0–1: the dependency table, which breached first, and rank correlation; "
        "from 0.6 on a cause ranks above its symptom."
    )
    return Section("root_causes", "Root causes", (intro, causes))


def changes(report: AnalysisReport) -> Section | None:
    if not report.change_points and not report.outliers:
        return None
    blocks: list[Block] = []
    rows = [
        (
            metric,
            when(c.at),
            num(c.before, 4),
            num(c.after, 4),
            signed(c.shift),
            f"{signed(c.shift_pct)} %" if c.shift_pct is not None else NONE,
            "worse" if c.worse else "better",
        )
        for metric, found in report.change_points.items()
        for c in found
    ]
    if rows:
        blocks.append(Subheading("Level shifts"))
        blocks.append(
            table(
                ("metric", "at", "before", "after", "shift", "shift %", "direction"),
                rows,
                numeric=(2, 3, 4, 5),
                flagged=[i for i, r in enumerate(rows) if r[-1] == "worse"],
            )
        )
    spikes = [
        (metric, when(o.at), num(o.value, 4), num(o.robust_z, 3))
        for metric, found in report.outliers.items()
        for o in found
    ]
    if spikes:
        blocks.append(Subheading("Outliers"))
        blocks.append(table(("metric", "at", "value", "robust z"), spikes, numeric=(2, 3)))
    return Section("changes", "Change points and outliers", tuple(blocks))


def request_patterns(report: AnalysisReport) -> Section | None:
    patterns = report.request_patterns
    if patterns is None:
        return None
    blocks: list[Block] = [
        Paragraph(
            f"{num(patterns.total_requests)} requests, {num(patterns.mean_rate)} req/s on average."
        )
    ]
    if patterns.peak_periods:
        blocks.append(
            Bullets(
                tuple(
                    f"Peak {p.start_hour}:00–{p.end_hour}:59 UTC: "
                    f"{num(p.mean_rate)} req/s ({num(p.ratio_to_mean, 3)}× the mean)"
                    for p in patterns.peak_periods
                )
            )
        )
    for shares, label in ((patterns.endpoints, "endpoint"), (patterns.regions, "region")):
        if shares:
            blocks.append(
                table(
                    (label, "share", "requests", "p50 ms", "p95 ms", "p99 ms"),
                    [
                        (
                            text(s.name),
                            pct(s.share_pct),
                            num(s.requests),
                            num(s.p50_ms, 4),
                            num(s.p95_ms, 4),
                            num(s.p99_ms, 4),
                        )
                        for s in shares
                    ],
                    numeric=(1, 2, 3, 4, 5),
                )
            )
    return Section("request_patterns", "Request patterns", tuple(blocks))


def _given(part: msgspec.Struct) -> list[tuple[str, object]]:
    """A part's fields as on the wire (their JSON names), those left at None out."""
    return [
        (f.encode_name, value)
        for f in msgspec.structs.fields(part)
        if (value := getattr(part, f.name)) is not None
    ]


def _scalars(values: list[tuple[str, object]], prefix: str = "") -> list[str]:
    """``key: value`` lines of a finding, nested parts and maps flattened to dotted keys;
    lists of parts are left to their own tables."""
    out: list[str] = []
    for key, value in values:
        name = f"{prefix}{key}"
        if isinstance(value, msgspec.Struct):
            out += _scalars(_given(value), f"{name}.")
        elif isinstance(value, dict):
            out += _scalars([(str(k), v) for k, v in value.items()], f"{name}.")
        elif not (isinstance(value, list) and value and isinstance(value[0], msgspec.Struct)):
            out.append(f"{name}: {text(value)}")
    return out


def findings(found: Findings) -> Section | None:
    """The domain's findings (WebSocket capacity, the cache's key classes…) as they are:
    each finding's figures as ``key: value`` lines, its lists of parts as tables."""
    blocks: list[Block] = []
    for name, finding in _given(found):
        blocks.append(Subheading(name.replace("_", " ")))
        if not isinstance(finding, msgspec.Struct):
            blocks.append(Paragraph(text(finding)))
            continue
        fields = _given(finding)
        scalars = _scalars(fields)
        if scalars:
            blocks.append(Bullets(tuple(scalars)))
        for key, value in fields:
            if not (isinstance(value, list) and value and isinstance(value[0], msgspec.Struct)):
                continue
            rows = [_given(v) for v in value]
            columns = list(dict.fromkeys(k for r in rows for k, _ in r))
            blocks.append(Paragraph(f"{key.replace('_', ' ')}:"))
            blocks.append(table(columns, [[text(dict(r).get(c)) for c in columns] for r in rows]))
    return Section("findings", "Domain findings", tuple(blocks)) if blocks else None


def data_quality(quality: DataQuality) -> Section | None:
    items: list[str] = []
    if quality.window_end:
        items.append(f"Window ends at the newest sample: {when(quality.window_end)}")
    by_source: dict[str, list[str]] = {}
    for metric, names in quality.sources.items():
        for source in names:
            by_source.setdefault(text(source), []).append(metric)
    items += [f"From {s}: {', '.join(sorted(m))}" for s, m in sorted(by_source.items())]
    for names, label in (
        (quality.missing_metrics, "No data for"),
        (quality.unknown_metrics, "Unknown metric names (ignored)"),
        (quality.out_of_scope_metrics, "Judged though outside this task's scope"),
        (quality.unknown_targets, "Targets for unknown metrics (ignored)"),
    ):
        if names:
            items.append(f"{label}: {', '.join(text(n) for n in names)}")
    if quality.history is not None and quality.history.note:
        items.append(f"History judged: {text(quality.history.note)}")
    for metric, rejected in quality.rejected_samples.items():
        items.append(
            f"Impossible samples rejected for {metric}: {num(rejected.count)} "
            f"({text(rejected.reason)}), never averaged in"
        )
    for metric, why in quality.unit_suspects.items():
        items.append(f"Unit looks wrong: {text(why)}; {metric} is not ranked as a bottleneck")
    for metric, why in quality.statistic_notes.items():
        items.append(f"Statistic for {metric}: {text(why)}")
    for metric, why in quality.unjudged_metrics.items():
        items.append(f"Measured, not judged: {metric} ({text(why)})")
    if quality.too_few_for_trend:
        items.append(
            f"Too few samples for a trend (fewer than {num(quality.min_trend_samples)}): "
            + ", ".join(f"{m} ({num(n)})" for m, n in quality.too_few_for_trend.items())
        )
    for skip in quality.infeasible_skipped:
        items.append(
            f"Skipped as infeasible: {text(skip.approach)} for "
            f"{text(skip.metric)} ({text(skip.reason)})"
        )
    weights = quality.business_weights
    if weights is not None:
        items.append(
            f"Business weights ({text(weights.source)}): "
            f"api_performance {num(weights.api_performance, 4)}, "
            f"scalability {num(weights.scalability, 4)}, "
            f"ai_processing {num(weights.ai_processing, 4)}, "
            f"infrastructure_efficiency {num(weights.infrastructure_efficiency, 4)}"
        )
    if quality.store:
        items.append(
            f"Samples accepted {num(quality.store.get('accepted'))}, "
            f"rejected {num(quality.store.get('rejected'))}"
        )
    if quality.source_report:
        items.append(f"Source report: {text(quality.source_report)}")
    if not items:
        return None
    return Section("data_quality", "Data quality", (Bullets(tuple(items)),))
