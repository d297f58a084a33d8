"""A fuzz run against a live server: malformed frames on some streams while clean calls run.

1,000 malformed frames across 10 fuzzing streams (a stream the server closes for too many bad
frames is replaced by a new one), while 5 clean calls run: each clean call's audio must be
byte-identical to the same call in a run without the fuzz. Property-based tests of the parsers
and the core themselves are in test_fuzz_core.py.
"""

from __future__ import annotations

import random

import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller
from llc.kit.sim.malformed import malformed_frame
from tests.helpers.stack import Stack, StackFactory
from tests.helpers.twilio_raw import call_tasks, start_frame

CLEAN, SLOTS, FRAMES_PER_SLOT = 5, 10, 100
LINE, REPLY = "What time do you close today?", "We close at six tonight."


async def clean_calls(stack: Stack, tag: str) -> list[bytes]:
    audio: dict[int, bytes] = {}

    async def one(i: int) -> None:
        caller = FakeCaller(stack.base_url, CallerScript([CallerTurn(LINE)], max_call_s=20), call_sid=f"CA{tag}{i}")
        result = await caller.run()
        assert result.ended_by == "caller_hangup"
        audio[i] = result.received_audio

    async with trio.open_nursery() as nursery:
        for i in range(CLEAN):
            nursery.start_soon(one, i)
    return [audio[i] for i in range(CLEAN)]


async def fuzz_slot(stack: Stack, slot: int, sent: list[int]) -> None:
    rng = random.Random(slot)
    n, streams = 0, 0
    while n < FRAMES_PER_SLOT:
        streams += 1
        sid, call_sid = f"MZfuzz{slot}x{streams}", f"CAfuzz{slot}x{streams}"
        async with open_websocket_url(stack.media_url, max_message_size=2 ** 21) as ws:
            try:
                await ws.send_message(start_frame(sid, call_sid, stream_token=stack.stream_token(call_sid)))
                while n < FRAMES_PER_SLOT:
                    await ws.send_message(malformed_frame(rng, sid, stack.state.settings.max_frame_bytes))
                    n += 1
                    await trio.sleep(0.005)
            except ConnectionClosed:
                pass  # over MAX_BAD_FRAMES: the server ended this stream; the next one takes over
    sent.append(n)


async def test_malformed_frames_leave_clean_calls_byte_identical(start_stack: StackFactory) -> None:
    stack = await start_stack(replies=[REPLY], user_transcripts=[LINE])
    baseline = await clean_calls(stack, "base")
    assert all(baseline) and len(set(baseline)) == 1  # same script, same audio: a fair comparison

    sent: list[int] = []
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for slot in range(SLOTS):
                nursery.start_soon(fuzz_slot, stack, slot, sent)
            fuzzed = await clean_calls(stack, "during")
    assert sum(sent) == SLOTS * FRAMES_PER_SLOT == 1000
    assert fuzzed == baseline  # byte for byte

    with trio.fail_after(5):  # every call finished (records written), every socket and task gone
        while call_tasks() or stack.state.active_calls or stack.fake.open_sessions:
            await trio.sleep(0.02)
    records = list(stack.state.records)
    clean = [r for r in records if not r.call_sid.startswith("CAfuzz")]
    assert len(clean) == 2 * CLEAN
    assert all(r.end_reason == "caller_hangup" and r.bad_frames == 0 for r in clean)
    fuzz = [r for r in records if r.call_sid.startswith("CAfuzz")]
    assert sum(r.bad_frames for r in fuzz) > 500  # the garbage reached the parsers, and was refused there
