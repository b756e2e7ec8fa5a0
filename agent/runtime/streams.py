"""The JetStream streams of the wire contract: one table, created when missing, never narrowed.

On start the agent makes sure every subject it reads or writes over JetStream is captured
by a stream. A missing stream is created; an existing one only ever gains subjects; a
subject already captured by a stream an operator made under another name is left to it.
While a cluster is still forming (a peer not yet seen, no meta leader) JetStream refuses
placement; the agent waits for it with backoff instead of failing its start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError, ServiceUnavailableError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential

from agent.config import Settings
from protocols import subjects

log = logging.getLogger(__name__)

_SUBJECTS_OVERLAP = 10065
_NO_SUITABLE_PEERS = 10005
_PLACEMENT_WAIT_S = 60.0


def _cluster_forming(exc: BaseException) -> bool:
    """JetStream's answers while a cluster is still electing or a peer is not yet current."""
    if isinstance(exc, ServiceUnavailableError):
        return True
    return isinstance(exc, BadRequestError) and exc.err_code == _NO_SUITABLE_PEERS


@dataclass(frozen=True, slots=True)
class StreamSpec:
    key: str
    """Role of the stream; its name is ``<prefix>_<KEY>``."""
    subjects: tuple[str, ...]
    description: str
    max_age_s: float | None = None
    """How long messages are kept: None is ``stream_max_age_s``, 0 is no limit."""

    def config(self, settings: Settings) -> StreamConfig:
        """The stream's configuration when it has to be created."""
        max_age = settings.stream_max_age_s if self.max_age_s is None else self.max_age_s
        return StreamConfig(
            name=stream_name(settings, self.key),
            description=self.description,
            subjects=list(self.subjects),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=max_age or None,
            num_replicas=settings.stream_replicas,
            # the server refuses a dedupe window longer than the stream keeps messages
            duplicate_window=min(settings.duplicate_window_s, max_age)
            if max_age
            else settings.duplicate_window_s,
        )


def stream_specs(settings: Settings) -> tuple[StreamSpec, ...]:
    """Every stream the agent needs, from the subjects of docs/protocol.md."""
    agent = settings.agent_id
    return (
        StreamSpec("TASKS", (subjects.tasks_all(agent),), "tasks from Helios"),
        StreamSpec("RESULTS", (subjects.results_all(agent),), "task results to Helios"),
        StreamSpec("PLANS", (subjects.plans(settings.hephaestus_id),), "plans to Hephaestus"),
        StreamSpec("BASELINES", (subjects.baselines(settings.athena_id),), "baselines to Athena"),
        StreamSpec("VERIFICATIONS", (subjects.verifications(agent),), "Athena's verifications"),
        StreamSpec("FEEDBACK", (subjects.feedback(agent),), "Hephaestus's progress"),
        StreamSpec("DIRECTIVES", (subjects.directives(agent),), "Helios's directives"),
        StreamSpec("ALERTS", (subjects.ALERTS_ALL,), "alerts raised by the strategist"),
        StreamSpec("DEADLETTER", (subjects.deadletter(agent),), "input the agent refused"),
    )


def stream_name(settings: Settings, key: str) -> str:
    return f"{settings.streams_token}_{key}"


async def ensure_stream(js: JetStreamContext, settings: Settings, spec: StreamSpec) -> str:
    """Make sure ``spec``'s subjects are captured; returns the name of the stream holding them."""
    name = stream_name(settings, spec.key)
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        pass
    else:
        have = list(info.config.subjects or [])
        missing = [s for s in spec.subjects if s not in have]
        if missing:
            info.config.subjects = have + missing
            await js.update_stream(info.config)
            log.info("stream %s widened with %s", name, missing)
        return name
    try:
        await add_stream(js, spec.config(settings))
    except BadRequestError as exc:
        if exc.err_code != _SUBJECTS_OVERLAP:
            raise
        owner: str = await js.find_stream_name_by_subject(spec.subjects[0])
        log.warning("subjects %s are already captured by stream %s; using it", spec.subjects, owner)
        return owner
    log.info("stream %s created for %s", name, list(spec.subjects))
    return name


async def add_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream ``config`` describes, waiting (bounded) while a cluster forming
    cannot place it yet; any other refusal is the caller's."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception(_cluster_forming),
        wait=wait_exponential(multiplier=0.2, max=5.0),
        stop=stop_after_delay(_PLACEMENT_WAIT_S),
        before_sleep=lambda state: log.warning(
            "stream %s not placed yet (%s); the cluster may still be forming",
            config.name,
            state.outcome.exception() if state.outcome else None,
        ),
        reraise=True,
    ):
        with attempt:
            await js.add_stream(config)


async def ensure_streams(js: JetStreamContext, settings: Settings) -> dict[str, str]:
    """Ensure every stream of the table; maps each role to the stream name actually used."""
    return {spec.key: await ensure_stream(js, settings, spec) for spec in stream_specs(settings)}
