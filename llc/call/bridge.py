"""Runs one call: a Trio nursery that owns the Twilio reader, the OpenAI leg and the call's tasks.

The shell only moves bytes and carries out what ``CallCore`` decides, through one runner
(``llc.runner``); what the call *is* (its scenario, its warm session) comes from the plan
(``llc.call.plan``) once the stream's ``start`` is known. The parts, by job: the OpenAI leg
(``llc.call.openai_leg``: first session, reading, replacing), the record writer
(``llc.call.record_writer``), and this supervisor, which owns the nursery, reads Twilio,
ticks the call's watchdog and ends the call.

Ending a call is one thing: cancel the call's nursery. ``finally`` then closes the Twilio
socket (bounded, shielded), the OpenAI leg closes its own, and the record is finished and
written, whatever ended the call: hang-up, a dropped socket, or a fault.
"""

from __future__ import annotations

import logging
import time

import trio

from llc.call.apology import apology_payloads, clip_seconds
from llc.call.deps import CallDeps
from llc.call.openai_leg import OpenAILeg
from llc.call.plan import CallPlan, CallPlanner
from llc.call.record_writer import RecordWriter
from llc.call.tool_context import CallToolContext
from llc.call.tools import run_tool
from llc.core import twilio_frames as tw
from llc.core.actions import Action, RunTool, TimerKey
from llc.core.call import CallCore
from llc.core.liveness import Liveness, Verdict
from llc.core.record import CallRecord, EndReason
from llc.core.refusal import Refusal
from llc.core.session import SessionSpec
from llc.log import bind_call, get_logger
from llc.modes.runtime import ModeCall
from llc.runner import TWILIO_SEND_FAILED, ActionRunner
from llc.ticker import watch
from llc.ws.transport import Transport, TransportClosed

log = get_logger("call")

# A close handshake is a courtesy: never let it hold a finished call open for long.
CLOSE_TIMEOUT_S = 0.5
SEND_FAILED_GRACE_S = 0.3  # a stop already received is read well within this (twilio_send_failed)
# WebSocket close code for a policy violation (RFC 6455): a refused stream.
POLICY_VIOLATION = 1008
# How a call ended, as the line that says so is logged: these endings are ordinary.
ORDINARY_ENDINGS = frozenset({EndReason.CALLER_HANGUP, EndReason.TWILIO_CLOSED, EndReason.AGENT_HANGUP,
                              EndReason.TRANSFERRED})


