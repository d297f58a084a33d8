"""Runs one call: a Trio nursery that owns the Twilio reader, the OpenAI session and the call's tasks.

The shell only moves bytes and executes what ``CallCore`` decides; what the call *is* (its
scenario, its warm session) comes from the plan (``llc.call.plan``) once the stream's
``start`` is known. Ending a call is one thing: cancel the call's nursery. ``finally`` blocks
then close both sockets (bounded, shielded) and finish the record, whatever ended it:
hangup, a dropped socket, or a fault.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Awaitable, Callable

import trio

from llc import metrics
from llc.call.apology import apology_payloads, clip_seconds
from llc.call.plan import CallPlan, CallPlanner
from llc.call.recording import CallRecorder, Recordings
from llc.call.tools import run_tool
from llc.core.actions import Action, ConnectOpenAI, EndCall, Log, PlayApology, ReconnectOpenAI, RunTool, Timer, ToOpenAI, ToTwilio
from llc.core.call import CallCore
from llc.core.dialect import Dialect
from llc.core.levers import Lever
from llc.core.liveness import Liveness, LivenessPolicy, Verdict
from llc.core.record import CallRecord, TurnLatency
from llc.core.session import SessionSpec
from llc.log import bind_call, get_logger
from llc.openai.connect import OpenAIConnectError
from llc.modes.runtime import ModeCall
from llc.openai.prewarm import WarmSession
from llc.ticker import Ticker
from llc.tools.registry import ToolRegistry
from llc.core import frames as tw
from llc.twilio.control import TwilioCallControl
from llc.twilio.twiml import say_and_dial
from llc.ws.hub import Hub
from llc.ws.transport import Transport, TransportClosed

log = get_logger("call")

# A close handshake is a courtesy: never let it hold a finished call open for long.
CLOSE_TIMEOUT_S = 0.5
# WebSocket close code for a policy violation (RFC 6455): a refused stream.
POLICY_VIOLATION = 1008
FALLBACK_MESSAGE = "Sorry, our assistant is not available right now. Connecting you to a person."
FALLBACK_REDIRECT_S = 5.0
TWILIO_SEND_FAILED = "the Twilio media socket closed while sending"


def _twilio_run(actions: list[Action], i: int) -> tuple[list[str | bytes], int]:
    """The Twilio frames from ``i`` on that go out in one write; and the index after them."""
    texts = [actions[i].text]  # type: ignore[union-attr]
    j = i + 1
    while j < len(actions) and type(actions[j]) is ToTwilio:
        texts.append(actions[j].text)  # type: ignore[union-attr]
        j += 1
    return texts, j


@dataclass(frozen=True)
class CallDeps:
    """What every call of one server shares; built once by the server's assembly."""

    dialect: Dialect
    connect: Callable[[], Awaitable[Transport]]  # opens a Realtime socket (OPENAI_* settings bound)
    tools: ToolRegistry
    call_control: TwilioCallControl
    max_frame_bytes: int
    max_call_s: float = 0.0  # 0: no limit
    apology_clip: str | None = None  # None: the bundled chime
    liveness: LivenessPolicy = LivenessPolicy()
    openai_wait_s: float = 5.0  # the one wait for a usable OpenAI session at call start
    warm_wait_s: float = 1.0  # then a cold connect starts beside a warm session not yet usable
    fallback_number: str | None = None  # LLC_FALLBACK_NUMBER: OpenAI unreachable at start -> a person
    recordings: Recordings | None = None  # LLC_RECORD_AUDIO (issue 16): None when off
    hub: Hub | None = None  # llc.ws.hub: reads the media sockets without a task wake-up per message
    ticker: Ticker | None = None  # llc.ticker: every call's watchdog ticks in one wake-up


class CallToolContext:
    """What a tool may do to the call it runs in (``llc.tools.registry.ToolContext``)."""

    def __init__(self, bridge: "CallBridge") -> None:
        self._bridge = bridge

    @property
    def mode(self) -> ModeCall | None:
        """The call's scenario (its store, caller, customer, menu); None before the plan."""
        plan = self._bridge.plan
        return plan.mode if plan is not None else None

    @property
    def transfer_allow(self) -> tuple[str, ...]:
        """The allow-list of the call's current scenario (an IVR may switch it mid-call)."""
        mode = self.mode
        return mode.transfer_allow if mode is not None else ()

    @property
    def call_sid(self) -> str:
        return self._bridge.record.call_sid

    @property
    def params(self) -> dict[str, str]:
        return self._bridge.core.params

    def now(self) -> float:
        return trio.current_time()

    async def apply(self, levers: list[Lever]) -> None:
        """The mode's levers (a spoken menu choice), carried out by the call."""
        await self._bridge.execute(self._bridge.core.on_levers(levers, trio.current_time()))

    async def hang_up_after_goodbye(self) -> None:
        await self._bridge.execute(self._bridge.core.request_hangup())

    async def redirect(self, twiml: str) -> None:
        await self._bridge.deps.call_control.redirect(self.call_sid, twiml)


