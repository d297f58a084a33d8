"""The fake OpenAI Realtime server, driven by a bare trio-websocket client (no product code).

Every wait is bounded: a hung fake fails a test in seconds instead of hanging the suite.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, WebSocketConnection, open_websocket_url

from llc.kit.sim import fake_openai_shapes as shapes
from llc.kit.sim.audio import frames, silence, speech_like, speech_ms_for_text
from llc.kit.sim.fake_openai import FakeOpenAI, FakeOpenAIConfig, SessionLog, ToolCallScript

AUTH = [(b"Authorization", b"Bearer sk-test")]
GA_SESSION: dict[str, Any] = {
    "type": "realtime", "output_modalities": ["audio"], "instructions": "Be brief.",
    "audio": {"input": {"format": {"type": "audio/pcmu"}, "transcription": {"model": "gpt-4o-mini-transcribe"},
                        "turn_detection": {"type": "server_vad", "interrupt_response": True}},
              "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"}},
}
FLAT_SESSION: dict[str, Any] = {
    "modalities": ["text", "audio"], "voice": "alloy", "instructions": "Be brief.",
    "input_audio_format": "g711_ulaw", "output_audio_format": "g711_ulaw",
    "input_audio_transcription": {"model": "whisper-1"}, "turn_detection": {"type": "server_vad"},
}
SESSIONS = {"ga": GA_SESSION, "flat": FLAT_SESSION}
GREETING = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Greet the caller."}]}


def fast(**overrides: Any) -> FakeOpenAIConfig:
    """Small waits so the whole file runs in a few seconds."""
    base: dict[str, Any] = {"ttfb_ms": 60, "end_of_turn_silence_ms": 100, "realtime_factor": 20.0,
                            "replies": ["Hi there.", "Second line here."]}
    return FakeOpenAIConfig(**{**base, **overrides})


class Client:
    """A raw Realtime client: sends events, keeps every event received with its arrival time."""

    def __init__(self, ws: WebSocketConnection):
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    async def send(self, type_: str, **fields: Any) -> None:
        await self.ws.send_message(orjson.dumps({"type": type_, **fields}).decode())

    async def until(self, type_: str, timeout: float = 3.0) -> dict[str, Any]:
        with trio.fail_after(timeout):
            while True:
                event = orjson.loads(await self.ws.get_message())
                event["_rx"] = trio.current_time()
                self.events.append(event)
                if event["type"] == type_:
                    return dict(event)

    async def error(self, code: str) -> dict[str, Any]:
        event = await self.until("error")
        assert event["error"]["code"] == code, event
        return dict(event["error"])

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    async def speak(self, speech_ms: int = 400, silence_ms: int = 200) -> None:
        """One caller turn as Twilio would send it: 20 ms frames of speech, then quiet."""
        for frame in frames(speech_like(speech_ms, seed=7) + silence(silence_ms)):
            await self.send("input_audio_buffer.append", audio=base64.b64encode(frame).decode())


@asynccontextmanager
async def fake_server(config: FakeOpenAIConfig) -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI(config)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(fake.serve)
        assert fake.url == f"ws://127.0.0.1:{port}/v1/realtime"
        yield fake
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def connect(fake: FakeOpenAI, headers: list[tuple[bytes, bytes]] = AUTH,
                  session: dict[str, Any] | None = None) -> AsyncIterator[Client]:
    """Open a socket, wait for session.created and, if given, get ``session`` accepted."""
    async with open_websocket_url(fake.url + "?model=gpt-realtime-1.5", extra_headers=headers) as ws:
        client = Client(ws)
        if session is not None:
            await client.until("session.created")
            await client.send("session.update", session=session)
            await client.until("session.updated")
        yield client


async def test_ga_accepts_ga_session_and_rejects_flat_one() -> None:
    async with fake_server(fast()) as fake, connect(fake) as client:
        created = await client.until("session.created")
        assert created["session"]["type"] == "realtime" and "modalities" not in created["session"]
        await client.send("session.update", session=FLAT_SESSION, event_id="evt_1")
        err = await client.error("missing_required_parameter")
        assert err["param"] == "session.type" and err["type"] == "invalid_request_error"
        assert err["event_id"] == "evt_1"
        for key, value in [("modalities", ["audio"]), ("input_audio_format", "g711_ulaw"), ("voice", "ash"),
                           ("turn_detection", None), ("input_audio_transcription", None)]:
            await client.send("session.update", session={"type": "realtime", key: value})
            assert (await client.error("unknown_parameter"))["param"] == f"session.{key}"
        await client.send("session.update", session={"type": "realtime", "output_modalities": "audio"})
        assert (await client.error("invalid_type"))["param"] == "session.output_modalities"
        await client.send("session.update", session={"type": "realtime", "output_modalities": ["text", "audio"]})
        assert (await client.error("invalid_value"))["param"] == "session.output_modalities"
        await client.send("session.update", session=GA_SESSION)
        updated = await client.until("session.updated")
        assert updated["session"]["audio"]["output"]["format"] == {"type": "audio/pcmu"}
        assert updated["session"]["audio"]["output"]["voice"] == "marin"
        log = fake.sessions[0]
        assert log.session == updated["session"] and len(log.errors_sent) == 8
        assert log.query == "model=gpt-realtime-1.5" and log.headers["authorization"] == "Bearer sk-test"
        assert all("event_id" in e for e in client.events)


async def test_beta_header_on_ga_is_refused_with_4000() -> None:
    async with fake_server(fast()) as fake:
        headers = AUTH + [(b"OpenAI-Beta", b"realtime=v1")]
        async with open_websocket_url(fake.url, extra_headers=headers) as ws:
            with trio.fail_after(3):
                first = orjson.loads(await ws.get_message())
                assert first["type"] == "error" and first["error"]["code"] == "beta_api_shape_disabled"
                assert "OpenAI-Beta" in first["error"]["message"]
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.get_message()
        assert closed.value.reason is not None and closed.value.reason.code == 4000
        with trio.fail_after(3):
            while fake.sessions[0].close_code is None:
                await trio.sleep(0.01)
        assert fake.sessions[0].close_code == 4000


async def test_flat_accepts_flat_session_and_rejects_ga_keys() -> None:
    async with fake_server(fast(shape="flat")) as fake, connect(fake) as client:
        created = await client.until("session.created")
        assert created["session"]["modalities"] == ["text", "audio"] and "type" not in created["session"]
        await client.send("session.update", session=GA_SESSION)
        assert (await client.error("unknown_parameter"))["param"] == "session.type"
        for key in ("audio", "output_modalities"):
            await client.send("session.update", session={key: GA_SESSION[key]})
            assert (await client.error("unknown_parameter"))["param"] == f"session.{key}"
        await client.send("session.update", session={"modalities": ["audio"]})
        assert (await client.error("invalid_value"))["param"] == "session.modalities"
        await client.send("session.update", session=FLAT_SESSION)
        updated = await client.until("session.updated")
        assert updated["session"]["output_audio_format"] == "g711_ulaw"
        assert fake.sessions[0].session == updated["session"]


async def test_handshake_needs_path_and_bearer_token() -> None:
    async with fake_server(fast()) as fake:
        with trio.fail_after(3):
            with pytest.raises(ConnectionRejected) as rejected:
                async with open_websocket_url(fake.url.replace("/v1/realtime", "/v1/nope"), extra_headers=AUTH):
                    pass
            assert rejected.value.status_code == 404
            with pytest.raises(ConnectionRejected) as rejected:
                async with open_websocket_url(fake.url):
                    pass
            assert rejected.value.status_code == 401
            assert orjson.loads(rejected.value.body or b"{}")["error"]["message"]
        assert fake.sessions == []
    async with fake_server(fast(require_auth=False)) as fake, connect(fake, headers=[]) as client:
        await client.until("session.created")


@pytest.mark.parametrize("shape", ["ga", "flat"])
async def test_caller_turn_gets_a_response_and_the_audio_is_what_was_logged(shape: str) -> None:
    config = fast(shape=shape, ttfb_ms=150)
    names = shapes.EVENTS[shape]
    async with fake_server(config) as fake, connect(fake, session=SESSIONS[shape]) as client:
        await client.speak()
        started = await client.until("input_audio_buffer.speech_started")
        stopped = await client.until("input_audio_buffer.speech_stopped")
        committed = await client.until("input_audio_buffer.committed")
        assert started["item_id"] == stopped["item_id"] == committed["item_id"]
        assert 0 <= started["audio_start_ms"] < stopped["audio_end_ms"]
        await client.until(str(names["item_added"]))
        transcript = await client.until("conversation.item.input_audio_transcription.completed")
        assert transcript["item_id"] == committed["item_id"]
        assert transcript["transcript"] == config.user_transcripts[0]
        done = await client.until("response.done")
        assert done["response"]["status"] == "completed"

        log: SessionLog = fake.sessions[0]
        deltas = [e for e in client.events if e["type"] == names["audio_delta"]]
        item_id = deltas[0]["item_id"]
        assert b"".join(base64.b64decode(d["delta"]) for d in deltas) == log.audio_sent[item_id]
        assert len(log.audio_sent[item_id]) == speech_ms_for_text(config.replies[0]) * 8
        said = "".join(e["delta"] for e in client.events if e["type"] == names["transcript_delta"])
        assert said == config.replies[0]
        final = next(e for e in client.events if e["type"] == names["transcript_done"])
        assert final["transcript"] == config.replies[0]
        # ttfb counts from the commit, on the fake's clock (client receive times jitter under load).
        assert log.first_delta_at[0] - log.committed_at[0] >= 0.150
        assert log.speech_started_at and log.speech_stopped_at and log.responses == 1
        other = shapes.EVENTS["flat" if shape == "ga" else "ga"]
        assert not set(client.types()) & {v for k, v in other.items() if k.endswith(("delta", "done", "added"))}
        assert all(e.get("event_id") for e in client.events)
        order = client.types()
        assert order.index("response.created") < order.index("response.output_item.added") \
            < order.index("response.content_part.added") < order.index(str(names["audio_delta"])) \
            < order.index(str(names["audio_done"])) < order.index("response.output_item.done")


async def test_second_response_create_and_cancel_rules() -> None:
    config = fast(replies=["This line is long enough to still be playing when we cancel it. " * 3])
    async with fake_server(config) as fake, connect(fake, session=GA_SESSION) as client:
        await client.send("response.cancel")
        await client.error("response_cancel_not_active")
        await client.send("conversation.item.create", item=GREETING)
        await client.until("conversation.item.added")
        await client.send("response.create")
        await client.until("response.created")
        await client.send("response.create")
        await client.error("conversation_already_has_active_response")
        await client.until("response.output_audio.delta")
        await client.send("response.cancel")
        done = await client.until("response.done")
        assert done["response"]["status"] == "cancelled"
        after = len(client.events)
        await client.send("session.update", session=GA_SESSION)  # a round trip: nothing stray follows
        await client.until("session.updated")
        assert "response.output_audio.delta" not in [e["type"] for e in client.events[after:]]
        log = fake.sessions[0]
        assert log.cancels == 1 and log.responses == 1
        assert [e["code"] for e in log.errors_sent] == ["response_cancel_not_active",
                                                        "conversation_already_has_active_response"]


async def test_barge_in_cancels_the_response_in_flight() -> None:
    config = fast(realtime_factor=2.0, replies=["A long answer that the caller is going to talk over. " * 2])
    async with fake_server(config) as fake, connect(fake, session=GA_SESSION) as client:
        await client.speak()
        await client.until("response.output_audio.delta")
        await client.speak(silence_ms=0)
        await client.until("input_audio_buffer.speech_started")
        done = await client.until("response.done")
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "turn_detected"
        assert done["response"]["output"][0]["status"] == "incomplete"
        assert fake.sessions[0].cancels == 0  # only client cancels are counted


async def test_truncate_and_delete_rules() -> None:
    async with fake_server(fast()) as fake, connect(fake, session=GA_SESSION) as client:
        await client.send("conversation.item.create", item=GREETING)
        await client.send("response.create")
        done = await client.until("response.done")
        item_id = done["response"]["output"][0]["id"]
        sent_ms = len(fake.sessions[0].audio_sent[item_id]) // 8
        await client.send("conversation.item.truncate", item_id=item_id, content_index=0,
                          audio_end_ms=sent_ms + 500)
        err = await client.error("invalid_value")
        assert err["message"] == f"Audio content of {sent_ms}ms is already shorter than {sent_ms + 500}ms"
        await client.send("conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=0)
        assert (await client.error("invalid_value"))["param"] == "audio_end_ms"
        await client.send("conversation.item.truncate", item_id="item_nope", content_index=0, audio_end_ms=10)
        err = await client.error("invalid_value")
        assert err["param"] == "item_id" and "not found" in err["message"]
        await client.send("conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=200)
        truncated = await client.until("conversation.item.truncated")
        assert (truncated["item_id"], truncated["audio_end_ms"]) == (item_id, 200)
        await client.send("conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=300)
        await client.error("invalid_value")  # now only 200 ms remain
        await client.send("conversation.item.delete", item_id=item_id)
        assert (await client.until("conversation.item.deleted"))["item_id"] == item_id
        await client.send("conversation.item.delete", item_id=item_id)
        await client.error("invalid_value")
        log = fake.sessions[0]
        assert log.truncates == [{"item_id": item_id, "audio_end_ms": 200}] and log.deletes == [item_id]


async def test_scripted_tool_call_round_trip() -> None:
    tool = ToolCallScript("lookup_booking", {"name": "Ada", "party": 2}, reply_after="Found your booking.")
    async with fake_server(fast(tool_calls={0: tool})) as fake, connect(fake, session=GA_SESSION) as client:
        await client.send("conversation.item.create", item=GREETING)
        await client.send("response.create")
        args = await client.until("response.function_call_arguments.done")
        assert args["name"] == "lookup_booking" and orjson.loads(args["arguments"]) == tool.arguments
        done = await client.until("response.done")
        assert done["response"]["output"][0]["type"] == "function_call"
        assert "response.output_audio.delta" not in client.types()
        await client.send("conversation.item.create", item={"type": "function_call_output", "call_id": "nope",
                                                             "output": "{}"})
        await client.error("invalid_value")
        await client.send("conversation.item.create", item={"type": "function_call_output",
                                                             "call_id": args["call_id"], "output": '{"ok":true}'})
        await client.until("conversation.item.added")
        await client.send("response.create")
        assert (await client.until("response.output_audio_transcript.done"))["transcript"] == tool.reply_after
        await client.until("response.done")
        await client.send("response.create")  # the tool turn consumed no scripted line
        assert (await client.until("response.output_audio_transcript.done"))["transcript"] == "Hi there."
        assert fake.sessions[0].responses == 3


@pytest.mark.parametrize("shape", ["ga", "flat"])
async def test_text_only_priming_has_no_audio_and_keeps_the_script(shape: str) -> None:
    names = shapes.EVENTS[shape]
    async with fake_server(fast(shape=shape)) as fake, connect(fake, session=SESSIONS[shape]) as client:
        wrong = "modalities" if shape == "ga" else "output_modalities"
        await client.send("response.create", response={wrong: ["text"]})
        assert (await client.error("unknown_parameter"))["param"] == f"response.{wrong}"
        await client.send("response.create", response={str(names["modalities"]): ["text"], "conversation": "none"})
        done = await client.until("response.done")
        assert done["response"]["status"] == "completed"
        assert str(names["text_done"]) in client.types() and str(names["text_delta"]) in client.types()
        assert not {str(names["audio_delta"]), str(names["item_added"])} & set(client.types())
        assert fake.sessions[0].audio_sent == {} and fake.sessions[0].first_delta_at == []
        await client.send("response.create")
        assert (await client.until(str(names["transcript_done"])))["transcript"] == "Hi there."


async def test_bad_input_gets_errors_and_the_connection_survives() -> None:
    async with fake_server(fast()) as fake, connect(fake, session=GA_SESSION) as client:
        await client.ws.send_message("{not json")
        await client.error("invalid_json")
        await client.send("input_audio_buffer.frobnicate")
        assert (await client.error("invalid_value"))["param"] == "type"
        await client.send("input_audio_buffer.append", audio="!!!not base64!!!")
        await client.error("invalid_value")
        await client.send("input_audio_buffer.commit")
        await client.error("input_audio_buffer_commit_empty")
        await client.send("conversation.item.create", item={"type": "message", "role": "assistant",
                                                             "content": [{"type": "text", "text": "flat part"}]})
        assert (await client.error("invalid_value"))["param"] == "item.content[0].type"
        await client.send("response.create", response={"voice": 3})
        await client.error("unknown_parameter")  # GA puts voice under response.audio.output
        await client.send("input_audio_buffer.append", audio=base64.b64encode(silence(200)).decode())
        await client.send("input_audio_buffer.commit")
        await client.until("input_audio_buffer.committed")
        await client.send("input_audio_buffer.clear")
        await client.until("input_audio_buffer.cleared")
        log = fake.sessions[0]
        assert {"type": "input_audio_buffer.append", "bytes": 1600} in [{k: v for k, v in e.items() if k != "t"} for e in log.received]
        assert not any("audio" in e for e in log.received)
        assert len(log.errors_sent) == 6


async def test_client_close_is_recorded_and_server_cancel_closes_sockets() -> None:
    async with fake_server(fast()) as fake:
        async with connect(fake) as client:
            await client.until("session.created")
            await client.ws.aclose(code=1000)
        with trio.fail_after(3):
            while fake.sessions[0].close_code is None:
                await trio.sleep(0.01)
        assert fake.sessions[0].close_code == 1000

    fake = FakeOpenAI(fast())
    async with trio.open_nursery() as nursery:
        server_scope = trio.CancelScope()

        async def run_server(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
            with server_scope:
                await fake.serve(task_status=task_status)

        await nursery.start(run_server)
        async with connect(fake) as client:
            await client.until("session.created")
            server_scope.cancel()
            with trio.fail_after(3), pytest.raises(ConnectionClosed):
                while True:
                    await client.ws.get_message()