class CallBridge:
    def __init__(self, twilio: Transport, deps: CallDeps, planner: CallPlanner, writer: RecordWriter | None = None) -> None:
        """``writer`` stores the record as the call goes and when it ends (None: nothing is stored)."""
        self.twilio, self.deps, self.planner = twilio, deps, planner
        self.writer = writer or RecordWriter(None)
        now = trio.current_time()
        # The spec is a placeholder until the plan arrives; no session opens before it.
        self.core = CallCore(deps.dialect, SessionSpec(), tool_schemas=deps.tools.schemas(), now=now,
                             started_at=time.time(), max_call_s=deps.max_call_s, apology_s=clip_seconds(deps.apology_clip))
        self.record: CallRecord = self.core.record  # read it; the core's journal writes it
        self.plan: CallPlan | None = None
        self.liveness = Liveness(deps.liveness, now)
        # Call audio, when on: the recorder only keeps frame texts, a thread writes them.
        self.recorder = deps.recordings.start() if deps.recordings is not None else None
        self.runner = ActionRunner(log, twilio=twilio, effects=self, recorder=self.recorder)
        self.openai = OpenAILeg(self.core, self.runner, deps, self.liveness, self.end)
        self.tool_ctx = CallToolContext(self.core, self.runner, deps.call_control, self._mode)
        self._close_code = 1000
        self._nursery: trio.Nursery | None = None
        self._send_failed = False  # the end after a failed write is on its way
        self._log_fields = bind_call()
        # trio.current_time() without its two wrappers, on the per-message path (the same clock).
        self._now = trio.lowlevel.current_clock().current_time

    async def run(self) -> CallRecord:
        """Run the call to its end; returns the finished record (written, when the call was admitted)."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = self.runner.nursery = nursery
                nursery.start_soon(self._twilio_reader)
                nursery.start_soon(self._watchdog)
        except Exception as exc:  # a bug must end this call only, and say so
            self.end(EndReason.INTERNAL_ERROR, repr(exc))
            log.exception("call failed on an internal error; the server keeps running")
        finally:
            # No ending yet means we were cancelled from outside (the server stopping); the
            # Twilio socket is closed below either way.
            self.end(EndReason.TWILIO_CLOSED, "the Twilio media socket closed")
            with trio.CancelScope(shield=True):
                with trio.move_on_after(CLOSE_TIMEOUT_S):
                    await self.twilio.close(self._close_code)
                self._finish()
                await self.writer.final(self.record)
        return self.record

    def _mode(self) -> ModeCall | None:
        return self.plan.mode if self.plan is not None else None

    def answered_by(self, answered_by: str) -> None:
        """Twilio's AMD answer arrived (a webhook): the record says who picked up."""
        self.core.journal.answered_by(answered_by)

    # ---- the Twilio leg -----------------------------------------------------------------

    async def _twilio_reader(self) -> None:
        ws, hub, runner = self.twilio, self.deps.hub, self.runner
        while True:
            # Parked: the hub reads the socket and calls _on_twilio_now per message; it hands
            # the socket back for anything that needs this task (a control frame, the end).
            if hub is not None and await hub.park(ws, self._on_twilio_now):
                await runner.settle()  # what the hub's path left waiting goes first (a stop before the close)
                continue
            try:
                text = await ws.receive_text()
            except TransportClosed as exc:
                self.end(EndReason.TWILIO_CLOSED, f"the Twilio media socket closed (code {exc.code})")
                return
            await runner.execute_in_order(self._twilio_actions(text))

    def _on_twilio_now(self, text: bytes) -> bool:
        return self.runner.submit_nowait(self._twilio_actions(text))

    def _twilio_actions(self, text: str | bytes) -> list[Action]:
        now = self.liveness.twilio_seen = self._now()
        max_bytes = self.deps.max_frame_bytes
        if len(text) > max_bytes:
            return self.core.on_bad_frame(f"frame of {len(text)} bytes is over LLC_MAX_FRAME_BYTES={max_bytes}")
        if self.recorder is not None:  # the caller's leg of the call audio
            self.recorder.caller(text)
        return self.core.on_twilio_text(text, now)

    # ---- what the core's actions start (the runner's CallEffects) -------------------------

    def _spawn(self) -> trio.Nursery:
        assert self._nursery is not None, "the call's actions run inside its nursery"
        return self._nursery

    def connect_openai(self) -> None:
        self._spawn().start_soon(self._start)

    def run_tool(self, action: RunTool) -> None:
        self._spawn().start_soon(self._run_tool, action)

    def start_timer(self, key: TimerKey, delay_s: float) -> None:
        self._spawn().start_soon(self._timer, key, delay_s)

    async def _start(self) -> None:
        """The stream started: plan the call (admission, scenario, warm session), then open OpenAI."""
        self._bind_stream()
        plan = await self.planner.plan(self.record.call_sid, self.core.params)
        if isinstance(plan, Refusal):
            log.warning("media stream refused: %s", plan)
            self._close_code = POLICY_VIOLATION
            self.end(EndReason.STREAM_REFUSED, plan.text)
            return
        self.plan = plan
        self.core.on_plan(plan.spec, plan.policy, plan.greeting, plan.mode,
                          scenario=plan.scenario, caller=plan.caller, called=plan.called)
        self.writer.admit(self.record, self._spawn())  # the record is written now, open, then as turns end
        await self.openai.run(plan)

    async def _run_tool(self, action: RunTool) -> None:
        output, error = await run_tool(self.deps.tools, self.tool_ctx, action, self.core.talk.policy.tool_timeout_s)
        await self.runner.execute(self.core.on_tool_result(action.call_id, output, trio.current_time(), error))

    async def play_apology(self, mark: str) -> None:
        sid = self.core.stream_sid
        try:
            for payload in apology_payloads(self.deps.apology_clip):
                await self.twilio.send_text(tw.media(sid, payload))
            await self.twilio.send_text(tw.mark(sid, mark))
        except TransportClosed:
            self.end(EndReason.TWILIO_CLOSED, "the Twilio media socket closed during the apology")

    async def _timer(self, key: TimerKey, delay_s: float) -> None:
        await trio.sleep(delay_s)
        await self.runner.execute(self.core.on_timer(key, trio.current_time()))

    # ---- the watchdog: dead legs and progress writes ----------------------------------------

    async def _watchdog(self) -> None:
        """Ticks for the call's life (``llc.ticker``): nothing is added per frame but the time of
        the last Twilio frame."""
        await watch(self._tick, self.deps.ticker, self.liveness.policy.tick_s)

    def _tick(self, now: float) -> None:
        live, openai = self.liveness, self.runner.openai
        # Pinged in every phase: a leg that freezes while configuring is as dead as a live one.
        verdict = live.tick(now, started=bool(self.core.stream_sid),
                            openai_pongs=openai.pongs if openai is not None else None)
        if verdict is Verdict.NO_START:
            self.end(EndReason.NO_START,
                     f"the media socket sent no start within LLC_START_TIMEOUT_S={live.policy.start_timeout_s:g} s")
        elif verdict is Verdict.TWILIO_SILENT:
            self.end(EndReason.TWILIO_SILENT, f"nothing from Twilio for LLC_TWILIO_IDLE_S={live.policy.twilio_idle_s:g} s: "
                     "the media leg is dead (a network stall or a lost Twilio edge)")
        elif verdict is Verdict.PING and openai is not None:
            try:
                if openai.ping_nowait():  # False while a write is under way: asked again next tick
                    live.pinged(now, openai.pongs)
                    if openai.backlogged:
                        self.runner.flush_later()  # the rest of the ping goes out from a task
            except TransportClosed:
                pass  # the OpenAI reader sees the close and recovers
        elif verdict is Verdict.OPENAI_SILENT and openai is not None:
            log.warning("the OpenAI leg answered no ping within LLC_OPENAI_PONG_TIMEOUT_S=%g s: treating it as "
                        "dropped", live.policy.pong_timeout_s)
            openai.abort(f"no pong within {live.policy.pong_timeout_s:g} s")  # the reader recovers
            live.openai_opened(now)  # said once: the replacement's own clock starts when it opens
        self.writer.tick(self.record, self._nursery)

    # ---- the end ----------------------------------------------------------------------------

    def end(self, reason: EndReason, detail: str = "") -> None:
        """End the call (an action, the watchdog, the drain deadline): the first ending says why."""
        self.core.end(reason, detail, self.liveness.twilio_seen)
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def twilio_send_failed(self) -> None:
        """A write to Twilio failed: its socket is closed or dead, and the call ends.

        Why not at once: Twilio says ``stop`` and then closes. A write racing that close fails
        while the ``stop`` still waits, unread, in our receive buffer; ending now would record the
        caller's hang-up as a dropped socket. The reader takes the ``stop`` (or the close) within
        the grace, and the first ending says why; a peer that is simply gone ends it after.
        """
        if self._nursery is None:
            self.end(EndReason.TWILIO_CLOSED, TWILIO_SEND_FAILED)
        elif not self._send_failed:
            self._send_failed = True
            self._nursery.start_soon(self._end_after_send_failed)

    async def _end_after_send_failed(self) -> None:
        await trio.sleep(SEND_FAILED_GRACE_S)
        self.end(EndReason.TWILIO_CLOSED, TWILIO_SEND_FAILED)

    def _bind_stream(self) -> None:
        rec = self.record
        self._log_fields.update(call_sid=rec.call_sid, stream_sid=rec.stream_sid, direction=rec.direction, scenario=rec.scenario)
        log.info("call started", extra={"path": rec.path})

    def _finish(self) -> None:
        rec = self.record
        audio = self.recorder.close(rec.call_sid) if self.recorder is not None else ""  # a thread writes the WAV
        self.core.journal.closed(time.time(), audio)
        finished = self.planner.finish(rec.call_sid, admitted=self.plan is not None)
        if finished is not None:
            self.core.journal.outbound(finished.statuses, finished.answered_by)
        log.log(logging.INFO if rec.end_reason in ORDINARY_ENDINGS else logging.WARNING,
                "call ended: %s", rec.end_reason,
                extra={"detail": rec.end_detail, "seconds": round((rec.ended_at or 0.0) - rec.started_at, 2),
                       "turns": len(rec.turns), "bad_frames": rec.bad_frames})
