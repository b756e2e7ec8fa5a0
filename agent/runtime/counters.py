"""Counters of what the agent has done, shown in ``$SRV.STATS`` data and logs."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class Counters:
    received: int = 0
    completed: int = 0
    failed: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    """Tasks answered from their stored result (redelivery, duplicate publish)."""
    overloaded: int = 0
    redelivered: int = 0

    def snapshot(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class WriteStats:
    """What the answers cost on the bus (``$SRV.STATS``, ``writes``): on the answer path
    (the claim) and in the relay (outputs and result, ``agent.runtime.relay``)."""

    answers: int = 0
    """Answers claimed by this agent (one acknowledged write each, awaited before the reply)."""
    relayed: int = 0
    """Claims whose outputs and result this agent's relay sent (any replica's claims)."""
    relay_writes: int = 0
    """Their acknowledged writes: outputs and result."""
    relay_waves: int = 0
    """Their sequential waits, per claim: 2 when the predictions go first, else 1."""
    relay_skipped: int = 0
    """Claims the relay found past the duplicate window: not sent again (see the relay)."""
    resent: int = 0
    """Claims of agents older than the relay found again and sent (never marked sent)."""
    replied_only: int = 0
    """Answers found claimed and only replied with (the relay sends claimed answers)."""

    def snapshot(self) -> dict[str, float]:
        out: dict[str, float] = asdict(self)
        if self.answers and self.relayed:
            relay_writes = self.relay_writes / self.relayed
            relay_waves = self.relay_waves / self.relayed
            out["acked_writes_per_answer"] = round(1 + relay_writes, 3)
            out["acked_round_trips_per_answer"] = round(1 + relay_waves, 3)
            out["answer_path_round_trips_per_answer"] = 1
        return out


TYPICAL_WEIGHT = 0.1
"""Of a moving average, the newest sample's weight: about the last ten count."""


@dataclass(slots=True)
class ComputeStats:
    """Where the strategies ran and the CPU they took in this process (``$SRV.STATS``,
    ``strategy``): the rest of the process's CPU is what the answers cost besides the
    analysis, read off the same tasks whatever the machine's speed."""

    inline: int = 0
    """Strategies run on the event loop (small tasks, ``inline_strategy_max_samples``)."""
    threads: int = 0
    """Strategies run in a worker thread."""
    processes: int = 0
    """Strategies run in worker processes (``strategy_processes``)."""
    cpu_s: float = 0.0
    """CPU seconds of the strategy calls (the running thread's own time), wherever they ran:
    a worker process measures its own and sends it with the report."""
    reruns: int = 0
    """Tasks whose strategy ran again: the directive or the learning state changed
    between what this agent had read last and the task's start (``TaskHandler.run``)."""
    typical_s: float = 0.0
    """How long a strategy holds its slot lately (clock seconds, a moving average): how
    long a task held but not yet computed waits for each before it (``TaskConsumer``
    fetches by it). 0 before the first."""

    def took(self, seconds: float) -> None:
        """Count a strategy's ``seconds`` into ``typical_s``."""
        t = self.typical_s
        self.typical_s = seconds if t == 0.0 else t + TYPICAL_WEIGHT * (seconds - t)

    def snapshot(self) -> dict[str, float]:
        out: dict[str, float] = asdict(self)
        out["cpu_s"] = round(self.cpu_s, 6)
        out["typical_s"] = round(self.typical_s, 6)
        return out
