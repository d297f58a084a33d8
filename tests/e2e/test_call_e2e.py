"""Whole calls through the real server, the fake OpenAI and the fake caller, on loopback."""

from __future__ import annotations

import base64

import pytest
import trio
from trio_websocket import open_websocket_url, serve_websocket

from llc.call.apology import apology_payloads
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller
from tests.helpers.stack import StackFactory
from tests.helpers.twilio_raw import call_tasks, first_event, media_frame, speak, start_frame, stop_frame

LINES = ["Hello?", "What are your hours?"]
REPLIES = ["Hi, how can I help?", "Nine to five, Monday to Friday."]



# Both shapes, on the one media path (a whole call is ~6 s).
@pytest.mark.parametrize("shape", ["ga", "flat"])
async def test_whole_call_audio_arrives_unchanged(start_stack: StackFactory, shape: str) -> None:
    stack = await start_stack(shape, replies=REPLIES, user_transcripts=LINES)
    caller = FakeCaller(stack.base_url, CallerScript(turns=[CallerTurn(t) for t in LINES], max_call_s=20))
    result = await caller.run()
    await stack.wait_records(1)
    record = stack.state.records[-1]
    session = stack.fake.sessions[-1]

    assert result.ended_by == "caller_hangup"
    assert result.parameters.pop("stream_token")  # the admission token every TwiML carries
    assert {k: result.parameters[k] for k in ("direction", "scenario")} == {"direction": "inbound", "scenario": "default"}
    assert session.errors_sent == []
    # Byte for byte: what the fake model sent is what the caller received, in order.
    assert b"".join(session.audio_sent.values()) == result.received_audio
    assert len(result.received_audio) > 0
    # Caller audio reached OpenAI untouched too: the fake heard both turns.
    assert len(session.speech_stopped_at) == 2
    assert [(t.role, t.text) for t in record.transcript] == [
        ("caller", LINES[0]), ("agent", REPLIES[0]), ("caller", LINES[1]), ("agent", REPLIES[1])]
    assert (record.call_sid, record.stream_sid) == (caller.call_sid, result.stream_sid)
    assert record.end_reason == "caller_hangup"
    assert all(t.ms is not None and t.ms > 0 for t in record.turns) and len(record.turns) == 2
    flat_header = session.headers.get("openai-beta")
    assert flat_header == ("realtime=v1" if shape == "flat" else None)


async def test_caller_payloads_reach_openai_untouched(start_stack: StackFactory) -> None:
    stack = await start_stack()
    async with open_websocket_url(stack.media_url) as ws:
        await ws.send_message(start_frame(stream_token=stack.stream_token()))
        with trio.fail_after(5):
            while not stack.fake.sessions or stack.fake.sessions[-1].session is None:
                await trio.sleep(0.01)
        chunk = bytes(range(160))
        await ws.send_message(media_frame(chunk))
        with trio.fail_after(5):
            while not any(e.get("type") == "input_audio_buffer.append" for e in stack.fake.sessions[-1].received):
                await trio.sleep(0.01)
        append = next(e for e in stack.fake.sessions[-1].received if e.get("type") == "input_audio_buffer.append")
        assert append["bytes"] == 160
        await ws.send_message(stop_frame())


@pytest.mark.parametrize("server_shape, fake_shape, fix", [("flat", "ga", "OPENAI_API_SHAPE=ga"), ("ga", "flat", "OPENAI_API_SHAPE=flat")])
async def test_wrong_shape_ends_call_with_a_plain_hint(start_stack: StackFactory, server_shape: str, fake_shape: str, fix: str) -> None:
    stack = await start_stack(fake_shape, settings={"openai_api_shape": server_shape})
    result = await FakeCaller(stack.base_url, CallerScript(turns=[CallerTurn("Hello?")], max_call_s=5)).run()
    await stack.wait_records(1)
    record = stack.state.records[-1]
    assert result.ended_by == "server_closed"
    assert record.end_reason == "openai_session_rejected"
    assert fix in record.end_detail
    expected = "beta_api_shape_disabled" if fake_shape == "ga" else "unknown_parameter"
    assert expected in record.openai_errors


@pytest.mark.parametrize("polite", [True, False])
async def test_caller_hangs_up_mid_reply_everything_closes_within_1s(start_stack: StackFactory, polite: bool) -> None:
    stack = await start_stack(replies=["This is a long answer that goes on and on for quite a few seconds of audio."])
    async with open_websocket_url(stack.media_url) as ws:
        await ws.send_message(start_frame(stream_token=stack.stream_token()))
        await speak(ws, 400, then_silence_ms=300)
        await first_event(ws, "media")  # the agent is talking now
        assert call_tasks(), "the call should be running"
        hung_up = trio.current_time()
        if polite:
            await ws.send_message(stop_frame())
        else:
            await ws.aclose()
        await stack.wait_records(1, timeout=1.0)
    session = stack.fake.sessions[-1]
    with trio.fail_after(1.0 - (trio.current_time() - hung_up)):
        while session.close_code is None:
            await trio.sleep(0.005)
    assert trio.current_time() - hung_up < 1.0
    assert stack.state.active_calls == 0
    assert call_tasks() == []
    assert stack.state.records[-1].end_reason == ("caller_hangup" if polite else "twilio_closed")


