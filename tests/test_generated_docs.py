"""docs/protocol.md, docs/asyncapi.json and docs/configuration.md are what the code generates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agent.config import Settings

ROOT = Path(__file__).resolve().parent.parent
GEN_DOCS = ROOT / "scripts" / "gen_docs.py"
FILES = ("protocol.md", "asyncapi.json", "configuration.md")


def gen_docs(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GEN_DOCS), *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=ROOT,
        env=env,
    )


def test_docs_are_up_to_date() -> None:
    run = gen_docs("--check")
    assert run.returncode == 0, f"run scripts/gen_docs.py:\n{run.stderr}"


def test_check_detects_a_stale_or_missing_file(tmp_path: Path) -> None:
    assert gen_docs("--out", str(tmp_path)).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)
    for name in FILES:
        assert (tmp_path / name).read_text(encoding="utf-8") == (ROOT / "docs" / name).read_text(
            encoding="utf-8"
        )
    assert gen_docs("--check", "--out", str(tmp_path)).returncode == 0

    protocol = tmp_path / "protocol.md"
    protocol.write_text(protocol.read_text(encoding="utf-8") + "edited by hand\n", "utf-8")
    (tmp_path / "configuration.md").unlink()
    run = gen_docs("--check", "--out", str(tmp_path))
    assert run.returncode == 1
    assert f"{protocol} is stale" in run.stderr
    assert "-edited by hand" in run.stderr  # the diff says what differs
    assert "configuration.md is stale" in run.stderr
    assert "asyncapi.json is stale" not in run.stderr


def test_config_table_lists_every_setting_without_the_environment() -> None:
    env = dict(os.environ)
    env["PROMETHEUS_BACKEND_NATS_PASSWORD"] = "hunter2-secret"
    env["PROMETHEUS_BACKEND_AGENT_ID"] = "not-the-default"
    run = gen_docs("--config-table", env=env)
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == list(Settings.model_fields)
    assert "| `nats_url` | `NATS_URL`, `PROMETHEUS_BACKEND_NATS_URL` |" in run.stdout
    assert "| `agent_id` | `PROMETHEUS_BACKEND_AGENT_ID` |" in run.stdout
    assert "hunter2" not in run.stdout
    assert "not-the-default" not in run.stdout  # defaults are the code's, not this shell's
