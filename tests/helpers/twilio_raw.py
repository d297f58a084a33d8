"""A hand-driven Twilio media socket for tests that need exact control (hang up mid-reply, garbage)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import trio
from trio_websocket import WebSocketConnection

from llc.kit.sim import audio


def start_frame(stream_sid: str = "MZraw", call_sid: str = "CAraw", **params: str) -> str:
    return orjson.dumps({
        "event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
        "start": {"streamSid": stream_sid, "accountSid": "AC1", "callSid": call_sid, "tracks": ["inbound"],
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                  "customParameters": {"direction": "inbound", "scenario": "default", **params}},
    }).decode()


def media_frame(chunk: bytes, stream_sid: str = "MZraw") -> str:
    return orjson.dumps({"event": "media", "streamSid": stream_sid,
                         "media": {"track": "inbound", "payload": base64.b64encode(chunk).decode()}}).decode()


def stop_frame(stream_sid: str = "MZraw", call_sid: str = "CAraw") -> str:
    return orjson.dumps({"event": "stop", "streamSid": stream_sid, "stop": {"accountSid": "AC1", "callSid": call_sid}}).decode()


async def speak(ws: WebSocketConnection, ms: int, then_silence_ms: int = 0, stream_sid: str = "MZraw") -> None:
    """Send speech then silence as paced 20 ms frames, like Twilio."""
    pcm = audio.speech_like(ms) + audio.silence(then_silence_ms)
    deadline = trio.current_time()
    for chunk in audio.frames(pcm):
        await ws.send_message(media_frame(chunk, stream_sid))
        deadline += 0.02
        await trio.sleep_until(deadline)


async def first_event(ws: WebSocketConnection, event: str, timeout: float = 5.0) -> dict[str, Any]:
    with trio.fail_after(timeout):
        while True:
            frame = orjson.loads(await ws.get_message())
            if frame.get("event") == event:
                return frame


def call_tasks() -> list[str]:
    """Names of live Trio tasks that belong to a call (the bridge and its readers)."""
    found: list[str] = []

    def walk(task: trio.lowlevel.Task) -> None:
        code = getattr(task.coro, "cr_code", None)
        if code is not None and "llc/call/" in code.co_filename.replace("\\", "/"):
            found.append(task.name)
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child)

    walk(trio.lowlevel.current_root_task())
    return found
