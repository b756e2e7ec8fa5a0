"""Configuration: environment variables with one prefix, an optional ``.env`` and a TOML file.

Precedence, highest first: constructor arguments, environment (``PROMETHEUS_BACKEND_*``;
``NATS_URL`` also works unprefixed, as every NATS tool reads it), ``.env``, the TOML file
named by ``PROMETHEUS_BACKEND_CONFIG`` (default ``prometheus-backend.toml``), defaults.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import msgspec
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from protocols.messages import BusinessImpactWeights

ENV_PREFIX = "PROMETHEUS_BACKEND_"
_ID = r"^[A-Za-z0-9_-]{1,64}$"
_WINDOW = r"^[1-9][0-9]{0,5}(s|m|h|d|w)$"


def _default_state_dir() -> Path:
    """`$XDG_STATE_HOME/prometheus-backend`, else `~/.local/state/prometheus-backend`."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "prometheus-backend"


def _stream_token(agent_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", agent_id).upper()


class Settings(BaseSettings):
    """Everything an operator may set. ``prometheus-backend config`` prints it, secrets masked."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    # --- NATS connection ---------------------------------------------------------
    nats_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("NATS_URL", f"{ENV_PREFIX}NATS_URL", "nats_url"),
        description="Comma-separated server URLs; unset = start an embedded nats-server.",
    )
    nats_user: str | None = Field(
        default=None,
        description="User name for NATS user/password authentication (with `nats_password`).",
    )
    nats_password: SecretStr | None = Field(
        default=None,
        description="Password of `nats_user`; shown as `***` by `prometheus-backend config`.",
    )
    nats_token: SecretStr | None = Field(
        default=None,
        description="Token for NATS token authentication; shown as `***` by "
        "`prometheus-backend config`.",
    )
    nats_creds_file: Path | None = Field(
        default=None,
        description="Path of a `.creds` file (user JWT and NKey seed) for NATS JWT authentication.",
    )
    nats_nkey_seed_file: Path | None = Field(
        default=None,
        description="Path of an NKey seed file for NATS NKey authentication.",
    )
    nats_tls_ca: Path | None = Field(
        default=None,
        description="PEM CA bundle that verifies the server's certificate (unset = the system's); "
        "setting it or `nats_tls_cert` makes the connection use TLS.",
    )
    nats_tls_cert: Path | None = Field(
        default=None,
        description="PEM client certificate for mutual TLS, with `nats_tls_key`.",
    )
    nats_tls_key: Path | None = Field(
        default=None,
        description="PEM private key of `nats_tls_cert`; unset = the key is in the certificate "
        "file.",
    )
    nats_connect_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="Seconds one attempt to connect to a server may take before it fails.",
    )
    nats_start_retry_max_s: float = Field(
        default=0.0, ge=0, description="Give up the first connect after this long; 0 = never."
    )
    nats_start_backoff_max_s: float = Field(
        default=10.0,
        gt=0,
        description="Longest pause, in seconds, between first-connect attempts (the backoff "
        "starts at 0.2 s and doubles).",
    )
    nats_reconnect_wait_s: float = Field(
        default=1.0,
        gt=0,
        description="Seconds to wait before trying a server again after the connection is lost; "
        "reconnecting never gives up.",
    )
    nats_ping_interval_s: int = Field(
        default=10,
        ge=1,
        description="Seconds between the client's PINGs to the server; with "
        "`nats_max_outstanding_pings` it sets how soon a dead connection is noticed.",
    )
    nats_max_outstanding_pings: int = Field(
        default=3,
        ge=1,
        description="Unanswered PINGs after which the connection counts as stale and is "
        "reconnected.",
    )
    nats_inbox_prefix: str | None = Field(
        default=None,
        max_length=128,
        description="Subject prefix of this connection's inboxes: where its request replies, "
        "JetStream API answers and consumer deliveries arrive (`<prefix>.<id>`). Unset = "
        "nats-py's `_INBOX`; a server with per-user permissions gives each user its own, "
        "e.g. `_INBOX_prometheus-backend` (deploy/nats/secure.conf).",
    )
    nats_drain_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a shutdown waits for in-flight tasks (the rest are returned for "
        "redelivery), for the KPI source to stop and for the connection to drain.",
    )

    # --- identity ----------------------------------------------------------------
    agent_id: str = Field(
        default="prometheus-backend",
        pattern=_ID,
        description="This agent's id: the `<agent>` token of its subjects "
        "(`swarm.tasks.<agent>.>`…), its durable consumers, service and connection "
        "name, and, upper-cased, the default stream prefix.",
    )
    helios_id: str = Field(
        default="helios",
        pattern=_ID,
        description="Helios's id. Not used yet: Helios reaches the agent on the agent's own "
        "subjects (tasks, results, directives).",
    )
    hephaestus_id: str = Field(
        default="hephaestus-backend",
        pattern=_ID,
        description="Hephaestus's id: plans go to `swarm.plans.<hephaestus>` (PLANS stream).",
    )
    athena_id: str = Field(
        default="athena-api",
        pattern=_ID,
        description="Athena's id: baselines go to `swarm.baselines.<athena>` (BASELINES stream).",
    )

    # --- JetStream ---------------------------------------------------------------
    stream_prefix: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,32}$",
        description="Prefix of the stream names; default: the agent id in upper case.",
    )
    stream_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="Replicas of each stream and KV bucket the agent creates: 1 on a single "
        "server, usually 3 on a cluster. Existing ones are left as they are.",
    )
    stream_max_age_s: float = Field(
        default=7 * 86_400,
        gt=0,
        description="Seconds messages are kept in the protocol streams the agent creates (TASKS, "
        "RESULTS, PLANS, BASELINES, VERIFICATIONS, FEEDBACK, DIRECTIVES, ALERTS, "
        "DEADLETTER); the KPI stream has `kpi_stream_max_age_s`, LEARNING no limit.",
    )
    duplicate_window_s: float = Field(
        default=600.0,
        gt=0,
        description="Seconds JetStream remembers a `Nats-Msg-Id` in the streams the agent "
        "creates, so a retried publish (result, plan, alert…) is stored once; the KPI "
        "stream caps it at its max age.",
    )
    task_record_ttl_s: float = Field(
        default=7 * 86_400,
        gt=0,
        description="Seconds a task's answer is remembered, so the same task id delivered "
        "again is answered from it.",
    )

    # --- work limits -------------------------------------------------------------
    max_in_flight: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Tasks worked on at once, JetStream and rpc together; the consumer fetches "
        "only as many tasks as there are free slots. Strategies compute one at a time "
        "(`max_strategy_threads`): the other tasks wait on NATS meanwhile (their reads, their "
        "claim), and the more of them there are, the more of those waits one flush and one "
        "relay fetch serve (measured on 2 cores: 16 instead of 4 cut what an rpc answer costs "
        "besides its analysis by ~40 %).",
    )
    max_strategy_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="With `strategy_processes` 0: strategies computing at once in this "
        "process (the CPU-bound part of a task; the rest of `max_in_flight` waits on NATS "
        "meanwhile). Under the GIL, more than one mostly contends: scale CPU with worker "
        "processes or replicas.",
    )
    inline_strategy_max_samples: int = Field(
        default=64,
        ge=0,
        le=10_000,
        description="With `strategy_processes` 0: a task judged on its own inline data of at "
        "most this many samples (its "
        "`metrics` values and labelled `samples` together) runs its strategy on the event loop "
        "instead of a worker thread, once a small task of its type took at most 10 ms of CPU "
        "and 50 by the clock (each type's first runs in a thread, timed; an overrun sends the "
        "type back to threads): a "
        "cheap task costs ~3 ms, which in a thread would hold the GIL against the loop anyway, "
        "and the hand-off and GIL ping-pong cost the rpc path more than the strategy itself. "
        "The loop serves no other message meanwhile, so bigger tasks, and every task judged on "
        "the KPI store or Prometheus, still run in a thread; 0 runs every strategy in a thread.",
    )
    strategy_processes: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Strategies run in this many worker processes, so the analysis and the bus "
        "plumbing use separate cores and the event loop never waits on an analysis: worth it "
        "when the agent has a core to spare and long strategies (on 2 cores with cheap rpc "
        "tasks it no longer gains: 0.77x of the strategy alone against 0.66-0.86x without, "
        "for 50 % more CPU per answer); with as many replicas as cores it only adds "
        "contention. 0 (the default) runs them in the "
        "agent's own process (small inline tasks on the event loop, others in threads, as "
        "`inline_strategy_max_samples` says).",
    )
    rpc_queue_limit: int = Field(
        default=64, ge=0, description="rpc requests waiting for a worker before `overloaded`."
    )
    max_ack_pending: int = Field(
        default=16,
        ge=1,
        description="Tasks the server may hand the durable task consumer before it has acked them "
        "(JetStream `max_ack_pending`); the client buffers up to 4 × this.",
    )
    ack_wait_s: float = Field(
        default=30.0,
        ge=1,
        description="Seconds JetStream waits for a task's ack before redelivering it; a running "
        "task is kept alive with in-progress acks every third of it.",
    )
    max_deliver: int = Field(
        default=5,
        ge=1,
        description="Deliveries of a task before it is given up and dead-lettered; a task that "
        "failed earlier is redelivered after a backoff of up to 30 s.",
    )
    max_payload_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest task request, in bytes, the agent accepts; a bigger one is refused "
        "with `payload_too_large`.",
    )

    # --- analysis ----------------------------------------------------------------
    default_window: str = Field(
        default="1h",
        pattern=_WINDOW,
        description="Window a task is analysed over when it names none (`15m`, `1h`, `7d`…); "
        "strategic_backend_planning defaults to 7d instead.",
    )
    targets: dict[str, float] = Field(
        default_factory=dict,
        description="metric → target, over the catalog's targets; a directive's targets, then a "
        "task's own `params.targets`, win over these.",
    )
    business_weights: dict[str, float] = Field(
        default_factory=dict,
        description="api_performance, scalability, ai_processing, infrastructure_efficiency "
        "(summing to 1); empty = 0.35/0.25/0.20/0.20. A directive's weights win.",
    )
    scaling_triggers: dict[str, float] = Field(
        default_factory=dict,
        description="metric → threshold over cpu_utilization 75, memory_utilization 80, "
        "api_response_time 100",
    )

    # --- live metric sources -------------------------------------------------------
    kpi_enabled: bool = Field(
        default=True, description="Ingest kpi_batch/v1 from swarm.kpi.backend.> into the store."
    )
    kpi_stream: bool = Field(
        default=True,
        description="Keep KPI batches in a JetStream stream, so a restarted agent replays "
        "the last window instead of starting blind.",
    )
    kpi_stream_name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="A KPI stream shared on purpose (e.g. one the KPI tracker's operator made, "
        "or one several agent ids read): used as it is, created when missing. Unset = the "
        "agent's own `<PREFIX>_KPI`, which copies the batches from the stream that already "
        "captures `swarm.kpi.backend.>` when another one does.",
    )
    kpi_stream_max_age_s: float = Field(
        default=86_400.0,
        gt=0,
        description="Seconds KPI batches are kept in the `<PREFIX>_KPI` stream when the agent "
        "creates it; a restart replays at most this or `store_max_age_s`, the "
        "shorter.",
    )
    kpi_pending_msgs_limit: int = Field(
        default=10_000,
        ge=1,
        description="KPI messages the client buffers before it drops them as a slow consumer "
        "(counted as `slow_consumer_drops`).",
    )
    kpi_pending_bytes_limit: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Bytes of KPI messages the client buffers before it drops them as a slow "
        "consumer; raise it for many senders or a long replay.",
    )
    store_max_samples_per_series: int = Field(
        default=20_000,
        ge=10,
        description="Samples a metric store keeps per series (metric and label set); past it the "
        "oldest are dropped.",
    )
    store_max_series: int = Field(
        default=10_000,
        ge=1,
        description="Series a metric store holds; a new one past it evicts the series written "
        "least recently.",
    )
    store_max_age_s: float = Field(
        default=7 * 86_400,
        gt=0,
        description="Seconds of history the live KPI store keeps, counted back from its newest "
        "sample; older samples are pruned.",
    )
    prometheus_url: str | None = Field(
        default=None, description="Prometheus HTTP API base URL, e.g. http://127.0.0.1:9090"
    )
    prometheus_queries: dict[str, str] = Field(
        default_factory=dict, description="metric → PromQL, over the defaults"
    )
    prometheus_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Seconds one Prometheus HTTP query may take before it fails (and is retried).",
    )
    prometheus_scrape_interval_s: float = Field(
        default=15.0, gt=0, description="Prometheus's scrape interval: sets step and rate windows"
    )
    prometheus_retries: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Retries of a Prometheus query after the first try, on connection errors, "
        "timeouts and 5xx answers.",
    )
    default_source: Literal["auto", "inline", "kpi", "prometheus"] = Field(
        default="auto",
        description="Where a task without inline data reads from: auto = Prometheus when "
        "configured, else the KPI store.",
    )

    # --- continuous monitoring -------------------------------------------------------
    monitor_enabled: bool = Field(default=True, description="Assess and alert on a schedule.")
    monitor_interval_s: float = Field(
        default=420.0, ge=1.0, description="Seconds between two monitor runs (7 minutes)."
    )
    monitor_window: str = Field(
        default="1h",
        pattern=_WINDOW,
        description="Window each monitor run assesses the metrics over (SLO burn rates still look "
        "back 3 days).",
    )
    monitor_trigger_window: str = Field(
        default="7d",
        pattern=_WINDOW,
        description="History the monitor extrapolates to predict when a scaling trigger will be "
        "crossed.",
    )
    monitor_resolve_after: int = Field(
        default=3,
        ge=1,
        description="Consecutive clear runs before an open alert episode closes with a `resolved` "
        "alert.",
    )
    monitor_lease_s: float = Field(
        default=0.0, ge=0, description="How long a replica's monitor lease lasts; 0 = 3 intervals."
    )
    monitor_trend_horizon_h: float = Field(
        default=24.0,
        gt=0,
        description="Hours: a degradation trend alerts when its projected breach is at most this "
        "far away (`medium` within a quarter of it, else `low`).",
    )
    monitor_runway_days: float = Field(
        default=14.0,
        gt=0,
        description="Days: a scaling trigger crossed or expected within this many days raises a "
        "`capacity_runway` alert.",
    )

    # --- process -----------------------------------------------------------------
    state_dir: Path = Field(
        default_factory=_default_state_dir,
        description="Directory for the embedded nats-server's JetStream store (`nats/`) and "
        "`service.json`, which `prometheus-backend ping --self` reads.",
    )
    embedded_port: int = Field(
        default=0,
        ge=0,
        le=65_535,
        description="Client port of the embedded nats-server (when `nats_url` is unset); "
        "0 = a free port.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO",
        description="Lowest level logged (the nats client library logs WARNING and above only).",
    )
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="Log lines on stderr: `json`, `text`, or `auto` = text on a terminal, JSON "
        "otherwise.",
    )
    otel_exporter: Literal["none", "console", "otlp"] = Field(
        default="none",
        description="Where trace spans go: `none` (tracing off), `console` (stdout) or `otlp` "
        "over HTTP (needs the `otlp` extra).",
    )
    otel_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces; unset = the "
        "exporter's default (OTEL_EXPORTER_OTLP_* variables, else localhost:4318).",
    )

    @field_validator("nats_inbox_prefix")
    @classmethod
    def _subject_prefix(cls, value: str | None) -> str | None:
        """Literal subject tokens: no wildcard, no whitespace, no empty token."""
        if value is None:
            return None
        for token in value.split("."):
            if not token or not token.isascii() or not token.isprintable() or " " in token:
                raise ValueError(f"nats_inbox_prefix {value!r} is not a subject prefix")
            if "*" in token or ">" in token:
                raise ValueError(f"nats_inbox_prefix {value!r} holds a wildcard")
        return value

    @field_validator("targets")
    @classmethod
    def _finite_targets(cls, value: dict[str, float]) -> dict[str, float]:
        for name, target in value.items():
            if not -1e15 <= target <= 1e15:
                raise ValueError(f"target for {name} must be a finite number")
        return value

    @field_validator("business_weights")
    @classmethod
    def _weights_sum_to_one(cls, value: dict[str, float]) -> dict[str, float]:
        """The wire's one rule (``BusinessImpactWeights``), with every category named."""
        known = BusinessImpactWeights.__struct_fields__
        if value and set(value) != set(known):
            raise ValueError(f"business_weights needs exactly {sorted(known)} summing to 1")
        if value:
            try:
                msgspec.convert(value, BusinessImpactWeights)
            except msgspec.ValidationError as exc:
                raise ValueError(f"business_weights: {exc}") from None
        return value

    @property
    def servers(self) -> list[str]:
        return [u.strip() for u in (self.nats_url or "").split(",") if u.strip()]

    @property
    def streams_token(self) -> str:
        return self.stream_prefix or _stream_token(self.agent_id)

    @property
    def tasks_bucket(self) -> str:
        return f"{self.streams_token}_TASKS_DONE"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        named = os.environ.get(f"{ENV_PREFIX}CONFIG")
        toml_path = Path(named or "prometheus-backend.toml")
        if named and not toml_path.is_file():  # a file asked for by name must be there
            raise SettingsError(f"{ENV_PREFIX}CONFIG names {named!r}, which is not a file")
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_path)
        return init_settings, env_settings, dotenv_settings, toml, file_secret_settings

    def masked(self) -> dict[str, Any]:
        """The effective configuration as JSON-ready data, every secret shown as ``***``."""
        out: dict[str, Any] = self.model_dump(mode="json")
        for key in ("nats_password", "nats_token"):
            if out.get(key) is not None:
                out[key] = "***"
        if self.nats_url:
            # up to the last "@" of each authority: a password may hold an unescaped "@"
            out["nats_url"] = re.sub(r"//[^/]*@", "//***@", self.nats_url)
        return out
