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
from llc.modes.runtime import ScenarioRouter
from llc.modes.scenario import load_scenario_set
from llc.openai.connect import connect_openai
from llc.openai.prewarm import WarmRegistry
from llc.outbound.dialer import Dialer
from llc.profile import Profile
from llc.sip.call import SipDeps
from llc.sip.control import SipControl
from llc.sip.inbox import SipInbox
from llc.sip.sideband import sideband_connector
from llc.sip.webhook import WebhookGuard
from llc.store import open_store
from llc.store.durable import DurableRecords
from llc.store.pending import PendingRecords
from llc.ticker import Ticker
from llc.tools.declared import with_declared
from llc.tools.http import HttpTools
from llc.tools.loader import load_tools
from llc.tools.registry import ToolRegistry
from llc.twilio.control import TwilioCallControl
from llc.twilio.stream_twiml import StreamTwiml
from llc.web.server import Server
from llc.ws.hub import Hub


def build_server(settings: Settings, profile: Profile, tools: ToolRegistry | None = None) -> Server:
    """Wire the server's parts from settings; opens nothing (``serve`` does).

    ``tools`` defaults to the built-ins; the modules LLC_TOOLS names add theirs (``ToolLoadError``
    is the one line to print when one cannot be loaded)."""
    s = settings
    tools = load_tools(s) if tools is None else load_tools(s, tools)
    scenario_set = load_scenario_set(s.scenarios_path, "LLC_SCENARIOS")
    http_tools = HttpTools(s.webhook_secret)
    tools = with_declared(tools, s, http_tools)  # the file's [tool.NAME]: HTTP tools, MCP servers
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
    sip = SipDeps(SipControl(s.openai_api_url, s.openai_api_key), sideband_connector(s), tools, s.openai_model,
                  s.max_call_s, s.openai_ping_s, s.openai_pong_timeout_s, profile.turn_policy.tool_timeout_s)
    inbox = SipInbox(WebhookGuard(s.openai_webhook_secret) if s.openai_webhook_secret else None)
    return Server(s, profile, tools, scenario_set, store, durable, tickets, twiml,
                  warm, router, dialer, planner, deps, TokenBucket(s.calls_per_minute, now=-1e9),  # starts full
                  sip, inbox, public_url=s.public_url, http_tools=http_tools)
