"""Runs one call: a Trio nursery that owns the Twilio reader, the OpenAI session and its reader.

The shell only moves bytes and executes what ``CallCore`` decides. Ending a call is one
thing: cancel the call's nursery. ``finally`` blocks then close both sockets (bounded,
shielded) and finish the record, whatever ended it: hangup, a dropped socket, or a fault.
"""

from __future__ import annotations

import time
from typing import Awaitable, Callable

import trio

from llc.call.transport import Transport, TransportClosed
from llc.config import Settings
from llc.core.actions import Action, ConnectOpenAI, EndCall, Log, ToOpenAI, ToTwilio
from llc.core.call import CallCore
from llc.core.record import CallRecord
from llc.core.session import SessionSpec
from llc.log import bind_call, get_logger
from llc.openai.connect import OpenAIConnectError, connect_openai

log = get_logger("call")

# A close handshake is a courtesy: never let it hold a finished call open for long.
CLOSE_TIMEOUT_S = 0.5

OpenAIConnector = Callable[[trio.Nursery, Settings], Awaitable[Transport]]


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
        connector: OpenAIConnector = connect_openai,
        on_started: Callable[["CallBridge"], None] | None = None,
    ) -> None:
        self.twilio = twilio
        self.settings = settings
        self.connector = connector
        self.on_started = on_started
        self.record = CallRecord(started_at=time.time())
        self.core = CallCore(settings.openai_api_shape, spec, greeting=greeting, now=trio.current_time(), record=self.record)
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
                    await self.twilio.close()
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
                await self._execute(self.core.on_bad_frame(f"frame of {len(text)} bytes is over LLC_MAX_FRAME_BYTES={max_bytes}"))
                continue
            await self._execute(self.core.on_twilio_text(text, trio.current_time()))

    async def _openai_session(self) -> None:
        assert self._nursery is not None
        conn_nursery, conn_scope = await self._nursery.start(_hold_connection_nursery)
        try:
            try:
                self.openai = await self.connector(conn_nursery, self.settings)
            except OpenAIConnectError as exc:
                log.error("could not open the OpenAI session: %s", exc)
                self._end("openai_connect_failed", str(exc))
                return
            await self._execute(self.core.on_openai_open())
            while True:
                try:
                    text = await self.openai.receive_text()
                except TransportClosed as exc:
                    await self._execute(self.core.on_openai_closed(exc.code, exc.reason))
                    return
                await self._execute(self.core.on_openai_text(text, trio.current_time()))
        finally:
            with trio.CancelScope(shield=True):
                if self.openai is not None:
                    with trio.move_on_after(CLOSE_TIMEOUT_S):
                        await self.openai.close()
                conn_scope.cancel()

    # ---- executing the core's decisions -----------------------------------------------

    async def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            kind = type(action)
            if kind is ToOpenAI:
                if self.openai is not None:
                    try:
                        await self.openai.send_text(action.text)  # type: ignore[union-attr]
                    except TransportClosed:
                        pass  # the OpenAI reader sees the close and ends the call
            elif kind is ToTwilio:
                try:
                    await self.twilio.send_text(action.text)  # type: ignore[union-attr]
                except TransportClosed:
                    self._end("twilio_closed", "the Twilio media socket closed while sending")
            elif kind is ConnectOpenAI:
                self._bind_stream()
                assert self._nursery is not None
                self._nursery.start_soon(self._openai_session)
            elif kind is EndCall:
                self._end(action.reason, action.detail)  # type: ignore[union-attr]
            elif kind is Log:
                getattr(log, action.level)(action.msg, extra=action.fields)  # type: ignore[union-attr]

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
