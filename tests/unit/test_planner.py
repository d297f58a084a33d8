"""The stream planner gives back the slot of a ticket it spent when planning is cut short."""

from __future__ import annotations

from types import SimpleNamespace

import trio

from llc.call.planner import StreamPlanner
from llc.core.ticket import TICKET_PARAM, TicketBook


class SlowRouter:
    """The inbound lookup (a CRM, a database) takes long; the caller hangs up meanwhile."""

    def __init__(self) -> None:
        self.entered = trio.Event()

    async def inbound_for(self, call_sid: str, params: dict[str, str]) -> None:
        self.entered.set()
        await trio.sleep_forever()


async def test_a_cancel_between_spending_the_ticket_and_the_plan_frees_the_slot() -> None:
    tickets = TicketBook(ttl_s=60)
    token = tickets.issue(trio.current_time(), "CA1")
    router = SlowRouter()
    planner = StreamPlanner(tickets, router, warm=None, dialer=SimpleNamespace(calls={}),  # type: ignore[arg-type]  # stubs
                            admission=True, from_number=None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(planner.plan, "CA1", {TICKET_PARAM: token})
        await router.entered.wait()
        assert tickets.admitted == 1  # the ticket is spent, the slot taken
        nursery.cancel_scope.cancel()
    assert tickets.admitted == 0
