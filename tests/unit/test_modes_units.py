"""Scenarios as data, the IVR's decisions and DTMF routing, with plain data (no sockets)."""

from __future__ import annotations

from typing import ClassVar

import orjson
import pytest

from llc.config import load_settings
from llc.core import openai_events as oa
from llc.core import twilio_frames as tw
from llc.core.actions import RunTool, ToOpenAI
from llc.core.call import CallCore
from llc.core.dialect import GA
from llc.core.session import SessionSpec
from llc.modes.runtime import ModeCall
from llc.modes.scenario import load_scenario_set, parse_scenario_file
from llc.profile import ProfileError, load_profile, parse_profile
from llc.store import open_store
from llc.tools.builtin import transfer_call
from llc.tools.modes import ALL_TOOLS

BASE = load_profile()


def test_bundled_scenarios_map_numbers_and_overlay_the_profile() -> None:
    sset = load_scenario_set()
    assert sset.for_number("+15550100020").name == "ivr"
    assert sset.for_number("+19999999999").name == "default"
    csr = sset.scenarios["csr"].profile(BASE)
    assert csr.greeting == "" and csr.transfer_allow == ("+15550102002",)
    assert csr.turn_policy.lean_tools == ("end_call", "get_orders")
    assert csr.turn_policy.later_eagerness == BASE.turn_policy.later_eagerness  # untouched keys stay
    ivr = sset.scenarios["ivr"].profile(BASE)
    assert "+15550102001" in ivr.transfer_allow  # the menu's departments are transferable
    assert sset.scenarios["default"].profile(BASE) == BASE
    sset.check_tools(set(ALL_TOOLS.tools))


