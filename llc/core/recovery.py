"""When the OpenAI session is lost mid-call: renew, reconnect once, or apologise. Pure.

Part of CallCore (a mixin over its state): a drop gets one new session carrying the same
config and a summary of the conversation; ``session_expired`` (the 60-minute cap) gets a new
session too; when no session can be had, the caller hears the apology clip and the call ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llc.core import faults
from llc.core.actions import Action, EndCall, Log, PlayApology, ReconnectOpenAI, Timer, ToTwilio
from llc.core.playout import Playout
from llc.core.turns import ResponseGate
from llc.twilio import frames as tw

if TYPE_CHECKING:
    from llc.core.call import CallCore


class SessionRecovery:
    """CallCore's answers to a lost OpenAI session (mixed into CallCore; ``self`` is the call)."""

    def on_openai_closed(self: "CallCore", code: int | None, reason: str) -> list[Action]:
        """OpenAI's socket is gone: renew after the 60-minute cap, reconnect once after a drop,
        else apologise and hang up."""
        if self.phase == "ended" or self._ending is not None:
            return []
        detail = f"OpenAI closed the session (code {code}) {reason}".strip()
        if self._hangup_after is not None:
            return [EndCall("openai_closed", detail)]  # the goodbye is under way: nothing to rescue
        if self._expired or reason == "session_expired":
            if self._renewals < faults.MAX_RENEWALS:
                self._renewals += 1
                return self._reconnect("session_expired", "session_expired")
        elif self._drops < faults.MAX_RECONNECTS:
            self._drops += 1
            return self._reconnect("dropped", f"dropped (code {code})")
        return self.on_reconnect_failed(f"{detail}; no reconnect left")

    def _reconnect(self: "CallCore", why: str, note: str) -> list[Action]:
        """Forget the lost session's in-flight state; the next session gets the same config + a summary."""
        self.phase = "connecting"  # caller audio is held (bounded) until the new session is live
        self._expired = False
        self._session_created = False
        self.gate = ResponseGate()
        # Marks of the old session's audio may still echo: names keep counting, so none collides.
        self.playout = Playout(self.policy.mark_every_ms, first_mark=self.playout.next_mark)
        self._muted_responses.clear()
        self._muted_items.clear()
        self._awaiting_first_audio = None
        self._drop_running_tools()
        self._resume = faults.summary(self.record.transcript)
        self.record.reconnects.append(note)
        return [Log("warning", f"OpenAI session lost ({note}): opening a new one with the conversation so far",
                    {"why": why}), ReconnectOpenAI(why)]

    def on_reconnect_failed(self: "CallCore", detail: str) -> list[Action]:
        """No usable OpenAI session: the caller hears the apology clip, then the call ends."""
        if self.phase == "ended" or self._ending is not None:
            return []
        self._ending = ("openai_lost", detail)
        self.phase = "apology"
        self._drop_running_tools()  # their results have no session to go to
        log = Log("error", "OpenAI is gone for good: apologising and hanging up", {"detail": detail})
        if not self.stream_sid:
            return [log, EndCall(*self._ending)]
        return [log, ToTwilio(tw.clear(self.stream_sid)), PlayApology(faults.APOLOGY_MARK),
                Timer("apology_done", self.apology_s + faults.APOLOGY_GRACE_S)]

    def _drop_running_tools(self: "CallCore") -> None:
        """Tools still running belong to a lost session: recorded as such, their results ignored."""
        for rec in self._tools_running.values():
            rec.error = rec.error or "the OpenAI session was lost before the tool finished"
        self._tools_running.clear()
