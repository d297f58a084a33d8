"""Scripted callers for each inbound mode, and a runner that plays one end to end offline.

Each script dials the number the bundled scenarios file maps to its mode, speaks and presses
keys (DTMF) like a person would, while the fake OpenAI answers from a matching script (its
tool calls included). The runner starts the fake OpenAI, the fake Twilio REST API (so a
transfer really redirects the call), the real server with a database, and returns what was
stored: the call record, messages and tickets. `llc-phone demo --scenario NAME` (which prints it:
llc/kit/demo.py) and the tests use it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from llc.app import Server, build_server, serve
from llc.config import Settings
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, CallResult, FakeCaller
from llc.kit.sim.fake_openai import FakeOpenAI, FakeOpenAIConfig, ToolCallScript
from llc.kit.sim.fake_twilio import FakeCall, FakeTwilio
from llc.profile import load_profile

SALES = "+15550102001"


@dataclass
class ModeScript:
    scenario: str
    called: str  # the number dialled: [numbers] in scenarios.toml picks the scenario
    caller: str
    turns: list[CallerTurn]
    replies: list[str]  # the fake model's lines, in order
    user_transcripts: list[str]  # what the fake model "hears", per speech turn
    tool_calls: dict[int, ToolCallScript] = field(default_factory=dict)  # response index -> tool
    wait_first_reply: bool = True  # the scenario greets first


SCRIPTS: dict[str, ModeScript] = {
    "ivr": ModeScript(
        "ivr", "+15550100020", "+15550100031",
        turns=[CallerTurn("", dtmf="0"), CallerTurn("Sales, please.")],
        replies=["Welcome to Acme. Say sales, reception, or orders and support.",
                 "Sales, reception, or orders and support?"],
        user_transcripts=["Sales, please."],
        tool_calls={2: ToolCallScript("route_call", {"choice": "sales"}, reply_after="Transferring you now.")},
    ),
    "receptionist": ModeScript(
        "receptionist", "+15550100021", "+15550100032",
        turns=[CallerTurn("Are you open on Saturday?"), CallerTurn("Can I leave a message for the service team?")],
        replies=["Acme front desk, how can I help?", "Yes, on Saturdays we are open ten to one."],
        user_transcripts=["Are you open on Saturday?", "Can I leave a message for the service team? I'm Dana Fox."],
        tool_calls={2: ToolCallScript("take_message", {
            "name": "Dana Fox", "number": "+15550107777", "reason": "dishwasher repair quote",
            "callback_time": "tomorrow morning"}, reply_after="Thanks Dana, I have passed that on.")},
    ),
    "csr": ModeScript(
        "csr", "+15550100022", "+15550100001",  # Ann Lee in the sample data (llc-phone db seed)
        turns=[CallerTurn("Hi, where is my blender?"), CallerTurn("And the spare jug I got is the wrong size.")],
        replies=["Anything else?"],
        user_transcripts=["Hi, where is my blender?", "And the spare jug I got is the wrong size."],
        tool_calls={
            0: ToolCallScript("get_orders", {}, reply_after="Your Blender Pro shipped and arrives on the seventh."),
            1: ToolCallScript("create_ticket", {"subject": "Spare jug wrong size", "details": "Order A1002"},
                              reply_after="I have opened a ticket for you."),
        },
        wait_first_reply=False,
    ),
}


@dataclass
class ModeRun:
    record: dict[str, Any]  # as stored in the database
    caller: CallResult
    twilio_call: FakeCall
    messages: list[dict[str, Any]]
    tickets: list[dict[str, Any]]
    openai_errors: list[dict[str, Any]]


async def run_mode(name: str, *, db_url: str = ":memory:", script: ModeScript | None = None,
                   settings: dict[str, Any] | None = None, ttfb_ms: int = 50, silence_ms: int = 200,
                   log_level: str = "WARNING", watch: Callable[[Server], Awaitable[None]] | None = None) -> ModeRun:
    """Play ``SCRIPTS[name]`` (or ``script``) through the real server; bounded to 60 s."""
    script = script or SCRIPTS[name]
    fake = FakeOpenAI(FakeOpenAIConfig(ttfb_ms=ttfb_ms, end_of_turn_silence_ms=silence_ms, replies=list(script.replies),
                                       user_transcripts=list(script.user_transcripts), tool_calls=dict(script.tool_calls)))
    twilio = FakeTwilio()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(fake.serve)
            await nursery.start(twilio.serve)
            opts: dict[str, Any] = {
                "port": 0, "openai_realtime_url": fake.url, "log_level": log_level, "db_url": db_url,
                "twilio_api_url": twilio.url, "twilio_account_sid": twilio.config.account_sid,
                "twilio_auth_token": twilio.config.auth_token, **(settings or {})}
            state = build_server(Settings(**opts), load_profile())
            binds = await nursery.start(serve, state)
            await state.store.seed()
            if watch is not None:  # `llc-phone demo --scenario`: prints the call as it happens
                nursery.start_soon(watch, state)
            caller = FakeCaller(binds[0], CallerScript(turns=script.turns, wait_first_reply=script.wait_first_reply,
                                                       max_call_s=25),
                                from_number=script.caller, to_number=script.called,
                                auth_token=twilio.config.auth_token)  # Twilio signs every webhook
            call = twilio.inbound(caller)
            result = await caller.run()
            with trio.fail_after(5):  # the final record is written right after the stream ends
                while (stored := await state.store.get_call(caller.call_sid)) is None or not stored["ended_at"]:
                    await trio.sleep(0.02)
            messages, tickets = await state.store.list_messages(), await state.store.list_tickets()
            nursery.cancel_scope.cancel()
    state.store.close()
    errors = [e for s in fake.sessions for e in s.errors_sent]
    return ModeRun(stored, result, call, messages, tickets, errors)
