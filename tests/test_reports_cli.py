"""``prometheus-backend report`` as an operator runs it: a subprocess, its exit code and output."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from plotly.offline import get_plotlyjs

from agent.config import ENV_PREFIX
from agent.reports.markdown import render_markdown
from agent.runtime.node import AgentNode
from protocols import TaskResult
from tests import synthetic
from tests.payloads import task
from tests.test_node_e2e import rpc, stream_messages
from tests.test_reports_markdown import incident_params, run_analysis, run_planning, typed, wire

CONSOLE_SCRIPT = Path(sys.executable).parent / "prometheus-backend"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The caller's environment without any setting of ours; state goes under tmp_path."""
    out = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k != "NATS_URL"}
    out["XDG_STATE_HOME"] = str(tmp_path / "state")
    return out


def report(
    args: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONSOLE_SCRIPT), "report", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def result() -> TaskResult:
    return run_analysis(incident_params(), "cli-report")


@pytest.fixture
def result_file(tmp_path: Path, result: TaskResult) -> Path:
    path = tmp_path / "result.json"
    path.write_text(json.dumps(wire(result)), encoding="utf-8")
    return path


def test_help_describes_the_command(tmp_path: Path, env: dict[str, str]) -> None:
    proc = report(["--help"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert "prometheus-backend report" in proc.stdout
    for option in ("--task-id", "--latest", "--format", "-o", "Exit codes"):
        assert option in proc.stdout


def test_markdown_from_a_file_and_from_stdin(
    tmp_path: Path, env: dict[str, str], result: TaskResult, result_file: Path
) -> None:
    proc = report([str(result_file)], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# api_optimization report — task cli-report\n")
    assert proc.stdout.strip() == render_markdown(result).strip()
    piped = report(["-", "--format", "markdown"], tmp_path, env, stdin=json.dumps(wire(result)))
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == proc.stdout


def test_html_to_a_file_and_by_default_next_to_the_caller(
    tmp_path: Path, env: dict[str, str], result_file: Path
) -> None:
    out = tmp_path / "page.html"
    proc = report([str(result_file), "--format", "html", "-o", str(out)], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count(get_plotlyjs()) == 1
    assert proc.stdout == ""  # the page went to the file
    here = tmp_path / "cwd"
    here.mkdir()
    proc = report([str(result_file), "--format", "html"], here, env)
    assert proc.returncode == 0, proc.stderr
    assert (here / "report-cli-report.html").read_text(encoding="utf-8") == page
    assert "report-cli-report.html" in proc.stderr


def test_json_is_the_result_as_is(
    tmp_path: Path, env: dict[str, str], result: TaskResult, result_file: Path
) -> None:
    proc = report([str(result_file), "--format", "json"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == wire(result)


NEWER = {"added_by_a_newer_agent": {"nested": [1, "two", None]}}
"""A field this agent does not know, as a newer one might add it."""
OBJECTS: dict[str, list[tuple[str | int, ...]]] = {
    "analysis": [
        (),
        ("report",),
        ("report", "performance", "database_query_time"),
        ("report", "performance", "database_query_time", "trend_detail"),
        ("report", "bottlenecks", 0),
        ("report", "recommendations", 0),
        ("report", "recommendations", 0, "expected_improvement_pct"),
        ("report", "recommendations", 0, "expected_improvement_pct", "provenance"),
        ("report", "root_causes", 0),
        ("report", "data_quality"),
        ("report", "request_patterns", "endpoints", 0),
    ],
    "planning": [
        (),
        ("report",),
        ("report", "prioritized_plan", 0),
        ("report", "infrastructure_roi"),
        ("report", "scalability_projections"),
        ("report", "scalability_projections", "current_baseline", "capacity_model"),
        ("report", "scalability_projections", "3_months", "utilisation"),
        ("report", "scalability_projections", "scaling_triggers", 0),
        ("report", "timeline_estimate", "roi_derivation", "targets", 0, "items", 0),
        ("report", "risk_assessment", "items", 0),
        ("report", "resource_requirements"),
        ("report", "learning_report", "recommendation_accuracy"),
        ("report", "data_quality", "business_weights"),
    ],
}
"""Objects (not maps) of each report where the newer agent adds its field, top to deep."""


@pytest.mark.parametrize("kind", ["analysis", "planning"])
def test_a_newer_agents_unknown_fields_are_ignored(
    tmp_path: Path, env: dict[str, str], result: TaskResult, kind: str
) -> None:
    """Forward compatibility: fields added by a newer agent, at the top and deep inside the
    report, decode and render as if they were not there."""
    known = result if kind == "analysis" else run_planning(days=4.0, task_id="cli-plan")
    sent = wire(known)
    for path in OBJECTS[kind]:
        node: Any = sent
        for key in path:
            node = node[key]
        assert isinstance(node, dict), path
        node.update(NEWER)
    path = tmp_path / "newer.json"
    path.write_text(json.dumps(sent), encoding="utf-8")
    assert typed(sent) == known
    proc = report([str(path)], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == render_markdown(known).strip()
    assert "added_by_a_newer_agent" not in proc.stdout


def test_a_result_from_before_the_report_kind_is_read(
    tmp_path: Path, env: dict[str, str], result: TaskResult
) -> None:
    """An older agent's report carries no ``kind``: it is told from ``plan_type``."""
    for known in (result, run_planning(days=4.0, task_id="cli-plan-old")):
        sent = wire(known)
        del sent["report"]["kind"]
        path = tmp_path / "old.json"
        path.write_text(json.dumps(sent), encoding="utf-8")
        proc = report([str(path)], tmp_path, env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == render_markdown(known).strip()
        as_json = report([str(path), "--format", "json"], tmp_path, env)
        assert json.loads(as_json.stdout) == wire(known)  # the tag it would have carried


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            lambda r: r["report"]["performance"].update({"m": {}}),
            "Object missing required field `current` - at `$.report.performance[...]`",
        ),
        (
            lambda r: r["report"].update(bottlenecks={}),
            "Expected `array`, got `object` - at `$.report.bottlenecks`",
        ),
        (lambda r: r["report"].update(kind="other"), "Invalid value 'other' - at `$.report.kind`"),
        (
            lambda r: r["report"].update(findings={"cache": [1]}),
            "Expected `object | null`, got `array` - at `$.report.findings.cache`",
        ),
    ],
)
def test_a_malformed_report_is_refused_with_a_message(
    tmp_path: Path,
    env: dict[str, str],
    result: TaskResult,
    change: Callable[[dict[str, Any]], None],
    says: str,
) -> None:
    """A report no agent would write is refused at decode: exit 2, one line saying where,
    no traceback and nothing on stdout."""
    sent = wire(result)
    change(sent)
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(sent), encoding="utf-8")
    proc = report([str(path)], tmp_path, env)
    assert proc.returncode == 2
    assert f"is not a task_result/v1 (schema_violation): {says}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "cannot read"),
        ("not json at all", "not a task_result/v1"),
        ("[1, 2]", "not a task_result/v1"),
        (json.dumps(task()), "expected schema 'task_result/v1'"),
        (json.dumps({"schema": "task_result/v1", "task_id": "x"}), "missing required field"),
    ],
)
def test_bad_file_is_a_usage_error(
    tmp_path: Path, env: dict[str, str], content: str | None, says: str
) -> None:
    path = tmp_path / "input.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    proc = report([str(path)], tmp_path, env)
    assert proc.returncode == 2
    assert says in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "give exactly one of FILE, --task-id or --latest"),
        (["x.json", "--latest"], "(got FILE, --latest)"),
        (["--latest"], "set NATS_URL"),
        (["--task-id", "t-1"], "set NATS_URL"),
        (["--latest", "no_such_type"], "not a task type"),
        (["--task-id", "not a task id!"], "is not a task id"),
    ],
)
def test_usage_errors(tmp_path: Path, env: dict[str, str], args: list[str], says: str) -> None:
    proc = report(args, tmp_path, env)
    assert proc.returncode == 2
    assert says in proc.stderr


