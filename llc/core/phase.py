"""A call's lifecycle: every phase and every legal move between them, in one place. Pure.

Why a table (h11's rule): a call's phase decides what a frame means (caller audio is held
before the session is live, relayed once it is), whether a tool's result still has somewhere
to go, and whether the call is already on its way out. When each handler moved the phase on
its own, the moves were only knowable by reading them all; here they are data, and a move the
table does not list raises ``IllegalTransition``: a bug in the caller, never a silent state.

::

    WAITING ─start─▶ CONNECTING ─socket open─▶ CONFIGURING ─session.updated─▶ LIVE
                       ▲   │                        │                          │
                       │   └─no session at start────┤                          │
                       │      (LLC_FALLBACK_NUMBER) │                          │
                       │   HANDING_OFF ◀────────────┘                          │
                       └──────── the session was lost: reconnect / renew ──────┘
    CONNECTING, CONFIGURING, LIVE ─no session left─▶ APOLOGY (the clip plays) ─▶ ENDED
    any phase ─the call ends─▶ ENDED

``HANDING_OFF``: OpenAI could not be reached at call start and Twilio is redirecting the call
to a person; the stream's ``stop`` that follows is that hand-off, not the caller hanging up.
If Twilio refuses the redirect, the call goes back to ``CONNECTING`` and the apology follows.
``ENDED`` is final: moving there again is allowed (many things can end a call at once, the
first one says why), moving anywhere else is not.
"""

from __future__ import annotations

from enum import Enum

from llc.core.actions import EndCall
from llc.core.record import EndReason


class Phase(Enum):
    WAITING = "waiting"  # the media socket is open; Twilio's ``start`` has not come
    CONNECTING = "connecting"  # opening (or claiming) an OpenAI session; caller audio is held
    CONFIGURING = "configuring"  # session.update sent, session.updated not yet seen
    LIVE = "live"  # audio flows both ways
    HANDING_OFF = "handing_off"  # no session at start: Twilio redirects the call to a person
    APOLOGY = "apology"  # no session left: the apology clip plays, then the call ends
    ENDED = "ended"


TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.WAITING: frozenset({Phase.CONNECTING, Phase.ENDED}),
    Phase.CONNECTING: frozenset({Phase.CONFIGURING, Phase.HANDING_OFF, Phase.APOLOGY, Phase.ENDED}),
    Phase.CONFIGURING: frozenset({Phase.LIVE, Phase.CONNECTING, Phase.APOLOGY, Phase.ENDED}),
    Phase.LIVE: frozenset({Phase.CONNECTING, Phase.APOLOGY, Phase.ENDED}),
    Phase.HANDING_OFF: frozenset({Phase.CONNECTING, Phase.ENDED}),
    Phase.APOLOGY: frozenset({Phase.ENDED}),
    Phase.ENDED: frozenset({Phase.ENDED}),
}

# The phases in which the call is on its way out: nothing new starts.
ENDING = frozenset({Phase.HANDING_OFF, Phase.APOLOGY, Phase.ENDED})


class IllegalTransition(RuntimeError):
    """A move the table does not allow: a bug in the code that asked for it."""

    def __init__(self, current: Phase, new: Phase) -> None:
        super().__init__(f"a call cannot move from {current.value} to {new.value}")
        self.current, self.new = current, new


def advance(current: Phase, new: Phase) -> Phase:
    """``new`` when the table allows ``current`` → ``new``; else raises ``IllegalTransition``."""
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(current, new)
    return new


class Lifecycle:
    """The call's phase, and how the call will end once it is on its way out (held once, here).

    In ``APOLOGY`` and ``HANDING_OFF`` the ending is already decided but not yet final: the
    apology clip plays, or Twilio redirects the call to a person.
    """

    def __init__(self) -> None:
        self.phase = Phase.WAITING
        self._ending: EndCall | None = None

    def move(self, phase: Phase) -> None:
        self.phase = advance(self.phase, phase)

    @property
    def ending(self) -> bool:
        """On its way out: nothing new starts (no reconnect, no second apology)."""
        return self.phase in ENDING

    def apologise(self, reason: EndReason, detail: str) -> EndCall:
        """No OpenAI session is left: the apology plays, then the call ends with ``reason``."""
        self.move(Phase.APOLOGY)
        self._ending = EndCall(reason, detail)
        return self._ending

    def apology_over(self) -> list[EndCall]:
        """The clip has played (its mark came back, or its deadline passed): the call ends now."""
        return [self._ending] if self._ending is not None and self.phase is Phase.APOLOGY else []

    def hand_off(self, detail: str) -> None:
        """No OpenAI session at call start, and Twilio is redirecting the call to a person."""
        self.move(Phase.HANDING_OFF)
        self._ending = EndCall(EndReason.OPENAI_UNREACHABLE, detail)

    def hand_off_failed(self) -> None:
        """Twilio refused the redirect: back to having no session (the apology follows)."""
        self.move(Phase.CONNECTING)
        self._ending = None

    def end(self, reason: EndReason, detail: str) -> EndCall | None:
        """The call ends: how the record should say it did, or None when it had ended already.

        A call being handed to a person ends as that hand-off, whatever ended its stream (Twilio
        sends ``stop`` as it redirects). A caller who hangs up during the apology did hang up.
        """
        if self.phase is Phase.ENDED:
            return None
        handed = self._ending if self.phase is Phase.HANDING_OFF else None
        self.move(Phase.ENDED)
        self._ending = None
        return handed or EndCall(reason, detail)
