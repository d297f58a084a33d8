"""A call's scenario at run time: the inbound webhook's choice, and the per-call ``ModeCall``.

``ScenarioRouter`` picks an inbound call's scenario by the number called (on the webhook,
kept until the stream starts) and builds each call's ``ModeCall``: what its tools reach and
how its key presses route. ``ModeCall`` answers with levers (``llc.core.levers``), pure.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson
import trio

from llc.core.levers import Interrupt, Lever, Routed, RunLocalTool, SwitchSession, TellModel
from llc.core.session import SessionSpec
from llc.log import get_logger
from llc.modes.ivr import Decision
from llc.modes.scenario import Scenario, ScenarioSet
from llc.modes.spec import scenario_spec
from llc.profile import Profile
from llc.store import Store

log = get_logger("modes")

RECENT_INBOUND = 1000
# The CSR caller lookup runs inside Twilio's webhook (which gives up at 15 s): past this the
# call is answered with the caller unknown rather than late.
CALLER_LOOKUP_TIMEOUT_S = 1.5


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
    (``CallCore.on_levers`` turns them into actions; a ``Routed`` lever puts the decision in
    the call's record).
    """

    scenario: Scenario
    scenarios: ScenarioSet
    base: Profile
    call_sid: str
    store: Store
    default_voice: str
    tool_schemas: dict[str, dict[str, Any]]
    caller: str = ""
    called: str = ""
    customer: dict[str, Any] | None = None
    transfer_allow: tuple[str, ...] = ()

    @staticmethod
    def _routed(decision: Decision) -> Routed:
        o = decision.option
        return Routed(decision.via, decision.choice, o.action if o else "none",
                      o.target if o and o.action != "hint" else (o.label if o else ""))

    def on_dtmf(self, digit: str) -> list[Lever]:
        """A key press on an IVR menu: stop the agent, then transfer / switch / hint."""
        menu = self.scenario.menu
        if menu is None:
            return []
        decision = menu.decide(digit, "dtmf")
        levers: list[Lever] = [self._routed(decision), Interrupt()]
        o = decision.option
        if o is not None and o.action == "transfer":
            return levers + [RunLocalTool("transfer_call", orjson.dumps({"number": o.target}).decode())]
        if o is not None and o.action == "scenario":
            levers += self.switch_to(o.target)
        return levers + [TellModel(decision.hint)]

    def on_spoken_choice(self, choice: str) -> tuple[Decision, list[Lever]]:
        """``route_call`` from the model: the decision, and the levers that record it and, when
        one is due, switch the session."""
        menu = self.scenario.menu
        if menu is None:
            return Decision(None, choice, "speech"), []
        decision = menu.decide(choice, "speech")
        o = decision.option
        if o is not None and o.action == "scenario":
            return decision, [self._routed(decision), *self.switch_to(o.target)]
        return decision, [self._routed(decision)]

    def switch_to(self, name: str) -> list[Lever]:
        """Same call, same session: the other scenario's prompt, tools and allow-list."""
        scenario = self.scenarios.scenarios[name]
        profile, spec = scenario_spec(scenario, self.base, self.default_voice, self.tool_schemas, self.customer)
        self.scenario, self.transfer_allow = scenario, profile.transfer_allow
        return [SwitchSession(name, spec, profile.turn_policy)]


class ScenarioRouter:
    """Chooses each inbound call's scenario (by the number called) and builds a call's mode."""

    def __init__(self, profile: Profile, scenarios: ScenarioSet, store: Store, default_voice: str,
                 tool_schemas: dict[str, dict[str, Any]]) -> None:
        self.profile, self.scenarios, self.store = profile, scenarios, store
        self.default_voice, self.tool_schemas = default_voice, tool_schemas
        self.inbound: OrderedDict[str, InboundCall] = OrderedDict()

    async def plan_inbound(self, call_sid: str, caller: str, called: str) -> InboundCall:
        """The webhook's part: scenario by called number, caller ID lookup (CSR), the session spec."""
        scenario = self.scenarios.for_number(called)
        customer = None
        if scenario.mode == "csr" and scenario.csr.identify_by_caller_id and caller:
            with trio.move_on_after(CALLER_LOOKUP_TIMEOUT_S) as lookup:
                try:
                    customer = await self.store.customer_by_phone(caller)
                except Exception as exc:  # noqa: BLE001  a database outage must not stop the call being answered
                    log.error("caller lookup failed; the call goes on with the caller unknown: %s. Check the "
                              "database (LLC_DB_URL)", exc, extra={"call_sid": call_sid})
            if lookup.cancelled_caught:
                log.warning("caller lookup took over %g s; the call goes on with the caller unknown. Check the "
                            "database (LLC_DB_URL)", CALLER_LOOKUP_TIMEOUT_S, extra={"call_sid": call_sid})
        _, spec = scenario_spec(scenario, self.profile, self.default_voice, self.tool_schemas, customer)
        plan = InboundCall(scenario, caller, called, customer, spec)
        if call_sid:
            self.inbound[call_sid] = plan
            while len(self.inbound) > RECENT_INBOUND:
                self.inbound.popitem(last=False)
        return plan

    async def inbound_for(self, call_sid: str, params: dict[str, str]) -> InboundCall:
        """What the webhook decided for this call; decided now when no webhook was seen here
        (a restart, another instance)."""
        plan = self.inbound.pop(call_sid, None)
        if plan is None:
            plan = await self.plan_inbound("", params.get("caller", ""), params.get("called", ""))
        return plan

    def mode(self, scenario: Scenario, profile: Profile, call_sid: str, caller: str, called: str,
             customer: dict[str, Any] | None) -> ModeCall:
        """The call's mode in ``scenario`` (``profile``: its overlay of the base profile, already
        built by the caller): what its tools reach and how its keys route."""
        return ModeCall(scenario, self.scenarios, self.profile, call_sid, self.store, self.default_voice,
                        self.tool_schemas, caller, called, customer, profile.transfer_allow)
