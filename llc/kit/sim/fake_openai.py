"""A fake OpenAI Realtime WebSocket server for offline tests, the demo and benchmarks.

It is as strict as the live service about the two API shapes ("ga" and the older "flat" beta
shape, see docs/02-session-config.md), so a product that passes against it does not
meet its first ``unknown_parameter`` on a real call. It hears the caller with an energy VAD
over the mu-law it is sent, answers with synthetic speech after a configurable time to first
byte, bursts audio ahead of real time like the real service, and records what it saw in a
``SessionLog`` per connection so tests can compare what reached the caller.

All writes go through one writer task per connection fed by an unbounded channel: handlers
and response tasks emit synchronously, so a cancelled response can never leave a half-sent
frame or a delta after its ``response.done``.
"""

from __future__ import annotations

import base64
import ipaddress
import math
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal
from urllib.parse import parse_qs

import orjson
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket

from llc.core.dialect import Shape
from llc.kit.sim import fake_openai_mcp as mcp
from llc.kit.sim import fake_openai_shapes as shapes
from llc.kit.sim import wire_log
from llc.kit.sim.audio import BYTES_PER_MS, FRAME_BYTES, frames
from llc.kit.sim.fake_openai_mcp import McpCallScript
from llc.kit.sim.fake_openai_shapes import ApiError, new_id, pick

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # the service takes appends up to 15 MiB
PRIMING_TEXT = "Ready."  # what a text-only ("inference priming") response says
FAULTS = ("drop", "expire", "garbage", "error", "stall", "resume")
# What a broken upstream might send: not JSON, JSON without a type, wrong types, unknown events.
GARBAGE = ("{not json", "[1, 2, 3]", '{"no_type": true}', '{"type": 42}', '{"type": "response.output_audio.delta", "delta": 7}',
           '{"type": "made.up.event"}', "\u0000\uffff", '{"type": "response.done", "response": "nope"}')


@dataclass
class ToolCallScript:
    """Makes one response call a tool instead of speaking, to exercise the product's tool loop."""

    name: str
    arguments: dict[str, Any]  # JSON-encoded into the arguments string
    reply_after: str | None = None  # spoken after the tool output arrives (else the next scripted reply)
    repeat: int = 1  # calls in a row, each output starting the next (a benchmark's round trips)


@dataclass
class FakeOpenAIConfig:
    """Timing and script of the fake; tests shrink the waits, benchmarks use service-like ones."""

    shape: Shape = "ga"
    ttfb_ms: int = 300  # caller turn committed -> first audio delta
    end_of_turn_silence_ms: int = 400  # silence after speech before speech_stopped/commit
    speech_start_frames: int = 2  # consecutive 20 ms speech frames before speech_started
    vad_threshold: float = 300.0
    replies: list[str] = field(default_factory=lambda: list(shapes.DEFAULT_REPLIES))  # last one repeats
    user_transcripts: list[str] = field(default_factory=lambda: list(shapes.DEFAULT_TRANSCRIPTS))  # per turn
    chunk_ms: int = 100  # audio per delta
    realtime_factor: float = 2.0  # audio is generated this many times faster than it plays
    tool_calls: dict[int, ToolCallScript | McpCallScript] = field(default_factory=dict)  # user-turn response index -> tool
    require_auth: bool = True  # reject a handshake without "Authorization: Bearer ..." (HTTP 401)
    session_max_s: float = 3600.0  # then error session_expired and close 1001, as the service does
    # Setup latency of the real service, for prewarm tests and benchmarks (0: answer at once).
    connect_delay_ms: int = 0  # handshake received -> accepted (TCP+TLS+upgrade+session creation)
    session_updated_delay_ms: int = 0  # session.update received -> session.updated sent
    text_response_delay_ms: int = 0  # extra wait before a text-only response (a warm-up's priming) ends