@pytest.mark.parametrize("text, needle", [
    ('[scenario.a]\nmode = "robot"\n', "[scenario.a]: mode 'robot'"),
    ('[scenario.a]\nvoise = "x"\n', "unknown key 'voise'"),
    ('[scenario.a]\n[scenario.a.turn_policy]\nfirst_eagerness = "max"\n', "first_eagerness 'max'"),
    ('[scenario.a]\n[scenario.a.transfer]\nallow = ["555"]\n', "E.164"),
    ('[numbers]\n"+15551234567" = "nope"\n[scenario.a]\n', "'nope' is not a scenario"),
    ('[numbers]\n"555" = "a"\n[scenario.a]\n', "'555' must be an E.164"),
    ('inbound = "a"\n[scenario.a]\ninstructions = "Hi {name}"\n', "need variable(s) name"),
    ('[scenario.a]\nmode = "ivr"\n[[scenario.a.menu]]\nkey = "1"\nlabel = "x"\nscenario = "b"\n', "scenario 'b' is not defined"),
    ('[scenario.a]\nmode = "ivr"\n[[scenario.a.menu]]\nkey = "11"\nlabel = "x"\nhint = "h"\n', "one DTMF key"),
    ('[scenario.a]\nmode = "ivr"\n[[scenario.a.menu]]\nkey = "1"\nlabel = "x"\nhint = "h"\ntransfer = "+15551234567"\n',
     "exactly one of"),
    ('[scenario.a]\n[scenario.a.csr]\nmax_orders = "5"\n', "'max_orders' must be a int"),
    ('[scenario.a\n', "not valid TOML"),
    ('[scenario.a]\nnoise_reduction = "studio"\n', "[scenario.a]: noise_reduction 'studio' must be one of near_field, far_field, off"),
    ('[scenario.a]\nvoice = "nova"\n', "[scenario.a]: voice 'nova' is not a known voice; use one of alloy, ash,"),
])
def test_bad_scenario_files_name_file_key_and_reason(text: str, needle: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_scenario_file(text, "my.toml")
    assert str(info.value).startswith("my.toml") and needle in str(info.value)


@pytest.mark.parametrize("text, needle", [
    ('noise_reduction = "studio"\n', "p.toml: noise_reduction 'studio' must be one of near_field, far_field, off"),
    ("noise_reduction = 1\n", "p.toml: 'noise_reduction' must be a str"),
    ('voice = "nova"\n', ("p.toml: voice 'nova' is not a known voice; use one of alloy, ash, ballad, coral, echo, sage, "
                         "shimmer, verse, marin, cedar")),
])
def test_a_bad_profile_value_is_one_line_naming_file_key_and_allowed_values(text: str, needle: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(text, "p.toml")
    assert str(info.value) == needle or str(info.value).startswith(needle)
    assert "\n" not in str(info.value)


def test_noise_reduction_defaults_to_near_field_and_a_scenario_overrides_it() -> None:
    assert BASE.noise_reduction == "near_field" and BASE.session_spec("cedar").noise_reduction == "near_field"
    sset = parse_scenario_file('[scenario.car]\nnoise_reduction = "far_field"\n'
                               '[scenario.raw]\nnoise_reduction = "off"\nvoice = "marin"\n[scenario.plain]\n', "s.toml")
    car, raw, plain = (sset.scenarios[n].profile(BASE) for n in ("car", "raw", "plain"))
    assert car.session_spec("cedar").noise_reduction == "far_field" and car.voice == BASE.voice
    assert raw.session_spec("cedar").noise_reduction is None and raw.session_spec("cedar").voice == "marin"
    assert plain.session_spec("cedar").noise_reduction == "near_field"


def test_unknown_tool_fails_at_start_up() -> None:
    sset = parse_scenario_file('[scenario.a]\n[scenario.a.tools]\nfull = ["teleport"]\n', "my.toml")
    with pytest.raises(ProfileError, match="unknown tool.*teleport"):
        sset.check_tools(set(ALL_TOOLS.tools))


def test_ivr_menu_decides_by_key_and_by_speech() -> None:
    menu = load_scenario_set().scenarios["ivr"].menu
    assert menu is not None
    assert menu.decide("1", "dtmf").option.target == "+15550102001"  # type: ignore[union-attr]
    assert menu.decide("Reception", "speech").option.target == "receptionist"  # type: ignore[union-attr]
    assert menu.decide("the sales team please", "speech").option.key == "1"  # type: ignore[union-attr]
    assert menu.decide("sales", "dtmf").option is None  # keys are keys
    assert menu.decide("9", "dtmf").option is None and "not on the menu" in menu.decide("9", "dtmf").hint


def _ivr_call() -> tuple[CallCore, ModeCall]:
    sset = load_scenario_set()
    core = CallCore(GA, SessionSpec(), tool_schemas=ALL_TOOLS.schemas())
    core.on_twilio(tw.parse(orjson.dumps({"event": "start", "start": {
        "streamSid": "MZ1", "callSid": "CA1", "customParameters": {}}}).decode()), 0.0)
    core.on_openai_open()
    core.on_openai(oa.from_json({"type": "session.updated", "session": {}}), 0.1)
    mode = ModeCall(sset.scenarios["ivr"], sset, BASE, "CA1", open_store(":memory:"), "cedar", ALL_TOOLS.schemas())
    core.on_plan(core.talk.spec, core.talk.policy, None, mode)
    return core, mode


def _dtmf(core: CallCore, digit: str, now: float) -> list:
    frame = orjson.dumps({"event": "dtmf", "streamSid": "MZ1", "dtmf": {"track": "inbound_track", "digit": digit}})
    return core.on_twilio(tw.parse(frame.decode()), now)


def test_dtmf_transfer_runs_transfer_call_as_a_local_tool() -> None:
    core, _ = _ivr_call()
    actions = _dtmf(core, "1", 1.0)
    [run] = [a for a in actions if isinstance(a, RunTool)]
    assert run.name == "transfer_call" and orjson.loads(run.arguments) == {"number": "+15550102001"}
    assert core.record.dtmf == ["1"] and core.record.routes[0]["action"] == "transfer"
    # Its result is recorded, never sent to the model (the model did not ask for it).
    assert [a for a in core.on_tool_result(run.call_id, '{"ok":true}', 1.2) if isinstance(a, ToOpenAI)] == []
    assert core.record.tool_calls[0].output == '{"ok":true}'


def test_dtmf_switches_scenario_in_the_same_session() -> None:
    core, mode = _ivr_call()
    actions = _dtmf(core, "2", 1.0)
    sent = [orjson.loads(a.text) for a in actions if isinstance(a, ToOpenAI)]
    assert [e["type"] for e in sent] == ["session.update", "conversation.item.create", "response.create"]
    update = sent[0]["session"]
    assert "Acme Appliances front desk" not in update["instructions"] and "receptionist" in update["instructions"]
    assert [t["name"] for t in update["tools"]] == ["end_call", "take_message"]
    assert "voice" not in update["audio"]["output"]  # a voice change mid-call is refused by the service
    assert mode.scenario.name == "receptionist" and mode.on_dtmf("1") == []  # no menu: keys route nowhere
    assert core.record.scenario.endswith(">receptionist")


def test_dtmf_is_ignored_outside_a_menu_and_before_the_session() -> None:
    core = CallCore(GA, SessionSpec())
    assert [type(a).__name__ for a in core.on_twilio(tw.Dtmf("5"), 0.0)] == ["Log"]


class _Ctx:
    call_sid, params = "CA1", {}
    transfer_allow = ("+15550102001",)
    redirected: ClassVar[list[str]] = []

    async def redirect(self, twiml: str) -> None:
        self.redirected.append(twiml)


async def test_transfer_refuses_a_number_not_on_the_allow_list() -> None:
    ctx = _Ctx()
    refused = await transfer_call(ctx, "+15559990000")  # type: ignore[arg-type]
    assert refused["ok"] is False and "not on this line's transfer list" in refused["error"] and not ctx.redirected
    assert (await transfer_call(ctx, "+15550102001"))["ok"]  # type: ignore[arg-type]
    assert "<Dial>+15550102001</Dial>" in ctx.redirected[0]


def test_new_settings() -> None:
    s = load_settings({"LLC_DB_URL": "/tmp/x.db", "LLC_PREACCEPT": "off", "LLC_INSTANCE_URL": "https://node2.example.com",
                       "LLC_SCENARIOS": "s.toml"}, env_file="/nonexistent")
    assert (s.db_url, s.preaccept, s.instance_url, s.scenarios_path) == ("/tmp/x.db", False, "https://node2.example.com", "s.toml")
    with pytest.raises(Exception, match="LLC_PREACCEPT.*on or off"):
        load_settings({"LLC_PREACCEPT": "maybe"}, env_file="/nonexistent")
    with pytest.raises(Exception, match="LLC_INSTANCE_URL"):
        load_settings({"LLC_INSTANCE_URL": "node2"}, env_file="/nonexistent")
