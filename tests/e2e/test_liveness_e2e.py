"""Network faults that stall instead of closing, end to end through the server.

Each test reproduces a fault that left a zombie call on the old code: the assertions are the
bounds the fix promises (a hang-up acted on within about a second, a dead leg noticed within
its deadline, a warm session that never makes the caller wait long).
"""

from __future__ import annotations

import httpx
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from llc.core.phase import Phase
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller
from tests.helpers.stack import Stack, StackFactory
from tests.helpers.twilio_raw import call_tasks, media_frame, start_frame, stop_frame

LINES = ["Are you open on Sunday?", "And on Monday?"]
REPLIES = ["Yes, from ten to four.", "Monday we open at nine."]


async def live_session(stack: Stack) -> None:
    """Until the call's OpenAI session is live (session.updated reached the server)."""
    with trio.fail_after(5):
        while not any(b.core.phase is Phase.LIVE for b in stack.state.active):
            await trio.sleep(0.01)


async def no_call_left(stack: Stack, within_s: float) -> None:
    with trio.fail_after(within_s):
        while call_tasks() or stack.state.active:
            await trio.sleep(0.01)


async def test_openai_leg_that_stops_reading_cannot_hold_the_hangup(start_stack: StackFactory) -> None:
    """Reproduction 1: the Twilio reader sends to OpenAI inline; with the OpenAI peer no longer
    reading, that send used to wait for ever and Twilio's stop was never read."""
    stack = await start_stack(openai_proxy=True)
    assert stack.openai_proxy is not None
    async with open_websocket_url(stack.media_url + f"?stream_token={stack.stream_token('CAstall')}") as ws:
        await ws.send_message(start_frame(call_sid="CAstall", stream_token=stack.stream_token("CAstall")))
        await live_session(stack)
        assert stack.openai_proxy.freeze_where(b"GET ") == 1
        big = media_frame(b"\xff" * 45_000)  # just under LLC_MAX_FRAME_BYTES as JSON: fills buffers fast
        with trio.move_on_after(8):  # enough to fill both kernel buffers many times over
            for _ in range(400):
                await ws.send_message(big)
        await ws.send_message(stop_frame(call_sid="CAstall"))
        hung_up = trio.current_time()
    await stack.wait_records(1, timeout=3)
    acted_in = trio.current_time() - hung_up
    record = stack.state.records[-1]
    assert record.end_reason == "caller_hangup", record.end_detail
    assert acted_in < 1.5, f"the hang-up took {acted_in:.2f} s to act on"
    assert record.reconnects, "the stalled OpenAI leg should have been dropped and replaced"
    await no_call_left(stack, 2)


async def test_openai_leg_silent_without_closing_is_pinged_dead_and_replaced(start_stack: StackFactory) -> None:
    """No event, no close, no pong: the ping deadline finds it; the existing recovery reconnects
    once with the conversation so far, and the caller's second turn is answered."""
    stack = await start_stack(openai_proxy=True, replies=REPLIES, user_transcripts=LINES,
                              settings={"openai_ping_s": 0.2, "openai_pong_timeout_s": 0.5})
    assert stack.openai_proxy is not None
    script = CallerScript(turns=[CallerTurn(t) for t in LINES], max_call_s=20, reply_timeout_s=8)
    caller = FakeCaller(stack.base_url, script)
    result = []
    async with trio.open_nursery() as nursery:
        async def run() -> None:
            result.append(await caller.run())

        nursery.start_soon(run)
        with trio.fail_after(10):
            while not any(b.record.transcript and b.record.transcript[-1].role == "agent" for b in stack.state.active):
                await trio.sleep(0.01)
        assert stack.openai_proxy.freeze_where(b"GET ") == 1
        frozen_at = trio.current_time()
        with trio.fail_after(3):
            while len(stack.fake.sessions) < 2:
                await trio.sleep(0.01)
        replaced_in = trio.current_time() - frozen_at
    await stack.wait_records(1)
    record = stack.state.records[-1]
    assert replaced_in < 0.2 + 0.5 + 0.5, f"dead OpenAI leg replaced after {replaced_in:.2f} s"
    assert record.reconnects == ["dropped (code 1006)"], record.reconnects
    assert record.end_reason == "caller_hangup" and len(result[0].turns) == 2
    assert all(t.voice_to_voice_ms for t in result[0].turns)  # the caller got both answers


