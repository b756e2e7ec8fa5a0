"""``analyze``, ``request`` and ``status`` as an operator runs them: subprocesses, exit codes.

The agent they talk to runs in this test's event loop, so the commands run through
``asyncio.create_subprocess_exec`` (a blocking ``subprocess.run`` would stall the agent).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.config import ENV_PREFIX
from agent.runtime.embedded import free_port
from agent.runtime.node import AgentNode
from protocols import TaskType
from tests.payloads import small_api_metrics, task

CLI = [sys.executable, "-m", "agent"]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any setting of ours, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k != "NATS_URL"}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    return {**env, **extra}


async def cli(
    args: list[str], env: dict[str, str], cwd: Path, stdin: bytes | None = None
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def write_params(tmp_path: Path, body: Any) -> Path:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(body))
    return path


# --- analyze: no bus ----------------------------------------------------------------------


async def test_analyze_prints_the_report_of_a_params_file(tmp_path: Path) -> None:
    path = write_params(tmp_path, {"window": "1h", "metrics": small_api_metrics()})
    code, out, err = await cli(
        ["analyze", "api_optimization", "--metrics", str(path)], clean_env(tmp_path), tmp_path
    )
    assert code == 0, err
    assert "api_optimization): completed" in out
    # figures the payload's docstring computes by hand: p95 120.9 ms, urgency 91
    assert "120.90" in out
    assert "urgency  91" in out


async def test_analyze_json_is_a_task_result(tmp_path: Path) -> None:
    path = write_params(tmp_path, task())  # a whole task_request/v1 works too
    code, out, err = await cli(
        ["analyze", "api_optimization", "--metrics", str(path), "--json"],
        clean_env(tmp_path),
        tmp_path,
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["schema"] == "task_result/v1"
    assert result["status"] == "completed"
    assert result["report"]["performance"]["api_response_time"]["current"] == pytest.approx(120.9)


async def test_analyze_reads_stdin(tmp_path: Path) -> None:
    body = json.dumps({"metrics": small_api_metrics()}).encode()
    code, out, _ = await cli(
        ["analyze", "api_optimization", "--metrics", "-", "--json"],
        clean_env(tmp_path),
        tmp_path,
        stdin=body,
    )
    assert code == 0
    assert json.loads(out)["status"] == "completed"


async def test_analyze_without_enough_data_fails_with_exit_1(tmp_path: Path) -> None:
    path = write_params(tmp_path, {"metrics": {"websocket_throughput": 900.0}})
    code, out, _ = await cli(
        ["analyze", "api_optimization", "--metrics", str(path), "--json"],
        clean_env(tmp_path),
        tmp_path,
    )
    assert code == 1
    result = json.loads(out)
    assert result["status"] == "failed"
    assert result["error"]["code"] == "insufficient_data"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analyze", "api_optimization"], "give --metrics FILE or --prometheus URL"),
        (["analyze", "api_optimization", "--metrics", "missing.json"], "cannot read"),
        (["analyze", "no_such_type", "--metrics", "x.json"], "invalid choice"),
        (["analyze", "api_optimization", "--metrics", "a", "--prometheus", "b"], "not allowed"),
    ],
)
async def test_analyze_bad_arguments_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    code, out, err = await cli(args, clean_env(tmp_path), tmp_path)
    assert code == 2
    assert message in err
    assert out == ""


@pytest.mark.parametrize(
    "content",
    [b"not json", b'{"metrics": 3}', b'{"schema": "task_request/v1", "task_id": 5}', b"[]"],
)
async def test_analyze_bad_file_exits_2(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    code, _, err = await cli(
        ["analyze", "api_optimization", "--metrics", str(path)], clean_env(tmp_path), tmp_path
    )
    assert code == 2
    assert "bad.json" in err
    assert "Traceback" not in err


async def test_analyze_prometheus_unreachable_fails_cleanly(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = clean_env(tmp_path, PROMETHEUS_BACKEND_PROMETHEUS_RETRIES="1")
    code, out, err = await cli(
        ["analyze", "api_optimization", "--prometheus", url, "--json"], env, tmp_path
    )
    assert code == 1, err
    assert json.loads(out)["error"]["code"] == "source_unavailable"


# --- request and status: a real server and agent --------------------------------------


@pytest.mark.nats
async def test_request_over_rpc_and_durably(agent: AgentNode, tmp_path: Path) -> None:
    path = write_params(tmp_path, {"window": "1h", "metrics": small_api_metrics()})
    env = clean_env(
        tmp_path, NATS_URL=agent.url, PROMETHEUS_BACKEND_AGENT_ID=agent.settings.agent_id
    )
    code, out, err = await cli(
        ["request", "api_optimization", "--metrics", str(path), "--json", "--timeout", "30"],
        env,
        tmp_path,
    )
    assert code == 0, err
    rpc = json.loads(out)
    assert rpc["status"] == "completed"
    assert rpc["agent_id"] == agent.settings.agent_id
    code, out, err = await cli(
        ["request", "api_optimization", "--metrics", str(path), "--durable", "--timeout", "30"],
        env,
        tmp_path,
    )
    assert code == 0, err
    assert "api_optimization): completed" in out


@pytest.mark.nats
async def test_request_failed_task_exits_1(agent: AgentNode, tmp_path: Path) -> None:
    env = clean_env(
        tmp_path, NATS_URL=agent.url, PROMETHEUS_BACKEND_AGENT_ID=agent.settings.agent_id
    )
    # no samples and no live source: the agent answers insufficient_data
    code, out, err = await cli(["request", "cache_optimization", "--json"], env, tmp_path)
    assert code == 1, err
    assert json.loads(out)["status"] in {"failed", "rejected"}


@pytest.mark.nats
async def test_request_no_agent_exits_1_quickly(nats_url: str, tmp_path: Path) -> None:
    env = clean_env(tmp_path, NATS_URL=nats_url, PROMETHEUS_BACKEND_AGENT_ID="nobody-home")
    code, out, err = await cli(["request", "api_optimization", "--timeout", "20"], env, tmp_path)
    assert code == 1
    assert "no agent 'nobody-home' is serving api_optimization" in err
    assert out == ""


@pytest.mark.parametrize(
    "args",
    [
        ["request", "api_optimization", "--timeout", "2"],
        ["status", "--wait", "1"],
        ["learning", "show"],
        ["ping", "--timeout", "2"],
        ["report", "--latest"],
    ],
)
async def test_commands_without_a_server_say_so_and_exit_1(tmp_path: Path, args: list[str]) -> None:
    env = clean_env(tmp_path, NATS_URL=f"nats://127.0.0.1:{free_port()}")
    code, out, err = await cli(args, env, tmp_path)
    assert code == 1
    assert "NATS not reachable" in err
    assert err.count("\n") <= 2, err  # one line, not a log of every retry
    assert out == ""


async def test_request_and_status_need_nats_url(tmp_path: Path) -> None:
    for args in (["request", "api_optimization"], ["status"]):
        code, _, err = await cli(args, clean_env(tmp_path), tmp_path)
        assert code == 2
        assert "set NATS_URL" in err


@pytest.mark.nats
async def test_status_lists_agents_with_their_counters(agent: AgentNode, tmp_path: Path) -> None:
    env = clean_env(tmp_path, NATS_URL=agent.url)
    path = write_params(tmp_path, {"metrics": small_api_metrics()})
    agent_env = {**env, "PROMETHEUS_BACKEND_AGENT_ID": agent.settings.agent_id}
    code, _, err = await cli(
        ["request", "api_optimization", "--metrics", str(path)], agent_env, tmp_path
    )
    assert code == 0, err
    code, out, err = await cli(
        ["status", "--agent", agent.settings.agent_id, "--json"], env, tmp_path
    )
    assert code == 0, err
    [instance] = json.loads(out)
    assert instance["name"] == agent.settings.agent_id
    data = instance["stats"][0]["data"]
    assert data["completed"] >= 1
    assert {e["name"] for e in instance["endpoints"]} == {t.value for t in TaskType}
    code, out, _ = await cli(["status", "--agent", agent.settings.agent_id], env, tmp_path)
    assert code == 0
    assert agent.settings.agent_id in out
    code, _, err = await cli(["status", "--agent", "nobody-home", "--wait", "0.5"], env, tmp_path)
    assert code == 1
    assert "no agent answered" in err


@pytest.mark.parametrize(
    "command", ["analyze", "request", "status", "run", "learning", "ping", "schema", "config"]
)
async def test_every_command_has_help_with_exit_codes(tmp_path: Path, command: str) -> None:
    code, out, _ = await cli([command, "--help"], clean_env(tmp_path), tmp_path)
    assert code == 0
    assert f"prometheus-backend {command}" in out
    assert "Exit codes" in out
