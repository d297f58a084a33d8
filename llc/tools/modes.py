"""The inbound modes' tools: route_call (IVR), take_message (Receptionist), get_orders and
create_ticket (CSR). Each reaches the database through the call's ``ModeCall`` (``ctx.mode``),
and the database through the store's worker threads: the call's audio never waits on it.
"""

from __future__ import annotations

from typing import Any

from llc.tools.builtin import BUILTIN, transfer_call
from llc.tools.registry import ToolContext, ToolRegistry

# Every tool a scenario may name: the built-ins plus the modes' own.
ALL_TOOLS = ToolRegistry(dict(BUILTIN.tools))
NO_SCENARIO = {"ok": False, "error": "this line has no scenario data for that; offer to take a message"}


@ALL_TOOLS.add(
    "route_call",
    "Route the caller to the menu choice they said (e.g. 'sales', 'reception').",
    {"type": "object", "properties": {"choice": {"type": "string", "description": "the menu choice, as on the menu"}},
     "required": ["choice"]},
)
async def route_call(ctx: ToolContext, choice: str) -> dict[str, Any]:
    mode = ctx.mode
    if mode is None or mode.scenario.menu is None:
        return NO_SCENARIO
    options = mode.scenario.menu.options
    decision, levers = mode.on_spoken_choice(choice)
    await ctx.apply(levers)  # the route goes into the record whatever it was (a switch too, when due)
    option = decision.option
    if option is None:
        labels = ", ".join(o.label for o in options)
        return {"ok": False, "error": f"{choice!r} is not on the menu; the choices are: {labels}"}
    if option.action == "transfer":
        return await transfer_call(ctx, option.target)
    if option.action == "scenario":
        return {"ok": True, "connected_to": option.label, "next": "You now have a new role; greet the caller in it."}
    return {"ok": True, "next": option.target}


@ALL_TOOLS.add(
    "take_message",
    "Store a message for a callback. Ask for each field first; call once you have them all.",
    {"type": "object", "properties": {
        "name": {"type": "string", "description": "the caller's name"},
        "number": {"type": "string", "description": "the number to call back"},
        "reason": {"type": "string", "description": "what it is about, in a few words"},
        "callback_time": {"type": "string", "description": "when to call back, as the caller said it"}},
     "required": ["name", "number", "reason"]},
)
async def take_message(ctx: ToolContext, name: str, number: str, reason: str, callback_time: str = "") -> dict[str, Any]:
    mode = ctx.mode
    if mode is None:
        return NO_SCENARIO
    number = number.strip() or mode.caller
    message_id = await mode.store.add_message(call_sid=ctx.call_sid, scenario=mode.scenario.name, caller_id=mode.caller,
                                              name=name.strip(), number=number, reason=reason.strip(),
                                              callback_time=callback_time.strip())
    return {"ok": True, "message_id": message_id}


@ALL_TOOLS.add(
    "get_orders",
    "The identified caller's recent orders with status and delivery date.",
    {"type": "object", "properties": {"order_id": {"type": "string", "description": "one order, if the caller named it"}}},
)
async def get_orders(ctx: ToolContext, order_id: str = "") -> dict[str, Any]:
    mode = ctx.mode
    if mode is None:
        return NO_SCENARIO
    if mode.customer is None:
        # Orders are only ever those of the number calling: no lookups of other people's orders.
        return {"ok": False, "error": "the caller is not identified by caller ID; offer to open a ticket"}
    orders = await mode.store.orders_for(mode.customer["id"])
    if order_id:
        orders = [o for o in orders if o["id"].lower() == order_id.strip().lower()]
        if not orders:
            return {"ok": False, "error": f"no order {order_id} for this caller"}
    keep = ("id", "item", "status", "placed_at", "eta")
    return {"ok": True, "orders": [{k: o[k] for k in keep} for o in orders[: mode.scenario.csr.max_orders]]}


@ALL_TOOLS.add(
    "create_ticket",
    "Open a support ticket for the caller's problem; returns the ticket number to tell them.",
    {"type": "object", "properties": {
        "subject": {"type": "string", "description": "one line"},
        "details": {"type": "string", "description": "what the caller reported"}},
     "required": ["subject"]},
)
async def create_ticket(ctx: ToolContext, subject: str, details: str = "") -> dict[str, Any]:
    mode = ctx.mode
    if mode is None:
        return NO_SCENARIO
    customer_id = mode.customer["id"] if mode.customer else ""
    ticket_id = await mode.store.add_ticket(call_sid=ctx.call_sid, customer_id=customer_id,
                                            subject=subject.strip(), details=details.strip())
    return {"ok": True, "ticket": ticket_id}
