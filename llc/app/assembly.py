"""The server, assembled from settings: ``build_server`` wires the parts; ``llc.app.run.serve`` runs them.

Each part gets only what it needs: a call gets ``CallDeps`` and the planner, the dialer the
TwiML builder, the planner the ticket book, router, warm registry and dialer. The ``Server``
(``llc.web.server``) is what the routes are registered with.
"""

from __future__ import annotations

from functools import partial

from llc.call.deps import CallDeps
from llc.call.planner import StreamPlanner
from llc.call.recording import recordings_from
from llc.config import Settings
from llc.core.dialect import dialect
from llc.core.liveness import LivenessPolicy
from llc.core.ratelimit import TokenBucket
from llc.core.ticket import TicketBook
from llc.events.delivery import EventDelivery
from llc.events.signing import Signer
from llc.modes.runtime import ScenarioRouter
from llc.modes.scenario import load_scenario_set
from llc.openai.connect import connect_openai
from llc.openai.prewarm import WarmRegistry
from llc.outbound.dialer import Dialer
from llc.profile import Profile
from llc.store import open_store
from llc.store.durable import DurableRecords
from llc.store.pending import PendingRecords
from llc.ticker import Ticker
from llc.tools.modes import ALL_TOOLS
from llc.tools.registry import ToolRegistry
from llc.twilio.control import TwilioCallControl
from llc.twilio.stream_twiml import StreamTwiml
from llc.web.server import Server
from llc.ws.hub import Hub


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
    durable = DurableRecords(store, PendingRecords(s.pending_records_path))
    events = None
    if s.events_url and s.webhook_secret:
        store.events_on = True
        events = EventDelivery(store, s.events_url, Signer(s.webhook_secret))
    return Server(s, profile, tools, scenario_set, store, durable, tickets, twiml,
                  warm, router, dialer, planner, deps, TokenBucket(s.calls_per_minute, now=-1e9),  # starts full
                  public_url=s.public_url, events=events)
