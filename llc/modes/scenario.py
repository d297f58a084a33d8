"""Scenarios as data: one TOML file for both directions.

A scenario overlays the tuned profile (voice, greeting or caller-first, eagerness policy, lean
and full tools, transfer allow-list; its ``instructions`` are appended to the profile's
prompt), says what to do on an answering machine (outbound), and carries its mode's data: an
IVR menu, a receptionist's facts, CSR settings. ``[numbers]`` maps each called number to the
scenario that answers it; ``inbound`` names the one for every other number. The file is read
once at start-up; a bad one fails then with the file, key and reason, never mid-call.
"""

from __future__ import annotations

import dataclasses
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from llc.config import is_e164
from llc.config_shapes import url_fault
from llc.core.outbound import OnMachine, render
from llc.modes.ivr import IvrMenu, parse_menu
from llc.profile import Profile, ProfileError, profile_from_data

Mode = Literal["assistant", "ivr", "receptionist", "csr"]
MODES: tuple[str, ...] = ("assistant", "ivr", "receptionist", "csr")
# Profile keys a scenario may override; parse_profile validates them.
PROFILE_KEYS = ("voice", "greeting", "noise_reduction", "turn_detection", "transcription", "turn_policy", "tools", "transfer")
_SCALARS: dict[str, type] = {"mode": str, "instructions": str, "caller_first": bool, "machine_detection": bool,
                             "on_machine": str, "voicemail": str, "events_url": str}
_MODE_KEYS = ("menu", "facts", "csr")
BUNDLED = "scenarios.toml"


@dataclass(frozen=True)
class CsrSettings:
    identify_by_caller_id: bool = True  # look the caller up by the number they call from
    max_orders: int = 5  # orders a lookup returns (keeps tool outputs, and so tokens, small)


@dataclass(frozen=True)
class Scenario:
    name: str
    instructions: str = ""
    machine_detection: bool = False
    on_machine: OnMachine = "hangup"
    voicemail: str = ""
    mode: Mode = "assistant"
    caller_first: bool | None = None  # True: no greeting whatever the profile says
    overlay: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)  # validated profile keys
    menu: IvrMenu | None = None
    facts: tuple[tuple[str, str], ...] = ()
    csr: CsrSettings = field(default_factory=CsrSettings)
    events_url: str = ""  # this scenario's calls' events go here instead of LLC_EVENTS_URL
    source: str = ""

    def prompt(self, base: str, variables: Mapping[str, str]) -> str:
        """The profile's prompt plus this scenario's lines (variables filled in) and its mode's data."""
        extra = render(self.instructions.strip(), variables, f"scenario {self.name!r} instructions")
        return "\n\n".join(p for p in (base.strip(), extra, self.mode_text()) if p)

    def voicemail_text(self, variables: Mapping[str, str]) -> str:
        return render(self.voicemail.strip(), variables, f"scenario {self.name!r} voicemail")

    def mode_text(self) -> str:
        if self.menu is not None:
            return self.menu.prompt_text()
        if self.facts:
            return "Facts you may use (answer only from these; offer to take a message otherwise):\n" + "\n".join(
                f"- {k}: {v}" for k, v in self.facts)
        return ""

    def profile(self, base: Profile) -> Profile:
        """The base profile with this scenario's overrides (only the keys the scenario sets)."""
        if not self.overlay and self.caller_first is None and self.menu is None:
            return base
        parsed = profile_from_data(self.overlay, self.source)
        changes: dict[str, Any] = {}
        for key in ("voice", "greeting", "noise_reduction"):
            if key in self.overlay:
                changes[key] = getattr(parsed, key)
        if "turn_detection" in self.overlay:
            changes["turn_detection"] = dataclasses.replace(
                base.turn_detection, **{k: getattr(parsed.turn_detection, k) for k in self.overlay["turn_detection"]})
        if "transcription" in self.overlay:
            changes["transcription_model"] = parsed.transcription_model
        policy = {k: getattr(parsed.turn_policy, k) for k in self.overlay.get("turn_policy", {})}
        policy.update({f"{k}_tools": getattr(parsed.turn_policy, f"{k}_tools") for k in self.overlay.get("tools", {})})
        if policy:
            changes["turn_policy"] = dataclasses.replace(base.turn_policy, **policy)
        allow = parsed.transfer_allow if "transfer" in self.overlay else base.transfer_allow
        if self.menu is not None:  # a menu's departments are transferable by definition
            allow = tuple(dict.fromkeys((*allow, *self.menu.transfer_numbers)))
        changes["transfer_allow"] = allow
        if self.caller_first:
            changes["greeting"] = ""
        return dataclasses.replace(base, **changes, source=f"{base.source} + {self.source}")

    @property
    def tool_names(self) -> set[str]:
        tools = self.overlay.get("tools", {})
        return {n for k in ("lean", "full") for n in tools.get(k, [])}


@dataclass(frozen=True)
class ScenarioSet:
    scenarios: dict[str, Scenario]
    numbers: dict[str, str] = field(default_factory=dict)  # called number -> scenario name
    inbound: str = "default"
    source: str = ""

    def for_number(self, called: str) -> Scenario:
        return self.scenarios[self.numbers.get(called, self.inbound)]

    def check_tools(self, known: set[str]) -> None:
        """Every tool a scenario names must exist: fail at start-up, not mid-call."""
        for s in self.scenarios.values():
            if missing := sorted(s.tool_names - known):
                raise ProfileError(f"{s.source} [tools]: unknown tool(s) {', '.join(missing)}; "
                                   f"known tools: {', '.join(sorted(known))}")


