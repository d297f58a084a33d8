"""Configuration: defaults, .env, precedence, and errors that name the fix."""

import os
from pathlib import Path
from typing import get_args, get_type_hints

import pytest

from llc.config import ENV, VARS, ConfigError, Settings, is_e164, load_settings
from llc.config_vars import REMOVED, RENAMED


def test_defaults(tmp_path: Path) -> None:
    s = load_settings({}, tmp_path / "missing.env")
    assert (s.port, s.openai_api_shape, s.openai_model, s.openai_voice) == (8080, "ga", "gpt-realtime-1.5", "cedar")
    assert s.openai_realtime_url == "wss://api.openai.com/v1/realtime"
    assert s.stream_url is None


def test_env_file_then_environment_wins(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("PORT=9000\nOPENAI_API_SHAPE=flat\nLLC_PUBLIC_URL=https://voice.example.com\n")
    s = load_settings({"PORT": "9100"}, env)
    assert s.port == 9100 and s.openai_api_shape == "flat"
    assert s.stream_url == "wss://voice.example.com/media"


def test_every_problem_reported_together(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(
            {"PORT": "eighty", "OPENAI_API_SHAPE": "nested", "LLC_PUBLIC_URL": "voice.example.com",
             "OPENAI_REALTIME_URL": "https://api.openai.com/v1/realtime"},
            tmp_path / "none",
        )
    text = str(err.value)
    assert "PORT='eighty' is not a whole number" in text
    assert "OPENAI_API_SHAPE='nested' is not one of ga or flat" in text
    assert "LLC_PUBLIC_URL='voice.example.com'" in text
    assert "OPENAI_REALTIME_URL" in text and "wss://" in text
    assert len(err.value.problems) == 4


def test_key_required_only_for_real_openai(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        load_settings({}, tmp_path / "none", require_keys=True)
    s = load_settings({"OPENAI_REALTIME_URL": "ws://127.0.0.1:9/v1/realtime", "LLC_LOCAL_ONLY": "on"}, tmp_path / "none",
                      require_keys=True)
    assert s.openai_is_local
    assert "sk-" not in repr(load_settings({"OPENAI_API_KEY": "sk-secret"}, tmp_path / "none"))


def test_security_switches_and_limits_parse_with_fixes() -> None:
    s = load_settings({"LLC_TWILIO_SIGNATURES": "off", "LLC_MAX_CALLS": "5", "LLC_CALLS_PER_MINUTE": "0"}, os.devnull)
    assert (s.twilio_signatures, s.stream_admission, s.max_calls, s.calls_per_minute) == (False, True, 5, 0)
    with pytest.raises(ConfigError) as err:
        load_settings({"LLC_STREAM_ADMISSION": "maybe", "LLC_MAX_CALLS": "0", "LLC_APOLOGY_CLIP": "/nope.ulaw"}, os.devnull)
    text = "\n".join(err.value.problems)
    assert "LLC_STREAM_ADMISSION=on" in text and "LLC_MAX_CALLS must be at least 1" in text and "LLC_APOLOGY_CLIP" in text


@pytest.mark.parametrize("old, new", sorted(RENAMED.items()))
def test_a_renamed_variable_is_refused_with_its_new_name(tmp_path: Path, old: str, new: str) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"{old}=x\n")  # .env counts as much as the environment
    for environ, path in (({old: "x"}, tmp_path / "none"), ({}, env_file)):
        with pytest.raises(ConfigError) as err:
            load_settings(environ, path)
        assert err.value.problems == [f"{old} is now {new}: rename it"]


def test_a_renamed_variable_is_let_be_when_its_new_name_is_set() -> None:
    s = load_settings({"HOST": "my-tcsh-host", "LLC_HOST": "0.0.0.0"}, os.devnull)  # tcsh exports HOST
    assert s.host == "0.0.0.0"


@pytest.mark.parametrize("old", sorted(REMOVED))
def test_a_removed_variable_is_refused(old: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({old: "fast"}, os.devnull)
    assert len(err.value.problems) == 1 and err.value.problems[0].startswith(f"{old} was removed: ")
    assert err.value.problems[0].endswith("; unset it")
    assert load_settings({old: ""}, os.devnull) == Settings()  # empty is unset


def test_bad_values_name_the_variable_and_the_fix() -> None:
    env = {"LLC_MAX_CALLS": "many", "LLC_MAX_CALL_S": "1h", "LLC_PREACCEPT": "sometimes",
           "LLC_LOG_FORMAT": "xml", "TWILIO_EDGE": "mars"}
    with pytest.raises(ConfigError) as err:
        load_settings(env, os.devnull)
    assert err.value.problems == [  # in the order of the definition
        "LLC_PREACCEPT='sometimes' is not on or off; set LLC_PREACCEPT=on or LLC_PREACCEPT=off",
        ("TWILIO_EDGE='mars' is not one of ashburn, umatilla, dublin, frankfurt, singapore, tokyo, sao-paulo or sydney; "
         "pick one or unset TWILIO_EDGE"),
        "LLC_MAX_CALLS='many' is not a whole number; set it like LLC_MAX_CALLS=100",
        "LLC_MAX_CALL_S='1h' is not a number; set it like LLC_MAX_CALL_S=3600",
        "LLC_LOG_FORMAT='xml' is not one of auto, json or text; set LLC_LOG_FORMAT=auto",
    ]


def test_each_variable_is_converted_by_its_declared_type() -> None:
    """Every int, float, bool and choice variable, given text of its type, comes back as that type."""
    typed = [v for v in VARS if v.field and (v.type is not str or v.choices)]
    env: dict[str, str] = {}
    want: dict[str, object] = {}
    for v in typed:
        if v.choices:  # the last choice, in the other case: matched without regard to case
            env[v.env], want[v.field] = v.choices[-1].swapcase(), v.choices[-1]
        elif v.type is bool:
            env[v.env], want[v.field] = ("no" if v.default else "yes"), not v.default
        else:  # a number unset by default (LLC_ADMIN_PORT) is given one
            value = v.default if v.default is not None else v.type(9)
            env[v.env], want[v.field] = f" {value} ", value
    s = load_settings(env, os.devnull)
    assert {v.field: getattr(s, v.field) for v in typed} == want
    assert all(type(getattr(s, v.field)) is v.type for v in typed)
    with pytest.raises(ConfigError) as err:  # and each one refuses text that is not of its type
        load_settings({v.env: "not-a-value" for v in typed}, os.devnull)
    assert sorted(p.split("=", 1)[0] for p in err.value.problems) == sorted(v.env for v in typed)


def test_settings_annotations_agree_with_the_declared_types() -> None:
    hints = get_type_hints(Settings)
    assert set(hints) == {v.field for v in VARS if v.field} and len(ENV) == len(hints)
    for v in VARS:
        if not v.field:
            continue
        hint = hints[v.field]
        allowed = {v.type, v.type | None} if v.default is None else {v.type}
        assert hint in allowed or set(get_args(hint)) == set(v.choices), (v.env, hint)


def test_one_e164_rule() -> None:
    assert is_e164("+14155550100") and is_e164("+2904000")  # the shortest real numbers have 7 digits
    assert not any(is_e164(n) for n in ("+0123", "+123456", "555-0100", "+1415555010012345", "14155550100"))
