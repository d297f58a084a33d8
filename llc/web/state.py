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
from llc.modes.runtime import ScenarioRouter
from llc.modes.scenario import Scenario, ScenarioSet, load_scenario_set
from llc.modes.tools import ALL_TOOLS
from llc.profile import Profile
from llc.store.pending import PendingRecords
from llc.store import Store, open_store
from llc.tools.registry import ToolRegistry

# Finished calls kept in memory for a fast find_record; every record also goes to the store.
RECENT_RECORDS = 200


@dataclass
class ServerState:
    settings: Settings
    profile: Profile
    public_url: str | None = None  # PUBLIC_URL, or the bound address when it is unset (local runs)
    tools: ToolRegistry = field(default_factory=lambda: ALL_TOOLS)
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
    scenario_set: ScenarioSet = field(init=False)
    dialer: Dialer = field(init=False)
    store: Store = field(init=False)
    pending: PendingRecords = field(init=False)  # records the database could not take yet
    router: ScenarioRouter = field(init=False)
    # One-time stream tokens (docs/security.md) and the POST /calls rate limit.
    admission: AdmissionBook = field(init=False)
    calls_bucket: TokenBucket = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.public_url = self.public_url or s.public_url
        self.admission = AdmissionBook(s.stream_token_ttl_s)
        self.calls_bucket = TokenBucket(s.calls_per_minute, now=-1e9)  # starts full
        self.warm = WarmRegistry(s)
        self.scenario_set = load_scenario_set(s.scenarios_path or s.outbound_scenarios_path,
                                              "LLC_SCENARIOS" if s.scenarios_path else "LLC_OUTBOUND_SCENARIOS")
        self.scenario_set.check_tools(set(self.tools.tools))  # a scenario naming a missing tool fails now
        self.scenarios = self.scenario_set.scenarios
        self.dialer = Dialer(s, self.profile, self.warm, tool_schemas=self.tools.schemas())
        self.dialer.admission = self.admission
        self.store = open_store(s.db_url)
        self.pending = PendingRecords(s.pending_records_path)
        self.router = ScenarioRouter(s, self.profile, self.scenario_set, self.store, self.warm, self.dialer,
                                     self.tools.schemas())

    @property
    def call_base_url(self) -> str | None:
        """Where Twilio reaches this instance: LLC_INSTANCE_URL behind a load balancer, else PUBLIC_URL."""
        return self.settings.instance_url or self.public_url

    @property
    def active_calls(self) -> int:
        return len(self.active)

    def find_record(self, call_sid: str) -> CallRecord | None:
        """The call's record, live or recently finished."""
        for bridge in self.active:
            if bridge.record.call_sid == call_sid:
                return bridge.record
        return next((r for r in reversed(self.records) if r.call_sid == call_sid), None)
