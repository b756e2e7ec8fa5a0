"""The HTML report rendered by a real browser (headless Chromium): the charts must draw, offline."""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from plotly.offline import get_plotlyjs

from agent.reports.html import render_html
from protocols import TaskResult
from tests.test_reports_markdown import (
    NOW,
    incident_params,
    run_analysis,
    run_planning,
    typed,
    wire,
)

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is not installed (CI installs Debian's chromium package): "
    "the HTML report's charts cannot be checked in a browser here",
)
EVIL = '<img src=x onerror="alert(1)">'


def rendered_dom(page: Path, tmp_path: Path) -> str:
    """The DOM after Chromium ran the page's scripts (virtual time: no waiting on a clock)."""
    proc = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def chart_dom(dom: str, key: str) -> str:
    """The rendered DOM of one chart (its plotly div up to the next chart's)."""
    start = dom.index(f'id="chart-{key}"')
    end = dom.find('id="chart-', start + 1)
    return dom[start : end if end != -1 else None]


def scatter_traces(chart: str) -> int:
    return len(re.findall(r'<g class="trace scatter', chart))


def line_paths(chart: str) -> int:
    """Lines plotly drew (each a path with coordinates)."""
    return len(re.findall(r'<path class="js-line" d="M[^"]*L', chart))


def bars(chart: str) -> int:
    return len(re.findall(r'<g class="point"><path d="M[^"]+Z"', chart))