@dataclass
class SessionLog:
    """What one connection saw and sent, so tests assert on the fake's side of the wire too."""

    headers: dict[str, str]  # lower-cased names
    query: str
    received: list[dict[str, Any]] = field(default_factory=list)  # appends as {"type", "bytes", "t" (arrival)}
    errors_sent: list[dict[str, Any]] = field(default_factory=list)
    audio_sent: dict[str, bytes] = field(default_factory=dict)  # assistant item_id -> mu-law sent
    truncates: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    cancels: int = 0  # accepted response.cancel
    responses: int = 0  # responses started, of every kind
    session: dict[str, Any] | None = None  # the last accepted session object
    close_code: int | None = None
    speech_started_at: list[float] = field(default_factory=list)  # trio.current_time()
    speech_stopped_at: list[float] = field(default_factory=list)
    committed_at: list[float] = field(default_factory=list)  # every commit, VAD or client
    first_delta_at: list[float] = field(default_factory=list)  # first audio delta of each response
    connected_at: float | None = None  # trio.current_time() when the socket was accepted
    timeline: list[tuple[float, str]] = field(default_factory=list)  # (time, client event type), appends left out
    tool_calls_at: list[float] = field(default_factory=list)  # each function call's arguments.done, as queued to send
    mcp_calls: list[dict[str, Any]] = field(default_factory=list)  # calls the fake made to MCP servers, with results


@dataclass
class _Response:
    """One response in flight; its scope lets a barge-in or response.cancel stop it between deltas."""

    id: str
    kind: Literal["audio", "text", "tool"]
    t0: float  # the trigger: commit or response.create
    out_of_band: bool  # response.conversation == "none": items stay out of the conversation
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    item: dict[str, Any] | None = None
    part_open: bool = False
    transcript: str = ""