async def test_openai_dropping_twice_ends_with_the_apology(start_stack: StackFactory, nursery: trio.Nursery) -> None:
    """A drop gets one reconnect; the second drop means the apology clip, then the hang-up."""
    async def dropper(request) -> None:  # accepts, configures, then drops the session, every time
        ws = await request.accept()
        await ws.send_message('{"type":"session.created","event_id":"e1"}')
        await ws.get_message()
        await ws.send_message('{"type":"session.updated","event_id":"e2"}')
        await trio.sleep(0.2)
        await ws.aclose(1011, "upstream failure")

    dropping = await nursery.start(serve_websocket, dropper, "127.0.0.1", 0, None)
    port = dropping[0].port if isinstance(dropping, list) else dropping.port
    stack = await start_stack(settings={"openai_realtime_url": f"ws://127.0.0.1:{port}/v1/realtime"})
    result = await FakeCaller(stack.base_url, CallerScript(turns=[CallerTurn("Hello?")], max_call_s=5)).run()
    await stack.wait_records(1)
    assert result.ended_by == "server_closed"
    record = stack.state.records[-1]
    assert record.end_reason == "openai_lost" and "1011" in record.end_detail
    assert record.reconnects == ["dropped (code 1011)"]
    assert result.received_audio == b"".join(base64.b64decode(p) for p in apology_payloads())  # the clip, whole
    assert call_tasks() == []


async def test_openai_unreachable_ends_call_with_a_fix(start_stack: StackFactory) -> None:
    with trio.socket.socket() as probe:  # a port nobody listens on
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stack = await start_stack(settings={"openai_realtime_url": f"ws://127.0.0.1:{port}/v1/realtime"})
    result = await FakeCaller(stack.base_url, CallerScript(turns=[CallerTurn("Hi")], max_call_s=5)).run()
    await stack.wait_records(1)
    record = stack.state.records[-1]
    assert result.ended_by == "server_closed"
    assert record.end_reason == "openai_unreachable" and "OPENAI_REALTIME_URL" in record.end_detail
    assert result.heard_audio_ms > 0  # the apology, not a silent hang-up


async def test_malformed_frames_are_ignored_and_neighbours_unaffected(start_stack: StackFactory, nursery: trio.Nursery) -> None:
    stack = await start_stack(replies=REPLIES, user_transcripts=LINES)
    good = trio.Event()
    results = {}

    async def good_call() -> None:
        results["good"] = await FakeCaller(stack.base_url, CallerScript(turns=[CallerTurn("Hello?")], max_call_s=15)).run()
        good.set()

    nursery.start_soon(good_call)
    url = stack.media_url
    async with open_websocket_url(url) as ws:
        await ws.send_message(media_frame(b"\xff" * 160))  # media before start
        await ws.send_message("this is not json")
        await ws.send_message('{"event": "surprise"}')
        await ws.send_message('{"event": "media", "media": {"payload": 7}}')
        await ws.send_message("x" * (stack.state.settings.max_frame_bytes + 1))  # oversized
        await ws.send_message(start_frame("MZbad", "CAbad", stream_token=stack.stream_token("CAbad")))
        await ws.send_message(base64.b64encode(b"binary-ish").decode())
        await ws.send_message(stop_frame("MZbad", "CAbad"))
        with trio.fail_after(5):
            while not any(r.call_sid == "CAbad" for r in stack.state.records):
                await trio.sleep(0.01)
    bad = next(r for r in stack.state.records if r.call_sid == "CAbad")
    assert bad.bad_frames == 6 and bad.end_reason == "caller_hangup"
    with trio.fail_after(15):
        await good.wait()
    assert results["good"].ended_by == "caller_hangup" and results["good"].received_audio
    import httpx
    # The caller's hang-up reaches the server a moment after the caller returns: the line is
    # released once the server has ended the call, within a bound.
    async with httpx.AsyncClient() as client:
        with trio.move_on_after(5):
            while (health := (await client.get(stack.base_url + "/healthz")).json())["active_calls"]:
                await trio.sleep(0.02)
    assert health["status"] == "ok" and health["active_calls"] == 0 and health["calls_total"] == 2
