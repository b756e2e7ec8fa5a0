"""``sources``: what measures each metric on a Prometheus server, and what would supply the rest.

The agent tries each metric's alternatives in order (``agent/sources/prometheus.py``,
``DEFAULT_QUERIES``); this command runs them over a short recent window, as a task would,
so an operator sees before any task which instrumentation the agent found and what to
install for the metrics it did not (docs/instrumentation.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from agent.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    Subparsers,
    UsageError,
    add_command,
    load_settings,
    print_json,
)
from agent.config import Settings

if TYPE_CHECKING:
    from agent.sources.prometheus import Survey

DEFAULT_WINDOW = "5m"
"""Long enough for a few scrapes at any usual interval, short enough to be "now"."""


def _url(value: str | None, settings: Settings) -> str:
    """The server to ask: ``--prometheus``, else ``prometheus_url``; a non-HTTP URL is a
    usage error (it could never answer)."""
    url = value or settings.prometheus_url
    if not url:
        raise UsageError("give --prometheus URL (or set prometheus_url)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise UsageError(f"bad Prometheus URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"bad Prometheus URL {url!r}: need http://host[:port][/path]")
    return url


def _window_s(window: str) -> float:
    from agent.analysis.series import parse_window
    from agent.errors import InvalidParams

    try:
        return parse_window(window)
    except InvalidParams as exc:
        raise UsageError(exc.message) from None


def _why_unconfigured(metric: str) -> str:
    from agent.sources.prometheus import DEFAULT_QUERIES

    if metric in DEFAULT_QUERIES:
        return 'switched off: prometheus_queries sets it to ""'
    return "no default query: set one in prometheus_queries"


def rows(survey: Survey) -> list[dict[str, Any]]:
    """One JSON-ready row per metric: the 20 of the catalog by domain, then the auxiliary
    series (what ``--json`` prints under ``metrics``)."""
    from agent.analysis.catalog import AUXILIARY, CATALOG

    out: list[dict[str, Any]] = []
    for metric, fetched in survey.report.metrics.items():
        spec = CATALOG.get(metric)
        resolution = survey.resolution.get(metric)
        ok = fetched.status == "ok"
        row: dict[str, Any] = {
            "metric": metric,
            "kind": "catalog" if spec is not None else "auxiliary",
            "domain": spec.domain if spec is not None else None,
            "unit": spec.unit if spec is not None else None,
            "status": fetched.status,
            "alternatives": [a.name for a in survey.chains.get(metric, ())],
            "alternative": fetched.alternative,
            "statistic": fetched.statistic if ok else None,
            "statistic_note": fetched.fallback,
            "query": fetched.query or None,
            "series": fetched.series,
            "samples": fetched.samples,
            "raw_series": resolution.raw_series if resolution else None,
            "scrape_interval_s": resolution.scrape_interval_s if resolution else None,
            "latest": resolution.latest if resolution else None,
            "tried": [
                {"alternative": t.alternative, "status": t.status, "query": t.query}
                | ({"error": t.error} if t.error else {})
                | ({"note": t.note} if t.note else {})
                for t in fetched.tried
            ],
            "needs": None,
            "error": None,
            "check_error": fetched.check_error,
            "warnings": list(fetched.warnings),
        }
        if fetched.status == "not_measured":
            row["needs"] = fetched.not_measured_reason()
        elif fetched.status == "unconfigured":
            row["needs"] = _why_unconfigured(metric)
        elif fetched.status in ("error", "empty"):
            row["error"] = (
                f"{fetched.error_type}: {fetched.error}"
                if fetched.status == "error"
                else "the query returned no samples"
            )
        out.append(row)
    order = {m: i for i, m in enumerate([*CATALOG, *AUXILIARY])}
    return sorted(out, key=lambda r: order.get(r["metric"], len(order)))


def document(survey: Survey) -> dict[str, Any]:
    """The whole answer, JSON-ready."""
    report = survey.report
    table = rows(survey)
    catalog = [r for r in table if r["kind"] == "catalog"]
    auxiliary = [r for r in table if r["kind"] == "auxiliary"]
    return {
        "source": report.source,
        "window_s": survey.window_s,
        "start": report.start,
        "end": report.end,
        "step_s": report.step_s,
        "rate_interval_s": report.rate_interval_s,
        "measured": {
            "catalog": sum(r["status"] == "ok" for r in catalog),
            "catalog_total": len(catalog),
            "auxiliary": sum(r["status"] == "ok" for r in auxiliary),
            "auxiliary_total": len(auxiliary),
        },
        "metrics": table,
    }


def _num(value: float | None, digits: int = 3) -> str:
    return "?" if value is None else f"{value:.{digits}g}"


def render(doc: dict[str, Any]) -> str:
    """The answer for a terminal: one block per metric, grouped by domain."""
    measured = doc["measured"]
    lines = [
        f"{doc['source']}: the last {_num(doc['window_s'], 6)} s at {_num(doc['step_s'])} s "
        f"steps (rate windows {_num(doc['rate_interval_s'])} s)",
        f"measured: {measured['catalog']} of {measured['catalog_total']} metrics, "
        f"{measured['auxiliary']} of {measured['auxiliary_total']} auxiliary series",
    ]
    group = None
    for row in doc["metrics"]:
        heading = row["domain"] or "auxiliary"
        if heading != group:
            group = heading
            lines.append(f"\n{heading}")
        lines.extend(_block(row))
    return "\n".join(lines)


def _block(row: dict[str, Any]) -> list[str]:
    name = f"  {row['metric']:<30}"
    if row["status"] != "ok":
        head = {"not_measured": "not measured", "unconfigured": "no query"}.get(
            row["status"], row["status"]
        )
        lines = [f"{name} {head}"]
        if row["needs"]:
            lines.append(f"      {row['needs']}")
        if row["error"]:
            lines.append(f"      {row['error']}")
        if row["query"] and row["status"] in ("error", "empty"):
            lines.append(f"      query: {row['query']}")
        if row["status"] == "not_measured":
            if len(row["tried"]) > 1:  # what each found is in the needs line above
                names = ", ".join(t["alternative"] for t in row["tried"])
                lines.append(f"      tried, all empty: {names}")
        else:
            lines.extend(f"      tried: {_tried(t)}" for t in row["tried"])
        return lines
    resolution = f"{row['series']} series, {row['samples']} samples"
    if row["raw_series"] is not None:
        every = row["scrape_interval_s"]
        scraped = f", scraped every {_num(every)} s" if every else ""
        resolution += f"; reads {row['raw_series']} raw series{scraped}"
    if row["latest"] is not None:
        unit = f" {row['unit']}" if row["unit"] else ""
        resolution += f"; latest {_num(row['latest'], 4)}{unit}"
    lines = [f"{name} {row['statistic'] or 'as given'} from {row['alternative']}: {resolution}"]
    lines.append(f"      query: {row['query']}")
    if row["statistic_note"]:
        lines.append(f"      {row['statistic']} because {row['statistic_note']}")
    lines.extend(f"      tried first: {_tried(t)}" for t in row["tried"])
    if row["check_error"]:
        lines.append(f"      bucket check failed: {row['check_error']}")
    lines.extend(f"      warning: {w}" for w in row["warnings"])
    return lines


def _tried(tried: dict[str, Any]) -> str:
    detail = tried.get("error") or tried.get("note")
    return f"{tried['alternative']} {tried['status']}" + (f" ({detail})" if detail else "")


async def _survey(settings: Settings, window_s: float) -> Survey:
    from agent.analysis.catalog import AUXILIARY, CATALOG
    from agent.sources.prometheus import PrometheusSource

    async with PrometheusSource.from_settings(settings) as source:
        return await source.survey(
            end=time.time(), window_s=window_s, metrics=[*CATALOG, *AUXILIARY]
        )


def cmd_sources(args: argparse.Namespace) -> int:
    """Show which query measures each metric on a Prometheus server, and what is missing.

    For each of the 20 catalog metrics and the auxiliary series: the alternative that
    returns samples there (its PromQL and the statistic it gives), the resolution (step,
    series and samples over the last --window, the raw series read and their scrape
    interval), and for a metric nothing measures, which exporter, instrumentation or
    setting would supply it (docs/instrumentation.md). prometheus_queries overrides apply.
    Exit 0 when something was measured, 1 when Prometheus could not be reached or measured
    nothing, 2 for a bad URL, window or configuration.
    """
    from agent.sources.prometheus import PrometheusUnavailable

    settings = load_settings()
    url = _url(args.prometheus, settings)
    window_s = _window_s(args.window)
    settings = settings.model_copy(update={"prometheus_url": url})
    try:
        survey = asyncio.run(_survey(settings, window_s))
    except PrometheusUnavailable as exc:
        print(f"{exc.source}: {exc.message}", file=sys.stderr)
        return EXIT_FAILURE
    doc = document(survey)
    if args.json:
        print_json(doc)
    else:
        print(render(doc))
    if not any(r["status"] == "ok" for r in doc["metrics"]):
        print(f"{doc['source']}: no metric measured in the last {args.window}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def register(sub: Subparsers) -> None:
    parser = add_command(sub, "sources", cmd_sources)
    parser.add_argument(
        "--prometheus", metavar="URL", help="the server's base URL (default: prometheus_url)"
    )
    parser.add_argument(
        "--window",
        default=DEFAULT_WINDOW,
        help=f"how far back to look, e.g. 1m, 5m, 1h (default {DEFAULT_WINDOW})",
    )
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
