"""The command line as an operator runs it: a subprocess, its exit code, stdout and stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import ENV_PREFIX
from protocols import SchemaName

CONSOLE_SCRIPT = Path(sys.executable).parent / "prometheus-backend"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The caller's environment without any setting of ours; state goes under tmp_path."""
    out = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k != "NATS_URL"}
    out["XDG_STATE_HOME"] = str(tmp_path / "state")
    return out


def run(
    args: list[str], cwd: Path, env: dict[str, str], *, exe: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [*(exe or [sys.executable, "-m", "agent"]), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_help(tmp_path: Path, env: dict[str, str]) -> None:
    proc = run(["--help"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert "prometheus-backend" in proc.stdout
    for cmd in ("run", "config", "schema"):
        assert cmd in proc.stdout
    assert "Exit codes" in proc.stdout


@pytest.mark.parametrize("cmd", ["run", "config", "schema"])
def test_subcommand_help(tmp_path: Path, env: dict[str, str], cmd: str) -> None:
    proc = run([cmd, "--help"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert f"prometheus-backend {cmd}" in proc.stdout


def test_no_command_is_a_usage_error(tmp_path: Path, env: dict[str, str]) -> None:
    proc = run([], tmp_path, env)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


def test_version(tmp_path: Path, env: dict[str, str]) -> None:
    proc = run(["--version"], tmp_path, env)
    assert proc.returncode == 0
    assert proc.stdout.startswith("prometheus-backend ")


def test_config_prints_masked_json(tmp_path: Path, env: dict[str, str]) -> None:
    env["PROMETHEUS_BACKEND_NATS_PASSWORD"] = "hunter2"
    env["PROMETHEUS_BACKEND_NATS_TOKEN"] = "t0ken-secret"
    env["PROMETHEUS_BACKEND_AGENT_ID"] = "pb-cli"
    env["NATS_URL"] = "nats://bob:pa55@localhost:4222"
    proc = run(["config"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    for secret in ("hunter2", "t0ken-secret", "pa55"):
        assert secret not in proc.stdout
        assert secret not in proc.stderr
    out = json.loads(proc.stdout)
    assert out["agent_id"] == "pb-cli"
    assert out["nats_password"] == "***"
    assert out["nats_token"] == "***"
    assert out["nats_url"] == "nats://***@localhost:4222"
    assert out["helios_id"] == "helios"


def test_config_reads_dotenv_in_cwd(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / ".env").write_text("PROMETHEUS_BACKEND_ATHENA_ID=athena-dotenv\n", "utf-8")
    proc = run(["config"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["athena_id"] == "athena-dotenv"


def test_schema_to_file(tmp_path: Path, env: dict[str, str]) -> None:
    target = tmp_path / "out" / "schema.json"
    target.parent.mkdir()
    proc = run(["schema", "-o", str(target)], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    doc = json.loads(target.read_text("utf-8"))
    assert set(doc["messages"]) == {name.tag for name in SchemaName}
    assert len(doc["messages"]) == 10
    assert "TaskRequest" in doc["$defs"]


def test_schema_to_stdout(tmp_path: Path, env: dict[str, str]) -> None:
    proc = run(["schema"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert "task_request/v1" in json.loads(proc.stdout)["messages"]


@pytest.mark.parametrize("cmd", ["config", "run"])
def test_invalid_config_exits_2(tmp_path: Path, env: dict[str, str], cmd: str) -> None:
    env["PROMETHEUS_BACKEND_MAX_IN_FLIGHT"] = "0"
    proc = run([cmd], tmp_path, env)
    assert proc.returncode == 2
    assert "invalid configuration" in proc.stderr
    assert "max_in_flight" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_malformed_json_env_exits_2(tmp_path: Path, env: dict[str, str]) -> None:
    env["PROMETHEUS_BACKEND_TARGETS"] = "{not json"
    proc = run(["config"], tmp_path, env)
    assert proc.returncode == 2
    assert "invalid configuration" in proc.stderr
    assert "targets" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_broken_toml_exits_2(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "prometheus-backend.toml").write_text("agent_id = \n", "utf-8")
    proc = run(["config"], tmp_path, env)
    assert proc.returncode == 2
    assert "invalid configuration" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_console_script(tmp_path: Path, env: dict[str, str]) -> None:
    assert CONSOLE_SCRIPT.is_file(), f"{CONSOLE_SCRIPT} is not installed"
    proc = run(["config"], tmp_path, env, exe=[str(CONSOLE_SCRIPT)])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["agent_id"] == "prometheus-backend"
    proc = run(["--help"], tmp_path, env, exe=[str(CONSOLE_SCRIPT)])
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: prometheus-backend")