async def test_words_spoken_into_a_frozen_leg_are_asked_for_again(start_stack: StackFactory) -> None:
    """The leg freezes before the caller's first words; they go down with it. The replacement
    session speaks first (asks the caller to repeat) instead of waiting for speech that already
    happened: the caller hears a reply, not dead air until one side hangs up."""
    stack = await start_stack(openai_proxy=True, replies=REPLIES, user_transcripts=LINES,
                              settings={"openai_ping_s": 0.5, "openai_pong_timeout_s": 1.5})
    assert stack.openai_proxy is not None
    script = CallerScript(turns=[CallerTurn(LINES[0], speech_ms=400)], max_call_s=15, reply_timeout_s=6)
    result = []
    async with trio.open_nursery() as nursery:
        async def run() -> None:
            result.append(await FakeCaller(stack.base_url, script).run())

        nursery.start_soon(run)
        await live_session(stack)
        assert stack.openai_proxy.freeze_where(b"GET ") == 1  # before the caller says anything
    await stack.wait_records(1)
    record = stack.state.records[-1]
    assert record.reconnects == ["dropped (code 1006)"], record.reconnects
    assert len(stack.fake.sessions) == 2 and stack.fake.sessions[0].speech_started_at == []  # never heard
    sent = [e["type"] for e in stack.fake.sessions[1].received if e["type"] != "input_audio_buffer.append"]
    assert sent[:3] == ["session.update", "conversation.item.create", "response.create"], sent
    turn = result[0].turns[0]
    assert not turn.timed_out and turn.voice_to_voice_ms is not None, result[0].events


async def test_twilio_leg_silent_without_closing_ends_the_call_with_its_record(start_stack: StackFactory) -> None:
    stack = await start_stack(settings={"twilio_idle_s": 0.5})
    async with open_websocket_url(stack.media_url) as ws:
        await ws.send_message(start_frame(call_sid="CAquiet", stream_token=stack.stream_token("CAquiet")))
        await live_session(stack)
        for _ in range(5):
            await ws.send_message(media_frame(b"\xff" * 160))
        went_quiet = trio.current_time()
        with trio.fail_after(2):  # the server closes the dead leg's socket itself
            try:
                while True:
                    await ws.get_message()
            except ConnectionClosed:
                pass
        closed_in = trio.current_time() - went_quiet
    await stack.wait_records(1)
    record = stack.state.records[-1]
    assert record.end_reason == "twilio_silent" and record.call_sid == "CAquiet"
    assert 0.5 <= closed_in < 1.2, closed_in
    await no_call_left(stack, 1)


async def test_upgrade_without_start_is_closed_and_holds_no_line(start_stack: StackFactory) -> None:
    """Reproduction 2: two idle sockets made /twiml answer busy with LLC_MAX_CALLS=2."""
    stack = await start_stack(settings={"max_calls": 2, "start_timeout_s": 0.5, "stream_admission": False})
    async with open_websocket_url(stack.media_url) as a, open_websocket_url(stack.media_url) as b:
        with trio.fail_after(2):
            while len(stack.state.calls.active) < 2:
                await trio.sleep(0.01)
        async with httpx.AsyncClient() as http:
            twiml = (await http.post(f"{stack.base_url}/twiml", data={"CallSid": "CAnext", "From": "+15550100001",
                                                                     "To": "+15550100002"})).text
        assert "<Stream" in twiml and "busy" not in twiml.lower()
        opened = trio.current_time()
        for ws in (a, b):
            with trio.fail_after(2):
                try:
                    await ws.get_message()
                except ConnectionClosed:
                    pass
        assert trio.current_time() - opened < 1.2
    await no_call_left(stack, 1)
    assert not stack.state.records  # nothing to file: no start, no CallSid


async def test_engine_failure_closes_the_socket_within_the_close_bound(start_stack: StackFactory) -> None:
    """Reproduction 3: after the engine fails a connection (1009 here), the server waited for
    the peer's close with no bound. A peer that never closes (and keeps sending, as Twilio does)
    now loses its TCP socket within the close bound."""
    stack = await start_stack(settings={"max_frame_bytes": 1024})
    port = int(stack.base_url.rsplit(":", 1)[1])
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"GET /media HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        with trio.fail_after(3):
            assert b"101" in await stream.receive_some(4096)
        # A masked text frame far over max_size (4 MiB here): the engine fails it with 1009.
        length = 8 * 1024 * 1024
        await stream.send_all(bytes((0x81, 0x80 | 127)) + length.to_bytes(8, "big") + b"\0\0\0\0" + b"x" * 1000)
        failed = trio.current_time()
        got = b""

        async def keep_sending() -> None:  # like Twilio: a frame every 20 ms, never a close
            try:
                while True:
                    await stream.send_all(bytes((0x81, 0x80 | 4)) + b"\0\0\0\0" + b"ping")
                    await trio.sleep(0.02)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_sending)
            with trio.fail_after(3):
                while True:  # the close frame (1009), then EOF: the socket is closed, not held
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        break
                    got += chunk
            nursery.cancel_scope.cancel()
        assert got[:1] == b"\x88" and int.from_bytes(got[2:4], "big") == 1009, got[:8]
        assert trio.current_time() - failed < 2.0
    await no_call_left(stack, 2)


