"""What the routes see of the server: its parts, as ``llc.app.build_server`` wired them.

The ``Server`` object is what the HTTP routes and the media way in are registered with; it is
built (``llc.app.assembly``) and run (``llc.app.run``) above this layer, and nothing below
``web/`` imports it.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field

import trio

from llc.call.bridge import CallBridge
from llc.call.deps import CallDeps
from llc.call.planner import StreamPlanner
from llc.call.tracker import CallTracker
from llc.config import Settings
from llc.core.ratelimit import TokenBucket
from llc.core.record import CallRecord
from llc.core.ticket import TicketBook
from llc.events.delivery import EventDelivery
from llc.modes.runtime import ScenarioRouter
from llc.modes.scenario import Scenario, ScenarioSet
from llc.openai.prewarm import WarmRegistry
from llc.outbound.dialer import Dialer
from llc.profile import Profile
from llc.sip.call import SipDeps
from llc.sip.inbox import SipInbox
from llc.store import Store
from llc.store.durable import DurableRecords
from llc.store.pending import PendingRecords
from llc.tools.http import HttpTools
from llc.tools.registry import ToolRegistry
from llc.twilio.stream_twiml import StreamTwiml


@dataclass
class Server:
    settings: Settings
    profile: Profile
    tools: ToolRegistry
    scenario_set: ScenarioSet
    store: Store
    durable: DurableRecords  # bounded record writes; the pending file when the database cannot take one
    tickets: TicketBook  # one per call: admits its stream, names its warm session
    twiml: StreamTwiml
    warm: WarmRegistry  # warm OpenAI sessions (prewarm, pre-accept), run in the server nursery
    router: ScenarioRouter
    dialer: Dialer
    planner: StreamPlanner
    deps: CallDeps
    calls_bucket: TokenBucket  # POST /calls rate limit
    sip: SipDeps  # what every SIP call shares (the calls API, the sideband connector)
    sip_inbox: SipInbox  # verified SIP webhooks, on their way to the server nursery
    calls: CallTracker = field(default_factory=CallTracker)
    http_tools: HttpTools | None = None  # the pooled client of the HTTP tools, run in the server nursery
    public_url: str | None = None  # LLC_PUBLIC_URL, or the bound address on a local run
    events: EventDelivery | None = None  # LLC_EVENTS_URL: sends the outbox's call events
    admin_url: str | None = None  # the admin listener (/metrics, /debug), once bound
    # Set on SIGTERM/SIGINT (llc.web.drain): /twiml turns new calls away, active calls finish.
    draining: bool = False
    # Made at start, shown by /healthz: `llc-phone doctor` compares the one LLC_PUBLIC_URL returns with
    # the one on loopback to tell this server from another behind the same proxy or tunnel. No authority.
    nonce: str = field(default_factory=lambda: secrets.token_hex(8))

    @property
    def pending(self) -> PendingRecords:
        """Records the database could not take yet."""
        return self.durable.pending

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

    def expecting_streams(self) -> bool:
        """Tickets are out (calls answered, their streams not yet here): a new stream may be one."""
        return self.tickets.outstanding(trio.current_time()) > 0

    def find_record(self, call_sid: str) -> CallRecord | None:
        return self.calls.find_record(call_sid)
