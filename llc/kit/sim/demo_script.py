"""A caller script for `llc-phone demo --scenario NAME --script FILE`: your own scenario, played
against the simulator the way the built-in demos are.

The file is TOML, kept apart from the scenarios file (the server never reads it)::

    called = "+15550100050"          # the number dialled: [numbers] picks the scenario
    caller = "+15550100051"
    caller_says = ["Hi, a table for four on Friday?", "Yes please, for Ann."]
    agent_says = ["Friday at seven is free. Shall I book it?", "Booked. See you Friday!"]
    greets = false                   # true: the scenario speaks first (a greeting)

    [[tool_calls]]                   # the simulated model calls a tool instead of its reply N
    reply = 0
    name = "check_availability"
    arguments = { day = "Friday", party_size = 4 }
    says_after = "Let me see... Friday at seven is free."

What the simulated model "hears" is ``caller_says`` (its transcripts); what it answers is
``agent_says`` in order, a tool call taking the place of reply ``reply``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from llc.kit.sim.fake_caller import CallerTurn
from llc.kit.sim.fake_openai import ToolCallScript
from llc.kit.sim.modes import ModeScript


class ScriptError(Exception):
    """The script cannot be played; the message names the file, the key and the fix."""


def load_script(path: Path, scenario: str) -> ModeScript:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScriptError(f"{path}: cannot read the demo script ({exc.strerror or exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScriptError(f"{path}: not valid TOML ({exc})") from exc
    says, replies = _strings(data, "caller_says", path), _strings(data, "agent_says", path)
    if not says:
        raise ScriptError(f"{path}: caller_says is empty; give what the caller says, one string per turn")
    calls: dict[int, ToolCallScript] = {}
    for i, entry in enumerate(data.get("tool_calls", [])):
        where = f"{path}: tool_calls[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(entry.get("reply"), int):
            raise ScriptError(f"{where} needs name (a tool) and reply (the reply it replaces, from 0)")
        arguments = entry.get("arguments", {})
        if not isinstance(arguments, dict):
            raise ScriptError(f"{where}: arguments must be a table, like arguments = {{ day = \"Friday\" }}")
        calls[entry["reply"]] = ToolCallScript(entry["name"], _plain(arguments), reply_after=entry.get("says_after"))
    return ModeScript(scenario, str(data.get("called", "")), str(data.get("caller", "+15550100099")),
                      turns=[CallerTurn(text) for text in says], replies=replies or ["Goodbye!"],
                      user_transcripts=says, tool_calls=calls, wait_first_reply=bool(data.get("greets", False)))


def _strings(data: dict[str, Any], key: str, path: Path) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ScriptError(f"{path}: {key} must be a list of strings, like {key} = [\"Hello?\"]")
    return value


def _plain(value: Any) -> Any:
    """TOML tables as plain dicts (JSON for the model's arguments)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
