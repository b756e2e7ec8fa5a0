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

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "PROMETHEUS_BACKEND_"
_ID = r"^[A-Za-z0-9_-]{1,64}$"
_WINDOW = r"^[1-9][0-9]{0,5}(s|m|h|d|w)$"


def _default_state_dir() -> Path:
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
    nats_user: str | None = None
    nats_password: SecretStr | None = None
    nats_token: SecretStr | None = None
    nats_creds_file: Path | None = None
    nats_nkey_seed_file: Path | None = None
    nats_tls_ca: Path | None = None
    nats_tls_cert: Path | None = None
    nats_tls_key: Path | None = None
    nats_connect_timeout_s: float = Field(default=5.0, gt=0)
    nats_start_retry_max_s: float = Field(
        default=0.0, ge=0, description="Give up the first connect after this long; 0 = never."
    )
    nats_start_backoff_max_s: float = Field(default=10.0, gt=0)
    nats_reconnect_wait_s: float = Field(default=1.0, gt=0)
    nats_ping_interval_s: int = Field(default=10, ge=1)
    nats_max_outstanding_pings: int = Field(default=3, ge=1)
    nats_drain_timeout_s: float = Field(default=10.0, gt=0)
    nats_pending_msgs_limit: int = Field(default=65_536, ge=1)
    nats_pending_bytes_limit: int = Field(default=64 * 1024 * 1024, ge=1024)

    # --- identity ----------------------------------------------------------------
    agent_id: str = Field(default="prometheus-backend", pattern=_ID)
    helios_id: str = Field(default="helios", pattern=_ID)
    hephaestus_id: str = Field(default="hephaestus-backend", pattern=_ID)
    athena_id: str = Field(default="athena-api", pattern=_ID)

    # --- JetStream ---------------------------------------------------------------
    stream_prefix: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,32}$",
        description="Prefix of the stream names; default: the agent id in upper case.",
    )
    stream_replicas: int = Field(default=1, ge=1, le=5)
    stream_max_age_s: float = Field(default=7 * 86_400, gt=0)
    duplicate_window_s: float = Field(default=600.0, gt=0)
    task_record_ttl_s: float = Field(
        default=7 * 86_400, gt=0, description="How long a task's answer is remembered."
    )

    # --- work limits -------------------------------------------------------------
    max_in_flight: int = Field(default=4, ge=1, le=1024)
    rpc_queue_limit: int = Field(
        default=64, ge=0, description="rpc requests waiting for a worker before `overloaded`."
    )
    max_ack_pending: int = Field(default=16, ge=1)
    ack_wait_s: float = Field(default=30.0, ge=1)
    max_deliver: int = Field(default=5, ge=1)
    max_payload_bytes: int = Field(default=1024 * 1024, ge=1024)

    # --- analysis ----------------------------------------------------------------
    default_window: str = Field(default="1h", pattern=_WINDOW)
    targets: dict[str, float] = Field(default_factory=dict)
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
    kpi_stream_max_age_s: float = Field(default=86_400.0, gt=0)
    kpi_pending_msgs_limit: int = Field(default=10_000, ge=1)
    kpi_pending_bytes_limit: int = Field(default=64 * 1024 * 1024, ge=1024)
    store_max_samples_per_series: int = Field(default=20_000, ge=10)
    store_max_series: int = Field(default=10_000, ge=1)
    store_max_age_s: float = Field(default=7 * 86_400, gt=0)
    prometheus_url: str | None = Field(
        default=None, description="Prometheus HTTP API base URL, e.g. http://127.0.0.1:9090"
    )
    prometheus_queries: dict[str, str] = Field(
        default_factory=dict, description="metric → PromQL, over the defaults"
    )
    prometheus_timeout_s: float = Field(default=10.0, gt=0)
    prometheus_scrape_interval_s: float = Field(
        default=15.0, gt=0, description="Prometheus's scrape interval: sets step and rate windows"
    )
    prometheus_retries: int = Field(default=3, ge=1, le=10)
    default_source: Literal["auto", "inline", "kpi", "prometheus"] = Field(
        default="auto",
        description="Where a task without inline data reads from: auto = Prometheus when "
        "configured, else the KPI store.",
    )

    # --- continuous monitoring -------------------------------------------------------
    monitor_enabled: bool = Field(default=True, description="Assess and alert on a schedule.")
    monitor_interval_s: float = Field(default=420.0, ge=1.0, description="7 minutes.")
    monitor_window: str = Field(default="1h", pattern=_WINDOW)
    monitor_trigger_window: str = Field(default="7d", pattern=_WINDOW)
    monitor_resolve_after: int = Field(default=3, ge=1)
    monitor_lease_s: float = Field(
        default=0.0, ge=0, description="How long a replica's monitor lease lasts; 0 = 3 intervals."
    )
    monitor_trend_horizon_h: float = Field(default=24.0, gt=0)
    monitor_runway_days: float = Field(default=14.0, gt=0)

    # --- process -----------------------------------------------------------------
    state_dir: Path = Field(default_factory=_default_state_dir)
    embedded_port: int = Field(default=0, ge=0, le=65_535, description="0 = a free port.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    otel_endpoint: str | None = None

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
        known = {"api_performance", "scalability", "ai_processing", "infrastructure_efficiency"}
        if value and (set(value) != known or abs(sum(value.values()) - 1.0) > 1e-6):
            raise ValueError(f"business_weights needs exactly {sorted(known)} summing to 1")
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
