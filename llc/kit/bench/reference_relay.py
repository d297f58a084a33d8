"""The relay public samples show (FastAPI + uvicorn + the websockets client), for comparison.

Shaped like the published Python samples for Twilio + the OpenAI Realtime API: a FastAPI
WebSocket route for Twilio's media stream, the ``websockets`` package's asyncio client to
OpenAI, stdlib ``json``, two coroutines under ``asyncio.gather``. It only moves frames (no
marks, no barge-in, no records, no logs per frame), so it is a floor for "the relay a
developer would otherwise copy", run under uvicorn[standard] (uvloop, httptools) as people
deploy it. ``llc-phone bench relay --engine reference`` starts it in place of ``llc-phone serve``; it
needs the ``compare`` extra (``pip install -e '.[compare]'``). Not used by the product.
"""

from __future__ import annotations

import asyncio
import json
import os

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect

app = FastAPI()
OPENAI_URL = os.environ.get("OPENAI_REALTIME_URL", "ws://127.0.0.1:9/v1/realtime")


@app.websocket("/media")
async def media(twilio: WebSocket) -> None:
    await twilio.accept()
    async with connect(OPENAI_URL, max_size=None) as openai:
        await openai.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        stream_sid: str | None = None

        async def from_twilio() -> None:
            nonlocal stream_sid
            try:
                async for message in twilio.iter_text():
                    data = json.loads(message)
                    if data["event"] == "media":
                        await openai.send(json.dumps({"type": "input_audio_buffer.append", "audio": data["media"]["payload"]}))
                    elif data["event"] == "start":
                        stream_sid = data["start"]["streamSid"]
            except WebSocketDisconnect:
                await openai.close()

        async def to_twilio() -> None:
            async for message in openai:
                event = json.loads(message)
                if event.get("type") == "response.output_audio.delta" and stream_sid:
                    await twilio.send_text(json.dumps({"event": "media", "streamSid": stream_sid,
                                                       "media": {"payload": event["delta"]}}))

        await asyncio.gather(from_twilio(), to_twilio(), return_exceptions=True)


def main() -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")


if __name__ == "__main__":
    main()
