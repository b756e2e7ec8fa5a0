"""The README's first command, ``scripts/run``, end to end: a short demo swarm exits 0 and
leaves its reports behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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


def test_scripts_run_serve_keeps_the_swarm_up_until_ctrl_c(tmp_path: Path) -> None:
    """--serve: the swarm stays up for the CLI to talk to; SIGINT ends it cleanly, with the
    reports written (the embedded server, in its own session, outlives the agent's drain)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k != "NATS_URL"}
    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [
            "bash",
            str(ROOT / "scripts" / "run"),
            "--serve",
            "--pace",
            "2",
            "--report-dir",
            str(reports),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        url = None
        for line in proc.stderr:
            if "serving until Ctrl-C" in line:
                url = line.split("NATS_URL=", 1)[1].split()[0]
                break
        assert url, "the demo never said where it serves"
        for _ in range(50):  # the first Helios cycle completes while it serves
            status = subprocess.run(
                [sys.executable, "-m", "agent", "status", "--json"],
                env={**env, "NATS_URL": url},
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert status.returncode == 0, status.stderr
            [instance] = json.loads(status.stdout)
            if instance["stats"][0]["data"]["completed"] >= len(TaskType):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the agent never completed a Helios cycle")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    assert "demo swarm summary" in out
    assert (reports / "strategic_backend_planning.html").is_file()
