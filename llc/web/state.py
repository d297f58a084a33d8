"""Server-wide state shared by the routes: settings, the profile and the calls in progress."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from llc.call.bridge import CallBridge
from llc.config import Settings
from llc.core.admission import AdmissionBook
from llc.core.ratelimit import TokenBucket
from llc.core.record import CallRecord
from llc.openai.prewarm import WarmRegistry
from llc.outbound.dialer import Dialer
from llc.outbound.scenarios import Scenario, load_scenarios
from llc.profile import Profile
from llc.tools.builtin import BUILTIN
from llc.tools.registry import ToolRegistry

# Finished calls kept in memory for `llc calls` until the persistent store lands.
RECENT_RECORDS = 200


@dataclass
class ServerState:
    settings: Settings
    profile: Profile
    public_url: str | None = None  # PUBLIC_URL, or the bound address when it is unset (local runs)
    tools: ToolRegistry = field(default_factory=lambda: BUILTIN)
    active: set[CallBridge] = field(default_factory=set)
    records: deque[CallRecord] = field(default_factory=lambda: deque(maxlen=RECENT_RECORDS))
    calls_total: int = 0
    # Set on SIGTERM/SIGINT (llc.web.drain): /twiml turns new calls away, active calls finish.
    draining: bool = False
    # Set when the fast media listener runs (LLC_MEDIA_PORT): its bound port, and the stream
    # URL TwiML gives on a local run (behind a proxy PUBLIC_URL's /media already routes there).
    media_port: int | None = None
    stream_url: str | None = None
    # Warm OpenAI sessions (prewarm, pre-accept): serve() runs the registry in the server nursery.
    warm: WarmRegistry = field(init=False)
    scenarios: dict[str, Scenario] = field(init=False)
    dialer: Dialer = field(init=False)
    # One-time stream tokens (docs/security.md) and the POST /calls rate limit.
    admission: AdmissionBook = field(init=False)
    calls_bucket: TokenBucket = field(init=False)

    def __post_init__(self) -> None:
        self.public_url = self.public_url or self.settings.public_url
        self.admission = AdmissionBook(self.settings.stream_token_ttl_s)
        self.calls_bucket = TokenBucket(self.settings.calls_per_minute, now=-1e9)  # starts full
        self.warm = WarmRegistry(self.settings)
        self.scenarios = load_scenarios(self.settings.outbound_scenarios_path)
        self.dialer = Dialer(self.settings, self.profile, self.warm, tool_schemas=self.tools.schemas())
        self.dialer.admission = self.admission

    @property
    def active_calls(self) -> int:
        return len(self.active)

    def find_record(self, call_sid: str) -> CallRecord | None:
        """The call's record, live or recently finished."""
        for bridge in self.active:
            if bridge.record.call_sid == call_sid:
                return bridge.record
        return next((r for r in reversed(self.records) if r.call_sid == call_sid), None)
