"""What a scenario's mode may ask of a live call, as data. Pure.

A mode (the IVR's menu, llc/modes) never holds the call: it answers a key press or a spoken
choice with levers, and ``CallCore.on_levers`` turns them into actions. So a mode is tested by
comparing lists of levers, and the call's state has one owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeAlias

from llc.core.session import SessionSpec
from llc.core.turns import TurnPolicy


@dataclass(frozen=True, slots=True)
class Routed:
    """An IVR decision, for the record: how the caller chose, what, and where it led."""

    via: str  # "dtmf" | "speech"
    choice: str
    action: str  # the option's action, "none" when the choice matched nothing
    target: str


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Stop the agent as a barge-in does (a key press while it reads the menu)."""


@dataclass(frozen=True, slots=True)
class RunLocalTool:
    """Run a tool on the call's own decision: recorded, its output not sent to the model."""

    name: str
    arguments: str  # JSON text


@dataclass(frozen=True, slots=True)
class TellModel:
    """A text hint as a user item, then a response about it (gated like every create)."""

    text: str


@dataclass(frozen=True, slots=True)
class SwitchSession:
    """Move the live call to another scenario: one full session.update, later-turn settings."""

    scenario: str
    spec: SessionSpec
    policy: TurnPolicy


Lever: TypeAlias = Routed | Interrupt | RunLocalTool | TellModel | SwitchSession


class KeyHandler(Protocol):
    """A call's mode as the core sees it: key presses in, levers out."""

    def on_dtmf(self, digit: str) -> list[Lever]: ...
