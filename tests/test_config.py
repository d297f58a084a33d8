"""Configuration: defaults, .env, precedence, and errors that name the fix."""

import os
from pathlib import Path

import pytest

from llc.config import ConfigError, load_settings


def test_defaults(tmp_path: Path) -> None:
    s = load_settings({}, tmp_path / "missing.env")
    assert (s.port, s.openai_api_shape, s.openai_model, s.openai_voice) == (8080, "ga", "gpt-realtime-1.5", "cedar")
    assert s.openai_realtime_url == "wss://api.openai.com/v1/realtime"
    assert s.stream_url is None


def test_env_file_then_environment_wins(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("PORT=9000\nOPENAI_API_SHAPE=flat\nPUBLIC_URL=https://voice.example.com\n")
    s = load_settings({"PORT": "9100"}, env)
    assert s.port == 9100 and s.openai_api_shape == "flat"
    assert s.stream_url == "wss://voice.example.com/media"


def test_every_problem_reported_together(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(
            {"PORT": "eighty", "OPENAI_API_SHAPE": "nested", "PUBLIC_URL": "voice.example.com",
             "OPENAI_REALTIME_URL": "https://api.openai.com/v1/realtime"},
            tmp_path / "none",
        )
    text = str(err.value)
    assert "PORT='eighty' is not a whole number" in text
    assert "OPENAI_API_SHAPE='nested' is not one of ga or flat" in text
    assert "PUBLIC_URL='voice.example.com'" in text
    assert "OPENAI_REALTIME_URL" in text and "wss://" in text
    assert len(err.value.problems) == 4


def test_key_required_only_for_real_openai(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        load_settings({}, tmp_path / "none", require_keys=True)
    s = load_settings({"OPENAI_REALTIME_URL": "ws://127.0.0.1:9/v1/realtime"}, tmp_path / "none", require_keys=True)
    assert s.openai_is_local
    assert "sk-" not in repr(load_settings({"OPENAI_API_KEY": "sk-secret"}, tmp_path / "none"))


def test_engine_and_media_port(tmp_path: Path) -> None:
    s = load_settings({"LLC_WS_ENGINE": "WSPROTO", "LLC_MEDIA_PORT": "8081"}, tmp_path / "none")
    assert (s.ws_engine, s.media_port) == ("wsproto", 8081)
    assert load_settings({}, tmp_path / "none").media_port is None  # unset: media through PORT
    with pytest.raises(ConfigError) as err:
        load_settings({"LLC_WS_ENGINE": "uvloop", "LLC_MEDIA_PORT": "70000"}, tmp_path / "none")
    assert "LLC_WS_ENGINE='uvloop' is not one of fast or wsproto" in str(err.value)
    assert "LLC_MEDIA_PORT=70000 is out of range" in str(err.value)


def test_security_switches_and_limits_parse_with_fixes() -> None:
    s = load_settings({"LLC_TWILIO_SIGNATURES": "off", "LLC_MAX_CALLS": "5", "LLC_CALLS_PER_MINUTE": "0"}, os.devnull)
    assert (s.twilio_signatures, s.stream_admission, s.max_calls, s.calls_per_minute) == (False, True, 5, 0)
    with pytest.raises(ConfigError) as err:
        load_settings({"LLC_STREAM_ADMISSION": "maybe", "LLC_MAX_CALLS": "0", "LLC_APOLOGY_CLIP": "/nope.ulaw"}, os.devnull)
    text = "\n".join(err.value.problems)
    assert "LLC_STREAM_ADMISSION=on" in text and "LLC_MAX_CALLS must be at least 1" in text and "LLC_APOLOGY_CLIP" in text