def parse_scenario_file(text: str, source: str) -> ScenarioSet:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML ({exc})") from None
    unknown = set(data) - {"scenario", "numbers", "inbound", "tool"}  # [tool.NAME]: llc.tools.declared
    if unknown:
        raise ProfileError(f"{source}: unknown top-level key(s) {', '.join(sorted(unknown))}; use inbound, [numbers], [scenario.NAME], [tool.NAME]")
    table = data.get("scenario", {})
    if not isinstance(table, dict) or not table:
        raise ProfileError(f"{source}: no [scenario.NAME] tables; add at least [scenario.default]")
    names = set(table)
    out: dict[str, Scenario] = {}
    for name, raw in table.items():
        where = f"{source} [scenario.{name}]"
        if not isinstance(raw, dict):
            raise ProfileError(f"{where}: must be a table")
        out[name] = _scenario(name, raw, where, names - {name})
    inbound = data.get("inbound", "default" if "default" in out else next(iter(out)))
    if not isinstance(inbound, str) or inbound not in out:
        raise ProfileError(f"{source}: inbound = {inbound!r} is not a scenario; known: {', '.join(sorted(out))}")
    numbers = data.get("numbers", {})
    if not isinstance(numbers, dict):
        raise ProfileError(f"{source}: [numbers] must map \"+15551234567\" = \"scenario\"")
    for number, name in numbers.items():
        if not is_e164(number):
            raise ProfileError(f"{source} [numbers]: {number!r} must be an E.164 number like \"+15551234567\"")
        if name not in out:
            raise ProfileError(f"{source} [numbers]: {number} -> {name!r} is not a scenario; known: {', '.join(sorted(out))}")
    for name in {inbound, *numbers.values()}:  # inbound calls bring no variables
        if fields := _placeholders(out[name].instructions):
            raise ProfileError(f"{source} [scenario.{name}]: answers inbound calls but its instructions need "
                               f"variable(s) {', '.join(fields)}; remove the {{placeholders}}")
    return ScenarioSet(out, dict(numbers), inbound, source)


def _placeholders(template: str) -> list[str]:
    try:
        return sorted({f for _, f, _, _ in string.Formatter().parse(template) if f})
    except ValueError:
        return ["(unbalanced braces)"]


def _scenario(name: str, raw: dict[str, Any], where: str, others: set[str]) -> Scenario:
    known = (*_SCALARS, *PROFILE_KEYS, *_MODE_KEYS)
    for key, value in raw.items():
        if key not in known:
            raise ProfileError(f"{where}: unknown key {key!r}; known keys are {', '.join(known)}")
        if key in _SCALARS and not isinstance(value, _SCALARS[key]):
            raise ProfileError(f"{where}: {key!r} must be a {_SCALARS[key].__name__}, not {type(value).__name__}")
    mode = raw.get("mode", "assistant")
    if mode not in MODES:
        raise ProfileError(f"{where}: mode {mode!r} must be one of {', '.join(MODES)}")
    if raw.get("on_machine", "hangup") not in ("voicemail", "hangup"):
        raise ProfileError(f"{where}: on_machine must be \"voicemail\" or \"hangup\"")
    if raw.get("on_machine") == "voicemail" and not raw.get("voicemail"):
        raise ProfileError(f"{where}: on_machine = \"voicemail\" needs a voicemail = \"...\" message")
    if (events_url := raw.get("events_url")) and (fault := url_fault(events_url, ("https", "http"))):
        raise ProfileError(f"{where}: events_url = {events_url!r} is not an http(s) URL: {fault}")
    overlay = {k: raw[k] for k in PROFILE_KEYS if k in raw}
    profile_from_data(overlay, where)  # the profile's own validator: types, eagerness, E.164 allow-list
    for table in ("turn_detection", "turn_policy", "tools", "transfer", "transcription"):
        if table in overlay and not isinstance(overlay[table], dict):
            raise ProfileError(f"{where}: {table!r} must be a table")
    menu = None
    if mode == "ivr":
        menu = parse_menu(raw.get("menu"), where, others)
    elif "menu" in raw:
        raise ProfileError(f"{where}: 'menu' needs mode = \"ivr\"")
    facts = raw.get("facts", {})
    if not isinstance(facts, dict) or not all(isinstance(v, str) for v in facts.values()):
        raise ProfileError(f"{where}: 'facts' must be a table of strings, like facts.hours = \"9 to 5\"")
    csr_raw = raw.get("csr", {})
    if not isinstance(csr_raw, dict):
        raise ProfileError(f"{where}: 'csr' must be a table")
    csr_fields = {f.name: f.type for f in dataclasses.fields(CsrSettings)}
    for key, value in csr_raw.items():
        if key not in csr_fields:
            raise ProfileError(f"{where} [csr]: unknown key {key!r}; known keys are {', '.join(csr_fields)}")
        if type(value).__name__ != csr_fields[key]:
            raise ProfileError(f"{where} [csr]: {key!r} must be a {csr_fields[key]}, not {type(value).__name__}")
    scalars = {k: raw[k] for k in _SCALARS if k in raw}
    return Scenario(name=name, **scalars, overlay=overlay, menu=menu, facts=tuple(facts.items()),
                    csr=CsrSettings(**csr_raw), source=where)


def load_scenario_set(path: str | None = None, setting: str = "LLC_SCENARIOS") -> ScenarioSet:
    """Load ``path`` or the bundled scenarios file."""
    if path:
        try:
            return parse_scenario_file(Path(path).read_text(encoding="utf-8"), path)
        except OSError as exc:
            raise ProfileError(f"{setting}={path!r} cannot be read ({exc.strerror}); fix the path or unset it") from None
    text = resources.files("llc.profiles").joinpath(BUNDLED).read_text(encoding="utf-8")
    return parse_scenario_file(text, f"<built-in {BUNDLED}>")