class _Connection:
    """One accepted socket: the reader handles client events, response tasks speak, one writer sends."""

    def __init__(self, cfg: FakeOpenAIConfig, ws: WebSocketConnection, log: SessionLog, model: str,
                 wire: wire_log.WireSession | None = None):
        self.cfg, self.ws, self.log = cfg, ws, log
        self.wire = wire  # raw frames both ways, only inside wire_log.recording()
        self.ev = shapes.EVENTS[cfg.shape]
        self.session = shapes.default_session(cfg.shape, model, new_id("sess"),
                                              int(time.time() + cfg.session_max_s))
        self.items: dict[str, dict[str, Any]] = {}  # the conversation, in order
        self.audio_ms: dict[str, int] = {}  # assistant item -> ms a truncate may keep
        self.calls: dict[str, ToolCallScript] = {}  # call_id awaiting its output
        self.after_tool: ToolCallScript | McpCallScript | None = None  # output arrived; next response follows up
        self.tool_round = 0  # calls made so far of a repeating ToolCallScript
        self.mcp_listed: set[str] = set()  # MCP servers whose tools this session listed
        self.active: _Response | None = None
        self.turns = self.replies = self.transcripts = 0
        self.pending = bytearray()  # input bytes short of a whole VAD frame
        self.buffer_bytes = 0  # uncommitted input
        self.vad = shapes.EnergyVAD(cfg.vad_threshold, cfg.speech_start_frames, cfg.end_of_turn_silence_ms)
        self.user_item: str | None = None  # set while the caller is speaking
        self.client_event_id: str | None = None
        self.tx, self.rx = trio.open_memory_channel[Any](math.inf)
        self.nursery: trio.Nursery | None = None
        self.closing: int | None = None  # the close code we sent, once we start a close
        self.flowing = trio.Event()  # cleared by a "stall" fault: the writer holds every message
        self.flowing.set()

    # -- plumbing -------------------------------------------------------------------------

    async def run(self, beta_header: bool) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                nursery.start_soon(self._writer)
                if self.cfg.shape == "ga" and beta_header:
                    self._error(shapes.BETA_DISABLED)
                    self.tx.send_nowait(("close", 4000, "beta_api_shape_disabled"))
                else:
                    self.emit("session.created", session=self.session)
                    nursery.start_soon(self._expire)
                await self._reader()
                if self.closing is None:  # else the writer finishes the close handshake first
                    nursery.cancel_scope.cancel()
        finally:
            # trio-websocket reports 1000 for a close we start, so remember the code we sent.
            self.log.close_code = self.closing or (self.ws.closed.code if self.ws.closed else None)

    async def _writer(self) -> None:
        assert self.nursery is not None
        try:
            async for item in self.rx:
                if isinstance(item, tuple):  # ("close", code, reason)
                    self.closing = item[1]
                    with trio.move_on_after(2):
                        await self.ws.aclose(item[1], item[2])
                    break
                if not self.flowing.is_set():
                    await self.flowing.wait()
                await self.ws.send_message(item)
                if self.wire is not None:
                    self.wire.sent.append(item)
        except ConnectionClosed:
            pass
        self.nursery.cancel_scope.cancel()

    async def _expire(self) -> None:
        await trio.sleep(self.cfg.session_max_s)
        self._error(shapes.SESSION_EXPIRED)
        self.tx.send_nowait(("close", 1001, "session_expired"))

    async def _reader(self) -> None:
        while True:
            try:
                message = await self.ws.get_message()
            except ConnectionClosed:
                return
            if self.wire is not None:
                self.wire.received.append(message)
            try:
                self._dispatch(message)
            except Exception as exc:  # noqa: BLE001  a bug here must not take the connection down silently
                self._error((None, f"The server had an error processing your request: {exc!r}", None),
                            kind="server_error")

    def emit(self, type_: str, **fields: Any) -> None:
        # Serialised now, so later mutation of items or the session cannot change what was sent.
        self.tx.send_nowait(orjson.dumps({"type": type_, "event_id": new_id("event"), **fields}).decode())

    def _error(self, err: ApiError, kind: str = "invalid_request_error") -> None:
        code, message, param = err
        sent = {"type": kind, "code": code, "message": message, "param": param,
                "event_id": self.client_event_id}
        self.log.errors_sent.append(sent)
        self.emit("error", error=sent)

    # -- client events --------------------------------------------------------------------

    def _dispatch(self, message: str | bytes) -> None:
        event, err = shapes.parse_event(message)
        eid = event.get("event_id")
        self.client_event_id = eid if isinstance(eid, str) else None
        if event.get("type") == "input_audio_buffer.append":
            return self._on_append(event)  # logs the size, not the payload
        self.log.received.append(event or {"type": None})
        self.log.timeline.append((trio.current_time(), str(event.get("type") if event else None)))
        if err:
            return self._error(err)
        getattr(self, "_on_" + event["type"].replace(".", "_"))(event)

    def _on_session_update(self, event: dict[str, Any]) -> None:
        update = event.get("session")
        if err := shapes.validate_session(self.cfg.shape, update):
            return self._error(err)
        assert isinstance(update, dict)
        self.session = shapes.merge(self.session, update)
        self.log.session = self.session
        for server in mcp.new_servers(update, self.mcp_listed):
            assert self.nursery is not None
            self.nursery.start_soon(mcp.list_tools, self, server)
        if self.cfg.session_updated_delay_ms > 0 and self.nursery is not None:
            # Serialised now, sent later: the delay models the service, not a different answer.
            late = orjson.dumps({"type": "session.updated", "event_id": new_id("event"), "session": self.session}).decode()
            self.nursery.start_soon(self._send_later, self.cfg.session_updated_delay_ms / 1000, late)
            return
        self.emit("session.updated", session=self.session)

    async def _send_later(self, delay_s: float, message: str) -> None:
        await trio.sleep(delay_s)
        self.tx.send_nowait(message)

    def drop(self, code: int, reason: str) -> None:
        """Close this session from the service's side (an upstream failure)."""
        self.tx.send_nowait(("close", code, reason))

    def inject(self, fault: str, count: int = 3, code: str = "server_error") -> None:
        """One of the service's ordinary failures, on command (see FakeOpenAI.inject)."""
        if fault == "drop":
            self.drop(1011, "upstream failure")
        elif fault == "expire":
            self._error(shapes.SESSION_EXPIRED)
            self.tx.send_nowait(("close", 1001, "session_expired"))
        elif fault == "garbage":
            for text in GARBAGE[:count]:
                self.tx.send_nowait(text)
        elif fault == "error":
            self._error((code, "The server had an error while processing your request.", None), kind="server_error")
        elif fault == "stall":
            self.flowing = trio.Event()
        elif fault == "resume":
            self.flowing.set()
        else:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")

    def _on_append(self, event: dict[str, Any]) -> None:
        record: dict[str, Any] = {"type": "input_audio_buffer.append", "bytes": 0, "t": trio.current_time()}
        self.log.received.append(record)
        data = shapes.decode_audio(event.get("audio"))
        if isinstance(data, tuple):
            return self._error(data)
        record["bytes"] = len(data)
        self.buffer_bytes += len(data)
        self.pending += data
        whole = len(self.pending) // FRAME_BYTES * FRAME_BYTES
        chunk = bytes(self.pending[:whole])
        del self.pending[:whole]
        td = shapes.turn_detection(self.cfg.shape, self.session)
        for frame in frames(chunk):
            if change := self.vad.feed(frame, detect=td is not None):
                assert td is not None
                self._on_turn(*change, td)

    def _on_turn(self, change: str, ms: int, td: dict[str, Any]) -> None:
        now = trio.current_time()
        if change == "started":
            self.user_item = new_id("item")
            self.log.speech_started_at.append(now)
            self.emit("input_audio_buffer.speech_started", audio_start_ms=ms, item_id=self.user_item)
            if self.active is not None and td.get("interrupt_response", True):
                self._cancel("turn_detected")
            return
        item_id, self.user_item = self.user_item or new_id("item"), None
        self.log.speech_stopped_at.append(now)
        self.emit("input_audio_buffer.speech_stopped", audio_end_ms=ms, item_id=item_id)
        self._commit(item_id)
        if td.get("create_response", True) and self.active is None:
            self._start_response({}, now)

    def _commit(self, item_id: str) -> None:
        audio_ms, self.buffer_bytes = self.buffer_bytes // BYTES_PER_MS, 0
        self.log.committed_at.append(trio.current_time())
        self.emit("input_audio_buffer.committed", item_id=item_id, previous_item_id=self._last_item())
        item = shapes.message_item("user", [{"type": "input_audio", "transcript": None}], item_id)
        self.add_item(item, done=False)
        transcript = pick(self.cfg.user_transcripts, self.transcripts)
        self.transcripts += 1
        item["content"][0]["transcript"] = transcript
        self.emit("conversation.item.input_audio_transcription.completed",
                   **shapes.transcription_completed(self.cfg.shape, item_id, transcript, audio_ms))
        self._item_done(item)

    def _on_input_audio_buffer_commit(self, event: dict[str, Any]) -> None:
        if (ms := self.buffer_bytes / BYTES_PER_MS) < 100:
            return self._error(shapes.commit_empty(ms))
        item_id, self.user_item = self.user_item or new_id("item"), None
        self.vad.reset()
        self._commit(item_id)

    def _on_input_audio_buffer_clear(self, event: dict[str, Any]) -> None:
        self.buffer_bytes = 0
        self.pending.clear()
        self.user_item = None
        self.vad.reset()
        self.emit("input_audio_buffer.cleared")

    def _on_conversation_item_create(self, event: dict[str, Any]) -> None:
        item = event.get("item")
        if err := shapes.check_item(self.cfg.shape, item, self.items, self.calls):
            return self._error(err)
        assert isinstance(item, dict)
        prev = event.get("previous_item_id")
        if prev is not None and prev != "root" and prev not in self.items:
            return self._error(shapes.not_found(prev, "previous_item_id"))
        stored = {"object": "realtime.item", "status": "completed", **item, "id": item.get("id") or new_id("item")}
        self.add_item(stored)
        if item["type"] == "function_call_output":
            self.after_tool = self.calls.pop(item["call_id"])

    def _find_item(self, event: dict[str, Any]) -> str | None:
        found = shapes.find_item(event, self.items)
        if isinstance(found, str):
            return found
        self._error(found)
        return None

    def _on_conversation_item_truncate(self, event: dict[str, Any]) -> None:
        if (iid := self._find_item(event)) is None:
            return
        end, index = event.get("audio_end_ms"), event.get("content_index", 0)
        if err := shapes.check_truncate(self.items[iid], index, end, self.audio_ms.get(iid, 0)):
            return self._error(err)
        assert isinstance(end, int)
        self.audio_ms[iid] = end
        self.log.truncates.append({"item_id": iid, "audio_end_ms": end})
        self.emit("conversation.item.truncated", item_id=iid, content_index=index, audio_end_ms=end)

    def _on_conversation_item_delete(self, event: dict[str, Any]) -> None:
        if (iid := self._find_item(event)) is None:
            return
        del self.items[iid]
        self.log.deletes.append(iid)
        self.emit("conversation.item.deleted", item_id=iid)

    def _on_response_create(self, event: dict[str, Any]) -> None:
        params = event.get("response")
        params = {} if params is None else params
        if err := shapes.validate_response(self.cfg.shape, params):
            return self._error(err)
        if self.active is not None:
            return self._error(shapes.already_active(self.active.id))
        self._start_response(params, trio.current_time())

    def _on_response_cancel(self, event: dict[str, Any]) -> None:
        rid = event.get("response_id")
        if self.active is None or (rid is not None and rid != self.active.id):
            return self._error(shapes.CANCEL_NOT_ACTIVE)
        self.log.cancels += 1
        self._cancel("client_cancelled")

    # -- responses ------------------------------------------------------------------------

    def _start_response(self, params: dict[str, Any], t0: float) -> None:
        """Decide what this response does (tool, scripted line, priming text) and start it."""
        assert self.nursery is not None
        oob = params.get("conversation") == "none"
        seed = self.log.responses
        self.log.responses += 1
        what: str | ToolCallScript | McpCallScript
        if shapes.text_only(self.cfg.shape, params, self.session):
            kind, what = "text", PRIMING_TEXT  # priming consumes no scripted reply
        elif self.after_tool is not None:
            answered, self.after_tool = self.after_tool, None
            self.tool_round += 1
            if self.tool_round < getattr(answered, "repeat", 1):  # an MCP call is never repeated
                kind, what = "tool", answered
            else:
                self.tool_round = 0
                kind, what = "audio", answered.reply_after or self._next_reply()
        else:
            script = self.cfg.tool_calls.get(self.turns)
            self.turns += 1
            kind, what = ("tool", script) if script else ("audio", self._next_reply())
        resp = _Response(new_id("resp"), kind, t0, oob)  # type: ignore[arg-type]  # kind is "tool" or "audio", from the branches above
        self.active = resp
        self.emit("response.created", response=self._response_obj(resp, "in_progress"))
        self.emit("rate_limits.updated", rate_limits=shapes.RATE_LIMITS)
        self.nursery.start_soon(self._run_response, resp, what, seed)

    def _next_reply(self) -> str:
        line = pick(self.cfg.replies, self.replies)
        self.replies += 1
        return line

    async def _run_response(self, resp: _Response, what: str | ToolCallScript | McpCallScript, seed: int) -> None:
        with resp.scope:
            # Synthesise the audio before the TTFB wait: generating seconds of speech takes
            # tens of ms of CPU that would otherwise be billed to the simulated model.
            chunks = None
            if isinstance(what, str) and resp.kind != "text":
                chunks = list(shapes.speech_chunks(what, seed, self.cfg.chunk_ms))
            slow_text = self.cfg.text_response_delay_ms if resp.kind == "text" else 0
            await self._at(resp.t0 + (self.cfg.ttfb_ms + slow_text) / 1000)
            if isinstance(what, ToolCallScript):
                self._tool_call(resp, what)
            elif isinstance(what, McpCallScript):
                await mcp.run_mcp_call(self, resp, what)
            elif resp.kind == "text":
                self._speak_text(resp, what)
            else:
                await self._speak_audio(resp, chunks or [])
            self._finish(resp)
        if isinstance(what, McpCallScript) and not resp.scope.cancelled_caught:
            self.after_tool = what  # the service answers on its own once its MCP call is done
            self._start_response({}, trio.current_time())

    @staticmethod
    async def _at(deadline: float) -> None:
        await trio.sleep_until(deadline)
        # A cancel that lands as the sleep ends would otherwise let one more delta out.
        await trio.lowlevel.checkpoint_if_cancelled()

    def ids_of(self, resp: _Response, **extra: Any) -> dict[str, Any]:
        assert resp.item is not None
        return {"response_id": resp.id, "item_id": resp.item["id"], "output_index": 0, **extra}

    def open_item(self, resp: _Response, item: dict[str, Any]) -> dict[str, Any]:
        resp.item = item
        self.emit("response.output_item.added", response_id=resp.id, output_index=0, item=item)
        if not resp.out_of_band:
            self.add_item(item, done=False)
        return item

    def _speak_text(self, resp: _Response, text: str) -> None:
        item = self.open_item(resp, shapes.message_item("assistant", [], status="in_progress"))
        ids, shape = self.ids_of(resp, content_index=0), self.cfg.shape
        self.emit("response.content_part.added", **ids, part=shapes.content_part(shape, "text", True, text=""))
        for i, word in enumerate(text.split()):
            self.emit(str(self.ev["text_delta"]), **ids, delta=word if i == 0 else " " + word)
        self.emit(str(self.ev["text_done"]), **ids, text=text)
        self.emit("response.content_part.done", **ids, part=shapes.content_part(shape, "text", True, text=text))
        item.update(content=[shapes.content_part(shape, "text", False, text=text)], status="completed")

    async def _speak_audio(self, resp: _Response, chunks: list[tuple[bytes, str]]) -> None:
        """Deltas of ``chunk_ms`` audio, paced ``realtime_factor`` times faster than playback."""
        item = self.open_item(resp, shapes.message_item("assistant", [], status="in_progress"))
        ids, iid = self.ids_of(resp, content_index=0), item["id"]
        self.emit("response.content_part.added", **ids,
                   part=shapes.content_part(self.cfg.shape, "audio", True, transcript=""))
        resp.part_open = True
        self.log.audio_sent[iid] = b""
        first = trio.current_time()
        interval = self.cfg.chunk_ms / self.cfg.realtime_factor / 1000
        for k, (chunk, said) in enumerate(chunks):
            if k:
                await self._at(first + k * interval)
            else:
                self.log.first_delta_at.append(trio.current_time())
            self.emit(str(self.ev["audio_delta"]), **ids, delta=base64.b64encode(chunk).decode())
            self.log.audio_sent[iid] += chunk
            self.audio_ms[iid] = len(self.log.audio_sent[iid]) // BYTES_PER_MS
            if said:
                delta = (" " if resp.transcript else "") + said
                resp.transcript += delta
                self.emit(str(self.ev["transcript_delta"]), **ids, delta=delta)
        self._close_audio_part(resp)
        item["status"] = "completed"

    def _close_audio_part(self, resp: _Response) -> None:
        assert resp.item is not None
        ids = self.ids_of(resp, content_index=0)
        self.emit(str(self.ev["audio_done"]), **ids)
        self.emit(str(self.ev["transcript_done"]), **ids, transcript=resp.transcript)
        said = resp.transcript
        self.emit("response.content_part.done", **ids,
                   part=shapes.content_part(self.cfg.shape, "audio", True, transcript=said))
        resp.item["content"] = [shapes.content_part(self.cfg.shape, "audio", False, transcript=said)]
        resp.part_open = False

    def _tool_call(self, resp: _Response, script: ToolCallScript) -> None:
        call_id, args = new_id("call"), orjson.dumps(script.arguments).decode()
        item = self.open_item(resp, shapes.function_call_item(script.name, call_id))
        ids = self.ids_of(resp, call_id=call_id)
        self.emit("response.function_call_arguments.delta", **ids, delta=args)
        self.emit("response.function_call_arguments.done", **ids, name=script.name, arguments=args)
        item.update(arguments=args, status="completed")
        self.calls[call_id] = script
        self.log.tool_calls_at.append(trio.current_time())

    def _finish(self, resp: _Response, status: str = "completed", reason: str | None = None) -> None:
        if resp.item is not None:
            self.emit("response.output_item.done", response_id=resp.id, output_index=0, item=resp.item)
            if not resp.out_of_band:
                self._item_done(resp.item)
        self.emit("response.done", response=self._response_obj(resp, status, reason))
        self.active = None

    def _cancel(self, reason: str) -> None:
        """Stop the active response now (barge-in or response.cancel); what was sent stays sent."""
        resp = self.active
        assert resp is not None
        resp.scope.cancel()
        if resp.part_open:
            self._close_audio_part(resp)
        if resp.item is not None:
            resp.item["status"] = "incomplete"
        self._finish(resp, "cancelled", reason)

    def _response_obj(self, resp: _Response, status: str, reason: str | None = None) -> dict[str, Any]:
        return shapes.response_object(
            self.cfg.shape, resp.id, status, text_only=resp.kind == "text", out_of_band=resp.out_of_band,
            item=resp.item, sent_ms=self.audio_ms.get(resp.item["id"], 0) if resp.item else 0,
            words=len(resp.transcript.split()), reason=reason)

    # -- conversation ---------------------------------------------------------------------

    def _last_item(self) -> str | None:
        return next(reversed(self.items), None)

    def add_item(self, item: dict[str, Any], done: bool = True) -> None:
        prev = self._last_item()
        self.items[item["id"]] = item
        self.emit(str(self.ev["item_added"]), previous_item_id=prev, item=item)
        if done:
            self._item_done(item)

    def _item_done(self, item: dict[str, Any]) -> None:
        if self.ev["item_done"]:  # GA only
            self.emit(str(self.ev["item_done"]), previous_item_id=None, item=item)


