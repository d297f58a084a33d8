"""The fake Twilio caller against a tiny stand-in server on loopback.

The stand-in (a QuartTrio app under hypercorn) answers the webhook with
``<Connect><Stream>`` and plays a trivial agent on the socket: it greets, replies
when the caller's speech ends, sends marks and clears when talked over. The
assertions are the Twilio behaviours the real server relies on.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import hypercorn.config
import hypercorn.trio
import orjson
import pytest
import trio
from quart import Response, request, websocket
from quart_trio import QuartTrio
from twilio.request_validator import RequestValidator

from llc.kit.sim.audio import FRAME_BYTES, is_speech, speech_like
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller, FakeCallerError, parse_twiml
from llc.kit.sim.playout_clock import Playout

TOKEN = "12345678901234567890123456789012"
PARAMS = {"callerName": "Ada & Co", "lang": "en-GB"}


def chunks(audio: bytes, sizes: list[int]) -> list[str]:
    """Split audio into payloads of irregular sizes (OpenAI deltas are not frame aligned)."""
    out, pos = [], 0
    for size in sizes:
        out.append(base64.b64encode(audio[pos : pos + size]).decode())
        pos += size
    if pos < len(audio):
        out.append(base64.b64encode(audio[pos:]).decode())
    return out


@dataclass
class Agent:
    """Stand-in server behaviour and everything it saw."""

    greeting: list[str] = field(default_factory=list)  # payloads sent right after start
    greeting_marks: dict[int, str] = field(default_factory=dict)  # mark name after payload index
    reply_ms: int = 200
    reply: bool = True
    clear_on_barge: bool = True
    clear_after_s: float | None = None
    close_after_s: float | None = None
    close_code: int = 4001
    twiml: str | None = None
    twiml_status: int = 200
    form: dict[str, str] = field(default_factory=dict)
    http_headers: dict[str, str] = field(default_factory=dict)
    ws_headers: dict[str, str] = field(default_factory=dict)
    got: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    sent: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    speech_starts: list[float] = field(default_factory=list)
    speech_ends: list[float] = field(default_factory=list)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m for _, m in self.got if m["event"] == name]

    def sent_at(self, event: str) -> list[float]:
        return [t for t, m in self.sent if m["event"] == event]

    def got_mark(self, name: str) -> float:
        return next(t for t, m in self.got if m["event"] == "mark" and m["mark"]["name"] == name)


def make_app(agent: Agent) -> QuartTrio:
    app = QuartTrio(__name__)

    @app.post("/twiml")
    async def twiml() -> Response:
        agent.form = dict(await request.form)
        agent.http_headers = dict(request.headers)
        body = agent.twiml or (
            f'<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="ws://{request.host}/media">'
            + "".join(f'<Parameter name="{k}" value="{v.replace("&", "&amp;")}"/>' for k, v in PARAMS.items())
            + "</Stream></Connect></Response>"
        )
        return Response(body, status=agent.twiml_status, mimetype="text/xml")

    @app.websocket("/media")
    async def media() -> None:
        agent.ws_headers = dict(websocket.headers)
        sid = ""
        playing: set[str] = set()  # marks not yet echoed: our audio is still playing there
        speaking, quiet, replies = False, 0, 0

        async def send(msg: dict[str, Any]) -> None:
            agent.sent.append((trio.current_time(), msg))
            await websocket.send(orjson.dumps(msg).decode())

        async def speak(payloads: list[str], marks: dict[int, str]) -> None:
            for i, p in enumerate(payloads):
                await send({"event": "media", "streamSid": sid, "media": {"payload": p}})
                if i in marks:
                    playing.add(marks[i])
                    await send({"event": "mark", "streamSid": sid, "mark": {"name": marks[i]}})

        async def later(delay: float, what: str) -> None:
            await trio.sleep(delay)
            if what == "clear":
                await send({"event": "clear", "streamSid": sid})
            else:
                await websocket.close(agent.close_code)
                nursery.cancel_scope.cancel()

        async with trio.open_nursery() as nursery:
            while True:
                msg = orjson.loads(await websocket.receive())
                now = trio.current_time()
                agent.got.append((now, msg))
                if msg["event"] == "start":
                    sid = msg["streamSid"]
                    nursery.start_soon(speak, agent.greeting, agent.greeting_marks)
                    if agent.clear_after_s is not None:
                        nursery.start_soon(later, agent.clear_after_s, "clear")
                    if agent.close_after_s is not None:
                        nursery.start_soon(later, agent.close_after_s, "close")
                elif msg["event"] == "media":
                    if is_speech(base64.b64decode(msg["media"]["payload"])):
                        quiet = 0
                        if not speaking:
                            speaking = True
                            agent.speech_starts.append(now)
                            if playing and agent.clear_on_barge:
                                await send({"event": "clear", "streamSid": sid})
                    elif speaking:
                        quiet += 1
                        if quiet >= 2:  # 40 ms of silence: the caller has finished
                            speaking = False
                            agent.speech_ends.append(now)
                            replies += 1
                            if agent.reply:
                                audio = speech_like(agent.reply_ms, seed=9)
                                nursery.start_soon(speak, chunks(audio, [100, 487]), {1: f"r{replies}"})
                elif msg["event"] == "mark":
                    playing.discard(msg["mark"]["name"])
                elif msg["event"] == "stop":
                    nursery.cancel_scope.cancel()
                    break

    return app


@pytest.fixture
async def stand_in(nursery: trio.Nursery) -> tuple[Agent, str]:
    agent = Agent()
    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    urls = await nursery.start(hypercorn.trio.serve, make_app(agent), config)
    return agent, urls[0]


def greeting_payloads(ms: int) -> list[str]:
    return chunks(speech_like(ms, seed=3), [33, 160, 1000, 7, 800])


# -- pure playout ------------------------------------------------------------------


def test_playout_marks_follow_audio_and_clear_releases_all() -> None:
    p = Playout()
    p.add_mark("empty")  # nothing buffered: due at the next tick
    p.append(b"\x00" * 200)
    p.add_mark("a")
    p.append(b"\x00" * 100)
    p.add_mark("b")
    assert p.tick() == (160, ["empty"])
    assert p.tick() == (140, ["a", "b"])
    p.append(b"\x00" * 500)
    p.add_mark("c")
    p.add_mark("d")
    assert p.clear() == (500, ["c", "d"])
    assert p.tick() == (0, [])
    assert (p.played_bytes, p.idle_ms) == (300, 20)


# -- calls through the stand-in ------------------------------------------------------


async def test_webhook_start_and_frame_shapes(stand_in: tuple[Agent, str]) -> None:
    agent, url = stand_in
    agent.reply_ms = 100
    script = CallerScript([CallerTurn("hello", speech_ms=300)], agent_done_silence_ms=200)
    with trio.fail_after(5):
        res = await FakeCaller(url, script, extra_params={"CallerCity": "Oslo"}).run()
    assert res.ended_by == "caller_hangup" and res.close_code == 1000, res.events
    assert res.parameters == PARAMS and res.stream_url.endswith("/media")
    assert agent.form["CallSid"] == res.call_sid and agent.form["Direction"] == "inbound"
    assert agent.form["CallStatus"] == "ringing" and agent.form["CallerCity"] == "Oslo"
    assert "x-twilio-signature" not in {k.lower() for k in agent.http_headers}

    kinds = [m["event"] for _, m in agent.got]
    assert kinds[:2] == ["connected", "start"] and kinds[-1] == "stop"
    assert agent.got[0][1] == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    start = agent.got[1][1]
    assert start["streamSid"] == res.stream_sid and res.stream_sid.startswith("MZ") and len(res.stream_sid) == 34
    assert start["start"]["customParameters"] == PARAMS
    assert start["start"]["callSid"] == res.call_sid and start["start"]["tracks"] == ["inbound"]
    assert start["start"]["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    assert agent.got[-1][1]["stop"] == {"accountSid": "AC" + "0" * 32, "callSid": res.call_sid}

    seqs = [m["sequenceNumber"] for _, m in agent.got[1:]]
    assert all(isinstance(s, str) for s in seqs) and [int(s) for s in seqs] == list(range(1, len(seqs) + 1))
    media = [(t, m) for t, m in agent.got if m["event"] == "media"]
    for i, (_, m) in enumerate(media):
        body = m["media"]
        assert m["streamSid"] == res.stream_sid and body["track"] == "inbound"
        assert body["chunk"] == str(i + 1) and body["timestamp"] == str(i * 20)
        assert len(body["payload"]) == 216 and len(base64.b64decode(body["payload"])) == FRAME_BYTES
    span = media[-1][0] - media[0][0]
    assert 45 <= (len(media) - 1) / span <= 55  # ~50 frames/s
    assert abs(span - int(media[-1][1]["media"]["timestamp"]) / 1000) < 0.06  # no drift
    assert res.turns[0].voice_to_voice_ms is not None and 0 < res.turns[0].voice_to_voice_ms < 200


async def test_payloads_untouched_and_marks_after_playout(stand_in: tuple[Agent, str]) -> None:
    agent, url = stand_in
    agent.greeting = greeting_payloads(600)  # 33+160+1000+7+800 = 2000 bytes = 250 ms, then 350 ms
    agent.greeting_marks = {2: "g-mid", 5: "g-end"}  # after 1193 bytes (149 ms) and at 600 ms
    script = CallerScript([], wait_first_reply=True, agent_done_silence_ms=200)
    with trio.fail_after(5):
        res = await FakeCaller(url, script).run()
    assert res.ended_by == "caller_hangup"
    assert res.received_payloads == agent.greeting
    assert res.received_audio == speech_like(600, seed=3)
    assert res.heard_audio_ms == 600 and res.marks_echoed == ["g-mid", "g-end"]
    sent = agent.sent_at("mark")
    mid, end = agent.got_mark("g-mid") - sent[0], agent.got_mark("g-end") - sent[1]
    assert 0.149 - 0.025 <= mid <= 0.149 + 0.1
    assert 0.6 - 0.025 <= end <= 0.6 + 0.1


async def test_clear_drops_audio_and_echoes_pending_marks_at_once(stand_in: tuple[Agent, str]) -> None:
    agent, url = stand_in
    agent.greeting = chunks(speech_like(2000, seed=3), [400, 4000, 4000, 4000])
    agent.greeting_marks = {0: "m1", 1: "m2", 4: "m3"}  # at 50 ms, 550 ms and the end
    agent.clear_after_s = 0.3
    script = CallerScript([], wait_first_reply=True, agent_done_silence_ms=200)
    with trio.fail_after(5):
        res = await FakeCaller(url, script).run()
    assert res.marks_echoed == ["m1", "m2", "m3"] and len(res.clears) == 1
    assert 250 <= res.heard_audio_ms <= 400  # ~300 ms played, the rest dropped
    clear_sent = agent.sent_at("clear")[0]
    assert agent.got_mark("m1") < clear_sent  # played before the clear
    assert all(0 <= agent.got_mark(m) - clear_sent < 0.05 for m in ("m2", "m3"))


@pytest.mark.parametrize("clears", [True, False])
async def test_barge_in(stand_in: tuple[Agent, str], clears: bool) -> None:
    agent, url = stand_in
    agent.greeting = greeting_payloads(1200)
    agent.greeting_marks = {5: "greeting"}
    agent.clear_on_barge = clears
    script = CallerScript(
        [CallerTurn("stop", speech_ms=200, barge_in_after_ms=400)], wait_first_reply=True, agent_done_silence_ms=200
    )
    with trio.fail_after(6):
        res = await FakeCaller(url, script).run()
    first_greeting = agent.sent_at("media")[0]
    assert 0.38 <= agent.speech_starts[0] - first_greeting <= 0.5  # talked over after ~400 ms played
    assert res.turns[0].first_audio is not None and not res.turns[0].timed_out
    if clears:
        assert len(res.clears) == 1 and res.audio_after_clear_ms <= 60
        assert 400 <= res.heard_audio_ms <= 500 + 200  # greeting cut short, then the 200 ms reply
    else:
        assert not res.clears and 760 <= res.audio_after_clear_ms <= 820  # the rest of the greeting


async def test_signatures_validate(stand_in: tuple[Agent, str]) -> None:
    agent, url = stand_in
    script = CallerScript([CallerTurn("hi", speech_ms=100)], agent_done_silence_ms=100)
    with trio.fail_after(5):
        res = await FakeCaller(url, script, auth_token=TOKEN).run()
    validator = RequestValidator(TOKEN)
    assert validator.validate(url + "/twiml", agent.form, agent.http_headers["X-Twilio-Signature"])
    assert validator.validate(res.stream_url, {}, agent.ws_headers["X-Twilio-Signature"])
    assert not RequestValidator("x" * 32).validate(url + "/twiml", agent.form, agent.http_headers["X-Twilio-Signature"])


async def test_server_close_ends_call(stand_in: tuple[Agent, str]) -> None:
    agent, url = stand_in
    agent.close_after_s = 0.3
    script = CallerScript([CallerTurn("a long story", speech_ms=3000)])
    start = trio.current_time()
    with trio.fail_after(5):
        res = await FakeCaller(url, script).run()
    assert res.ended_by == "server_closed" and res.close_code == 4001
    assert trio.current_time() - start < 1.5
    assert "stop" not in [m["event"] for _, m in agent.got]


async def test_reply_timeout_dtmf_and_max_call(stand_in: tuple[Agent, str]) -> None:
    agent, url = stand_in
    agent.reply = False
    script = CallerScript([CallerTurn("", dtmf="12#")], reply_timeout_s=0.3, hangup=False, max_call_s=1.2)
    start = trio.current_time()
    with trio.fail_after(5):
        res = await FakeCaller(url, script).run()
    assert 1.15 <= trio.current_time() - start < 2.0
    assert res.ended_by == "timeout" and agent.got[-1][1]["event"] == "stop"
    assert res.turns[0].timed_out and res.turns[0].voice_to_voice_ms is None
    assert any("turn 1" in e for e in res.events)
    dtmf = agent.events("dtmf")
    assert [d["dtmf"] for d in dtmf] == [{"track": "inbound_track", "digit": d} for d in "12#"]
    assert all(isinstance(d["sequenceNumber"], str) and d["streamSid"] == res.stream_sid for d in dtmf)
    assert not agent.speech_starts  # a DTMF-only turn says nothing


async def test_webhook_errors(stand_in: tuple[Agent, str]) -> None:
    agent, url = stand_in
    script = CallerScript([CallerTurn("hi")])
    agent.twiml_status = 500
    with trio.fail_after(5), pytest.raises(FakeCallerError, match="500"):
        await FakeCaller(url, script).run()
    agent.twiml_status, agent.twiml = 200, "<Response><Say>Hello</Say></Response>"
    with trio.fail_after(5), pytest.raises(FakeCallerError, match="<Say>Hello"):
        await FakeCaller(url, script).run()
    ws_url = url.replace("http://", "ws://")
    with trio.fail_after(5), pytest.raises(FakeCallerError, match="could not open Media Stream"):
        await FakeCaller(url, script).run_stream(ws_url + "/nope", {})
    with trio.fail_after(5):  # outbound calls: no webhook, no turns: connect, start, stop
        res = await FakeCaller(url, CallerScript([])).run_stream(ws_url + "/media", {"leg": "outbound"})
    assert res.twiml == "" and res.ended_by == "caller_hangup"
    assert agent.events("start")[0]["start"]["customParameters"] == {"leg": "outbound"}
    assert parse_twiml('<Response><Connect><Stream url="wss://x/y"/></Connect></Response>') == ("wss://x/y", {})
