"""Each upstream fault has a designed outcome, end to end: the record says what happened and
nothing of the call is left running (tasks, sockets)."""

from __future__ import annotations

import base64

import trio

from llc.call.apology import apology_payloads
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, CallResult, FakeCaller
from tests.helpers.stack import Stack, StackFactory
from tests.helpers.twilio_raw import call_tasks

LINES = ["Are you open on Sunday?", "And on Monday?"]
REPLIES = ["Yes, from ten to four.", "Monday we open at nine."]


async def call_with_fault(stack: Stack, inject, turns: int = 2) -> tuple[CallResult, object]:
    """Run a call; once the first reply is in the record, ``inject(stack, caller)``."""
    script = CallerScript(turns=[CallerTurn(t) for t in LINES[:turns]], max_call_s=20, reply_timeout_s=8)
    caller = FakeCaller(stack.base_url, script)
    result: list[CallResult] = []

    async def run() -> None:
        result.append(await caller.run())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        with trio.fail_after(10):
            while not any(b.record.transcript and b.record.transcript[-1].role == "agent" for b in stack.state.active):
                await trio.sleep(0.01)
        await inject(stack, caller)
    await stack.wait_records(1)
    return result[0], stack.state.records[-1]


async def settled(stack: Stack) -> None:
    with trio.fail_after(3):
        while stack.fake.open_sessions or call_tasks() or stack.state.active_calls:
            await trio.sleep(0.01)


async def test_openai_drop_mid_call_reconnects_with_the_conversation(start_stack: StackFactory) -> None:
    stack = await start_stack(replies=REPLIES, user_transcripts=LINES)

    async def drop(stack: Stack, caller: FakeCaller) -> None:
        assert stack.fake.inject("drop") == 1

    result, record = await call_with_fault(stack, drop)
    assert record.end_reason == "caller_hangup" and record.reconnects == ["dropped (code 1011)"]
    assert len(stack.fake.sessions) == 2
    second = stack.fake.sessions[1]
    assert second.session is not None and second.session["instructions"] == stack.fake.sessions[0].session["instructions"]
    context = [e for e in second.received if e.get("type") == "conversation.item.create"]
    assert LINES[0] in context[0]["item"]["content"][0]["text"]
    assert len(result.turns) == 2 and all(t.voice_to_voice_ms for t in result.turns)  # the caller got both answers
    await settled(stack)


async def test_session_expired_renews_and_the_call_goes_on(start_stack: StackFactory) -> None:
    stack = await start_stack(replies=REPLIES, user_transcripts=LINES)

    async def expire(stack: Stack, caller: FakeCaller) -> None:
        stack.fake.inject("expire")

    result, record = await call_with_fault(stack, expire)
    assert record.end_reason == "caller_hangup" and record.reconnects == ["session_expired"]
    assert stack.fake.sessions[0].close_code == 1001 and record.openai_errors == {"session_expired": 1}
    assert len(result.turns) == 2 and all(t.voice_to_voice_ms for t in result.turns)
    await settled(stack)


async def test_failed_reconnect_plays_the_apology_and_the_record_says_why(start_stack: StackFactory) -> None:
    stack = await start_stack(replies=REPLIES, user_transcripts=LINES)

    async def outage(stack: Stack, caller: FakeCaller) -> None:
        stack.fake.refuse_next = 1
        stack.fake.inject("drop")

    result, record = await call_with_fault(stack, outage, turns=1)
    assert record.end_reason == "openai_lost" and "reconnect failed" in record.end_detail
    assert result.ended_by in ("server_closed", "caller_hangup")
    clip = b"".join(base64.b64decode(p) for p in apology_payloads())
    assert result.received_audio.endswith(clip)
    await settled(stack)


async def test_twilio_drop_closes_openai_and_finishes_the_record(start_stack: StackFactory) -> None:
    stack = await start_stack(replies=REPLIES, user_transcripts=LINES)

    async def cut(stack: Stack, caller: FakeCaller) -> None:
        await caller.inject("drop")

    _, record = await call_with_fault(stack, cut)
    assert record.end_reason == "twilio_closed" and record.ended_at is not None
    await settled(stack)
    assert stack.fake.sessions[0].close_code is not None


async def test_garbage_and_error_events_from_openai_are_survived(start_stack: StackFactory) -> None:
    stack = await start_stack(replies=REPLIES, user_transcripts=LINES)

    async def noise(stack: Stack, caller: FakeCaller) -> None:
        stack.fake.inject("garbage", count=8)
        stack.fake.inject("error", code="server_error")
        await caller.inject("garbage", count=20, seed=3)  # and from Twilio's side

    result, record = await call_with_fault(stack, noise)
    assert record.end_reason == "caller_hangup" and record.reconnects == []
    # Payloads pass through undecoded, so a media frame with broken base64 reaches OpenAI and comes
    # back as an invalid_value error: logged, counted, harmless.
    assert record.openai_errors["server_error"] == 1 and set(record.openai_errors) <= {"server_error", "invalid_value"}
    assert 0 < record.bad_frames <= 20
    assert len(result.turns) == 2 and all(t.voice_to_voice_ms for t in result.turns)
    await settled(stack)


async def test_max_call_length_ends_the_call(start_stack: StackFactory) -> None:
    stack = await start_stack(settings={"max_call_s": 1.0})
    result = await FakeCaller(stack.base_url, CallerScript([CallerTurn("Hi")], hangup=False, max_call_s=10)).run()
    await stack.wait_records(1)
    assert stack.state.records[-1].end_reason == "max_call_length" and result.ended_by == "server_closed"
    await settled(stack)
