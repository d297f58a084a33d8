"""When the OpenAI session is lost mid-call: renew, reconnect once, or give up. Pure.

A drop gets one new session carrying the same config and a summary of the conversation;
``session_expired`` (the 60-minute cap) gets a new session each time, up to a day's worth;
when no session is left to try, the call plays the apology clip and ends. This object keeps
only the counting and what the replacement session must be told; ``CallCore`` owns the
call's state and asks it what comes next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llc.core import faults


@dataclass
class SessionRecovery:
    max_reconnects: int = faults.MAX_RECONNECTS
    max_renewals: int = faults.MAX_RENEWALS
    drops: int = 0
    renewals: int = 0
    expired: bool = False  # session_expired seen: the coming close is the 60-minute cap
    resume: faults.Resume | None = None  # what the replacement session gets, until it is live

    def next_session(self, code: int | None, reason: str) -> tuple[Literal["dropped", "session_expired"], str] | None:
        """``(why, note)`` for a replacement session after a close, or None when none is left."""
        if self.expired or reason == "session_expired":
            if self.renewals >= self.max_renewals:
                return None
            self.renewals += 1
            self.expired = False
            return "session_expired", "session_expired"
        if self.drops >= self.max_reconnects:
            return None
        self.drops += 1
        return "dropped", f"dropped (code {code})"

    def take_resume(self) -> faults.Resume | None:
        """What a session that just went live is told (once), or None for a first session."""
        resume, self.resume = self.resume, None
        return resume
