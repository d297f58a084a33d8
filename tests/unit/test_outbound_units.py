"""Pure pieces of outbound calling: warm-session core, AMD outcomes, templates, scenarios, requests, REST host."""

from __future__ import annotations

import orjson
import pytest

from llc.config import ConfigError, Settings, load_settings
from llc.core import openai_events as oa
from llc.core.actions import Log, ToOpenAI
from llc.core.dialect import dialect
from llc.core.outbound import TemplateError, amd_outcome, render
from llc.core.session import SessionSpec
from llc.core.warm import WarmCore, WarmPhase, priming_response
from llc.modes.scenario import load_scenario_set, parse_scenario_file
from llc.outbound.dialer import CallRequestError, parse_call_request
from llc.profile import Profile, ProfileError
from llc.twilio.rest import TwilioRest


@pytest.mark.parametrize("shape, modalities, tokens", [("ga", "output_modalities", "max_output_tokens"),
                                                       ("flat", "modalities", "max_response_output_tokens")])
def test_warm_core_configures_then_primes_text_only(shape: str, modalities: str, tokens: str) -> None:
    core = WarmCore(dialect(shape), SessionSpec())  # type: ignore[arg-type]
    [update] = core.on_open()
    assert isinstance(update, ToOpenAI) and orjson.loads(update.text)["type"] == "session.update"
    [prime] = core.on_event(oa.from_json({"type": "session.updated"}))
    body = orjson.loads(prime.text)["response"]  # type: ignore[union-attr]
    assert body[modalities] == ["text"] and body["conversation"] == "none" and body[tokens] == 16
    # Usable at once: the call claims it with the priming response still in flight.
    assert core.phase is WarmPhase.PRIMING and core.settled
    core.on_event(oa.from_json({"type": "response.done"}))
    assert core.phase is WarmPhase.READY and core.settled


def test_warm_core_error_while_configuring_fails_with_the_fix() -> None:
    core = WarmCore(dialect("flat"), SessionSpec())
    core.on_open()
    [log] = core.on_event(oa.from_json({"type": "error", "error": {"code": "beta_api_shape_disabled"}}))
    assert isinstance(log, Log) and core.phase is WarmPhase.FAILED and "OPENAI_API_SHAPE=ga" in core.reason


def test_warm_core_priming_failure_keeps_the_session() -> None:
    core = WarmCore(dialect("ga"), SessionSpec())
    core.on_open()
    core.on_event(oa.from_json({"type": "session.updated"}))
    core.on_event(oa.from_json({"type": "error", "error": {"code": "server_error"}}))
    assert core.phase is WarmPhase.READY


def test_warm_core_without_priming_is_ready_on_session_updated() -> None:
    core = WarmCore(dialect("ga"), SessionSpec(), prime=False)
    core.on_open()
    assert core.on_event(oa.from_json({"type": "session.updated"}))[0] == Log("debug", "warm session configured")
    assert core.phase is WarmPhase.READY


def test_priming_response_is_out_of_band() -> None:
    assert priming_response(dialect("ga"))["response"]["conversation"] == "none"


@pytest.mark.parametrize("answered_by, on_machine, has_vm, expected", [
    ("human", "voicemail", True, "continue"), ("unknown", "hangup", False, "continue"),
    ("machine_end_beep", "voicemail", True, "voicemail"), ("machine_end_silence", "voicemail", False, "hangup"),
    ("machine_start", "hangup", True, "hangup"), ("fax", "voicemail", True, "hangup")])
def test_amd_outcome(answered_by: str, on_machine: str, has_vm: bool, expected: str) -> None:
    assert amd_outcome(answered_by, on_machine, has_vm) == expected  # type: ignore[arg-type]


def test_render_names_missing_variables() -> None:
    assert render("Hi {name}", {"name": "Ann"}, "x") == "Hi Ann"
    with pytest.raises(TemplateError, match="when"):
        render("{name} at {when}", {"name": "Ann"}, "x")


def test_bundled_scenarios_load_and_bad_ones_name_the_key() -> None:
    scenarios = load_scenario_set(None, "LLC_SCENARIOS").scenarios
    assert {"default", "reminder", "survey"} <= set(scenarios)
    assert scenarios["reminder"].on_machine == "voicemail" and scenarios["reminder"].machine_detection
    with pytest.raises(ProfileError, match="needs a voicemail"):
        parse_scenario_file('[scenario.x]\non_machine = "voicemail"\n', "f.toml")
    with pytest.raises(ProfileError, match="unknown key 'voice_mail'"):
        parse_scenario_file('[scenario.x]\nvoice_mail = "hi"\n', "f.toml")


def test_call_request_validation() -> None:
    scenarios, profile = load_scenario_set(None, "LLC_SCENARIOS").scenarios, Profile(instructions="Be brief.")
    req = parse_call_request({"to": "+15551234567", "scenario": "reminder",
                              "variables": {"name": "Ann", "when": 3}}, scenarios, profile)
    assert req.prompt.startswith("Be brief.") and "Ann" in req.prompt and req.prewarm and req.machine_detection
    assert "Ann" in req.voicemail
    for body, status_hint in [([], "JSON object"), ({"to": "+0123"}, "E.164"),
                              ({"to": "+15551234567", "prewarm": "yes"}, "true or false"),
                              ({"to": "+15551234567", "variables": ["a"]}, "variables")]:
        with pytest.raises(CallRequestError, match=status_hint) as info:
            parse_call_request(body, scenarios, profile)
        assert info.value.status == 400


def test_new_settings_are_read_and_checked() -> None:
    env = {"LLC_API_TOKEN": "t", "TWILIO_FROM_NUMBER": "+15550001111", "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_EDGE": "dublin",
           "TWILIO_REGION": "ie1", "LLC_PREWARM_TIMEOUT_S": "2.5"}
    s = load_settings(env, env_file="/nonexistent")
    assert (s.api_token, s.twilio_from_number, s.twilio_edge, s.prewarm_timeout_s) == ("t", "+15550001111", "dublin", 2.5)
    assert "api_token" not in repr(s)  # a secret never reaches a log line
    with pytest.raises(ConfigError) as info:
        load_settings({"TWILIO_FROM_NUMBER": "555", "TWILIO_EDGE": "mars", "LLC_PREWARM_TIMEOUT_S": "0"},
                      env_file="/nonexistent")
    text = str(info.value)
    assert "TWILIO_FROM_NUMBER" in text and "TWILIO_EDGE" in text and "LLC_PREWARM_TIMEOUT_S" in text


def test_edge_and_region_apply_to_the_real_host_only(monkeypatch: pytest.MonkeyPatch) -> None:
    base = Settings(twilio_account_sid="AC1", twilio_auth_token="x", twilio_edge="dublin", twilio_region="ie1")
    real = TwilioRest(base).client
    assert (real.edge, real.region) == ("dublin", "ie1")
    assert real.get_hostname("https://api.twilio.com/x") == "https://api.dublin.ie1.twilio.com/x"
    monkeypatch.setenv("TWILIO_EDGE", "tokyo")  # the client would pick this up by itself
    fake = TwilioRest(base.with_overrides(twilio_api_url="http://127.0.0.1:9")).client
    assert (fake.edge, fake.region) == (None, None) and fake.api.base_url == "http://127.0.0.1:9"
