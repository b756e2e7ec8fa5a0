"""Subject builders for every subject of the wire contract (no other module spells a subject)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from protocols.schemas import SchemaName
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


# --- the table: every subject, who is at the other end, how it travels -----------------

Action = Literal["receive", "send"]
Transport = Literal["jetstream-durable", "jetstream", "rpc", "core-or-jetstream"]

TRANSPORTS: dict[Transport, str] = {
    "jetstream-durable": "JetStream, read by a durable consumer (at-least-once)",
    "jetstream": "JetStream",
    "rpc": "core NATS request/reply, an endpoint of the NATS micro service `<agent>`",
    "core-or-jetstream": "core NATS or JetStream",
}


@dataclass(frozen=True, slots=True)
class SubjectSpec:
    """One subject of the wire contract as the strategist uses it."""

    key: str
    """The channel id in the AsyncAPI document."""
    build: Callable[..., str]
    """The builder of :mod:`protocols.subjects`; its parameters are the channel's."""
    action: Action
    peer: str
    """Who is at the other end (sender of what the agent receives, receiver of what it sends)."""
    transport: Transport
    messages: tuple[SchemaName, ...]
    summary: str
    msg_id: str | None = None
    """``Nats-Msg-Id`` of what the agent publishes there, so a retried publish is stored once."""
    reply: Literal["inbox", "reply_to"] | None = None
    """Where the ``task_result/v1`` answer goes: the request's inbox, or ``reply_to``."""


SUBJECTS: tuple[SubjectSpec, ...] = (
    SubjectSpec(
        key="tasks",
        build=tasks,
        action="receive",
        peer="Helios",
        transport="jetstream-durable",
        messages=(SchemaName.TASK_REQUEST,),
        summary="A task; answered exactly once on `results`, and on `reply_to` when it names one.",
        reply="reply_to",
    ),
    SubjectSpec(
        key="rpc",
        build=rpc,
        action="receive",
        peer="anyone",
        transport="rpc",
        messages=(SchemaName.TASK_REQUEST,),
        summary="A task as a request; the `task_result/v1` is the reply.",
        reply="inbox",
    ),
    SubjectSpec(
        key="results",
        build=results,
        action="send",
        peer="Helios",
        transport="jetstream",
        messages=(SchemaName.TASK_RESULT,),
        summary="The answer to every durable task.",
        msg_id=result_msg_id("<task_id>"),
    ),
    SubjectSpec(
        key="monitorResults",
        build=monitor_results,
        action="send",
        peer="Helios",
        transport="jetstream",
        messages=(SchemaName.TASK_RESULT,),
        summary="The summary of each scheduled assessment (`task_type` `monitor`).",
        msg_id=result_msg_id("<run_id>"),
    ),
    SubjectSpec(
        key="plans",
        build=plans,
        action="send",
        peer="Hephaestus",
        transport="jetstream",
        messages=(SchemaName.OPTIMIZATION_PLAN,),
        summary="The plan items of a completed task that recommends something.",
        msg_id="<plan_id>",
    ),
    SubjectSpec(
        key="baselines",
        build=baselines,
        action="send",
        peer="Athena",
        transport="jetstream",
        messages=(SchemaName.PERFORMANCE_BASELINE,),
        summary="The metrics before a plan and the predicted effect of each item.",
        msg_id="<baseline_id>",
    ),
    SubjectSpec(
        key="verifications",
        build=verifications,
        action="receive",
        peer="Athena",
        transport="jetstream-durable",
        messages=(SchemaName.VERIFICATION_RESULT,),
        summary="A measured outcome of a recommendation; calibrates later predictions.",
    ),
    SubjectSpec(
        key="feedback",
        build=feedback,
        action="receive",
        peer="Hephaestus",
        transport="jetstream-durable",
        messages=(SchemaName.IMPLEMENTATION_UPDATE,),
        summary="Progress of a plan item; an infeasible approach sinks in later plans.",
    ),
    SubjectSpec(
        key="directives",
        build=directives,
        action="receive",
        peer="Helios",
        transport="jetstream-durable",
        messages=(SchemaName.STRATEGIC_DIRECTIVE,),
        summary="Business weights, focus areas and targets for all later work.",
    ),
    SubjectSpec(
        key="kpi",
        build=kpi,
        action="receive",
        peer="the KPI tracker",
        transport="core-or-jetstream",
        messages=(SchemaName.KPI_BATCH,),
        summary="Live samples; the agent subscribes to `swarm.kpi.backend.>`.",
    ),
    SubjectSpec(
        key="alerts",
        build=alerts,
        action="send",
        peer="Helios",
        transport="jetstream",
        messages=(SchemaName.ALERT,),
        summary="One alert per episode of the continuous monitoring; a re-notification has "
        "`Nats-Msg-Id` `<alert_id>:<severity>`, the resolution `<alert_id>:resolved`.",
        msg_id="<alert_id>",
    ),
    SubjectSpec(
        key="deadLetters",
        build=deadletter,
        action="send",
        peer="operators",
        transport="jetstream",
        messages=(SchemaName.DEAD_LETTER,),
        summary="Input the agent refused, with the original bytes; `Nats-Msg-Id` only when "
        "the refused message came from a stream.",
        msg_id="<stream>:<seq>:dead_letter",
    ),
)
"""Every subject of the wire contract (docs/protocol.md): who is at the other end, the
transport, the payload."""

PARAMETERS: dict[str, str] = {
    "agent": "The strategist's id (setting `agent_id`).",
    "task_type": "The task type; the subject's token is authoritative over the body's.",
    "hephaestus": "Hephaestus's id (setting `hephaestus_id`).",
    "athena": "Athena's id (setting `athena_id`).",
    "token": "A metric name or any other token.",
    "severity": "The alert's severity.",
}
"""What each parameter of a subject builder names."""
