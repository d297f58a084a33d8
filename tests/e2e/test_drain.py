"""Graceful drain: SIGTERM lets the active call finish, turns new calls away politely, exits 0."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import orjson
import trio
from trio_websocket import open_websocket_url

from llc.kit.bench.server_proc import free_port
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller
from llc.kit.sim.fake_openai import FakeOpenAI, FakeOpenAIConfig
from llc.web.drain import drain
from tests.helpers.ops_procs import serve_env, start_serve, stop_pid
from tests.helpers.stack import StackFactory
from tests.helpers.twilio_raw import start_frame

LINES = ["Hello?", "What are your hours?"]


async def post_twiml(base_url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(base_url + "/twiml", data={"CallSid": "CAnew", "Direction": "inbound"})


async def test_sigterm_during_a_call(nursery: trio.Nursery, tmp_path: Path) -> None:
    fake = FakeOpenAI(FakeOpenAIConfig(ttfb_ms=50, end_of_turn_silence_ms=200, user_transcripts=LINES))
    await nursery.start(fake.serve)
    port = free_port()
    log = tmp_path / "serve.log"
    proc = start_serve(serve_env(tmp_path, port, fake.url, LLC_DRAIN_TIMEOUT_S="20"), log)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            with trio.fail_after(15):
                while True:
                    try:
                        if (await client.get(base + "/healthz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await trio.sleep(0.1)

            results = {}

            async def call() -> None:
                script = CallerScript(turns=[CallerTurn(t) for t in LINES], max_call_s=30)
                results["call"] = await FakeCaller(base, script).run()

            nursery.start_soon(call)
            with trio.fail_after(10):
                while (await client.get(base + "/healthz")).json()["active_calls"] != 1:
                    await trio.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            with trio.fail_after(5):
                while (await client.get(base + "/healthz")).status_code != 503:
                    await trio.sleep(0.05)
            refused = await post_twiml(base)
            assert refused.status_code == 200
            assert "<Say>" in refused.text and "<Hangup />" in refused.text and "<Stream" not in refused.text

        with trio.fail_after(30):
            while "call" not in results or proc.poll() is None:
                await trio.sleep(0.05)
    finally:
        stop_pid(proc.pid, 2)
    assert proc.wait(5) == 0
    assert results["call"].ended_by == "caller_hangup" and len(results["call"].turns) == len(LINES)
    events = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.startswith(b"{")]
    msgs = [e["msg"] for e in events]
    assert "call ended: caller_hangup" in msgs and "drained" in msgs and msgs[-1] == "stopped"
    assert msgs.index("draining: new calls are turned away") < msgs.index("call ended: caller_hangup")
    drained = next(e for e in events if e["msg"] == "drained")
    assert drained["ended_by_drain"] == 0
    # Every line of the call carries who and what it is.
    call_lines = [e for e in events if e.get("stream_sid")]
    assert call_lines and all(e.get("call_sid") and e.get("direction") == "inbound" and e.get("scenario") == "default"
                              for e in call_lines)
    assert not (tmp_path / "llc-phone.pid").exists()


async def test_drain_deadline_ends_calls_cleanly(start_stack: StackFactory, nursery: trio.Nursery) -> None:
    stack = await start_stack(settings={"drain_fallback_number": "+14155550199"})
    async with open_websocket_url(stack.base_url.replace("http", "ws") + "/media") as ws:
        await ws.send_message(start_frame(stream_token=stack.stream_token()))
        with trio.fail_after(5):
            while stack.state.active_calls != 1:
                await trio.sleep(0.01)
        done = trio.Event()

        async def run_drain() -> None:
            await drain(stack.state, timeout_s=0.5)
            done.set()

        nursery.start_soon(run_drain)
        await trio.sleep(0.1)
        fallback = await post_twiml(stack.base_url)
        assert "<Dial>+14155550199</Dial>" in fallback.text and "<Say>" in fallback.text
        async with httpx.AsyncClient() as client:
            health = await client.get(stack.base_url + "/healthz")
        assert health.status_code == 503 and health.json()["status"] == "draining"
        assert stack.state.active_calls == 1  # still running inside the drain window
        with trio.fail_after(5):
            await done.wait()
    assert stack.state.active_calls == 0
    record = stack.state.records[-1]
    assert record.end_reason == "server_drain" and "LLC_DRAIN_TIMEOUT_S" in record.end_detail


async def test_drain_turns_away_new_streams_unless_an_answered_call_waits_for_one(start_stack: StackFactory,
                                                                                  nursery: trio.Nursery) -> None:
    """While draining, a client connecting to /media again and again holds nothing: with no ticket
    out its upgrade is closed 1013 at once and the drain ends when the last real call does. A
    call answered just before the drain (its ticket out) still gets its stream in."""
    from trio_websocket import ConnectionClosed

    stack = await start_stack()
    answered = stack.stream_token("CAanswered")  # /twiml answered it before the drain
    done = trio.Event()
    codes: list[int | None] = []

    async def run_drain() -> None:
        await drain(stack.state, timeout_s=20)
        done.set()

    async with open_websocket_url(stack.media_url) as late:  # its stream arrives during the drain
        nursery.start_soon(run_drain)
        await trio.sleep(0.1)
        await late.send_message(start_frame("MZans", "CAanswered", stream_token=answered))
        with trio.fail_after(5):
            while stack.state.active_calls != 1:
                await trio.sleep(0.01)

    async def knock() -> None:  # a client that keeps connecting, never with a ticket
        for _ in range(10):
            async with open_websocket_url(stack.media_url) as ws:
                try:
                    await ws.get_message()
                except ConnectionClosed as closed:
                    codes.append(closed.reason.code)
            await trio.sleep(0.05)

    started = trio.current_time()
    async with trio.open_nursery() as knocking:
        knocking.start_soon(knock)
        with trio.fail_after(10):
            await done.wait()
    assert trio.current_time() - started < 5  # not held to the 20 s timeout by the knocking
    assert codes and set(codes) == {1013}
    record = stack.state.find_record("CAanswered")
    assert record is not None and record.end_reason == "twilio_closed"  # admitted, ran, its socket closed
