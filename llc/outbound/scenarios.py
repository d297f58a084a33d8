"""Outbound scenarios from TOML: the per-call prompt, and what to do on an answering machine.

Loaded once at start-up like the profile, so a bad file fails with the file, scenario and key
instead of on the first call.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from llc.core.outbound import OnMachine, render
from llc.profile import ProfileError


@dataclass(frozen=True)
class Scenario:
    name: str
    instructions: str = ""
    machine_detection: bool = False
    on_machine: OnMachine = "hangup"
    voicemail: str = ""

    def prompt(self, base: str, variables: Mapping[str, str]) -> str:
        """The profile's prompt plus this scenario's lines, variables filled in."""
        extra = render(self.instructions.strip(), variables, f"scenario {self.name!r} instructions")
        return "\n\n".join(p for p in (base.strip(), extra) if p)

    def voicemail_text(self, variables: Mapping[str, str]) -> str:
        return render(self.voicemail.strip(), variables, f"scenario {self.name!r} voicemail")


def parse_scenarios(text: str, source: str) -> dict[str, Scenario]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML ({exc})") from None
    table = data.get("scenario", {})
    if not isinstance(table, dict) or not table:
        raise ProfileError(f"{source}: no [scenario.NAME] tables; add at least [scenario.default]")
    out: dict[str, Scenario] = {}
    for name, raw in table.items():
        where = f"{source} [scenario.{name}]"
        if not isinstance(raw, dict):
            raise ProfileError(f"{where}: must be a table")
        out[name] = _scenario(name, raw, where)
    return out


def _scenario(name: str, raw: dict[str, Any], where: str) -> Scenario:
    kinds = {"instructions": str, "machine_detection": bool, "on_machine": str, "voicemail": str}
    for key, value in raw.items():
        if key not in kinds:
            raise ProfileError(f"{where}: unknown key {key!r}; known keys are {', '.join(kinds)}")
        if not isinstance(value, kinds[key]):
            raise ProfileError(f"{where}: {key!r} must be a {kinds[key].__name__}, not {type(value).__name__}")
    if raw.get("on_machine", "hangup") not in ("voicemail", "hangup"):
        raise ProfileError(f"{where}: on_machine must be \"voicemail\" or \"hangup\"")
    if raw.get("on_machine") == "voicemail" and not raw.get("voicemail"):
        raise ProfileError(f"{where}: on_machine = \"voicemail\" needs a voicemail = \"...\" message")
    return Scenario(name=name, **raw)


def load_scenarios(path: str | None = None) -> dict[str, Scenario]:
    if path:
        try:
            return parse_scenarios(Path(path).read_text(encoding="utf-8"), path)
        except OSError as exc:
            raise ProfileError(f"LLC_OUTBOUND_SCENARIOS={path!r} cannot be read ({exc.strerror}); fix the path") from None
    text = resources.files("llc.profiles").joinpath("outbound.toml").read_text(encoding="utf-8")
    return parse_scenarios(text, "<built-in outbound.toml>")
