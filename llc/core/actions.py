"""Actions the pure core asks the shell to perform, in order. Plain data, compared in tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import orjson


def json_text(event: dict[str, Any]) -> str:
    """A client event serialised once, as ToOpenAI/ToTwilio carry it."""
    return orjson.dumps(event).decode()


@dataclass(frozen=True, slots=True)
class ToOpenAI:
    """Send this already-serialised client event on the OpenAI leg."""

    text: str


@dataclass(frozen=True, slots=True)
class ToTwilio:
    """Send this already-serialised frame on the Twilio leg."""

    text: str


@dataclass(frozen=True, slots=True)
class ConnectOpenAI:
    """Open (or claim) the OpenAI session for this call: the stream has started."""


@dataclass(frozen=True, slots=True)
class EndCall:
    """Finish the call: cancel its nursery, close both legs, write the record."""

    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Log:
    """Something a person should read; ``fields`` become structured log keys."""

    level: str  # "debug" | "info" | "warning" | "error"
    msg: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunTool:
    """Run a tool as a task in the call's nursery; report back with ``CallCore.on_tool_result``."""

    call_id: str
    name: str
    arguments: str  # JSON text as the model sent it


@dataclass(frozen=True, slots=True)
class Timer:
    """Call ``CallCore.on_timer(key)`` after ``delay_s``; timers die with the call."""

    key: str
    delay_s: float


@dataclass(frozen=True, slots=True)
class ReconnectOpenAI:
    """The OpenAI session is gone: open a new one (the core resends the session and a summary)."""

    why: str  # "dropped" | "session_expired"


@dataclass(frozen=True, slots=True)
class PlayApology:
    """Play the bundled apology clip to the caller, then a mark named ``mark``."""

    mark: str


Action = Union[ToOpenAI, ToTwilio, ConnectOpenAI, EndCall, Log, RunTool, Timer, ReconnectOpenAI, PlayApology]
