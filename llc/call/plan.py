"""A call's plan: what the call is, decided once its stream's ``start`` is known.

The shell runs a call from (transport, plan): the planner (assembled by the server) admits
the stream by its ticket, picks the scenario and claims the warm session; the bridge then
only carries it out. A refusal is a plain string, said in the log and the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol

from llc.core.record import CallRecord
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


class CallPlanner(Protocol):
    async def plan(self, record: CallRecord, params: dict[str, str], t0: float) -> CallPlan | str:
        """The plan for the stream that just started, or why it is refused (closed 1008).

        Fills in the record's numbers and scenario; ``t0`` is the call's start on Trio's clock.
        """
