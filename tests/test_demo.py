"""The README's first command, ``scripts/run``, end to end: a short demo swarm exits 0 and
leaves its reports behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agent.config import ENV_PREFIX
from protocols import TaskType

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.nats, pytest.mark.slow]


def test_scripts_run_short_demo_writes_reports(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k != "NATS_URL"}
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [
            "bash",
            str(ROOT / "scripts" / "run"),
            "--duration",
            "8",
            "--pace",
            "2",
            "--monitor-interval",
            "3",
            "--report-dir",
            str(reports),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # progress went to stderr while it ran: the KPI backfill, Helios, the closed loop
    assert "kpi " in proc.stderr
    assert "helios   strategic_backend_planning       completed" in proc.stderr
    assert "loop     round 2:" in proc.stderr
    # the one-screen summary, and a page per task type
    assert "demo swarm summary" in proc.stdout
    assert "roadmap (" in proc.stdout
    for task_type in TaskType:
        page = reports / f"{task_type.value}.html"
        assert page.is_file(), f"no report for {task_type.value}"
        assert str(page) in proc.stdout
        assert (reports / f"{task_type.value}.md").read_text().strip()
    assert "<html" in (reports / "strategic_backend_planning.html").read_text()[:500].lower()
