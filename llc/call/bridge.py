"""Runs one call: a Trio nursery that owns the Twilio reader, the OpenAI session and its reader.

The shell only moves bytes and executes what ``CallCore`` decides. Ending a call is one
thing: cancel the call's nursery. ``finally`` blocks then close both sockets (bounded,
shielded) and finish the record, whatever ended it: hangup, a dropped socket, or a fault.
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, Protocol

import trio

from llc import metrics
from llc.call.tools import CallToolContext, run_tool
from llc.ws.transport import Transport, TransportClosed
from llc.config import Settings
from llc.call.apology import apology_payloads, clip_seconds
from llc.core.actions import Action, ConnectOpenAI, EndCall, Log, PlayApology, ReconnectOpenAI, RunTool, Timer, ToOpenAI, ToTwilio
from llc.core.call import CallCore
from llc.core.dialect import dialect
from llc.core.record import CallRecord
from llc.core.session import SessionSpec
from llc.core.turns import TurnPolicy
from llc.log import bind_call, get_logger
from llc.openai.connect import OpenAIConnectError, connect_openai
from llc.tools.builtin import BUILTIN
from llc.tools.registry import ToolRegistry
from llc.twilio import frames as tw
from llc.twilio.control import TwilioCallControl

log = get_logger("call")

# A close handshake is a courtesy: never let it hold a finished call open for long.
CLOSE_TIMEOUT_S = 0.5

OpenAIConnector = Callable[[trio.Nursery, Settings], Awaitable[Transport]]


class WarmSession(Protocol):
    """A configured OpenAI session claimed from the warm registry: handed over, not shared."""

    transport: Transport
    path: str  # "prewarm" | "pre-accept"

    def release(self) -> None: ...


# Runs once the stream's `start` is known, before any OpenAI socket: may set this call's session
# spec (an outbound scenario's prompt) and returns a claimed warm session, or None to connect cold.
CallPreparer = Callable[["CallBridge"], Awaitable["WarmSession | None"]]
# Runs when the stream's `start` is known: None admits it, a string refuses it (closed 1008).
StreamAdmitter = Callable[["CallBridge"], "str | None"]
POLICY_VIOLATION = 1008


async def _hold_connection_nursery(task_status: trio.TaskStatus[tuple[trio.Nursery, trio.CancelScope]]) -> None:
    """A nursery for the OpenAI socket's own reader task, shielded from the call's cancel.

    When a call is cancelled the socket still has to finish its close handshake, which needs
    its reader. The OpenAI task cancels this scope right after closing, so it never outlives
    the call.
    """
    with trio.CancelScope(shield=True) as scope:
        async with trio.open_nursery() as nursery:
            task_status.started((nursery, scope))
            await trio.sleep_forever()


class CallBridge:
    def __init__(
        self,
        twilio: Transport,
        settings: Settings,
        spec: SessionSpec,
        *,
        greeting: str | None = None,
        policy: TurnPolicy | None = None,
        tools: ToolRegistry = BUILTIN,
        transfer_allow: tuple[str, ...] = (),
        call_control: TwilioCallControl | None = None,
        connector: OpenAIConnector = connect_openai,
        on_started: Callable[["CallBridge"], None] | None = None,
        prepare: CallPreparer | None = None,
        admit: StreamAdmitter | None = None,
    ) -> None:
        self.twilio = twilio
        self.settings = settings
        self.connector = connector
        self.on_started = on_started
        self.tools = tools
        self.call_control = call_control or TwilioCallControl(settings)
        self.prepare = prepare
        self.admit = admit
        self.record = CallRecord(started_at=time.time())
        self.core = CallCore(
            dialect(settings.openai_api_shape), spec, greeting=greeting, policy=policy, tool_schemas=tools.schemas(),
            now=trio.current_time(), record=self.record, max_call_s=settings.max_call_s,
            apology_s=clip_seconds(settings.apology_clip),
        )
        self._close_code = 1000
        self.tool_ctx = CallToolContext(self, transfer_allow)
        self.mode: Any = None  # the scenario's per-call state (llc.modes.runtime.ModeCall), set by prepare
        self.openai: Transport | None = None
        self._nursery: trio.Nursery | None = None
        self._log_fields = bind_call()
        self.done = trio.Event()

    async def run(self) -> CallRecord:
        """Run the call to its end; returns the finished record."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._twilio_reader)
        except Exception as exc:  # a bug must end this call only, and say so
            self._set_end("internal_error", repr(exc))
            log.exception("call failed on an internal error; the server keeps running")
        finally:
            # No reason yet means we were cancelled from outside: quart-trio does that when
            # Twilio's socket goes away.
            self._set_end("twilio_closed", "the Twilio media socket closed")
            with trio.CancelScope(shield=True):
                with trio.move_on_after(CLOSE_TIMEOUT_S):
                    await self.twilio.close(self._close_code)
                self._finish()
        return self.record

    # ---- tasks ------------------------------------------------------------------------

    async def _twilio_reader(self) -> None:
        max_bytes = self.settings.max_frame_bytes
        while True:
            try:
                text = await self.twilio.receive_text()
            except TransportClosed as exc:
                self._end("twilio_closed", f"the Twilio media socket closed (code {exc.code})")
                return
            if len(text) > max_bytes:
                await self.execute(self.core.on_bad_frame(f"frame of {len(text)} bytes is over LLC_MAX_FRAME_BYTES={max_bytes}"))
                continue
            await self.execute(self.core.on_twilio_text(text, trio.current_time()))

    async def _openai_session(self) -> None:
        assert self._nursery is not None
        conn_nursery, conn_scope = await self._nursery.start(_hold_connection_nursery)
        warm: WarmSession | None = None
        try:
            if self.prepare is not None:
                warm = await self.prepare(self)
            if warm is not None:
                self.openai, self.record.path = warm.transport, warm.path
                log.info("OpenAI session claimed warm: no connect, no session.update", extra={"path": warm.path})
                await self.execute(self.core.on_openai_open(already_configured=True))
            else:
                log.info("OpenAI session: connecting cold", extra={"path": self.record.path})
                try:
                    self.openai = await self.connector(conn_nursery, self.settings)
                except OpenAIConnectError as exc:
                    log.error("could not open the OpenAI session: %s", exc)
                    self._end("openai_connect_failed", str(exc))
                    return
                await self.execute(self.core.on_openai_open())
            while await self._read_openai():
                # The core asked for a new session (a drop, or the 60-minute cap): same config,
                # plus a summary of the conversation; a failure here means the apology clip.
                with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
                    await self.openai.close()
                if warm is not None:
                    warm.release()
                    warm = None
                log.info("OpenAI session: reconnecting")
                try:
                    self.openai = await self.connector(conn_nursery, self.settings)
                except OpenAIConnectError as exc:
                    self.openai = None
                    await self.execute(self.core.on_reconnect_failed(f"reconnect failed: {exc}"))
                    return
                await self.execute(self.core.on_openai_open())
        finally:
            with trio.CancelScope(shield=True):
                if self.openai is not None:
                    with trio.move_on_after(CLOSE_TIMEOUT_S):
                        await self.openai.close()
                conn_scope.cancel()
                if warm is not None:
                    warm.release()

    async def _read_openai(self) -> bool:
        """Relay OpenAI events until its socket closes; True when the core wants a new session."""
        assert self.openai is not None
        while True:
            try:
                text = await self.openai.receive_text()
            except TransportClosed as exc:
                actions = self.core.on_openai_closed(exc.code, exc.reason)
                await self.execute(actions)
                return any(type(a) is ReconnectOpenAI for a in actions)
            received_at, barge_ins = trio.current_time(), len(self.record.barge_ins)
            await self.execute(self.core.on_openai_text(text, received_at))
            if len(self.record.barge_ins) > barge_ins:
                # speech_started in → clear (and truncate) out: the reaction the caller feels.
                metrics.observe_bargein((trio.current_time() - received_at) * 1000)

    # ---- executing the core's decisions -----------------------------------------------

    async def execute(self, actions: list[Action]) -> None:
        """Carry out the core's decisions in order (called from any of the call's tasks)."""
        i, n = 0, len(actions)
        while i < n:
            action = actions[i]
            kind = type(action)
            i += 1
            if kind is ToOpenAI:
                if self.openai is not None:
                    try:
                        await self.openai.send_text(action.text)  # type: ignore[union-attr]
                    except TransportClosed:
                        pass  # the OpenAI reader sees the close and ends the call
            elif kind is ToTwilio:
                # Consecutive Twilio frames (audio + its mark, a clear + ...) go in one write.
                texts = [action.text]  # type: ignore[union-attr]
                while i < n and type(actions[i]) is ToTwilio:
                    texts.append(actions[i].text)  # type: ignore[union-attr]
                    i += 1
                try:
                    await self.twilio.send_texts(texts)
                except TransportClosed:
                    self._end("twilio_closed", "the Twilio media socket closed while sending")
            elif kind is ConnectOpenAI:
                self._bind_stream()
                if self.admit is not None and (refusal := self.admit(self)) is not None:
                    log.warning("media stream refused: %s", refusal)
                    self._close_code = POLICY_VIOLATION
                    self._end("stream_refused", refusal)
                    return
                assert self._nursery is not None
                self._nursery.start_soon(self._openai_session)
            elif kind is EndCall:
                self._end(action.reason, action.detail)  # type: ignore[union-attr]
            elif kind is RunTool:
                assert self._nursery is not None
                timeout = self.core.policy.tool_timeout_s
                self._nursery.start_soon(run_tool, self, self.tools, self.tool_ctx, action, timeout)
            elif kind is Timer:
                assert self._nursery is not None
                self._nursery.start_soon(self._timer, action.key, action.delay_s)  # type: ignore[union-attr]
            elif kind is PlayApology:
                await self._play_apology(action.mark)  # type: ignore[union-attr]
            elif kind is ReconnectOpenAI:
                pass  # the OpenAI task reconnects when its reader returns
            elif kind is Log:
                getattr(log, action.level)(action.msg, extra=action.fields)  # type: ignore[union-attr]

    async def _play_apology(self, mark: str) -> None:
        sid = self.core.stream_sid
        try:
            for payload in apology_payloads(self.settings.apology_clip):
                await self.twilio.send_text(tw.media(sid, payload))
            await self.twilio.send_text(tw.mark(sid, mark))
        except TransportClosed:
            self._end("twilio_closed", "the Twilio media socket closed during the apology")

    async def _timer(self, key: str, delay_s: float) -> None:
        await trio.sleep(delay_s)
        await self.execute(self.core.on_timer(key, trio.current_time()))
    def end(self, reason: str, detail: str = "") -> None:
        """End this call from outside (e.g. the drain deadline); its record is still written."""
        self._end(reason, detail)

    def _bind_stream(self) -> None:
        rec = self.record
        self._log_fields.update(call_sid=rec.call_sid, stream_sid=rec.stream_sid, direction=rec.direction, scenario=rec.scenario)
        log.info("call started", extra={"path": rec.path})
        if self.on_started is not None:
            self.on_started(self)

    def _set_end(self, reason: str, detail: str = "") -> None:
        if not self.record.end_reason:
            self.record.end_reason, self.record.end_detail = reason, detail

    def _end(self, reason: str, detail: str = "") -> None:
        self._set_end(reason, detail)
        self.core.end()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _finish(self) -> None:
        rec = self.record
        rec.ended_at = time.time()
        level = "info" if rec.end_reason in ("caller_hangup", "twilio_closed", "agent_hangup") else "warning"
        getattr(log, level)(
            "call ended: %s", rec.end_reason,
            extra={"detail": rec.end_detail, "seconds": round(rec.ended_at - rec.started_at, 2),
                   "turns": len(rec.turns), "bad_frames": rec.bad_frames},
        )
        self.done.set()
