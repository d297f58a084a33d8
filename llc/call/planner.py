"""The server's ``CallPlanner``: admit a stream by its ticket, then say what its call is.

Both directions end here once the stream's ``start`` is known: the ticket (``llc.core.ticket``)
admits the stream for its CallSid once and names its warm session; an outbound call takes
the scenario it was dialled with, an inbound one the scenario its webhook chose by the
number called. The warm session (prewarm or pre-accept) is claimed by the call itself, racing a cold connect.
"""

from __future__ import annotations

from functools import partial

import trio

from llc.call.plan import CallPlan, Finished
from llc.core.refusal import Refusal
from llc.core.ticket import TICKET_PARAM, TicketBook
from llc.modes.runtime import ScenarioRouter
from llc.openai.prewarm import WarmRegistry
from llc.outbound.dialer import Dialer


class StreamPlanner:
    def __init__(self, tickets: TicketBook, router: ScenarioRouter, warm: WarmRegistry, dialer: Dialer, *,
                 admission: bool, from_number: str | None) -> None:
        self.tickets, self.router, self.warm, self.dialer = tickets, router, warm, dialer
        self.admission = admission  # LLC_STREAM_ADMISSION: off lets a stream in without a ticket
        self.from_number = from_number or ""

    async def plan(self, call_sid: str, params: dict[str, str]) -> CallPlan | Refusal:
        admitted = self.tickets.admit(params.get(TICKET_PARAM), call_sid, trio.current_time(), enforce=self.admission)
        if admitted.refusal is not None:
            return admitted.refusal
        try:
            return await self._plan(call_sid, params, admitted.warm)
        except BaseException:
            # Cancelled (the caller hung up during the lookup) or failed between spending the
            # ticket and handing the plan over: the caller of plan() never saw an admitted call,
            # so nobody else would give its slot back.
            self.tickets.release(call_sid)
            raise

    async def _plan(self, call_sid: str, params: dict[str, str], warm_name: str | None) -> CallPlan:
        outbound = self.dialer.calls.get(call_sid)
        customer = None
        if outbound is not None:
            scenario, spec = outbound.scenario, outbound.spec
            caller, called = self.from_number, outbound.to
        else:
            inbound = await self.router.inbound_for(call_sid, params)
            scenario, spec, customer = inbound.scenario, inbound.spec, inbound.customer
            caller, called = inbound.caller, inbound.called
        profile = scenario.profile(self.router.profile)
        mode = self.router.mode(scenario, profile, call_sid, caller, called, customer)
        warm = partial(self.warm.claim, warm_name) if warm_name else None
        return CallPlan(spec, profile.turn_policy, profile.greeting or None, mode, warm,
                        scenario=scenario.name, caller=caller, called=called)

    def finish(self, call_sid: str, admitted: bool) -> Finished | None:
        """The call is over: free its stream slot; outbound: Twilio's statuses and AnsweredBy."""
        if admitted:
            self.tickets.release(call_sid)
        call = self.dialer.calls.get(call_sid)
        return Finished(list(call.statuses), call.answered_by) if call is not None else None
