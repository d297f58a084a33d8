"""Actions the pure core asks the shell to perform, in order. Plain data, compared in tests.

``Action`` is a closed union: the shell's one runner (``llc.runner``) matches every member
and ends with ``assert_never``, so a new action type is a type error there, not a silent skip.
``SessionAction`` is the part a warm session (no caller yet) can ask for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, TypeAlias

import orjson

from llc.core.record import EndReason

LogLevel = Literal["debug", "info", "warning", "error"]


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

    reason: EndReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Log:
    """Something a person should read; ``fields`` become structured log keys."""

    level: LogLevel
    msg: str
    fields: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunTool:
    """Run a tool as a task in the call's nursery; report back with ``CallCore.on_tool_result``."""

    call_id: str
    name: str
    arguments: str  # JSON text as the model sent it


class Deadline(Enum):
    """The call's timers that carry nothing but their kind."""

    MAX_CALL_LENGTH = "max_call_length"  # LLC_MAX_CALL_S after the stream started
    APOLOGY_DONE = "apology_done"  # the apology clip's length (and a grace), if its mark never comes back
    PRIMING_GRACE = "priming_grace"  # a claimed warm session's priming reply may hold the greeting this long
    HANGUP_GRACE = "hangup_grace"  # end_call: the goodbye is given this long to be heard


@dataclass(frozen=True, slots=True)
class ToolFiller:
    """A tool still running after ``tool_filler_after_ms``: the agent says a short filler."""

    call_id: str


TimerKey: TypeAlias = Deadline | ToolFiller


@dataclass(frozen=True, slots=True)
class Timer:
    """Call ``CallCore.on_timer(key)`` after ``delay_s``; timers die with the call."""

    key: TimerKey
    delay_s: float


@dataclass(frozen=True, slots=True)
class ReconnectOpenAI:
    """The OpenAI session is gone: open a new one (the core resends the session and a summary)."""

    why: Literal["dropped", "session_expired"]


@dataclass(frozen=True, slots=True)
class PlayApology:
    """Play the bundled apology clip to the caller, then a mark named ``mark``."""

    mark: str


SessionAction: TypeAlias = ToOpenAI | Log
Action: TypeAlias = ToOpenAI | ToTwilio | ConnectOpenAI | EndCall | Log | RunTool | Timer | ReconnectOpenAI | PlayApology