async def test_slow_priming_never_makes_the_caller_wait(start_stack: StackFactory) -> None:
    """Reproduction 4: an endpoint that answers session.update at once but never finishes the
    text-only priming response held each stream for the whole LLC_PREWARM_TIMEOUT_S (10 s)."""
    stack = await start_stack(text_response_delay_ms=60_000, replies=REPLIES, user_transcripts=LINES)
    script = CallerScript(turns=[CallerTurn(LINES[0])], max_call_s=10, reply_timeout_s=5)
    started = trio.current_time()
    result = await FakeCaller(stack.base_url, script).run()
    await stack.wait_records(1)
    record = stack.state.records[-1]
    assert record.path == "pre-accept", record.path  # the warm session was claimed, priming or not
    # The caller's audio is held until the session is live: its first append shows the wait.
    appends = [e["t"] for e in stack.fake.sessions[0].received if e["type"] == "input_audio_buffer.append"]
    assert appends and appends[0] - started < 1.0, appends[0] - started  # webhook and upgrade included
    assert result.turns and result.turns[0].voice_to_voice_ms
    assert len(stack.fake.sessions) == 1  # no cold connect was needed
    assert record.end_reason == "caller_hangup"


async def test_openai_unreachable_at_start_one_wait_then_the_apology(start_stack: StackFactory) -> None:
    """Dead air at call start: an endpoint that accepts TCP and never answers. One bounded wait
    (warm and cold together), then the caller hears the apology and the call ends with why."""
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # accepts (the kernel completes the handshake), never answers
    port = listener.getsockname()[1]
    stack = await start_stack(settings={"openai_realtime_url": f"ws://127.0.0.1:{port}/v1/realtime",
                                        "openai_connect_timeout_s": 1.0, "prewarm_timeout_s": 10.0})
    script = CallerScript(turns=[CallerTurn(LINES[0])], max_call_s=8, reply_timeout_s=3)
    started = trio.current_time()
    result = await FakeCaller(stack.base_url, script).run()
    await stack.wait_records(1)
    record = stack.state.records[-1]
    listener.close()
    assert record.end_reason == "openai_unreachable", (record.end_reason, record.end_detail)
    first_audio_s = result.media_times[0] - started  # the apology clip
    assert 0.9 <= first_audio_s < 1.6, first_audio_s
    assert trio.current_time() - started < 6


async def test_openai_unreachable_with_a_fallback_number_hands_the_call_to_a_person(nursery: trio.Nursery) -> None:
    """OpenAI unreachable at call start: "the caller hears the apology (or is dialled to the fallback number when one is
    set)". Twilio's REST API redirects the live call to a <Dial>; the record says why."""
    from tests.helpers.outbound_stack import start_outbound

    with trio.socket.socket() as probe:  # a port nobody listens on: OpenAI refuses at once
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stack = await start_outbound(nursery, settings={"openai_realtime_url": f"ws://127.0.0.1:{port}/v1/realtime",
                                                    "fallback_number": "+15550100999", "db_url": ":memory:"})
    caller = FakeCaller(stack.base_url, CallerScript(turns=[CallerTurn(LINES[0])], max_call_s=8, reply_timeout_s=3),
                        auth_token=stack.twilio.config.auth_token)
    call = stack.twilio.inbound(caller)
    result = await caller.run()
    with trio.fail_after(5):
        while not stack.state.records:
            await trio.sleep(0.02)
    record = stack.state.records[-1]
    assert result.ended_by == "redirected" and result.heard_audio_ms == 0  # a person, not the chime
    assert [u["Twiml"] for u in call.updates if "Twiml" in u] and "+15550100999</Dial>" in call.updates[-1]["Twiml"]
    assert record.end_reason == "openai_unreachable" and "LLC_FALLBACK_NUMBER" in record.end_detail