class CallBridge:
    def __init__(self, twilio: Transport, deps: CallDeps, planner: CallPlanner,
                 save_progress: Callable[[CallRecord], Awaitable[None]] | None = None) -> None:
        """``save_progress`` writes the record of a call in progress (at admission, then as turns
        end) so a killed process loses nothing already said; None: only the final write."""
        self.twilio = twilio
        self.save_progress = save_progress
        self.deps = deps
        self.planner = planner
        self.record = CallRecord(started_at=time.time())
        # The spec is a placeholder until the plan arrives; no session opens before it.
        self.core = CallCore(
            deps.dialect, SessionSpec(), tool_schemas=deps.tools.schemas(), now=trio.current_time(),
            record=self.record, max_call_s=deps.max_call_s, apology_s=clip_seconds(deps.apology_clip),
        )
        self.plan: CallPlan | None = None
        self._close_code = 1000
        self.tool_ctx = CallToolContext(self)
        self.openai: Transport | None = None
        self._nursery: trio.Nursery | None = None
        self._log_fields = bind_call()
        self.done = trio.Event()
        self.liveness = Liveness(deps.liveness, trio.current_time())
        self._progress: tuple[int, ...] = ()  # what the last progress write held (see _progress_key)
        self._saving = False
        # issue 16: call audio, when on; the recorder only keeps frame texts, a thread writes them.
        self.recorder: CallRecorder | None = deps.recordings.start() if deps.recordings is not None else None
        # The hub's path (messages handled in the hub's task, llc.ws.hub): actions that must wait
        # (a busy socket, the apology) run here in order, by a task; later ones queue behind them.
        self._deferred: deque[list[Action]] = deque()
        # trio.current_time() without its two wrappers, on the per-message path (the same clock).
        self._now = trio.lowlevel.current_clock().current_time
        self._draining = False
        self._drained = trio.Event()

    async def run(self) -> CallRecord:
        """Run the call to its end; returns the finished record."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._twilio_reader)
                nursery.start_soon(self._watchdog)
        except Exception as exc:  # a bug must end this call only, and say so
            self._set_end("internal_error", repr(exc))
            log.exception("call failed on an internal error; the server keeps running")
        finally:
            # No reason yet means we were cancelled from outside (the server stopping); the
            # Twilio socket is closed below either way.
            self._set_end("twilio_closed", "the Twilio media socket closed")
            with trio.CancelScope(shield=True):
                with trio.move_on_after(CLOSE_TIMEOUT_S):
                    await self.twilio.close(self._close_code)
                self._finish()
        return self.record

    # ---- tasks ------------------------------------------------------------------------

    async def _twilio_reader(self) -> None:
        ws, hub = self.twilio, self.deps.hub
        while True:
            # Parked: the hub reads the socket and calls _on_twilio_now per message; it hands
            # the socket back for anything that needs this task (a control frame, the end).
            if hub is not None and await hub.park(ws, self._on_twilio_now):
                await self._settle()  # what the hub's path left waiting goes first (a stop before the close)
                continue
            try:
                text = await ws.receive_text()
            except TransportClosed as exc:
                self._end("twilio_closed", f"the Twilio media socket closed (code {exc.code})")
                return
            await self._execute_in_order(self._twilio_actions(text))

    def _on_twilio_now(self, text: bytes) -> bool:
        return self._run_or_defer(self._twilio_actions(text))

    def _twilio_actions(self, text: str | bytes) -> list[Action]:
        now = self.liveness.twilio_seen = self._now()
        max_bytes = self.deps.max_frame_bytes
        if len(text) > max_bytes:
            return self.core.on_bad_frame(f"frame of {len(text)} bytes is over LLC_MAX_FRAME_BYTES={max_bytes}")
        if self.recorder is not None:  # issue 16: the caller's leg
            self.recorder.caller(text)
        return self.core.on_twilio_text(text, now)

    async def _openai_session(self, plan: CallPlan) -> None:
        warm: WarmSession | None = None
        try:
            first = await self._first_session(plan)
            if first is None:
                return
            self.openai, warm = first
            self.liveness.openai_opened(trio.current_time())
            if warm is not None:
                self.record.path = warm.path
                log.info("OpenAI session claimed warm: no connect, no session.update", extra={"path": warm.path})
                await self.execute(self.core.on_openai_open(already_configured=True, priming=warm.priming_id))
            else:
                await self.execute(self.core.on_openai_open())
            while await self._read_openai():
                # The core asked for a new session (a drop, a dead leg, the 60-minute cap): same
                # config, plus a summary of the conversation; a failure here means the apology.
                with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
                    await self.openai.close()
                if warm is not None:
                    warm.release()
                    warm = None
                log.info("OpenAI session: reconnecting")
                try:
                    self.openai = await self.deps.connect()
                except OpenAIConnectError as exc:
                    self.openai = None
                    await self.execute(self.core.on_reconnect_failed(f"reconnect failed: {exc}"))
                    return
                self.liveness.openai_opened(trio.current_time())
                await self.execute(self.core.on_openai_open())
        finally:
            with trio.CancelScope(shield=True):
                if self.openai is not None:
                    with trio.move_on_after(CLOSE_TIMEOUT_S):
                        await self.openai.close()
                if warm is not None:
                    warm.release()

    async def _first_session(self, plan: CallPlan) -> tuple[Transport, WarmSession | None] | None:
        """One bounded wait for a usable session (``openai_wait_s``), never two in a row.

        The warm session wins if it is usable within ``warm_wait_s``; after that a cold connect
        starts beside it and the first one ready wins (the other is closed). Nothing usable in
        time: the caller hears the apology and the call ends, its record saying why.
        """
        won: list[tuple[Transport, WarmSession | None]] = []
        failures: list[str] = []
        warm_failed = trio.Event()

        async def keep(transport: Transport, warm: WarmSession | None) -> None:
            if not won:  # no checkpoint since the await that produced it: the first one wins
                won.append((transport, warm))
                race.cancel_scope.cancel()
                return
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
                await transport.close()
            if warm is not None:
                warm.release()

        async def warm_side(claim: Callable[[], Awaitable[WarmSession | None]]) -> None:
            session = await claim()
            if session is None:
                failures.append("the warm session was not usable")
                warm_failed.set()
                return
            await keep(session.transport, session)

        async def cold_side() -> None:
            if plan.warm is not None:
                with trio.move_on_after(self.deps.warm_wait_s):
                    await warm_failed.wait()
                log.info("OpenAI session: connecting cold%s", "" if warm_failed.is_set() else
                         f" beside the warm session (not usable within LLC_WARM_WAIT_S={self.deps.warm_wait_s:g} s)")
            else:
                log.info("OpenAI session: connecting cold", extra={"path": self.record.path})
            try:
                transport = await self.deps.connect()
            except OpenAIConnectError as exc:
                failures.append(str(exc))
                return
            await keep(transport, None)

        started = trio.current_time()
        try:
            async with trio.open_nursery() as race:
                race.cancel_scope.deadline = started + self.deps.openai_wait_s
                if plan.warm is not None:
                    race.start_soon(warm_side, plan.warm)
                race.start_soon(cold_side)
        except BaseException:
            # The call ended while the loser was still closing: the winner is nobody's yet.
            with trio.CancelScope(shield=True):
                for transport, warm in won:
                    with trio.move_on_after(CLOSE_TIMEOUT_S):
                        await transport.close()
                    if warm is not None:
                        warm.release()
            raise
        if won:
            return won[0]
        waited = trio.current_time() - started
        detail = "; ".join(failures) or f"no OpenAI session within OPENAI_CONNECT_TIMEOUT_S={self.deps.openai_wait_s:g} s"
        if await self._hand_to_fallback(detail):
            return None
        log.error("OpenAI could not be reached at call start (%s after %.1f s): the caller hears the apology; "
                  "check OPENAI_REALTIME_URL and the network path to OpenAI (status.openai.com)", detail, waited)
        await self.execute(self.core.on_reconnect_failed(detail, reason="openai_unreachable"))
        return None

    async def _hand_to_fallback(self, detail: str) -> bool:
        """LLC_FALLBACK_NUMBER: a person takes the call the agent cannot (Twilio redirects it and
        ends the stream). False when none is set or Twilio refused: the apology follows."""
        number = self.deps.fallback_number
        if not number or not self.record.call_sid:
            return False
        # Said first: Twilio ends the stream (a `stop`) as it redirects, often before the REST
        # call returns, and the record must not call that a hang-up.
        self._set_end("openai_unreachable", f"{detail}; handed to LLC_FALLBACK_NUMBER {number}")
        try:
            with trio.fail_after(FALLBACK_REDIRECT_S):
                await self.deps.call_control.redirect(self.record.call_sid, say_and_dial(FALLBACK_MESSAGE, number))
        except Exception as exc:  # TwilioError, a timeout, the network: the apology instead
            self.record.end_reason = self.record.end_detail = ""
            log.error("OpenAI could not be reached and the call could not be handed to LLC_FALLBACK_NUMBER (%s); "
                      "the caller hears the apology; check the Twilio credentials", exc)
            return False
        log.error("OpenAI could not be reached at call start (%s): the call was handed to LLC_FALLBACK_NUMBER; "
                  "check OPENAI_REALTIME_URL and the network path to OpenAI (status.openai.com)", detail)
        self._end("openai_unreachable")
        return True

    async def _read_openai(self) -> bool:
        """Relay OpenAI events until its socket closes; True when the core wants a new session."""
        ws, hub = self.openai, self.deps.hub
        assert ws is not None
        while True:
            if hub is not None and await hub.park(ws, self._on_openai_now):
                await self._settle()
                continue
            try:
                text = await ws.receive_text()
            except TransportClosed as exc:
                self.liveness.openai_opened(trio.current_time())  # no ping is owed by a closed socket
                actions = self.core.on_openai_closed(exc.code, exc.reason)
                await self._execute_in_order(actions)
                return any(type(a) is ReconnectOpenAI for a in actions)
            seen = self._openai_seen()
            await self._execute_in_order(self.core.on_openai_text(text, seen[0]))
            self._openai_relayed(*seen)

    def _on_openai_now(self, text: bytes) -> bool:
        seen = self._openai_seen()
        done = self._run_or_defer(self.core.on_openai_text(text, seen[0]))
        self._openai_relayed(*seen)
        return done

    def _openai_seen(self) -> tuple[float, int, TurnLatency | None]:
        """When an event came in, and what it is measured against once its actions went out."""
        # issue 16: the turn still waiting for its first audio gets its relay time below.
        return self._now(), len(self.record.barge_ins), self.core.journal.awaiting_first_audio

    def _openai_relayed(self, received_at: float, barge_ins: int, turn: TurnLatency | None) -> None:
        if turn is not None and turn.first_audio_at is not None:  # its first audio went out just now
            turn.relay_ms = round((trio.current_time() - received_at) * 1000, 3)
        if len(self.record.barge_ins) > barge_ins:
            # speech_started in → clear (and truncate) out: the reaction the caller feels.
            metrics.observe_bargein((trio.current_time() - received_at) * 1000)

    # ---- liveness and progress ------------------------------------------------------------

    async def _watchdog(self) -> None:
        """Ticks for the call's life: dead legs (``core.liveness``) and progress writes.

        The server's ticker (llc/ticker.py) runs ``_tick`` for every call in one wake-up;
        without one (a call run on its own) this task ticks itself. Nothing is added per frame
        but the time of the last Twilio frame.
        """
        ticker = self.deps.ticker
        if ticker is not None and ticker.running:
            with ticker.watching(self._tick):
                await trio.sleep_forever()
        while True:
            await trio.sleep(self.liveness.policy.tick_s)
            self._tick(trio.current_time())

    def _tick(self, now: float) -> None:
        live, openai = self.liveness, self.openai
        # Pinged in every phase: a leg that freezes while configuring is as dead as a live one.
        verdict = live.tick(now, started=bool(self.core.stream_sid),
                            openai_pongs=openai.pongs if openai is not None else None)
        if verdict is Verdict.NO_START:
            self._end("no_start", f"the media socket sent no start within LLC_START_TIMEOUT_S={live.policy.start_timeout_s:g} s")
        elif verdict is Verdict.TWILIO_SILENT:
            self._end("twilio_silent", f"nothing from Twilio for LLC_TWILIO_IDLE_S={live.policy.twilio_idle_s:g} s: "
                      "the media leg is dead (a network stall or a lost Twilio edge)")
        elif verdict is Verdict.PING and openai is not None:
            try:
                if openai.ping_nowait():  # False while a write is under way: asked again next tick
                    live.pinged(now, openai.pongs)
                    if openai.backlogged:
                        self._defer([])  # the rest of the ping goes out from a task
            except TransportClosed:
                pass  # the OpenAI reader sees the close and recovers
        elif verdict is Verdict.OPENAI_SILENT and openai is not None:
            log.warning("the OpenAI leg answered no ping within LLC_OPENAI_PONG_TIMEOUT_S=%g s: treating it as "
                        "dropped", live.policy.pong_timeout_s)
            openai.abort(f"no pong within {live.policy.pong_timeout_s:g} s")  # the reader recovers
            live.openai_opened(now)  # said once: the replacement's own clock starts when it opens
        self._maybe_save_progress()

    def _progress_key(self) -> tuple[int, ...]:
        rec = self.record
        return (len(rec.transcript), len(rec.turns), len(rec.barge_ins), len(rec.tool_calls), len(rec.dtmf),
                len(rec.routes), len(rec.reconnects), sum(t.output is not None for t in rec.tool_calls))

    def _maybe_save_progress(self) -> None:
        """Write the record of an admitted call when it has something new (a turn, a barge-in, a tool)."""
        if self.save_progress is None or self.plan is None or self._saving or self._nursery is None:
            return
        key = self._progress_key()
        if key != self._progress:
            self._progress, self._saving = key, True
            self._nursery.start_soon(self._save_progress)

    async def _save_progress(self) -> None:
        assert self.save_progress is not None
        try:
            await self.save_progress(self.record)
        finally:
            self._saving = False

    # ---- executing the core's decisions -----------------------------------------------

    async def execute(self, actions: list[Action]) -> None:
        """Carry out the core's decisions in order (called from any of the call's tasks)."""
        i, n = 0, len(actions)
        while True:
            i = self._run_now(actions, i)
            if i >= n:
                break
            i = await self._run_waiting(actions, i)
        await self._flush()

    async def _execute_in_order(self, actions: list[Action]) -> None:
        """A reader's actions: behind any the hub's path left waiting, so no frame overtakes another
        (and the reader reads on only once they ran: a stalled peer holds it, as a blocked send did)."""
        if self._draining:
            self._defer(actions)
            await self._settle()
        else:
            await self.execute(actions)

    def _run_or_defer(self, actions: list[Action]) -> bool:
        """The hub's path: what needs no waiting runs now; the rest (and all after it) waits in order.

        False when something waits: the hub then hands the leg back to its reader, which reads
        on only once the waiting actions ran (so a stalled peer slows the other leg's reading,
        as a blocked send did, instead of queueing its frames here).
        """
        if self._draining:
            self._defer(actions)
            return False
        i = self._run_now(actions, 0)
        if i < len(actions) or self.twilio.backlogged or (self.openai is not None and self.openai.backlogged):
            self._defer(actions[i:])  # an empty rest still flushes the backlog
            return False
        return True

    def _defer(self, actions: list[Action]) -> None:
        self._deferred.append(actions)
        if not self._draining and self._nursery is not None:
            self._draining = True
            self._drained = trio.Event()
            self._nursery.start_soon(self._drain)

    async def _drain(self) -> None:
        try:
            while self._deferred:
                await self.execute(self._deferred.popleft())
        finally:
            self._draining = False
            self._drained.set()

    async def _settle(self) -> None:
        """Until the actions the hub's path left waiting have run."""
        if self._draining:
            await self._drained.wait()

    def _run_now(self, actions: list[Action], i: int) -> int:
        """Carry out actions from ``i`` while none needs a wait; returns the index of the first that does."""
        n = len(actions)
        while i < n:
            action = actions[i]
            kind = type(action)
            if kind is ToOpenAI:
                if self.openai is not None:
                    try:
                        if not self.openai.send_nowait((action.text,)):  # type: ignore[union-attr]
                            return i
                    except TransportClosed:
                        pass  # the OpenAI reader sees the close and recovers or ends the call
            elif kind is ToTwilio:
                # Consecutive Twilio frames (audio + its mark, a clear + ...) go in one write.
                texts, j = _twilio_run(actions, i)
                try:
                    if not self.twilio.send_nowait(texts):
                        return i
                except TransportClosed:
                    self._end("twilio_closed", TWILIO_SEND_FAILED)
                if self.recorder is not None:  # issue 16: the agent's leg (clear included)
                    self.recorder.agent(texts)
                i = j
                continue
            elif kind is ConnectOpenAI:
                assert self._nursery is not None
                self._nursery.start_soon(self._start)
            elif kind is EndCall:
                self._end(action.reason, action.detail)  # type: ignore[union-attr]
            elif kind is RunTool:
                assert self._nursery is not None
                self._nursery.start_soon(self._run_tool, action)
            elif kind is Timer:
                assert self._nursery is not None
                self._nursery.start_soon(self._timer, action.key, action.delay_s)  # type: ignore[union-attr]
            elif kind is Log:
                getattr(log, action.level)(action.msg, extra=action.fields)  # type: ignore[union-attr]
            elif kind is not ReconnectOpenAI:  # that one: the OpenAI task reconnects when its reader returns
                return i  # PlayApology
            i += 1
        return n

    async def _run_waiting(self, actions: list[Action], i: int) -> int:
        """The action at ``i`` needs a wait (a socket busy with an earlier write, the apology)."""
        action = actions[i]
        kind = type(action)
        if kind is ToOpenAI:
            if self.openai is not None:
                try:
                    await self.openai.send_text(action.text)  # type: ignore[union-attr]
                except TransportClosed:
                    pass
            return i + 1
        if kind is ToTwilio:
            texts, j = _twilio_run(actions, i)
            if self.recorder is not None:
                self.recorder.agent(texts)
            try:
                await self.twilio.send_texts(texts)
            except TransportClosed:
                self._end("twilio_closed", TWILIO_SEND_FAILED)
            return j
        if kind is PlayApology:
            await self._play_apology(action.mark)  # type: ignore[union-attr]
        return i + 1

    async def _flush(self) -> None:
        """What a send_nowait left in a socket's backlog (the kernel took part of a frame)."""
        if self.twilio.backlogged:
            try:
                await self.twilio.flush()
            except TransportClosed:
                self._end("twilio_closed", TWILIO_SEND_FAILED)
        if self.openai is not None and self.openai.backlogged:
            try:
                await self.openai.flush()
            except TransportClosed:
                pass

    async def _start(self) -> None:
        """The stream started: plan the call (admission, scenario, warm session), then open OpenAI."""
        self._bind_stream()
        plan = await self.planner.plan(self.record, self.core.params, self.core.t0)
        if isinstance(plan, str):
            log.warning("media stream refused: %s", plan)
            self._close_code = POLICY_VIOLATION
            self._end("stream_refused", plan)
            return
        self.plan = plan
        self.core.on_plan(plan.spec, plan.policy, plan.greeting, plan.mode)
        self._progress = (-1,)  # admitted: the record is written now, open, then as turns end
        self._maybe_save_progress()
        await self._openai_session(plan)

    async def _run_tool(self, action: RunTool) -> None:
        output, error = await run_tool(self.deps.tools, self.tool_ctx, action, self.core.policy.tool_timeout_s)
        await self.execute(self.core.on_tool_result(action.call_id, output, trio.current_time(), error))

    async def _play_apology(self, mark: str) -> None:
        sid = self.core.stream_sid
        try:
            for payload in apology_payloads(self.deps.apology_clip):
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

    def _set_end(self, reason: str, detail: str = "") -> None:
        if not self.record.end_reason:
            self.record.end_reason, self.record.end_detail = reason, detail

    def _end(self, reason: str, detail: str = "") -> None:
        self._set_end(reason, detail)
        self.core.end(self.liveness.twilio_seen)
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _finish(self) -> None:
        rec = self.record
        rec.ended_at = time.time()
        if self.recorder is not None:  # issue 16: the WAV is written by the recorder's thread
            rec.audio_path = self.recorder.close(rec.call_sid)
        level = "info" if rec.end_reason in ("caller_hangup", "twilio_closed", "agent_hangup") else "warning"
        getattr(log, level)(
            "call ended: %s", rec.end_reason,
            extra={"detail": rec.end_detail, "seconds": round(rec.ended_at - rec.started_at, 2),
                   "turns": len(rec.turns), "bad_frames": rec.bad_frames},
        )
        self.done.set()
