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
from llc.config_vars import in_the_clear
from llc.core.dialect import dialect
from llc.core.liveness import LivenessPolicy
from llc.core.ratelimit import TokenBucket
from llc.core.ticket import TicketBook
from llc.events.delivery import EventDelivery
from llc.events.signing import MAKE_SECRET, Signer
from llc.modes.runtime import ScenarioRouter
from llc.modes.scenario import ScenarioSet, load_scenario_set
from llc.openai.connect import connect_openai
from llc.openai.prewarm import WarmRegistry
from llc.outbound.dialer import Dialer
from llc.profile import Profile, ProfileError
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


def events_urls(s: Settings, scenario_set: ScenarioSet) -> dict[str, str]:
    """Scenarios' own events URLs (by scenario name). Refused like LLC_EVENTS_URL: without the secret, or in the clear off this machine."""
    urls = {name: sc.events_url for name, sc in scenario_set.scenarios.items() if sc.events_url}
    for name, url in urls.items():
        where = f"{scenario_set.source} [scenario.{name}]"
        if not s.webhook_secret:
            raise ProfileError(f"{where}: events_url is set but LLC_WEBHOOK_SECRET is not: events are sent signed; "
                               f"make one with {MAKE_SECRET}")
        if in_the_clear(url) and not s.local_only:
            raise ProfileError(f"{where}: events_url = {url!r} is not https: call records would cross the network "
                               "in the clear; give the receiver's https:// address, or LLC_LOCAL_ONLY=on for an experiment")
    return urls


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
    events = None
    urls = events_urls(s, scenario_set)
    if (s.events_url or urls) and s.webhook_secret:  # LLC_EVENTS_URL without it was refused at load
        store.events_on = True
        # Without LLC_EVENTS_URL only the scenarios naming their own URL make events.
        store.events_scenarios = None if s.events_url else frozenset(urls)
        events = EventDelivery(store, s.events_url, Signer(s.webhook_secret), scenario_urls=urls)
    sip = SipDeps(SipControl(s.openai_api_url, s.openai_api_key), sideband_connector(s), tools, s.openai_model,
                  s.max_call_s, s.openai_ping_s, s.openai_pong_timeout_s, profile.turn_policy.tool_timeout_s)
    inbox = SipInbox(WebhookGuard(s.openai_webhook_secret) if s.openai_webhook_secret else None)
    return Server(s, profile, tools, scenario_set, store, durable, tickets, twiml,
                  warm, router, dialer, planner, deps, TokenBucket(s.calls_per_minute, now=-1e9),  # starts full
                  sip, inbox, public_url=s.public_url, http_tools=http_tools, events=events)
