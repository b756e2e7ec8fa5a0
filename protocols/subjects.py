"""Subject builders for every subject of the wire contract (no other module spells a subject)."""

from __future__ import annotations

import re

from protocols.task_types import TaskType

_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


def _token(value: str, what: str) -> str:
    if not _TOKEN.match(value):
        raise ValueError(f"{what} {value!r} is not a valid subject token")
    return value


def tasks(agent: str, task_type: TaskType | str) -> str:
    return f"swarm.tasks.{_token(agent, 'agent id')}.{_token(str(task_type), 'task type')}"


def tasks_all(agent: str) -> str:
    return f"swarm.tasks.{_token(agent, 'agent id')}.>"


def rpc(agent: str, task_type: TaskType | str) -> str:
    return f"swarm.rpc.{_token(agent, 'agent id')}.{_token(str(task_type), 'task type')}"


def results(agent: str, task_type: TaskType | str) -> str:
    return f"swarm.results.{_token(agent, 'agent id')}.{_token(str(task_type), 'task type')}"


def results_all(agent: str) -> str:
    return f"swarm.results.{_token(agent, 'agent id')}.>"


def monitor_results(agent: str) -> str:
    return f"swarm.results.{_token(agent, 'agent id')}.monitor"


def plans(hephaestus: str) -> str:
    return f"swarm.plans.{_token(hephaestus, 'hephaestus id')}"


def baselines(athena: str) -> str:
    return f"swarm.baselines.{_token(athena, 'athena id')}"


def verifications(agent: str) -> str:
    return f"swarm.verifications.{_token(agent, 'agent id')}"


def feedback(agent: str) -> str:
    return f"swarm.feedback.{_token(agent, 'agent id')}"


def directives(agent: str) -> str:
    return f"swarm.directives.{_token(agent, 'agent id')}"


def kpi(token: str) -> str:
    return f"swarm.kpi.backend.{_token(token, 'kpi token')}"


KPI_ALL = "swarm.kpi.backend.>"


def alerts(severity: str) -> str:
    return f"swarm.alerts.backend.{_token(severity, 'severity')}"


ALERTS_ALL = "swarm.alerts.backend.>"


def deadletter(agent: str) -> str:
    return f"swarm.deadletter.{_token(agent, 'agent id')}"


def task_type_of(subject: str) -> str:
    """The last token of a task or rpc subject: the authoritative task type."""
    return subject.rsplit(".", 1)[-1]


def result_msg_id(task_id: str) -> str:
    """``Nats-Msg-Id`` of a task's result, so a retried publish is stored once."""
    return f"{task_id}:result"
