"""A call's plan: what the call is, decided once its stream's ``start`` is known.

The shell runs a call from (transport, plan): the planner (assembled by the server) admits
the stream by its ticket, picks the scenario and claims the warm session; the bridge then
only carries it out, and hands the plan's values to the call's core (which writes the record).
A refusal is a ``Refusal`` value, said in the log and the record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from llc.core.refusal import Refusal
from llc.core.session import SessionSpec
from llc.core.turns import TurnPolicy
from llc.modes.runtime import ModeCall
from llc.openai.prewarm import WarmSession


@dataclass(frozen=True)
class CallPlan:
    spec: SessionSpec
    policy: TurnPolicy
    greeting: str | None
    mode: ModeCall  # the scenario: its tools' reach and how key presses route
    # Claims the call's configured warm session (None: it failed; connect cold). The bridge
    # bounds the wait and races a cold connect against it; None here: connect cold at once.
    warm: Callable[[], Awaitable[WarmSession | None]] | None = None
    scenario: str = ""  # the scenario's name, for the record
    caller: str = ""  # the caller (inbound) or our caller ID (outbound)
    called: str = ""  # the number called


@dataclass(frozen=True)
class Finished:
    """What the planner knows of a call once it is over: an outbound call's Twilio statuses and AMD answer."""

    statuses: list[dict[str, str]] = field(default_factory=list)
    answered_by: str = ""


class CallPlanner(Protocol):
    async def plan(self, call_sid: str, params: dict[str, str]) -> CallPlan | Refusal:
        """The plan for the stream that just started, or why it is refused (closed 1008)."""

    def finish(self, call_sid: str, admitted: bool) -> Finished | None:
        """The call is over: its stream slot is free again; what an outbound call's statuses said."""