class FakeOpenAI:
    """The server. ``await nursery.start(fake.serve)`` returns the port; cancel to stop everything."""

    def __init__(self, config: FakeOpenAIConfig | None = None):
        self.config = config or FakeOpenAIConfig()
        self.sessions: list[SessionLog] = []
        self._open: list[_Connection] = []
        self._host: str | None = None
        self.refuse_next = 0  # handshakes to refuse with HTTP 503 (an outage), for reconnect tests
        self._port: int | None = None

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeOpenAI.url is known only once serve() has started")
        host = f"[{self._host}]" if ":" in str(self._host) else self._host
        return f"ws://{host}:{self._port}{shapes.PATH}"

    async def serve(self, host: str = "127.0.0.1", port: int = 0, *,
                    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on loopback until cancelled; every connection task lives inside this call."""
        host = "127.0.0.1" if host == "localhost" else host  # one listener, so one port
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"FakeOpenAI serves loopback only, not {host!r}")
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(serve_websocket, self._handle, host, port, None,
                                                 max_message_size=MAX_MESSAGE_BYTES))
            self._host, self._port = host, server.port
            task_status.started(server.port)

    async def _handle(self, request: WebSocketRequest) -> None:
        path, _, query = request.path.partition("?")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
        if refusal := shapes.check_handshake(path, headers, self.config.require_auth):
            error = {"type": "invalid_request_error", "code": None, "message": refusal[1], "param": None}
            return await request.reject(refusal[0], extra_headers=[(b"content-type", b"application/json")],
                                        body=orjson.dumps({"error": error}))
        if self.refuse_next > 0:
            self.refuse_next -= 1
            return await request.reject(503, body=b'{"error": {"message": "service unavailable (fault injected)"}}')
        if self.config.connect_delay_ms > 0:
            await trio.sleep(self.config.connect_delay_ms / 1000)
        ws = await request.accept()
        log = SessionLog(headers=headers, query=query, connected_at=trio.current_time())
        self.sessions.append(log)
        model = parse_qs(query).get("model", ["gpt-realtime"])[0]
        beta = "realtime=v1" in headers.get("openai-beta", "")
        recorder = wire_log.current()
        conn = _Connection(self.config, ws, log, model, recorder.open(self.config.shape) if recorder else None)
        self._open.append(conn)
        try:
            await conn.run(beta)
        finally:
            self._open.remove(conn)

    @property
    def open_sessions(self) -> int:
        """Sockets still open: a test's proof that nothing was left behind."""
        return len(self._open)

    def inject(self, fault: str, **options: object) -> int:
        """Inject a fault into every open session; returns how many.

        ``drop`` closes 1011; ``expire`` sends ``session_expired`` then closes 1001 (the 60-minute
        cap); ``garbage`` sends ``count`` malformed events; ``error`` sends an ``error`` event
        (``code``); ``stall`` holds every outgoing event until ``resume``.
        """
        for conn in list(self._open):
            conn.inject(fault, **options)  # type: ignore[arg-type]  # the fault's own keyword arguments, as inject documents them
        return len(self._open)

    def drop_open_sessions(self, code: int = 1011, reason: str = "upstream failure") -> int:
        """Close every open session from the service's side; returns how many."""
        for conn in self._open:
            conn.drop(code, reason)
        return len(self._open)
