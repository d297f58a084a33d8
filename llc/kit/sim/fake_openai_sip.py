"""OpenAI's part of a SIP call, offline: the webhook it sends, its calls API and the sideband.

- ``ring()`` POSTs a signed ``realtime.call.incoming`` (Standard Webhooks, as OpenAI signs it)
  to the server under test, with the SIP headers a Twilio Elastic SIP Trunk sends.
- A tiny HTTP server serves ``POST /v1/realtime/calls/{id}/accept|reject|refer|hangup``; accept
  is as strict as the real one about server VAD's knobs (400), and answers 404 for a call whose
  caller has already hung up.
- The sideband WebSocket (``/v1/realtime?call_id=…``) plays a scripted caller: what they say
  (speech, transcript, the agent's reply as a transcript: no audio passes here on SIP), a tool
  call the model makes, key presses; it answers a tool's output with a reply and closes (1000)
  when the call is hung up or referred.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket

from llc.events.signing import Signer, new_message_id
from llc.kit.sim import wire_log
from llc.kit.sim.client_tls import client_tls
from llc.kit.sim.fake_openai_shapes import new_id, transcription_completed, validate_session

VAD_KNOBS = ("threshold", "prefix_padding_ms", "silence_duration_ms")
STEP_S = 0.02  # the script's pace: fast, but in order
BARGE_AFTER_S = 0.3  # how far into the agent's reply a barge-in comes


@dataclass
class SipScript:
    """The caller's side: ``("say", text)``, ``("barge", text)`` (the caller talks over the agent's
    next reply ``BARGE_AFTER_S`` into it; "" is a noise with no words), ``("tool", name, json_args)``,
    ``("dtmf", digit)``, ``("wait", seconds)``, ``("hangup",)``, ``("drop",)`` (the sideband
    breaks, 1011), ``("expire",)`` (the 60-minute session limit: an error, then 1001). The agent answers each "say" (and each barge-in) with the next of
    ``replies``, then with ``reply``."""

    steps: list[tuple[Any, ...]] = field(default_factory=list)
    reply: str = "Hello, how can I help?"
    after_tool: str = "Goodbye!"
    replies: list[str] = field(default_factory=list)

    def answer(self, n: int) -> str:
        return self.replies[n] if n < len(self.replies) else self.reply


@dataclass
class FakeSipCall:
    call_id: str
    script: SipScript
    state: str = "ringing"  # ringing | accepted | rejected | ended
    gone_before_accept: bool = False  # the caller hangs up while it rings: accept answers 404
    accept_fails: int | None = None  # accept answers this HTTP status (a 5xx: the service in trouble)
    accept_hangs: bool = False  # accept never answers
    accept_body: dict[str, Any] | None = None
    reject_status: int | None = None
    refer_to: str | None = None
    bodies: dict[str, Any] = field(default_factory=dict)  # the last request body per verb (accept, refer, ...)
    hung_up: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)  # client events on the sideband
    sidebands: int = 0  # sideband sockets opened for this call
    closed: trio.Event = field(default_factory=trio.Event)


class FakeOpenAISip:
    def __init__(self, secret: str) -> None:
        self.signer = Signer(secret)
        self.calls: dict[str, FakeSipCall] = {}
        self.api_port = 0
        self.ws_port = 0
        self.requests: list[tuple[str, str]] = []  # (call_id, verb) in order
        self.connections = 0  # TCP connections to the calls API (kept alive between requests)
        self.idle_close_s = 5.0  # a kept-alive connection idle this long is closed, as servers do
        self._wires: dict[WebSocketConnection, wire_log.WireSession] = {}  # inside wire_log.recording() only

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/v1"

    @property
    def realtime_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/v1/realtime"

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.api_port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, self._http, listeners)
            ws_server = await nursery.start(serve_websocket, self._sideband, "127.0.0.1", 0, None)
            self.ws_port = ws_server.port
            task_status.started()

    # ---- the webhook ------------------------------------------------------------------------

    def add_call(self, script: SipScript | None = None, call_id: str | None = None, **options: Any) -> FakeSipCall:
        call = FakeSipCall(call_id or new_id("rtc"), script or SipScript(), **options)
        self.calls[call.call_id] = call
        return call

    async def ring(self, webhook_url: str, call: FakeSipCall, *, to: str = "+15550001000", from_: str = "+15559998888",
                   msg_id: str | None = None, at: float | None = None, signer: Signer | None = None) -> int:
        """POST the signed ``realtime.call.incoming``; returns the HTTP status."""
        event = {"object": "event", "id": new_id("evt"), "type": "realtime.call.incoming",
                 "created_at": int(time.time()), "data": {"call_id": call.call_id, "sip_headers": [
                     {"name": "From", "value": f"<sip:{from_}@pstn.twilio.com>;tag=1"},
                     {"name": "To", "value": f"<sip:{to}@sip.api.openai.com;transport=tls>"},
                     {"name": "X-Twilio-CallSid", "value": "CA" + "0" * 32}]}}
        body = orjson.dumps(event)
        headers = (signer or self.signer).headers(msg_id or new_message_id(), body, at if at is not None else time.time())
        async with httpx.AsyncClient(timeout=5.0, verify=client_tls()) as client:
            response = await client.post(webhook_url, content=body, headers={**headers, "content-type": "application/json"})
        return response.status_code

    # ---- the calls API ------------------------------------------------------------------------

    async def _http(self, stream: trio.SocketStream) -> None:
        """HTTP/1.1 with keep-alive: requests one after another until the client closes or idles."""
        self.connections += 1
        data = b""
        while True:
            with trio.move_on_after(self.idle_close_s):
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        break
                    data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if not sep:
                break
            lines = head.decode("latin-1").split("\r\n")
            length = next((int(v) for k, _, v in (ln.partition(":") for ln in lines[1:]) if k.lower() == "content-length"), 0)
            while len(body) < length:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                body += chunk
            body, data = body[:length], body[length:]
            status, answer = self._route(lines[0].split(" ")[1], body)
            if status == 0:  # a hanging accept: the client gives up first
                await trio.sleep_forever()
            payload = orjson.dumps(answer)
            await stream.send_all(f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: "
                                  f"{len(payload)}\r\n\r\n".encode() + payload)
        await stream.aclose()

    def _route(self, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")  # v1 realtime calls {id} {verb}
        if len(parts) != 5 or parts[:3] != ["v1", "realtime", "calls"]:
            return 404, {"error": {"message": "no such route"}}
        call, verb = self.calls.get(parts[3]), parts[4]
        self.requests.append((parts[3], verb))
        if call is None or (verb == "accept" and call.gone_before_accept):
            return 404, {"error": {"message": "call not found"}}
        request: Any = orjson.loads(body or b"{}")
        call.bodies[verb] = request
        if verb == "accept" and call.accept_hangs:
            return 0, {}
        if verb == "accept" and call.accept_fails is not None:
            return call.accept_fails, {"error": {"message": "The server had an error", "type": "server_error"}}
        if verb == "accept":
            td = ((request.get("audio") or {}).get("input") or {}).get("turn_detection") or {}
            if any(k in td for k in VAD_KNOBS):  # the real accept's answer: opaque, no parameter named
                return 400, {"error": {"message": "Invalid request", "type": "invalid_request_error"}}
            if (err := validate_session("ga", request)) is not None:  # the same strictness as session.update
                return 400, {"error": {"code": err[0], "message": err[1], "param": err[2], "type": "invalid_request_error"}}
            call.accept_body, call.state = request, "accepted"
        elif verb == "reject":
            call.reject_status, call.state = request.get("status_code"), "rejected"
        elif verb == "refer":
            call.refer_to = request.get("target_uri")
            call.state = "ended"
        elif verb == "hangup":
            call.hung_up, call.state = True, "ended"
        else:
            return 404, {"error": {"message": "no such verb"}}
        return 200, {}

    # ---- the sideband ---------------------------------------------------------------------------

    async def _sideband(self, request: WebSocketRequest) -> None:
        query = parse_qs(urlsplit(request.path).query)
        call = self.calls.get((query.get("call_id") or [""])[0])
        if call is None or call.state != "accepted":
            await request.reject(404)
            return
        ws = await request.accept()
        call.sidebands += 1
        if (recorder := wire_log.current()) is not None:
            self._wires[ws] = recorder.open("ga")
        script = call.script if call.sidebands == 1 else SipScript([("wait", 0.2), ("hangup",)], call.script.reply)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._play, ws, call, script, nursery.cancel_scope)
                nursery.start_soon(self._read, ws, call, nursery.cancel_scope)
        finally:
            with trio.move_on_after(1):
                await ws.aclose(1000)
            self._wires.pop(ws, None)
            call.closed.set()

    async def _send(self, ws: WebSocketConnection, type_: str, **fields: Any) -> None:
        event = {"type": type_, "event_id": new_id("event"), **fields}
        text = orjson.dumps({k: v for k, v in event.items() if v is not None}).decode()  # None: not in this event
        await ws.send_message(text)
        if (wire := self._wires.get(ws)) is not None:
            wire.sent.append(text)

    async def _respond(self, ws: WebSocketConnection, text: str | None = None, tool: tuple[str, str] | None = None,
                       barge: str | None = None) -> None:
        """One response; ``barge``: the caller's words talked over it (the service clears its audio)."""
        rid, item = new_id("resp"), new_id("item")
        await self._send(ws, "response.created", response={"id": rid, "status": "in_progress"})
        if text is not None:
            await self._send(ws, "output_audio_buffer.started", response_id=rid)
            at = {"response_id": rid, "item_id": item, "output_index": 0, "content_index": 0}
            await self._send(ws, "response.output_audio_transcript.delta", **at, delta=text)
            await self._send(ws, "response.output_audio_transcript.done", **at, transcript=text)
        if tool is not None:
            await self._send(ws, "response.function_call_arguments.done", response_id=rid, item_id=item, output_index=0,
                             call_id=new_id("call"), name=tool[0], arguments=tool[1])
        await self._send(ws, "response.done", response={"id": rid, "status": "completed"})
        if barge is not None:  # generated at once, still playing: the caller's speech clears it
            await trio.sleep(BARGE_AFTER_S)
            heard = new_id("item")
            await self._send(ws, "input_audio_buffer.speech_started", item_id=heard, audio_start_ms=0)
            await self._send(ws, "output_audio_buffer.cleared", response_id=rid)
            await self._heard(ws, heard, barge)
        elif text is not None:
            await self._send(ws, "output_audio_buffer.stopped", response_id=rid)

    async def _heard(self, ws: WebSocketConnection, item: str, text: str) -> None:
        await self._send(ws, "input_audio_buffer.speech_stopped", item_id=item, audio_end_ms=800)
        await self._send(ws, "conversation.item.input_audio_transcription.completed",
                         **transcription_completed("ga", item, text, 800))

    async def _play(self, ws: WebSocketConnection, call: FakeSipCall, script: SipScript, scope: trio.CancelScope) -> None:
        await self._send(ws, "session.created", session={"type": "realtime", "id": new_id("sess")})
        answers = 0
        for step in script.steps:
            await trio.sleep(STEP_S)
            if step[0] == "say":
                item = new_id("item")
                await self._send(ws, "input_audio_buffer.speech_started", item_id=item, audio_start_ms=0)
                await self._heard(ws, item, step[1])
                await self._respond(ws, call.script.answer(answers))
                answers += 1
            elif step[0] == "barge":
                await self._respond(ws, call.script.answer(answers), barge=step[1])
                await self._respond(ws, call.script.answer(answers + 1))
                answers += 2
            elif step[0] == "tool":
                await self._respond(ws, None, (step[1], step[2]))
            elif step[0] == "dtmf":
                await self._send(ws, "input_audio_buffer.dtmf_event_received", event=step[1], received_at=int(time.time()),
                                 event_id=None)  # the service's key event has no event_id
            elif step[0] == "wait":
                await trio.sleep(step[1])
            elif step[0] == "hangup":
                scope.cancel()
                return
            elif step[0] == "expire":  # the 60-minute session limit, as the service says it
                await self._send(ws, "error", error={"type": "invalid_request_error", "code": "session_expired",
                                                     "message": "Your session hit the maximum duration of 60 minutes."})
                await ws.aclose(1001)
                return
            elif step[0] == "drop":  # the socket breaks (1011); the call itself goes on
                await ws.aclose(1011)
                return
        await trio.sleep_forever()

    async def _answer(self, ws: WebSocketConnection, call: FakeSipCall, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "session.update" and (err := validate_session("ga", event.get("session"))) is not None:
            await self._send(ws, "error", error={"type": "invalid_request_error", "code": err[0], "message": err[1],
                                                 "param": err[2]})
        elif kind == "session.update":
            await self._send(ws, "session.updated", session=event["session"])
        elif kind == "response.create":
            await self._respond(ws, call.script.after_tool)

    async def _read(self, ws: WebSocketConnection, call: FakeSipCall, scope: trio.CancelScope) -> None:
        with trio.move_on_after(60):
            while call.state == "accepted":
                with trio.move_on_after(0.05):
                    try:
                        message = await ws.get_message()
                        if (wire := self._wires.get(ws)) is not None:
                            wire.received.append(message)
                        event = orjson.loads(message)
                        call.received.append(event)
                        await self._answer(ws, call, event)
                    except ConnectionClosed:  # llc closed it (a hang-up crossing our answer)
                        break
        scope.cancel()  # hung up or referred: the sideband closes, as the real one does
