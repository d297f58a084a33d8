"""The server, assembled from settings: ``build_server`` wires the parts (``llc.web.app.serve`` runs them).

Each part gets only what it needs: a call gets ``CallDeps`` and the planner, the dialer the
TwiML builder, the planner the ticket book, router, warm registry and dialer. The ``Server``
object is the composition root the routes are registered from; nothing below ``web/``
imports it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from functools import partial

from llc.call.bridge import CallBridge, CallDeps
from llc.call.planner import StreamPlanner
from llc.call.recording import recordings_from
from llc.call.tracker import CallTracker
from llc.config import Settings
from llc.core.dialect import dialect
from llc.core.liveness import LivenessPolicy
from llc.core.ratelimit import TokenBucket
from llc.core.record import CallRecord
from llc.core.ticket import TicketBook
from llc.modes.runtime import ScenarioRouter
from llc.modes.scenario import Scenario, ScenarioSet, load_scenario_set
from llc.openai.connect import connect_openai
from llc.openai.prewarm import WarmRegistry
from llc.outbound.dialer import Dialer
from llc.profile import Profile
from llc.ticker import Ticker
from llc.store import Store, open_store
from llc.store.pending import PendingRecords
from llc.tools.modes import ALL_TOOLS
from llc.tools.registry import ToolRegistry
from llc.twilio.control import TwilioCallControl
from llc.twilio.stream_twiml import StreamTwiml
from llc.ws.hub import Hub


@dataclass
class Server:
    settings: Settings
    profile: Profile
    tools: ToolRegistry
    scenario_set: ScenarioSet
    store: Store
    pending: PendingRecords  # records the database could not take yet
    tickets: TicketBook  # one per call: admits its stream, names its warm session
    twiml: StreamTwiml
    warm: WarmRegistry  # warm OpenAI sessions (prewarm, pre-accept), run in the server nursery
    router: ScenarioRouter
    dialer: Dialer
    planner: StreamPlanner
    deps: CallDeps
    calls_bucket: TokenBucket  # POST /calls rate limit
    calls: CallTracker = field(default_factory=CallTracker)
    public_url: str | None = None  # LLC_PUBLIC_URL, or the bound address on a local run
    admin_url: str | None = None  # the admin listener (/metrics, /debug), once bound
    # Set on SIGTERM/SIGINT (llc.web.drain): /twiml turns new calls away, active calls finish.
    draining: bool = False

    @property
    def scenarios(self) -> dict[str, Scenario]:
        return self.scenario_set.scenarios

    @property
    def call_base_url(self) -> str | None:
        """Where Twilio reaches this instance: LLC_INSTANCE_URL behind a load balancer, else the public URL."""
        return self.settings.instance_url or self.public_url

    # Shortcuts to the call tracker, for health, callbacks and tests.
    @property
    def active(self) -> set[CallBridge]:
        return self.calls.active

    @property
    def records(self) -> deque[CallRecord]:
        return self.calls.records

    @property
    def active_calls(self) -> int:
        """Admitted calls only: a socket that never started, or was refused, holds no line."""
        return self.calls.admitted

    @property
    def calls_total(self) -> int:
        return self.calls.total

    def find_record(self, call_sid: str) -> CallRecord | None:
        return self.calls.find_record(call_sid)


def build_server(settings: Settings, profile: Profile, tools: ToolRegistry = ALL_TOOLS) -> Server:
    """Wire the server's parts from settings; opens nothing (``serve`` does)."""
    s = settings
    scenario_set = load_scenario_set(s.scenarios_path, "LLC_SCENARIOS")
    scenario_set.check_tools(set(tools.tools))  # a scenario naming a missing tool fails now
    schemas = tools.schemas()
    store = open_store(s.db_url, instance=s.instance or "", timeout_s=s.db_timeout_s)
    tickets = TicketBook(s.stream_token_ttl_s)
    twiml = StreamTwiml(tickets)
    warm = WarmRegistry(s)
    router = ScenarioRouter(profile, scenario_set, store, s.openai_voice, schemas)
    dialer = Dialer(s, profile, warm, twiml, tool_schemas=schemas)
    planner = StreamPlanner(tickets, router, warm, dialer, admission=s.stream_admission, from_number=s.twilio_from_number)
    liveness = LivenessPolicy(s.start_timeout_s, s.twilio_idle_s, s.openai_ping_s, s.openai_pong_timeout_s)
    deps = CallDeps(dialect(s.openai_api_shape), partial(connect_openai, s), tools, TwilioCallControl(s),
                    s.max_frame_bytes, s.max_call_s, s.apology_clip, liveness, s.openai_connect_timeout_s, s.warm_wait_s,
                    s.fallback_number,
                    recordings=recordings_from(s.record_audio, s.recordings_dir, s.recordings_keep_days),
                    hub=Hub(), ticker=Ticker(liveness.tick_s))
    return Server(s, profile, tools, scenario_set, store, PendingRecords(s.pending_records_path), tickets, twiml,
                  warm, router, dialer, planner, deps, TokenBucket(s.calls_per_minute, now=-1e9),  # starts full
                  public_url=s.public_url)
