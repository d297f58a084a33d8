"""A call's OpenAI leg: its first session (warm or cold), reading it, replacing it, closing it.

One task of the call's nursery runs ``run`` for the call's whole life. The first session
comes from one bounded wait (``llc.call.race``); nothing usable in time hands the call to a
person (LLC_FALLBACK_NUMBER) or plays the apology. Its events are read on the media hub's path
when it can (``llc.ws.hub``), in this task otherwise. When the core asks for a new session
(a drop, a dead leg, the 60-minute cap) the old socket is closed and a new one opened with the
same config and a summary of the conversation; if that fails, the apology. Whatever ends the
call, the socket is closed (bounded) and a warm session handed back.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from llc import metrics
from llc.call.deps import CallDeps
from llc.call.plan import CallPlan
from llc.call.race import FirstSession, close_quietly
from llc.core.actions import ReconnectOpenAI
from llc.core.call import CallCore
from llc.core.journal import Journal
from llc.core.liveness import Liveness
from llc.core.phase import Phase
from llc.core.record import EndReason, TurnLatency
from llc.log import get_logger
from llc.openai.connect import OpenAIConnectError
from llc.openai.prewarm import WarmSession
from llc.runner import ActionRunner
from llc.twilio.twiml import say_and_dial
from llc.ws.transport import Transport, TransportClosed

log = get_logger("call")

FALLBACK_MESSAGE = "Sorry, our assistant is not available right now. Connecting you to a person."
FALLBACK_REDIRECT_S = 5.0
_CHECK_OPENAI = "check OPENAI_REALTIME_URL and the network path to OpenAI (status.openai.com)"


class OpenAILeg:
    def __init__(self, core: CallCore, runner: ActionRunner, deps: CallDeps, liveness: Liveness,
                 end: Callable[[EndReason], None]) -> None:
        self.core, self.runner, self.deps, self.liveness, self._end = core, runner, deps, liveness, end
        # trio.current_time() without its two wrappers, on the per-message path (the same clock).
        self._now = trio.lowlevel.current_clock().current_time

    async def run(self, plan: CallPlan) -> None:
        core, runner = self.core, self.runner
        warm: WarmSession | None = None
        try:
            first = await self._first_session(plan)
            if first is None:
                return
            transport, warm = first
            self._opened(transport)
            if warm is not None:
                log.info("OpenAI session claimed warm: no connect, no session.update", extra={"path": warm.path})
                await runner.execute(core.on_openai_open(already_configured=True, priming=warm.priming_id, path=warm.path))
            else:
                await runner.execute(core.on_openai_open())
            while await self._read():
                # The core asked for a new session (a drop, a dead leg, the 60-minute cap): same
                # config, plus a summary of the conversation; a failure here means the apology.
                assert runner.openai is not None
                await close_quietly(runner.openai, warm)
                warm = None
                log.info("OpenAI session: reconnecting")
                try:
                    transport = await self.deps.connect()
                except OpenAIConnectError as exc:
                    runner.openai = None
                    await runner.execute(core.on_reconnect_failed(f"reconnect failed: {exc}"))
                    return
                self._opened(transport)
                await runner.execute(core.on_openai_open())
        finally:
            if runner.openai is not None:
                await close_quietly(runner.openai, warm)
            elif warm is not None:
                warm.release()

    def _opened(self, transport: Transport) -> None:
        self.runner.openai = transport
        self.liveness.openai_opened(trio.current_time())

    async def _first_session(self, plan: CallPlan) -> tuple[Transport, WarmSession | None] | None:
        """The race's winner; None when nothing was usable in time (a person, or the apology, then)."""
        deps = self.deps
        race = FirstSession(deps.connect, wait_s=deps.openai_wait_s, warm_wait_s=deps.warm_wait_s)
        started = trio.current_time()
        won = await race.run(plan.warm)
        if won is not None:
            return won
        detail = race.failure
        if await self._hand_to_person(detail):
            return None
        log.error("OpenAI could not be reached at call start (%s after %.1f s): the caller hears the apology; %s",
                  detail, trio.current_time() - started, _CHECK_OPENAI)
        await self.runner.execute(self.core.on_reconnect_failed(detail, reason=EndReason.OPENAI_UNREACHABLE))
        return None

    async def _hand_to_person(self, detail: str) -> bool:
        """LLC_FALLBACK_NUMBER: a person takes the call the agent cannot (Twilio redirects it and
        ends the stream). False when none is set or Twilio refused: the apology follows."""
        number, core = self.deps.fallback_number, self.core
        call_sid = core.record.call_sid
        if not number or not call_sid:
            return False
        # Said first: Twilio ends the stream (a `stop`) as it redirects, often before the REST
        # call returns, and the record must not call that a hang-up.
        core.life.hand_off(f"{detail}; handed to LLC_FALLBACK_NUMBER {number}")
        try:
            with trio.fail_after(FALLBACK_REDIRECT_S):
                await self.deps.call_control.redirect(call_sid, say_and_dial(FALLBACK_MESSAGE, number))
        except Exception as exc:  # noqa: BLE001  TwilioError, a timeout, the network: the apology instead
            if core.phase is Phase.HANDING_OFF:
                core.life.hand_off_failed()
            log.error("OpenAI could not be reached and the call could not be handed to LLC_FALLBACK_NUMBER (%s); "
                      "the caller hears the apology; check the Twilio credentials", exc)
            return False
        log.error("OpenAI could not be reached at call start (%s): the call was handed to LLC_FALLBACK_NUMBER; %s",
                  detail, _CHECK_OPENAI)
        self._end(EndReason.OPENAI_UNREACHABLE)  # the hand-off's ending: what the core was told first
        return True

    # ---- reading --------------------------------------------------------------------------

    async def _read(self) -> bool:
        """Relay OpenAI events until its socket closes; True when the core wants a new session."""
        ws, hub, core, runner = self.runner.openai, self.deps.hub, self.core, self.runner
        assert ws is not None
        while True:
            if hub is not None and await hub.park(ws, self._on_message_now):
                await runner.settle()  # what the hub's path left waiting goes first
                continue
            try:
                text = await ws.receive_text()
            except TransportClosed as exc:
                self.liveness.openai_opened(trio.current_time())  # no ping is owed by a closed socket
                actions = core.on_openai_closed(exc.code, exc.reason)
                await runner.execute_in_order(actions)
                return any(isinstance(a, ReconnectOpenAI) for a in actions)
            received_at, barge_ins, turn = self._seen()
            await runner.execute_in_order(core.on_openai_text(text, received_at))
            self._relayed(received_at, barge_ins, turn)

    def _on_message_now(self, text: bytes) -> bool:
        received_at, barge_ins, turn = self._seen()
        done = self.runner.submit_nowait(self.core.on_openai_text(text, received_at))
        self._relayed(received_at, barge_ins, turn)
        return done

    def _seen(self) -> tuple[float, int, TurnLatency | None]:
        """When an event came in, and what it is measured against once its actions went out:
        the barge-ins so far, and the turn still waiting for its first audio."""
        return self._now(), len(self.core.record.barge_ins), self.core.journal.awaiting_first_audio

    def _relayed(self, received_at: float, barge_ins: int, turn: TurnLatency | None) -> None:
        if turn is not None and turn.first_audio_at is not None:  # its first audio went out just now
            Journal.relayed(turn, round((trio.current_time() - received_at) * 1000, 3))
        if len(self.core.record.barge_ins) > barge_ins:
            # speech_started in → clear (and truncate) out: the reaction the caller feels.
            metrics.observe_bargein((trio.current_time() - received_at) * 1000)
