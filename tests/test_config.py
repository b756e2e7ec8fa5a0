"""Settings: defaults (docs/configuration.md), and every source in its order of precedence."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from agent.config import ENV_PREFIX, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting leaks in from the caller's environment, ``.env`` or config file."""
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX) or key == "NATS_URL":
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_match_protocol_ids() -> None:
    s = Settings()
    assert s.agent_id == "prometheus-backend"
    assert s.helios_id == "helios"
    assert s.hephaestus_id == "hephaestus-backend"
    assert s.athena_id == "athena-api"


def test_other_defaults(tmp_path: Path) -> None:
    s = Settings()
    assert s.nats_url is None
    assert s.servers == []
    assert s.max_in_flight == 16
    assert s.default_window == "1h"
    assert s.targets == {}
    assert s.state_dir == tmp_path / "xdg-state" / "prometheus-backend"
    assert s.streams_token == "PROMETHEUS_BACKEND"
    assert s.tasks_bucket == "PROMETHEUS_BACKEND_TASKS_DONE"


def test_stream_prefix_overrides_the_token() -> None:
    assert Settings(stream_prefix="PB1").tasks_bucket == "PB1_TASKS_DONE"
    assert Settings(agent_id="pb-x").streams_token == "PB_X"


def test_prefixed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_BACKEND_AGENT_ID", "pb-2")
    monkeypatch.setenv("PROMETHEUS_BACKEND_HELIOS_ID", "helios-eu")
    monkeypatch.setenv("PROMETHEUS_BACKEND_MAX_IN_FLIGHT", "8")
    monkeypatch.setenv("PROMETHEUS_BACKEND_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("PROMETHEUS_BACKEND_NATS_URL", "nats://prefixed:4222")
    s = Settings()
    assert (s.agent_id, s.helios_id, s.max_in_flight, s.log_level) == (
        "pb-2",
        "helios-eu",
        8,
        "DEBUG",
    )
    assert s.servers == ["nats://prefixed:4222"]


def test_unprefixed_env_is_ignored_except_nats_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_ID", "not-me")
    monkeypatch.setenv("MAX_IN_FLIGHT", "9")
    s = Settings()
    assert (s.agent_id, s.max_in_flight) == ("prometheus-backend", 16)


def test_unprefixed_nats_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_URL", "nats://a:4222, nats://b:4223 ,,tls://c:4224")
    s = Settings()
    assert s.servers == ["nats://a:4222", "nats://b:4223", "tls://c:4224"]


def test_toml_file_named_by_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "conf" / "pb.toml"
    cfg.parent.mkdir()
    cfg.write_text(
        'agent_id = "from-toml"\n'
        "max_in_flight = 7\n"
        'nats_url = "nats://toml:4222"\n'
        "[targets]\n"
        "api_response_time = 150.0\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("PROMETHEUS_BACKEND_CONFIG", str(cfg))
    s = Settings()
    assert (s.agent_id, s.max_in_flight) == ("from-toml", 7)
    assert s.targets == {"api_response_time": 150.0}
    assert s.servers == ["nats://toml:4222"]

    monkeypatch.setenv("PROMETHEUS_BACKEND_MAX_IN_FLIGHT", "3")
    monkeypatch.setenv("NATS_URL", "nats://env:4222")
    s = Settings()
    assert (s.agent_id, s.max_in_flight) == ("from-toml", 3)
    assert s.servers == ["nats://env:4222"]


def test_default_toml_file_in_cwd(tmp_path: Path) -> None:
    (tmp_path / "prometheus-backend.toml").write_text('athena_id = "athena-2"\n', "utf-8")
    assert Settings().athena_id == "athena-2"


def test_missing_default_toml_file_is_no_error(tmp_path: Path) -> None:
    assert Settings().agent_id == "prometheus-backend"


def test_missing_named_toml_file_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROMETHEUS_BACKEND_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(SettingsError, match=r"absent\.toml"):
        Settings()


def test_invalid_toml_value_rejected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "prometheus-backend.toml").write_text("max_in_flight = 0\n", "utf-8")
    with pytest.raises(ValidationError, match="max_in_flight"):
        Settings()


def test_dotenv_in_cwd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "prometheus-backend.toml").write_text(
        'hephaestus_id = "heph-toml"\nathena_id = "athena-toml"\n', "utf-8"
    )
    (tmp_path / ".env").write_text(
        "PROMETHEUS_BACKEND_HEPHAESTUS_ID=heph-dotenv\n"
        "PROMETHEUS_BACKEND_MAX_IN_FLIGHT=6\n"
        "NATS_URL=nats://dotenv:4222\n",
        encoding="utf-8",
    )
    s = Settings()
    assert s.hephaestus_id == "heph-dotenv"  # .env beats the TOML file
    assert s.athena_id == "athena-toml"
    assert s.max_in_flight == 6
    assert s.servers == ["nats://dotenv:4222"]

    monkeypatch.setenv("PROMETHEUS_BACKEND_MAX_IN_FLIGHT", "2")  # env beats .env
    assert Settings().max_in_flight == 2


