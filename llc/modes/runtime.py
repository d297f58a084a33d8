"""A call's scenario at run time, and the bridge's ``prepare`` hook that picks it.

``ScenarioRouter.prepare`` runs once the stream's ``start`` is known, before any OpenAI
socket: it picks the scenario (the outbound call's, else the one the webhook chose for the
called number), sets the session spec, greeting and turn policy, attaches the per-call
``ModeCall`` for tools and key presses, and claims the warm session (prewarm or pre-accept)
by its one-time token. ``ModeCall.on_dtmf`` is pure: the core's state in, actions out.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from llc.config import Settings
from llc.core.levers import Interrupt, Lever, RunLocalTool, SwitchSession, TellModel
from llc.core.record import CallRecord
from llc.core.session import SessionSpec
from llc.log import get_logger
from llc.modes.ivr import Decision
from llc.modes.scenario import Scenario, ScenarioSet
from llc.modes.spec import scenario_spec
from llc.outbound.dialer import TOKEN_PARAM
from llc.profile import Profile
from llc.store import Store

if TYPE_CHECKING:
    from llc.call.bridge import CallBridge
    from llc.openai.prewarm import WarmRegistry, WarmSession
    from llc.outbound.dialer import Dialer

log = get_logger("modes")

RECENT_INBOUND = 1000


@dataclass
class InboundCall:
    """What the webhook decided for an inbound call, kept until its stream starts."""

    scenario: Scenario
    caller: str
    called: str
    customer: dict[str, Any] | None
    spec: SessionSpec
    created: float = field(default_factory=time.time)


@dataclass
class ModeCall:
    """One call's scenario: what its tools reach (store, caller, customer) and how keys route.

    It never holds the call: key presses and spoken choices come in, levers go out
    (``CallCore.on_levers`` turns them into actions). Routes go into the call's record.
    """

    scenario: Scenario
    scenarios: ScenarioSet
    base: Profile
    record: CallRecord
    store: Store
    default_voice: str
    tool_schemas: dict[str, dict[str, Any]]
    caller: str = ""
    called: str = ""
    customer: dict[str, Any] | None = None
    transfer_allow: tuple[str, ...] = ()
    t0: float = 0.0  # the call's start on the clock ``now`` is given in

    @property
    def call_sid(self) -> str:
        return self.record.call_sid

    def _route(self, decision: Decision, now: float) -> None:
        o = decision.option
        self.record.routes.append({
            "at": round(now - self.t0, 3), "via": decision.via, "choice": decision.choice,
            "action": o.action if o else "none", "target": o.target if o and o.action != "hint" else (o.label if o else "")})

    def on_dtmf(self, digit: str, now: float) -> list[Lever]:
        """A key press on an IVR menu: stop the agent, then transfer / switch / hint."""
        menu = self.scenario.menu
        if menu is None:
            return []
        decision = menu.decide(digit, "dtmf")
        self._route(decision, now)
        levers: list[Lever] = [Interrupt()]
        o = decision.option
        if o is not None and o.action == "transfer":
            return levers + [RunLocalTool("transfer_call", orjson.dumps({"number": o.target}).decode())]
        if o is not None and o.action == "scenario":
            levers += self.switch_to(o.target)
        return levers + [TellModel(decision.hint)]

    def on_spoken_choice(self, choice: str, now: float) -> tuple[Decision, list[Lever]]:
        """``route_call`` from the model: the decision, and a session switch if one is due."""
        menu = self.scenario.menu
        if menu is None:
            return Decision(None, choice, "speech"), []
        decision = menu.decide(choice, "speech")
        self._route(decision, now)
        o = decision.option
        if o is not None and o.action == "scenario":
            return decision, self.switch_to(o.target)
        return decision, []

    def switch_to(self, name: str) -> list[Lever]:
        """Same call, same session: the other scenario's prompt, tools and allow-list."""
        scenario = self.scenarios.scenarios[name]
        profile, spec = scenario_spec(scenario, self.base, self.default_voice, self.tool_schemas, self.customer)
        self.scenario, self.transfer_allow = scenario, profile.transfer_allow
        self.record.scenario = f"{self.record.scenario}>{name}"
        return [SwitchSession(name, spec, profile.turn_policy)]


class ScenarioRouter:
    """Chooses each call's scenario (both directions) and hands it its warm session."""

    def __init__(self, settings: Settings, profile: Profile, scenarios: ScenarioSet, store: Store,
                 warm: "WarmRegistry", dialer: "Dialer", tool_schemas: dict[str, dict[str, Any]]) -> None:
        self.settings, self.profile, self.scenarios, self.store = settings, profile, scenarios, store
        self.warm, self.dialer, self.tool_schemas = warm, dialer, tool_schemas
        self.inbound: OrderedDict[str, InboundCall] = OrderedDict()

    async def plan_inbound(self, call_sid: str, caller: str, called: str) -> InboundCall:
        """The webhook's part: scenario by called number, caller ID lookup (CSR), the session spec."""
        scenario = self.scenarios.for_number(called)
        customer = None
        if scenario.mode == "csr" and scenario.csr.identify_by_caller_id and caller:
            try:
                customer = await self.store.customer_by_phone(caller)
            except Exception as exc:  # a database outage must not stop the call being answered
                log.error("caller lookup failed; the call goes on without it: %s", exc, extra={"call_sid": call_sid})
        _, spec = scenario_spec(scenario, self.profile, self.settings.openai_voice, self.tool_schemas, customer)
        plan = InboundCall(scenario, caller, called, customer, spec)
        if call_sid:
            self.inbound[call_sid] = plan
            while len(self.inbound) > RECENT_INBOUND:
                self.inbound.popitem(last=False)
        return plan

    async def prepare(self, bridge: "CallBridge") -> "WarmSession | None":
        """CallBridge hook: this call's scenario, and its warm session if it has one."""
        rec, params = bridge.record, bridge.core.params
        outbound = self.dialer.calls.get(rec.call_sid)
        customer = None
        if outbound is not None:
            scenario, spec = outbound.scenario, outbound.spec
            rec.from_number, rec.to_number = self.settings.twilio_from_number or "", outbound.to
        else:
            plan = self.inbound.pop(rec.call_sid, None)
            if plan is None:  # no webhook seen here (a restart, another instance): decide now
                plan = await self.plan_inbound("", params.get("caller", ""), params.get("called", ""))
            scenario, spec, customer = plan.scenario, plan.spec, plan.customer
            rec.from_number, rec.to_number = plan.caller, plan.called
        rec.scenario = scenario.name
        profile = scenario.profile(self.profile)
        mode = ModeCall(scenario, self.scenarios, self.profile, rec, self.store, self.settings.openai_voice,
                        self.tool_schemas, rec.from_number, rec.to_number, customer, profile.transfer_allow,
                        bridge.core.t0)
        bridge.core.on_plan(spec, profile.turn_policy, profile.greeting or None, mode)
        bridge.mode = mode
        token = params.get(TOKEN_PARAM)
        if not token:
            return None
        return await self.warm.claim(token, rec.call_sid)

    def finish(self, record: Any) -> None:
        """Outbound: copy Twilio's status callbacks and AnsweredBy into the record."""
        call = self.dialer.calls.get(record.call_sid)
        if call is not None:
            record.statuses = list(call.statuses)
            record.answered_by = record.answered_by or call.answered_by
