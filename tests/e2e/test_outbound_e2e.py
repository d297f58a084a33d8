"""Outbound calls end to end, offline: POST /calls → fake Twilio rings and answers → fake callee talks."""

from __future__ import annotations

import trio

from llc import metrics
from llc.kit.sim.fake_twilio import Behaviour, FakeTwilioConfig
from tests.helpers.outbound_stack import start_outbound


async def test_prewarmed_call_has_no_setup_after_answer(nursery: trio.Nursery) -> None:
    # Rings 2 s (real phones ring longer): setup finishes first even on a loaded test machine.
    hits = metrics.REGISTRY.get_sample_value("llc_prewarm_total", {"result": "hit"}) or 0.0
    stack = await start_outbound(nursery, twilio=FakeTwilioConfig(default=Behaviour(answer_ms=2000)))
    resp = await stack.dial(scenario="default")
    assert resp.status_code == 201, resp.text
    call = await stack.finished(resp.json()["call_sid"])
    answered = call.at("in-progress")
    assert answered is not None and call.result is not None

    # The simulator's own logs, one clock: the only OpenAI socket was opened and configured
    # while the phone rang; nothing of setup happened after the callee answered.
    [session] = stack.openai.sessions
    assert session.connected_at is not None and session.connected_at < answered
    updates = [t for t, kind in session.timeline if kind == "session.update"]
    assert len([t for t in updates if t < answered]) == 1
    # The only later update is the first-turn switch, after the agent's first reply started.
    assert all(t > session.first_delta_at[0] for t in updates if t >= answered)
    configs = [e for e in session.received if e.get("type") == "session.update" and "format" in str(e)]
    assert len(configs) == 1
    primes = [e for e in session.received if e.get("type") == "response.create"]
    assert primes and primes[0]["response"]["output_modalities"] == ["text"]
    assert primes[0]["response"]["conversation"] == "none"

    # The priming response made no audio; what the callee heard is exactly the spoken reply.
    assert len(session.audio_sent) == 1
    assert call.result.received_audio == b"".join(session.audio_sent.values()) != b""
    assert call.result.turns[0].first_audio is not None

    await stack.no_warm_left()
    record = stack.state.find_record(call.sid)
    assert record is not None and record.path == "prewarm" and record.direction == "outbound"
    assert metrics.REGISTRY.get_sample_value("llc_prewarm_total", {"result": "hit"}) == hits + 1
    statuses = [s["status"] for s in stack.state.dialer.calls[call.sid].statuses]
    assert statuses == ["queued", "ringing", "in-progress", "completed"]
    assert all(s["timestamp"] for s in stack.state.dialer.calls[call.sid].statuses)


async def test_session_updated_past_timeout_falls_back_cold(nursery: trio.Nursery) -> None:
    stack = await start_outbound(nursery, twilio=FakeTwilioConfig(default=Behaviour(answer_ms=200)),
                                 settings={"prewarm_timeout_s": 0.3}, session_updated_delay_ms=500)
    resp = await stack.dial()
    call = await stack.finished(resp.json()["call_sid"])
    record = stack.state.find_record(call.sid)
    assert record is not None and record.path == "cold"
    assert call.result is not None and call.result.ended_by == "caller_hangup"
    assert call.result.received_audio, "the cold call must still answer the callee"
    assert len(stack.openai.sessions) == 2  # the abandoned warm one, then the cold one
    assert stack.state.warm.stats["ready"] == 0
    await stack.no_warm_left()


async def test_stream_before_ready_waits_within_the_timeout(nursery: trio.Nursery) -> None:
    stack = await start_outbound(nursery, twilio=FakeTwilioConfig(ring_ms=0, default=Behaviour(answer_ms=0)),
                                 settings={"prewarm_timeout_s": 5}, session_updated_delay_ms=400)
    resp = await stack.dial()
    call = await stack.finished(resp.json()["call_sid"])
    assert stack.state.find_record(call.sid).path == "prewarm"  # type: ignore[union-attr]
    assert len(stack.openai.sessions) == 1
    assert call.result is not None and call.result.received_audio


