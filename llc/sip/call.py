"""Runs one SIP call: accept it, then a Trio nursery owning its sideband socket, tools and deadlines.

The audio goes between Twilio and OpenAI directly; llc holds the call's sideband WebSocket
(``OPENAI_REALTIME_URL?call_id=…``), which carries the session's events without the audio.
Ending the call is one thing, as for a media stream: cancel the call's nursery; ``finally``
hangs up when llc chose the ending (end_call, max call length, a lost sideband), closes the
socket and writes the record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import trio

from llc.call.record_writer import RecordWriter
from llc.call.tools import run_tool
from llc.core.actions import RunTool
from llc.core.levers import Lever
from llc.core.record import CallRecord, EndReason
from llc.core.session import user_message
from llc.core.turns import TurnPolicy
from llc.log import bind_call, get_logger
from llc.modes.runtime import InboundCall, ModeCall
from llc.sip.control import FAILURES, ControlError, SipControl
from llc.sip.core import GOODBYE_GRACE_S, HangUp, Send, SipCore, StartTool, Step, parse, sip_session
from llc.sip.sideband import SidebandConnect
from llc.sip.tool_context import SipToolContext
from llc.sip.webhook import IncomingCall
from llc.tools.registry import ToolRegistry
from llc.ws.transport import Transport, TransportClosed

log = get_logger("sip")

CLOSE_TIMEOUT_S = 0.5
HANGUP_TIMEOUT_S = 3.0
NORMAL_CLOSES = frozenset({1000, 1001})
DECLINE = 603  # SIP Decline: what the caller gets when llc cannot take a call OpenAI offered


@dataclass(frozen=True)
class SipDeps:
    control: SipControl
    connect: SidebandConnect
    tools: ToolRegistry
    model: str
    max_call_s: float = 0.0
    ping_s: float = 2.0
    pong_timeout_s: float = 3.0
    tool_timeout_s: float = 10.0


class SipCall:
    def __init__(self, incoming: IncomingCall, plan: InboundCall, mode: ModeCall, deps: SipDeps,
                 writer: RecordWriter, greeting: str | None = None, policy: TurnPolicy | None = None) -> None:
        self.incoming, self.inbound, self.mode, self.deps, self.writer = incoming, plan, mode, deps, writer
        self.greeting = greeting  # the scenario speaks first (an IVR's menu): asked for once the sideband is up
        rec = CallRecord(call_sid=incoming.call_id, stream_sid=incoming.twilio_call_sid, direction="inbound",
                         scenario=plan.scenario.name, path="sip", from_number=plan.caller, to_number=plan.called,
                         started_at=time.time())
        self.record = rec
        self.core = SipCore(rec, trio.current_time(), plan.spec, policy, mode.tool_schemas)
        self.admitted = False  # accepted by OpenAI: counts towards LLC_MAX_CALLS and is recorded
        self._hang_up = False  # llc chose the ending: tell OpenAI to hang up
        self._nursery: trio.Nursery | None = None
        self._ws: Transport | None = None
        params = {"direction": "inbound", "scenario": plan.scenario.name, "caller": plan.caller, "called": plan.called}
        self.tool_ctx = SipToolContext(incoming.call_id, params, mode, self._apply, self._goodbye, self._refer)

    async def run(self) -> CallRecord | None:
        """Accept and run the call; None when it never started (refused by OpenAI, or the caller left)."""
        call_id = self.incoming.call_id
        bind_call(call_sid=call_id, twilio_call_sid=self.incoming.twilio_call_sid or None, scenario=self.record.scenario)
        try:
            await self.deps.control.accept(call_id, sip_session(self.core.spec, self.deps.model))
        except ControlError as exc:
            if exc.status == 404:
                log.info("the caller hung up before the call was accepted")
                return None
            log.error("OpenAI refused to accept the call (%s): check the session settings and OPENAI_API_KEY", exc)
            reason = EndReason.OPENAI_SESSION_REJECTED if exc.status < 500 else EndReason.OPENAI_UNREACHABLE
            return await self._not_accepted(reason, f"accept answered {exc}")
        except FAILURES as exc:  # ControlError is taken above
            log.error("could not reach OpenAI to accept the call: %s; check OPENAI_API_URL", exc or type(exc).__name__)
            return await self._not_accepted(EndReason.OPENAI_UNREACHABLE,
                                            f"accept failed: {exc or type(exc).__name__}")
        self.admitted = True
        log.info("call started", extra={"path": "sip", "caller": self.record.from_number, "called": self.record.to_number})
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self.writer.admit(self.record, nursery)
                if self.core.ended:  # ended (a drain) while the accept was in flight: hang up at once
                    nursery.cancel_scope.cancel()
                nursery.start_soon(self._sideband)
                nursery.start_soon(self._watchdog)
                if self.deps.max_call_s > 0:
                    nursery.start_soon(self._deadline)
        except Exception as exc:  # a bug ends this call only
            self.end(EndReason.INTERNAL_ERROR, repr(exc), hang_up=True)
            log.exception("SIP call failed on an internal error; the server keeps running")
        finally:
            # No ending yet: the server is stopping. OpenAI holds the caller: hang up rather than leave them unsteered.
            self.end(EndReason.SERVER_DRAIN, "the server stopped during the call", hang_up=True)
            with trio.CancelScope(shield=True):
                await self._close()
        log.info("call ended: %s", self.record.end_reason, extra={"detail": self.record.end_detail,
                                                                 "turns": len(self.record.turns)})
        return self.record

    async def _not_accepted(self, reason: EndReason, detail: str) -> CallRecord:
        """The caller is ringing a call llc could not accept: decline it rather than leave them
        ringing, and keep a record that says why."""
        with trio.CancelScope(shield=True):  # a server stopping now still declines and records it
            with trio.move_on_after(HANGUP_TIMEOUT_S):
                try:
                    await self.deps.control.reject(self.incoming.call_id, DECLINE)
                except FAILURES as exc:
                    # A late accept may have gone through after all: then the call is live, unsteered.
                    log.warning("declining the call failed (%s); hanging it up instead", exc)
                    await self._hang_up_quietly()
            self.core.end(reason, detail)
            self.core.closed()
            await self.writer.final_only(self.record)
        return self.record

    async def _hang_up_quietly(self) -> None:
        try:
            await self.deps.control.hangup(self.incoming.call_id)
        except FAILURES as exc:
            log.warning("hang-up request failed (the call may already be over): %s", exc)

    async def _close(self) -> None:
        if self._ws is not None:
            with trio.move_on_after(CLOSE_TIMEOUT_S):
                await self._ws.close()
        if self._hang_up:
            with trio.move_on_after(HANGUP_TIMEOUT_S):
                await self._hang_up_quietly()
        self.core.closed()
        await self.writer.final(self.record)

    def end(self, reason: EndReason, detail: str, *, hang_up: bool = False) -> None:
        if self.core.end(reason, detail):
            self._hang_up = hang_up
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    # ---- the sideband ---------------------------------------------------------------------

    async def _sideband(self) -> None:
        for attempt in range(2):  # one reconnect after an abnormal close; the call's audio does not depend on it
            try:
                self._ws = await self.deps.connect(self.incoming.call_id)
            except Exception as exc:  # noqa: BLE001  unreachable sideband: the call cannot be steered
                self.end(EndReason.OPENAI_UNREACHABLE if attempt == 0 else EndReason.OPENAI_LOST,
                         f"the sideband socket could not be opened: {exc}", hang_up=True)
                return
            if attempt == 0 and self.greeting:
                await self._send(user_message(self.greeting))
                await self._send({"type": "response.create"})
            try:
                while True:
                    text = await self._ws.receive_text()
                    await self._on_text(text)
            except TransportClosed as exc:
                if exc.code in NORMAL_CLOSES:
                    self.end(EndReason.CALLER_HANGUP, f"the sideband closed (code {exc.code}): the call is over")
                    return
                self.core.journal.session_renewed(f"sideband dropped (code {exc.code})")
                log.warning("the sideband socket dropped (code %s); reconnecting once", exc.code)
        self.end(EndReason.OPENAI_LOST, "the sideband socket dropped twice", hang_up=True)

    async def _on_text(self, text: str | bytes) -> None:
        event = parse(text)
        if event is None:
            log.warning("unparseable sideband message skipped")
            return
        now = trio.current_time()
        if event.get("type") == "input_audio_buffer.dtmf_event_received":
            digit = str(event.get("event", ""))
            await self._run(self.core.on_key(digit, now, self.mode.on_dtmf(digit) if digit else []))
        else:
            await self._run(self.core.on_event(event, now))

    async def _run(self, steps: list[Step]) -> None:
        for step in steps:
            if isinstance(step, Send):
                await self._send(step.event)
            elif isinstance(step, StartTool):
                assert self._nursery is not None
                self._nursery.start_soon(self._tool, step)
            elif isinstance(step, HangUp):
                self.end(step.reason, step.detail, hang_up=True)

    async def _send(self, event: dict[str, Any]) -> None:
        if self._ws is None:
            return
        try:
            await self._ws.send_text(orjson.dumps(event))
        except TransportClosed:
            pass  # the reader sees the close and decides

    async def _tool(self, step: StartTool) -> None:
        output, error = await run_tool(self.deps.tools, self.tool_ctx, RunTool(step.call_id, step.name, step.arguments),
                                       self.deps.tool_timeout_s)
        await self._run(self.core.on_tool_result(step.call_id, output, error, trio.current_time()))

    # ---- what tools do to the call ------------------------------------------------------------

    async def _apply(self, levers: list[Lever]) -> None:
        await self._run(self.core.on_levers(levers, trio.current_time()))

    def _goodbye(self) -> None:
        self.core.hangup_after_goodbye()
        if self._nursery is not None:
            self._nursery.start_soon(self._goodbye_grace)

    async def _goodbye_grace(self) -> None:
        await trio.sleep(GOODBYE_GRACE_S)
        self.end(EndReason.AGENT_HANGUP, f"end_call: no goodbye done within {GOODBYE_GRACE_S:g} s", hang_up=True)

    async def _refer(self, target_uri: str) -> None:
        with self.core.journal.transferring(target_uri):
            await self.deps.control.refer(self.incoming.call_id, target_uri)
        log.info("call transferred (SIP REFER)", extra={"target": target_uri})

    # ---- deadlines -------------------------------------------------------------------------

    async def _deadline(self) -> None:
        await trio.sleep(self.deps.max_call_s)
        self.end(EndReason.MAX_CALL_LENGTH, f"LLC_MAX_CALL_S={self.deps.max_call_s:g} s reached", hang_up=True)

    async def _watchdog(self) -> None:
        """Pings the sideband (a dead socket is aborted; the reader reconnects) and writes progress."""
        tick = self.deps.ping_s if self.deps.ping_s > 0 else 1.0
        last_pongs, answered_at = -1, trio.current_time()
        while True:
            await trio.sleep(tick)
            self.writer.tick(self.record, self._nursery)
            ws = self._ws
            if ws is None or self.deps.ping_s <= 0:
                continue
            now = trio.current_time()
            if ws.pongs != last_pongs:
                last_pongs, answered_at = ws.pongs, now
            elif now - answered_at > self.deps.pong_timeout_s + tick:
                ws.abort(f"no pong within {self.deps.pong_timeout_s:g} s")
                answered_at = now
            ws.ping_nowait()
