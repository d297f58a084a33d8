"""Barge-in, the turn switch and async tools through the real server and the simulator."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest
import trio

from llc import metrics
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller
from llc.kit.sim.fake_openai import ToolCallScript
from llc.profile import load_profile
from llc.tools.modes import ALL_TOOLS
from llc.tools.registry import ToolRegistry
from tests.helpers.stack import StackFactory
from tests.helpers.twilio_raw import call_tasks

LONG = "Our opening hours are nine to five on weekdays, ten to two on Saturdays, and we are closed on Sundays and bank holidays."


def profile_with(**policy: object):
    base = load_profile()
    return dataclasses.replace(base, turn_policy=dataclasses.replace(base.turn_policy, **policy))


def bargeins(words: str) -> float:
    return metrics.REGISTRY.get_sample_value("llc_bargeins_total", {"words": words}) or 0.0


# The second case is a cough: the service transcribes the interrupting speech as nothing.
@pytest.mark.parametrize("heard, words", [("Wait, sorry", "yes"), ("", "no")])
async def test_barge_in_stops_agent_audio_and_truncates(start_stack: StackFactory, heard: str, words: str) -> None:
    before = metrics.REGISTRY.get_sample_value("llc_bargein_seconds_count") or 0.0
    counted = bargeins(words)
    stack = await start_stack(replies=[LONG, "Sure, go ahead."], user_transcripts=["Hours?", heard])
    script = CallerScript(turns=[CallerTurn("Hours?"), CallerTurn("Wait, sorry", barge_in_after_ms=1000)], max_call_s=20)
    result = await FakeCaller(stack.base_url, script).run()
    await stack.wait_records(1)
    session, record = stack.fake.sessions[-1], stack.state.records[-1]

    assert session.errors_sent == []  # no cancel_not_active, no bad truncate, nothing
    assert len(result.clears) == 1
    # Nothing of the interrupted reply reaches the caller after the clear: the next media
    # frame is the answer to the barge-in turn, after the caller stopped talking.
    barge_end = result.turns[1].speech_end
    assert barge_end is not None
    assert not [t for t in result.media_times if result.clears[0] < t < barge_end]
    # Talked-over audio that still played: the simulator's VAD onset (2 frames) plus relay.
    assert result.audio_after_clear_ms <= 200
    [truncate] = session.truncates
    [barge] = record.barge_ins
    assert truncate["audio_end_ms"] == barge.heard_ms and 800 <= barge.heard_ms <= 1300
    assert record.transcript[1].interrupted
    assert result.ended_by == "caller_hangup"
    assert metrics.REGISTRY.get_sample_value("llc_bargein_seconds_count") == before + 1
    assert (barge.words, record.barge_ins_without_words) == ((True, 0) if heard else (False, 1))
    with trio.move_on_after(2):  # the metrics take the record just after it is kept
        while bargeins(words) == counted:
            await trio.sleep(0.01)
    assert bargeins(words) == counted + 1


async def test_switch_once_after_first_turn(start_stack: StackFactory) -> None:
    stack = await start_stack()
    turns = [CallerTurn("Hello?"), CallerTurn("Question one"), CallerTurn("Question two")]
    await FakeCaller(stack.base_url, CallerScript(turns=turns, max_call_s=25)).run()
    await stack.wait_records(1)
    session = stack.fake.sessions[-1]
    assert session.errors_sent == []
    updates = [e for e in session.received if e["type"] == "session.update"]
    assert len(updates) == 2
    first, switch = (u["session"] for u in updates)
    assert first["audio"]["input"]["turn_detection"]["eagerness"] == "high"
    assert [t["name"] for t in first["tools"]] == ["end_call"]
    assert switch["audio"]["input"]["turn_detection"]["eagerness"] == "medium"
    assert [t["name"] for t in switch["tools"]] == ["end_call", "transfer_call"]
    order = [e["type"] for e in session.received]
    assert order.index("session.update", 1) > 0 and session.responses >= 3


def slow_registry(seconds: float, state: dict) -> ToolRegistry:
    tools = ToolRegistry(dict(ALL_TOOLS.tools))

    @tools.add("check_order", "Look up an order", {"type": "object", "properties": {"order": {"type": "string"}}})
    async def check_order(ctx, order: str = "") -> dict:  # type: ignore[no-untyped-def]
        state["started"] = trio.current_time()
        try:
            await trio.sleep(seconds)
        except trio.Cancelled:
            state["cancelled"] = True
            raise
        state["finished"] = True
        return {"order": order, "status": "shipped"}

    return tools


async def test_slow_tool_keeps_audio_flowing_and_answers(start_stack: StackFactory) -> None:
    state: dict = {}
    profile = profile_with(lean_tools=("end_call", "check_order"), full_tools=("end_call", "check_order"), tool_filler_after_ms=800)
    stack = await start_stack(
        profile=profile, tools=slow_registry(2.0, state),
        tool_calls={0: ToolCallScript("check_order", {"order": "A17"}, reply_after="Your order A17 has shipped.")},
        replies=["One moment.", "Anything else?"],
    )
    script = CallerTurn("Where is order A17?")
    result = await FakeCaller(stack.base_url, CallerScript(turns=[script], agent_done_silence_ms=2500, max_call_s=20)).run()
    await stack.wait_records(1)
    record, session = stack.state.records[-1], stack.fake.sessions[-1]
    assert state.get("finished") and session.errors_sent == []
    [call] = record.tool_calls
    assert call.name == "check_order" and call.error is None and '"shipped"' in (call.output or "")
    assert call.ms is not None and call.ms >= 1900
    # Caller audio kept reaching OpenAI while the tool ran: ~50 appends a second, no stall.
    tool_start = state["started"]
    during = [e for e in session.received if e["type"] == "input_audio_buffer.append" and tool_start < e["t"] < tool_start + 2.0]
    assert len(during) >= 80
    outputs = [e for e in session.received if e["type"] == "conversation.item.create"]
    assert outputs and outputs[-1]["item"]["type"] == "function_call_output"
    assert any(t.text == "Your order A17 has shipped." for t in record.transcript if t.role == "agent")
    # The filler spoke while the tool ran (agent audio arrived before the tool finished).
    assert [t for t in result.media_times if tool_start < t < tool_start + 1.9]


async def test_hangup_during_tool_cancels_it(start_stack: StackFactory) -> None:
    state: dict = {}
    profile = profile_with(lean_tools=("check_order",), full_tools=("check_order",), tool_filler_after_ms=0)
    stack = await start_stack(profile=profile, tools=slow_registry(30.0, state),
                              tool_calls={0: ToolCallScript("check_order", {"order": "B2"})})
    script = CallerScript(turns=[CallerTurn("Order B2?")], reply_timeout_s=1.0, max_call_s=10)
    with trio.fail_after(15):
        await FakeCaller(stack.base_url, script).run()
        await stack.wait_records(1)
    assert state.get("started") and state.get("cancelled") and not state.get("finished")
    assert call_tasks() == []


async def test_tool_that_raises_or_hangs_reports_an_error_and_the_call_goes_on(start_stack: StackFactory) -> None:
    tools = ToolRegistry(dict(ALL_TOOLS.tools))

    @tools.add("broken", "always fails", {"type": "object", "properties": {}})
    async def broken(ctx) -> dict:  # type: ignore[no-untyped-def]
        raise RuntimeError("database down")

    profile = profile_with(lean_tools=("broken",), full_tools=("broken",), tool_filler_after_ms=0)
    stack = await start_stack(profile=profile, tools=tools, tool_calls={0: ToolCallScript("broken", {}, reply_after="Sorry, I can't check that now.")})
    result = await FakeCaller(stack.base_url, CallerScript(turns=[CallerTurn("Check please")], max_call_s=15)).run()
    await stack.wait_records(1)
    record = stack.state.records[-1]
    assert record.tool_calls[0].error == "RuntimeError: database down"
    assert '"error"' in (record.tool_calls[0].output or "")
    assert result.ended_by == "caller_hangup" and record.end_reason == "caller_hangup"
    assert any(t.text == "Sorry, I can't check that now." for t in record.transcript)


async def test_end_call_hangs_up_after_the_goodbye_plays(start_stack: StackFactory) -> None:
    stack = await start_stack(tool_calls={0: ToolCallScript("end_call", {"reason": "done"}, reply_after="Goodbye, have a nice day!")})
    script = CallerScript(turns=[CallerTurn("That's all, bye")], hangup=False, max_call_s=15)
    result = await FakeCaller(stack.base_url, script).run()
    await stack.wait_records(1)
    record = stack.state.records[-1]
    assert record.end_reason == "agent_hangup" and "goodbye played" in record.end_detail
    assert result.ended_by == "server_closed"
    # The whole goodbye was heard before the line closed.
    goodbye = stack.fake.sessions[-1].audio_sent
    assert result.heard_audio_ms >= sum(len(a) for a in goodbye.values()) // 8 - 20


async def test_transfer_refuses_numbers_off_the_allow_list() -> None:
    from llc.tools.builtin import transfer_call

    class Ctx:
        call_sid, params, transfer_allow = "CA1", {}, ("+15550001111",)
        redirected: ClassVar[list[str]] = []

        async def hang_up_after_goodbye(self) -> None: ...

        async def redirect(self, twiml: str) -> None:
            self.redirected.append(twiml)

    ctx = Ctx()
    refused = await transfer_call(ctx, "+15559999999")
    assert refused["ok"] is False and ctx.redirected == []
    assert (await transfer_call(ctx, "not a number"))["ok"] is False
    done = await transfer_call(ctx, "+1 555-000-1111")
    assert done == {"ok": True, "transferred_to": "+15550001111"}
    assert ctx.redirected == ['<?xml version="1.0" encoding="UTF-8"?><Response><Dial>+15550001111</Dial></Response>']