@pytest.mark.nats
async def test_results_are_read_from_the_swarm(
    nc: Client, agent: AgentNode, nats_url: str, tmp_path: Path, env: dict[str, str]
) -> None:
    settings = agent.settings
    first = await rpc(nc, agent, task("api_optimization", task_id="cli-api-1"))
    second = await rpc(
        nc,
        agent,
        task(
            "chat_backend_optimization", params=synthetic.domain_basics("chat_backend_optimization")
        ),
        "chat_backend_optimization",
    )
    assert first["status"] == second["status"] == "completed"
    results = await stream_messages(
        nc, agent.streams["RESULTS"], f"swarm.results.{settings.agent_id}.>", 2
    )
    assert len(results) == 2
    env |= {"NATS_URL": nats_url, f"{ENV_PREFIX}AGENT_ID": settings.agent_id}

    async def run(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(report, list(args), tmp_path, env)

    newest = await run("--latest", "--format", "json")
    assert newest.returncode == 0, newest.stderr
    assert json.loads(newest.stdout) == second  # the newest of any task type
    api = await run("--latest", "api_optimization")
    assert api.returncode == 0, api.stderr
    assert api.stdout.strip() == render_markdown(typed(first)).strip()
    by_id = await run("--task-id", "cli-api-1", "--format", "json")
    assert by_id.returncode == 0, by_id.stderr
    assert json.loads(by_id.stdout) == first
    page = await run("--task-id", "cli-api-1", "--format", "html")
    assert page.returncode == 0, page.stderr
    assert (tmp_path / "report-cli-api-1.html").exists()

    unknown = await run("--task-id", "cli-no-such-task")
    assert unknown.returncode == 1
    assert "no result found: task cli-no-such-task" in unknown.stderr
    none_yet = await run("--latest", "cache_optimization")
    assert none_yet.returncode == 1
    assert "no result found" in none_yet.stderr
    elsewhere = await run("--latest", "--agent", "pb-nobody-here")
    assert elsewhere.returncode == 1
