"""The tuned profile: prompt, voice, greeting, turn detection, transcription, loaded from TOML.

Kept out of code so tuning never means editing Python, and so a known-good profile can be
snapshotted and restored. A bad file (a wrong type, or a key it does not know: a typo) fails at
start-up with the file, key and reason. Which file is live: ``live_profile_path``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from llc.core.session import VOICES, NoiseReduction, SessionSpec, TurnDetection
from llc.core.turns import TurnPolicy, first_turn_spec

_EAGERNESS = ("low", "medium", "high", "auto")
_VAD_TYPES = ("semantic_vad", "server_vad")
# near_field suits a handset held to the mouth (most phone calls); far_field a speakerphone or a
# room; off sends the caller's audio untouched.
_NOISE: dict[str, NoiseReduction | None] = {"near_field": "near_field", "far_field": "far_field", "off": None}
NOISE_REDUCTION = tuple(_NOISE)


# Every key a profile may hold: top-level name -> the keys of its table (() for a plain value).
KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "instructions": (),
    "voice": (),
    "greeting": (),
    "noise_reduction": (),
    "turn_detection": ("type", "eagerness", "create_response", "interrupt_response"),
    "transcription": ("model",),
    "turn_policy": ("first_eagerness", "later_eagerness", "switch_after_responses", "tool_filler_after_ms",
                    "filler_instructions", "tool_timeout_s", "hangup_grace_s", "mark_every_ms"),
    "tools": ("lean", "full"),
    "transfer": ("allow",),
}
# The live profile, when LLC_PROFILE is unset: this file in the working directory if present.
DEFAULT_LIVE = "profile.toml"


class ProfileError(Exception):
    """The profile file is unusable; the message names the file, key and fix."""


@dataclass(frozen=True)
class Profile:
    instructions: str = ""
    voice: str = ""
    greeting: str = ""
    turn_detection: TurnDetection = field(default_factory=TurnDetection)
    transcription_model: str = ""
    noise_reduction: str = "near_field"
    turn_policy: TurnPolicy = field(default_factory=TurnPolicy)
    transfer_allow: tuple[str, ...] = ()
    source: str = "<built-in>"

    def session_spec(self, default_voice: str, tool_schemas: dict[str, dict[str, Any]] | None = None) -> SessionSpec:
        """The session a call starts with (first-turn eagerness, lean tools from ``tool_schemas``)."""
        spec = SessionSpec(
            voice=self.voice or default_voice,
            instructions=self.instructions.strip() or None,
            turn_detection=self.turn_detection,
            transcription_model=self.transcription_model or None,
            noise_reduction=_NOISE[self.noise_reduction],
        )
        return first_turn_spec(spec, self.turn_policy, tool_schemas or {})

    @property
    def prompt_tokens(self) -> int:
        """Rough token estimate (~4 characters a token): prompt size drives per-turn latency."""
        return (len(self.instructions.strip()) + 3) // 4


def _expect(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any) -> Any:
    value = data.get(key, default)
    # bool is an int in Python; a flag written where a number belongs is still a mistake.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int, float))):
        name = kind.__name__ if isinstance(kind, type) else "number"
        raise ProfileError(f"{where}: {key!r} must be a {name}, not {type(value).__name__}")
    return value


def parse_profile(text: str, source: str) -> Profile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML ({exc})") from None
    return profile_from_data(data, source)


def _known_only(data: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    """A key the profile does not know is a typo (``vocie``, ``mark_evry_ms``): never skip it silently."""
    unknown = [key for key in data if key not in known]
    if unknown:
        raise ProfileError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; known keys are {', '.join(known)}")


def profile_from_data(data: dict[str, Any], source: str) -> Profile:
    """Validate already-parsed profile keys (a profile file, or a scenario's overlay of one)."""
    _known_only(data, tuple(KNOWN_KEYS), source)
    for table, keys in KNOWN_KEYS.items():
        if keys and isinstance(data.get(table), dict):
            _known_only(data[table], keys, f"{source} [{table}]")
    td_data = _expect(data, "turn_detection", dict, source, {})
    where = f"{source} [turn_detection]"
    td = TurnDetection(
        type=_expect(td_data, "type", str, where, "semantic_vad"),
        eagerness=_expect(td_data, "eagerness", str, where, "high"),
        create_response=_expect(td_data, "create_response", bool, where, True),
        interrupt_response=_expect(td_data, "interrupt_response", bool, where, True),
    )
    if td.type not in _VAD_TYPES:
        raise ProfileError(f"{where}: type {td.type!r} must be one of {', '.join(_VAD_TYPES)}")
    if td.eagerness not in _EAGERNESS:
        raise ProfileError(f"{where}: eagerness {td.eagerness!r} must be one of {', '.join(_EAGERNESS)}")
    voice = _expect(data, "voice", str, source, "")
    if voice and voice not in VOICES:
        raise ProfileError(f"{source}: voice {voice!r} is not a known voice; use one of {', '.join(VOICES)}")
    noise = _expect(data, "noise_reduction", str, source, "near_field")
    if noise not in NOISE_REDUCTION:
        raise ProfileError(f"{source}: noise_reduction {noise!r} must be one of {', '.join(NOISE_REDUCTION)}")
    tr = _expect(data, "transcription", dict, source, {})
    policy = _turn_policy(data, source)
    transfer = _expect(data, "transfer", dict, source, {})
    allow = _expect(transfer, "allow", list, f"{source} [transfer]", [])
    if not all(isinstance(n, str) and n.startswith("+") for n in allow):
        raise ProfileError(f"{source} [transfer]: 'allow' must list E.164 numbers like \"+15551234567\"")
    return Profile(
        instructions=_expect(data, "instructions", str, source, ""),
        voice=voice,
        greeting=_expect(data, "greeting", str, source, ""),
        turn_detection=td,
        transcription_model=_expect(tr, "model", str, f"{source} [transcription]", ""),
        noise_reduction=noise,
        turn_policy=policy,
        transfer_allow=tuple(allow),
        source=source,
    )


def _turn_policy(data: dict[str, Any], source: str) -> TurnPolicy:
    tp = _expect(data, "turn_policy", dict, source, {})
    tools = _expect(data, "tools", dict, source, {})
    where, d = f"{source} [turn_policy]", TurnPolicy()
    for key in ("first_eagerness", "later_eagerness"):
        value = tp.get(key, getattr(d, key))
        if value not in _EAGERNESS:
            raise ProfileError(f"{where}: {key} {value!r} must be one of {', '.join(_EAGERNESS)}")
    lists = {}
    for key in ("lean", "full"):
        names = _expect(tools, key, list, f"{source} [tools]", list(getattr(d, f"{key}_tools")))
        if not all(isinstance(n, str) for n in names):
            raise ProfileError(f"{source} [tools]: {key!r} must be a list of tool names")
        lists[key] = tuple(names)
    mark_every_ms = _expect(tp, "mark_every_ms", int, where, d.mark_every_ms)
    if mark_every_ms < 0:
        raise ProfileError(f"{where}: mark_every_ms must be 0 (a mark after every audio delta) or more, not {mark_every_ms}")
    return TurnPolicy(
        first_eagerness=tp.get("first_eagerness", d.first_eagerness),
        later_eagerness=tp.get("later_eagerness", d.later_eagerness),
        switch_after_responses=_expect(tp, "switch_after_responses", int, where, d.switch_after_responses),
        lean_tools=lists["lean"],
        full_tools=lists["full"],
        tool_filler_after_ms=_expect(tp, "tool_filler_after_ms", int, where, d.tool_filler_after_ms),
        filler_instructions=_expect(tp, "filler_instructions", str, where, d.filler_instructions),
        tool_timeout_s=float(_expect(tp, "tool_timeout_s", (int, float), where, d.tool_timeout_s)),
        hangup_grace_s=float(_expect(tp, "hangup_grace_s", (int, float), where, d.hangup_grace_s)),
        mark_every_ms=mark_every_ms,
    )


def check_tools(profile: Profile, known: set[str]) -> None:
    """Every tool the profile names must exist: fail at start-up, not mid-call."""
    policy = profile.turn_policy
    missing = sorted({*policy.lean_tools, *policy.full_tools} - known)
    if missing:
        raise ProfileError(
            f"{profile.source} [tools]: unknown tool(s) {', '.join(missing)}; known tools: {', '.join(sorted(known))}"
        )


def live_profile_path(setting: str | None) -> str | None:
    """The one rule for which profile is live: LLC_PROFILE when set, else ``./profile.toml`` when it
    exists, else None (the bundled default). `llc-phone serve`, `llc-phone doctor` and `llc-phone snapshot` all use it."""
    if setting:
        return setting
    return DEFAULT_LIVE if Path(DEFAULT_LIVE).is_file() else None


def load_profile(path: str | None = None) -> Profile:
    """Load ``path`` (LLC_PROFILE), or the bundled default profile."""
    if path:
        p = Path(path)
        if not p.is_file():
            raise ProfileError(f"LLC_PROFILE={path!r}: no such file; point it at a profile .toml or unset it")
        return parse_profile(p.read_text(encoding="utf-8"), str(p))
    text = resources.files("llc.profiles").joinpath("default.toml").read_text(encoding="utf-8")
    return parse_profile(text, "llc/profiles/default.toml")
