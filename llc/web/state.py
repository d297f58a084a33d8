"""Server-wide state shared by the routes: settings, the profile and the calls in progress."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from llc.call.bridge import CallBridge
from llc.config import Settings
from llc.core.record import CallRecord
from llc.profile import Profile

# Finished calls kept in memory for `llc calls` until the persistent store lands.
RECENT_RECORDS = 200


@dataclass
class ServerState:
    settings: Settings
    profile: Profile
    public_url: str | None = None  # PUBLIC_URL, or the bound address when it is unset (local runs)
    active: set[CallBridge] = field(default_factory=set)
    records: deque[CallRecord] = field(default_factory=lambda: deque(maxlen=RECENT_RECORDS))
    calls_total: int = 0
    # Set on SIGTERM/SIGINT (llc.web.drain): /twiml turns new calls away, active calls finish.
    draining: bool = False

    @property
    def active_calls(self) -> int:
        return len(self.active)