class _Sources(HTMLParser):
    """Every URL a tag would load (src, href, data) and every inline script."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "data", "srcset") and value:
                self.urls.append((tag, value))


def assert_offline(page: str) -> _Sources:
    parser = _Sources()
    parser.feed(page)
    remote = [(t, u) for t, u in parser.urls if re.match(r"^\s*(https?:)?//", u, re.IGNORECASE)]
    assert remote == [], "the page must not load anything from the network"
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", page.split("<script", 1)[0])
    return parser


def metric_traces(report: dict[str, Any]) -> tuple[int, int]:
    """(panels, traces) the metric chart should have: series, target, trend where known."""
    panels = traces = 0
    drawn = {**report.get("measured", {}), **report["performance"]}
    for name, perf in drawn.items():
        if len(report["series"].get(name, {}).get("values", [])) < 2:
            continue
        panels += 1
        known = perf["trend"] != "unknown" and perf["trend_detail"]["slope_per_hour"] is not None
        traces += 1 + ("target" in perf) + known  # measured metrics have no target line
    return panels, traces


@pytest.fixture(scope="module")
def analysis() -> TaskResult:
    result = wire(run_analysis(incident_params(), "api-html"))
    # a metric name that would be markup if anything forgot to escape it
    report = result["report"]
    report["performance"][EVIL] = report["performance"]["cpu_utilization"]
    report["series"][EVIL] = report["series"]["cpu_utilization"]
    report["bottlenecks"][0]["evidence"] = EVIL
    return typed(result)


@pytest.fixture(scope="module")
def planning() -> TaskResult:
    return run_planning(task_id="plan-html")


@needs_chromium
def test_analysis_page_draws_its_charts_offline(analysis: TaskResult, tmp_path: Path) -> None:
    page = render_html(analysis)
    assert page.count(get_plotlyjs()) == 1  # plotly.js inline, exactly once
    parsed = assert_offline(page)
    assert "img" not in parsed.tags  # the evil name stayed text
    path = tmp_path / "analysis.html"
    path.write_text(page, encoding="utf-8")
    dom = rendered_dom(path, tmp_path)

    assert dom.count('class="main-svg"') >= 2  # two charts drawn: metrics, bottlenecks
    report = wire(analysis)["report"]
    panels, traces = metric_traces(report)
    metrics = chart_dom(dom, "metrics")
    assert panels == len(report["series"]) >= 5
    assert scatter_traces(metrics) == traces
    assert line_paths(metrics) >= traces
    ranking = chart_dom(dom, "bottlenecks")
    assert bars(ranking) == len(report["bottlenecks"])
    for b in report["bottlenecks"]:
        assert f"{b['bottleneck_type']} · {b['optimization_urgency']}" in ranking
    # breached metrics are marked in their panel's title, in the browser's own rendering
    for name, perf in report["performance"].items():
        if not perf["meeting_target"] and name in report["series"]:
            assert f"⚠ {name}: " in metrics
    assert not re.search(r"<img\b", dom)  # not even after plotly.js built its SVG
    # the tables are there too, escaped, breached rows flagged
    assert '<tr class="flag"><td>database_query_time</td>' in dom
    assert "&lt;img src=x onerror=" in dom


@needs_chromium
def test_planning_page_draws_roadmap_and_capacity(planning: TaskResult, tmp_path: Path) -> None:
    page = render_html(planning)
    assert page.count(get_plotlyjs()) == 1
    assert_offline(page)
    path = tmp_path / "plan.html"
    path.write_text(page, encoding="utf-8")
    dom = rendered_dom(path, tmp_path)

    report = wire(planning)["report"]
    assert dom.count('class="main-svg"') >= 4  # metrics, bottlenecks, roadmap, capacity
    _, traces = metric_traces(report)
    assert scatter_traces(chart_dom(dom, "metrics")) == traces
    roadmap = chart_dom(dom, "roadmap")
    assert bars(roadmap) == len(report["prioritized_plan"])
    for entry in report["prioritized_plan"]:
        assert f"{entry['backend_strategic_score']:.1f}" in roadmap
    capacity = chart_dom(dom, "capacity")
    # interval band (2 traces), expected demand, report figures, ceiling, optimised ceiling
    assert scatter_traces(capacity) == 6
    assert line_paths(capacity) >= 4
    base = report["scalability_projections"]["current_baseline"]
    assert f"{base['capacity_model']['ceiling']:.4g} req/s" in capacity
    for trigger in report["scalability_projections"]["scaling_triggers"]:
        if trigger["status"] == "expected":
            assert f"{trigger['metric']} reaches {trigger['threshold']:g}" in capacity
    six = report["scalability_projections"]["6_months"]["api_requests_per_s"]["expected"]
    assert f"6 months: {six:,.0f}" in capacity


def test_a_chart_without_data_says_why() -> None:
    scalars = run_analysis(
        {"window": "1h", "metrics": {"api_response_time": 180.0, "api_availability": 99.5}},
        "scalars",
    )
    page = render_html(scalars)
    assert (
        "No chart: the result carries no time series (api_response_time, api_availability" in page
    )
    assert 'id="chart-bottlenecks"' in page  # the ranking is still drawn
    assert 'id="chart-metrics"' not in page
    short = render_html(run_planning(days=1.0, task_id="plan-1d-html"))
    capacity = short[short.index('<section id="capacity">') :]
    assert 'id="chart-capacity"' not in capacity
    sentence = re.search(r'<p class="absent" data-chart="capacity">(.*?)</p>', capacity)
    assert sentence is not None
    assert "No chart: the capacity projection needs a demand projection" in sentence.group(1)
    assert "projections need at least 3 days" in sentence.group(1)
    assert 'id="chart-roadmap"' in short


def test_failed_result_is_a_page_without_scripts() -> None:
    failed = {
        "schema": "task_result/v1",
        "task_id": "t-failed",
        "task_type": "api_optimization",
        "agent_id": "prometheus-backend",
        "status": "failed",
        "started_at": NOW.isoformat(),
        "completed_at": NOW.isoformat(),
        "duration_ms": 1.0,
        "error": {"code": "insufficient_data", "message": "no samples for <api>"},
    }
    page = render_html(typed(failed))
    assert "<script" not in page
    assert '<h2 class="error">Error</h2>' in page
    assert "insufficient_data — no samples for &lt;api&gt;" in page
    assert_offline(page)


def test_page_is_deterministic(planning: TaskResult) -> None:
    copy = typed(wire(planning))
    assert render_html(planning) == render_html(copy)