async def test_warm_session_dropped_while_ringing_goes_cold(nursery: trio.Nursery) -> None:
    stack = await start_outbound(nursery, twilio=FakeTwilioConfig(default=Behaviour(answer_ms=1500)))
    resp = await stack.dial()
    await stack.warm_ready()
    assert stack.openai.drop_open_sessions(1011, "upstream failure") == 1
    call = await stack.finished(resp.json()["call_sid"])
    assert stack.state.find_record(call.sid).path == "cold"  # type: ignore[union-attr]
    assert call.result is not None and call.result.received_audio
    assert stack.openai.sessions[0].close_code == 1011 and len(stack.openai.sessions) == 2


async def test_busy_and_no_answer_close_the_warm_session_at_once(nursery: trio.Nursery) -> None:
    numbers = {"+15550100003": Behaviour(outcome="busy", answer_ms=800),
               "+15550100004": Behaviour(outcome="no-answer", answer_ms=800)}
    stack = await start_outbound(nursery, twilio=FakeTwilioConfig(numbers=numbers))
    sids = [(await stack.dial(to)).json()["call_sid"] for to in numbers]
    await stack.warm_ready(2)
    assert stack.state.warm.live == 2 and stack.openai.open_sessions == 2
    for sid in sids:
        await stack.finished(sid)
    await stack.no_warm_left(timeout=1.0)  # closed on the status callback, not by a timeout
    assert all(s.close_code is not None for s in stack.openai.sessions)
    finals = [stack.state.dialer.calls[sid].statuses[-1]["status"] for sid in sids]
    assert finals == ["busy", "no-answer"]
    assert stack.state.active_calls == 0 and not stack.state.records


async def test_shutdown_closes_warm_sessions(nursery: trio.Nursery) -> None:
    async with trio.open_nursery() as server:
        stack = await start_outbound(nursery, server_nursery=server,
                                     twilio=FakeTwilioConfig(default=Behaviour(answer_ms=10_000)))
        await stack.dial()
        await stack.warm_ready()
        server.cancel_scope.cancel()
    with trio.fail_after(2):
        while stack.openai.open_sessions:
            await trio.sleep(0.01)
    assert stack.state.warm.live == 0


async def test_calls_needs_the_api_token(nursery: trio.Nursery) -> None:
    stack = await start_outbound(nursery)
    for token in (None, "wrong-token"):
        resp = await stack.dial(token=token)
        assert resp.status_code == 401 and "error" in resp.json()
    assert stack.twilio.requests == [] and stack.twilio.calls == {}  # nothing dialled
    assert stack.state.warm.stats["started"] == 0 and not stack.openai.sessions


async def test_bad_requests_say_what_to_fix(nursery: trio.Nursery) -> None:
    stack = await start_outbound(nursery)
    cases = [({"to": "5551234"}, "E.164"), ({"scenario": "nope"}, "unknown scenario"),
             ({"scenario": "reminder", "variables": {"name": "Ann"}}, "when")]
    for body, hint in cases:
        to = body.pop("to", "+15550100002")
        resp = await stack.dial(to, **body)
        assert resp.status_code == 400 and hint in resp.json()["error"]
    assert stack.twilio.calls == {} and stack.state.warm.stats["started"] == 0