def test_constructor_beats_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_BACKEND_AGENT_ID", "from-env")
    assert Settings(agent_id="from-args").agent_id == "from-args"


def test_targets_json_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PROMETHEUS_BACKEND_TARGETS", json.dumps({"api_response_time": 120, "error_rate": 0.5})
    )
    assert Settings().targets == {"api_response_time": 120.0, "error_rate": 0.5}


@pytest.mark.parametrize("raw", ['{"m": 1e999}', '{"m": -1e999}', '{"m": NaN}', '{"m": 1e16}'])
def test_non_finite_target_rejected(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("PROMETHEUS_BACKEND_TARGETS", raw)
    with pytest.raises(ValidationError, match="target for m must be a finite number"):
        Settings()


def test_non_finite_target_rejected_from_args() -> None:
    with pytest.raises(ValidationError, match="finite"):
        Settings(targets={"m": float("inf")})


@pytest.mark.parametrize("agent_id", ["", "a.b", "a b", "a*", "a>", "ä", "x" * 65, "swarm.tasks"])
def test_invalid_agent_id_rejected(agent_id: str) -> None:
    with pytest.raises(ValidationError, match="agent_id"):
        Settings(agent_id=agent_id)


def test_invalid_agent_id_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_BACKEND_AGENT_ID", "bad.id")
    with pytest.raises(ValidationError, match="agent_id"):
        Settings()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_in_flight", 0),
        ("max_in_flight", 1025),
        ("stream_replicas", 6),
        ("default_window", "1 hour"),
        ("log_level", "TRACE"),
        ("helios_id", "a.b"),
    ],
)
def test_out_of_range_settings_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.agent_id = "other"  # type: ignore[misc]


def test_masked_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_BACKEND_NATS_PASSWORD", "hunter2")
    monkeypatch.setenv("PROMETHEUS_BACKEND_NATS_TOKEN", "s3cr3t-token")
    monkeypatch.setenv("PROMETHEUS_BACKEND_NATS_USER", "alice")
    monkeypatch.setenv(
        "NATS_URL", "nats://bob:pa55word@h1:4222,nats://tok3n@h2:4222,nats://h3:4222"
    )
    s = Settings()
    assert s.nats_password is not None
    assert s.nats_password.get_secret_value() == "hunter2"
    out = s.masked()
    text = json.dumps(out)
    for secret in ("hunter2", "s3cr3t-token", "pa55word", "tok3n", "bob"):
        assert secret not in text, secret
    assert out["nats_password"] == "***"
    assert out["nats_token"] == "***"
    assert out["nats_user"] == "alice"
    assert out["nats_url"] == "nats://***@h1:4222,nats://***@h2:4222,nats://h3:4222"
    # the real values are untouched
    assert s.servers[0] == "nats://bob:pa55word@h1:4222"


def test_masked_hides_a_password_holding_an_at_sign(monkeypatch: pytest.MonkeyPatch) -> None:
    # nats-py (urllib) splits user info at the last "@", so this password is "p@ss"
    monkeypatch.setenv("NATS_URL", "nats://u:p@ss@h1:4222")
    assert Settings().masked()["nats_url"] == "nats://***@h1:4222"


def test_masked_without_secrets() -> None:
    out = Settings().masked()
    assert out["nats_password"] is None
    assert out["nats_token"] is None
    assert out["nats_url"] is None
    assert out["agent_id"] == "prometheus-backend"
    assert json.loads(json.dumps(out)) == out
