"""The deployment files ship in working order: manifests valid, probes answer, paths exist."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from agent.config import Settings
from agent.runtime.node import AgentNode

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def test_kubernetes_manifests_validate_against_the_api_schemas() -> None:
    docs = [
        d
        for d in yaml.safe_load_all((DEPLOY / "kubernetes" / "prometheus-backend.yaml").read_text())
        if d
    ]
    assert {d["kind"] for d in docs} == {"ConfigMap", "Secret", "Deployment"}
    version = kubernetes_validate.latest_version()
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["exec"]["command"] == [
        "prometheus-backend",
        "ping",
        "--self",
    ]


def test_container_and_systemd_files_point_at_what_exists() -> None:
    containerfile = (DEPLOY / "container" / "Containerfile").read_text()
    for source in re.findall(r"^COPY (\S+(?: \S+)*) \S+$", containerfile, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path
    assert 'ENTRYPOINT ["prometheus-backend", "run"]' in containerfile
    assert 'prometheus-backend = "agent.cli:main"' in (ROOT / "pyproject.toml").read_text()
    unit = (DEPLOY / "systemd" / "prometheus-backend.service").read_text()
    assert re.search(r"^ExecStart=\S*prometheus-backend run$", unit, re.M)


async def ping(env: dict[str, str], *args: str) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent",
        "ping",
        "--timeout",
        "2",
        *args,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(proc.wait(), 30)


@pytest.mark.nats
async def test_ping_is_a_readiness_probe(
    nats_url: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(state_dir=tmp_path / "state")
    env = {
        **os.environ,
        "NATS_URL": nats_url,
        "PROMETHEUS_BACKEND_AGENT_ID": settings.agent_id,
        "PROMETHEUS_BACKEND_STATE_DIR": str(tmp_path / "state"),
    }
    assert await ping(env, "--self") == 1  # not started: not ready
    async with AgentNode(settings):
        assert await ping(env, "--self") == 0
        assert await ping(env) == 0
    assert await ping(env, "--self") == 1  # stopped: its service file is gone
    assert await ping(env) == 1  # and nobody answers for it