async def test_token_misuse_never_attaches_a_foreign_session(nursery: trio.Nursery) -> None:
    from trio_websocket import open_websocket_url

    from llc.kit.sim.fake_caller import parse_twiml
    from tests.helpers.twilio_raw import first_event, speak, start_frame

    slow = Behaviour(answer_ms=3000)
    # The warm registry's own defence, with the stream-level checks (signature, admission token,
    # test_security_e2e.py) switched off: even a stream that got past them gets no foreign session.
    stack = await start_outbound(nursery, twilio=FakeTwilioConfig(default=slow),
                                 settings={"twilio_signatures": False, "stream_admission": False})
    sid_a = (await stack.dial()).json()["call_sid"]
    await stack.warm_ready(1)
    _, params_a = parse_twiml(stack.twilio.calls[sid_a].twiml)
    ws_url = stack.base_url.replace("http", "ws") + "/media"

    async def raw_call(call_sid: str, token: str) -> None:
        async with open_websocket_url(ws_url) as ws:
            await ws.send_message(start_frame(f"MZ{call_sid}", call_sid, direction="outbound", stream_token=token))
            await speak(ws, 400, then_silence_ms=300, stream_sid=f"MZ{call_sid}")
            await first_event(ws, "media")  # a working (cold) call

    await raw_call("CAintruder", params_a["stream_token"])  # A's ticket, someone else's call
    await raw_call("CAguess", "not-a-token")  # unknown
    with trio.fail_after(5):
        while len(stack.state.records) < 2:
            await trio.sleep(0.01)
    assert [r.path for r in stack.state.records] == ["cold", "cold"]
    assert stack.state.warm.live == 1  # A's session untouched, still waiting for A

    call_a = await stack.finished(sid_a)  # the rightful call claims it
    assert stack.state.find_record(sid_a).path == "prewarm"  # type: ignore[union-attr]
    await raw_call(sid_a, params_a["stream_token"])  # replayed after use
    with trio.fail_after(5):
        while len(stack.state.records) < 4:
            await trio.sleep(0.01)
    assert stack.state.records[-1].path == "cold"
    assert call_a.result is not None and call_a.result.received_audio
    assert stack.state.warm.stats["claimed"] == 1


async def test_amd_machine_leaves_voicemail_or_hangs_up_human_talks(nursery: trio.Nursery) -> None:
    numbers = {"+15550100011": Behaviour(answered_by="machine_end_beep", amd_ms=300),
               "+15550100012": Behaviour(answered_by="machine_start", amd_ms=300),
               "+15550100013": Behaviour(answered_by="human", amd_ms=200)}
    stack = await start_outbound(nursery, twilio=FakeTwilioConfig(numbers=numbers))
    variables = {"name": "Ann", "when": "Friday at 3 pm"}
    voicemail = (await stack.dial("+15550100011", scenario="reminder", variables=variables)).json()["call_sid"]
    hangup = (await stack.dial("+15550100012", scenario="survey", variables={"name": "Bo"})).json()["call_sid"]
    human = (await stack.dial("+15550100013", scenario="reminder", variables=variables)).json()["call_sid"]
    calls = {sid: await stack.finished(sid) for sid in (voicemail, hangup, human)}
    dialer = stack.state.dialer.calls

    vm = calls[voicemail]
    assert vm.form["MachineDetection"] == "DetectMessageEnd" and vm.form["AsyncAmd"] == "true"
    assert vm.said == [("Hello Ann, this is a reminder of your appointment on Friday at 3 pm. "
                        "Please call us back if you need to reschedule. Goodbye.")]
    assert dialer[voicemail].amd_outcome == "voicemail"

    hu = calls[hangup]
    assert hu.form["MachineDetection"] == "Enable"
    assert hu.updates == [{"Status": "completed"}] and hu.said == []
    assert dialer[hangup].amd_outcome == "hangup"
    for sid in (voicemail, hangup):
        assert calls[sid].result.ended_by in ("redirected", "hung_up_by_api")  # type: ignore[union-attr]

    hm = calls[human]
    assert hm.updates == [] and dialer[human].amd_outcome == "continue"
    assert hm.result is not None and hm.result.ended_by == "caller_hangup" and hm.result.received_audio
    answered = {sid: stack.state.find_record(sid).answered_by for sid in calls}  # type: ignore[union-attr]
    assert answered == {voicemail: "machine_end_beep", hangup: "machine_start", human: "human"}
    prompts = [str((s.session or {}).get("instructions")) for s in stack.openai.sessions]
    assert any("Friday at 3 pm" in p for p in prompts) and any("Bo " in p for p in prompts)
