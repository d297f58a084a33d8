"""The call state machine: Twilio frames and OpenAI events in, actions out. No I/O, no Trio.

Like h11: the shell feeds every input with the current monotonic time and executes the
returned actions in order. Everything a call decides lives here or in the parts it composes,
so it is tested with plain data. This class keeps the call's lifecycle: the phase (which moves
only through the table in ``llc.core.phase``), the OpenAI session being configured, lost,
replaced or given up, and the end. What is said inside a session is the ``Conversation``'s;
the record is written only by the ``Journal``, so what it claims has one author.
"""

from __future__ import annotations

from collections import deque
from typing import Any, assert_never

from llc.core import faults
from llc.core import openai_events as oa
from llc.core import session as sess
from llc.core import twilio_frames as tw
from llc.core.actions import (
    Action,
    ConnectOpenAI,
    Deadline,
    EndCall,
    Log,
    PlayApology,
    ReconnectOpenAI,
    Timer,
    TimerKey,
    ToolFiller,
    ToOpenAI,
    ToTwilio,
    json_text,
)
from llc.core.conversation import Conversation
from llc.core.dialect import Dialect
from llc.core.journal import Journal
from llc.core.levers import KeyHandler, Lever
from llc.core.phase import Lifecycle, Phase
from llc.core.playout import Playout
from llc.core.record import CallRecord, EndReason
from llc.core.recovery import SessionRecovery
from llc.core.turns import TurnPolicy

# Caller audio that arrives before OpenAI accepted the session is held, not dropped: the
# callee's "hello" often comes while the session is still being configured. 5 s is ample.
MAX_PENDING_FRAMES = 250
# More than this many unusable frames in one call is a broken peer, not noise.
MAX_BAD_FRAMES = 50
_LOST = "the OpenAI session was lost before the tool finished"
_LIVE = Phase.LIVE  # a module constant: read per media frame


def _append(payload: str) -> ToOpenAI:
    # orjson escapes the string but never changes base64: the bytes reach OpenAI untouched.
    return ToOpenAI(json_text({"type": "input_audio_buffer.append", "audio": payload}))


class CallCore:
    """One call's decisions; ``phase`` walks the table in ``llc.core.phase``. Built from the
    conversation (response gate, agent audio over the playout clock, tool calls), the journal (the
    record) and the session recovery (handed in, or a default one); the mode comes with the plan."""

    def __init__(
        self,
        dialect: Dialect,
        spec: sess.SessionSpec,
        *,
        greeting: str | None = None,
        policy: TurnPolicy | None = None,
        tool_schemas: dict[str, dict[str, Any]] | None = None,
        now: float = 0.0,
        started_at: float = 0.0,
        max_call_s: float = 0.0,
        apology_s: float = 0.0,
        recovery: SessionRecovery | None = None,
    ) -> None:
        self.dialect = dialect
        self.greeting = greeting
        self.t0 = now
        self.life = Lifecycle()
        self.params: dict[str, str] = {}
        self.journal = Journal(CallRecord(started_at=started_at), now)
        self.talk = Conversation(dialect, spec, policy or TurnPolicy(), tool_schemas or {}, self.journal, now)
        self._pending: deque[str] = deque(maxlen=MAX_PENDING_FRAMES)
        self.max_call_s = max_call_s  # 0: no limit
        self.apology_s = apology_s  # length of the apology clip the shell plays
        self.recovery = recovery or SessionRecovery()
        self.mode: KeyHandler | None = None  # the scenario's key presses (the IVR), from the plan

    @property
    def phase(self) -> Phase:
        return self.life.phase

    @property
    def record(self) -> CallRecord:
        """The call's record (read it; the journal writes it)."""
        return self.journal.record

    @property
    def playout(self) -> Playout:
        """What the caller has heard of the agent, by the playout clock and marks."""
        return self.talk.playout

    @property
    def stream_sid(self) -> str:
        return self.talk.stream_sid

    def on_plan(self, spec: sess.SessionSpec, policy: TurnPolicy, greeting: str | None, mode: KeyHandler | None = None,
                *, scenario: str = "", caller: str = "", called: str = "") -> None:
        """The call's plan is known (its scenario, before the session opens): take it on."""
        self.greeting, self.mode = greeting, mode
        self.talk.plan(spec, policy)
        self.journal.planned(scenario, caller, called)

    # ---- Twilio leg -------------------------------------------------------------------

    def on_twilio_text(self, text: str | bytes, now: float) -> list[Action]:
        try:
            frame = tw.load(text)
            payload = tw.inbound_payload(frame)
            if payload is not None and self.life.phase is _LIVE:
                # Nearly every frame: straight through, no event object (what _on_media does;
                # a live call has its stream, so the check for one is the phase's).
                self.journal.caller_frame(payload)
                return [_append(payload)]
            event = tw.from_json(frame)
        except tw.FrameError as exc:
            return self.on_bad_frame(str(exc))
        return self.on_twilio(event, now)

    def on_bad_frame(self, reason: str) -> list[Action]:
        bad = self.journal.bad_frame()
        actions: list[Action] = [Log("warning", f"ignored a bad Twilio frame: {reason}", {"bad_frames": bad})]
        if bad > MAX_BAD_FRAMES:
            actions.append(EndCall(EndReason.BAD_FRAMES, f"more than {MAX_BAD_FRAMES} unusable frames from Twilio"))
        return actions

    def on_twilio(self, event: tw.TwilioEvent, now: float) -> list[Action]:
        match event:
            case tw.Media(payload):
                return self._on_media(payload)
            case tw.Start():
                return self._on_start(event)
            case tw.Stop():
                return [EndCall(EndReason.CALLER_HANGUP)]
            case tw.Mark(name):
                if name == faults.APOLOGY_MARK and self.phase is Phase.APOLOGY:
                    return list(self.life.apology_over())
                self.playout.on_mark(name, now)
                return self._maybe_hang_up()
            case tw.Dtmf(digit):
                self.journal.key_pressed(digit, now)
                actions: list[Action] = [Log("debug", "caller pressed a key", {"digit": digit})]  # no log flood
                if self.mode is not None and self.phase is Phase.LIVE:
                    actions += self.on_levers(self.mode.on_dtmf(digit), now)
                return actions
            case tw.Connected():
                return []  # nothing to do until start
            case _:
                assert_never(event)

    def _on_media(self, payload: str) -> list[Action]:
        if not self.talk.stream_sid:
            return self.on_bad_frame("media before start")
        self.journal.caller_frame(payload)
        if self.phase is Phase.LIVE:
            # The payload string goes through untouched: no decode, no resample, no gain.
            return [_append(payload)]
        self._pending.append(payload)
        return []

    def _on_start(self, event: tw.Start) -> list[Action]:
        if self.talk.stream_sid:
            return [Log("warning", "second start frame on one stream ignored", {"other_stream_sid": event.stream_sid})]
        if self.phase is not Phase.WAITING:
            return []  # the call ended before its stream started: nothing to start
        self.talk.stream_sid = event.stream_sid
        self.params = dict(event.custom_parameters)
        self.journal.started(event.stream_sid, event.call_sid, self.params)
        self.life.move(Phase.CONNECTING)
        if self.max_call_s > 0:
            return [ConnectOpenAI(), Timer(Deadline.MAX_CALL_LENGTH, self.max_call_s)]
        return [ConnectOpenAI()]

    # ---- OpenAI leg -------------------------------------------------------------------

    def on_openai_open(self, already_configured: bool = False, priming: str | None = None,
                       path: str | None = None) -> list[Action]:
        """The OpenAI socket is open: configure the session before anything else.

        ``already_configured``: a claimed warm session (prewarm / pre-accept, ``path``) was
        configured and primed before the call; sending session.update again would only add
        latency. ``priming``: its priming response is still running (its id, "?" before the
        service named it). Creates wait for it (the service may allow one response at a time),
        for a short grace; then it is cancelled, so a slow priming never silences the greeting.
        """
        if self.life.ending:
            return []  # the call is already on its way out: the shell closes the socket
        self.life.move(Phase.CONFIGURING)
        if path is not None:
            self.journal.session_path(path)
        if not already_configured:
            return [ToOpenAI(json_text(self.dialect.session_update(self.talk.current_spec())))]
        grace = self.talk.hold_for_priming(priming) if priming else None
        actions = self._on_session_updated()
        return actions if grace is None else [*actions, grace]

    def on_openai_text(self, text: str | bytes, now: float) -> list[Action]:
        try:
            event = oa.load(text)
            if type(event) is dict and event.get("type") in oa.AUDIO_DELTAS:
                # Nearly every event: straight to its handler, no event object (what on_openai does).
                item_id, response_id, delta = oa.delta_fields(event)
                return self._on_audio_delta(item_id, response_id, delta, now)
            return self.on_openai(oa.from_json(event), now)
        except oa.EventError as exc:
            return [Log("warning", f"OpenAI sent {exc}; ignored")]

    def on_openai(self, event: oa.OpenAIEvent, now: float) -> list[Action]:
        talk = self.talk
        match event:
            case oa.AudioDelta(item_id, response_id, delta):
                return self._on_audio_delta(item_id, response_id, delta, now)
            case oa.AudioDone():
                return talk.audio.tail(talk.stream_sid)
            case oa.ResponseCreated(response_id, out_of_band):
                talk.on_response_created(response_id, out_of_band)
                return []
            case oa.ResponseDone(response_id, out_of_band):
                if out_of_band:
                    return talk.on_out_of_band_done(response_id)
                return talk.on_response_done(response_id) + self._maybe_hang_up()
            case oa.SpeechStarted(caller_item):
                self.journal.caller_spoke = True
                return talk.interrupt(now, service_cancels=talk.spec.turn_detection.interrupt_response,
                                      caller_item=caller_item)
            case oa.SpeechStopped():
                self.journal.speech_stopped(now)
                return []
            case oa.FunctionCall() | oa.McpCall():
                return talk.on_tool_event(event, now)
            case oa.AgentTranscript(item_id, response_id, transcript):
                # Before or after a barge-in on its item, the journal matches the two (core/journal.py).
                muted = talk.audio.is_muted(item_id, response_id)
                self.journal.agent_said(item_id, transcript, now, interrupted=muted, playout=talk.playout)
                return []
            case oa.CallerTranscript(transcript, caller_item, failed):
                self.journal.caller_said(transcript, now, caller_item, failed)
                return []
            case oa.SessionCreated():
                return [Log("debug", "OpenAI session created")]
            case oa.SessionUpdated():
                return self._on_session_updated()
            case oa.ServiceError():
                return self._on_error(event)
            case oa.Unknown():
                return []
            case _:
                assert_never(event)

    def _on_audio_delta(self, item_id: str, response_id: str | None, delta: str | None, now: float) -> list[Action]:
        talk = self.talk
        if delta is None or not talk.stream_sid:
            return []
        if talk.audio.is_muted(item_id, response_id):
            self.journal.muted_audio(item_id, delta)  # generated, never played: the record says so
            return []
        self.journal.agent_frame(now)
        return talk.audio.frames(talk.stream_sid, item_id, delta, now)

    def _on_session_updated(self) -> list[Action]:
        if self.phase is not Phase.CONFIGURING:
            return []
        self.life.move(Phase.LIVE)
        actions: list[Action] = [Log("info", "OpenAI session accepted (session.updated)", {"shape": self.dialect.shape})]
        # Audio the caller sent while we were configuring goes first, in order.
        actions.extend(_append(p) for p in self._pending)
        self._pending.clear()
        resume = self.recovery.take_resume()
        if resume is not None:  # a replacement session: context, no second greeting
            actions.insert(1, ToOpenAI(json_text(faults.context_item(resume.summary))))
            if resume.lost_turn:  # before the held audio: speech in it barges in as usual
                actions[2:2] = self.talk.request_response()
        elif self.greeting:
            # Greet with a user item + response.create, on session.updated only (never
            # session.created: the session is not configured yet).
            actions.append(ToOpenAI(json_text(sess.user_message(self.greeting))))
            actions.extend(self.talk.request_response())
        return actions

    def _on_error(self, error: oa.ServiceError) -> list[Action]:
        code = error.name
        fields: dict[str, object] = {"code": code, "param": error.param, "openai_message": error.message}
        if code == "response_cancel_not_active" and self.talk.gate.cancel_crossed():
            self.journal.cancel_crossed()
            return [Log("info", "a response.cancel crossed that response's own response.done: nothing to cancel, "
                                "as expected", fields)]
        self.journal.openai_error(code)
        if code == "session_expired":
            self.recovery.expired = True  # the close that follows renews the session
            return [Log("info", "OpenAI session reached its time cap; a new one follows", fields)]
        if self.phase is Phase.CONFIGURING:
            hint = self.dialect.hint(error.code, error.param)
            if self.record.reconnects:  # the replacement session failed: the caller is mid-call
                return [Log("error", hint, fields), *self.on_reconnect_failed(f"the new OpenAI session was rejected: {hint}")]
            return [Log("error", hint, fields), EndCall(EndReason.OPENAI_SESSION_REJECTED, hint)]
        if code == "conversation_already_has_active_response":
            self.talk.gate.on_already_active(error.event_id)  # raced the VAD's own: resend after it
        return [Log("warning", f"OpenAI error {code}: {error.message or ''}", fields)]

    # ---- what the shell reports: tools, timers, the mode's levers ----------------------------

    def on_tool_result(self, call_id: str, output: str, now: float, error: str | None = None) -> list[Action]:
        """A tool finished (or failed, or timed out): hand the output to the model, then respond."""
        if self.phase is Phase.ENDED:
            return []
        return self.talk.on_tool_result(call_id, output, now, error)

    def request_hangup(self) -> list[Action]:
        """end_call: hang up after the agent's next reply has been heard (by mark)."""
        return self.talk.request_hangup()

    def _maybe_hang_up(self) -> list[Action]:
        return [] if self.phase is Phase.ENDED else self.talk.maybe_hang_up()

    def on_timer(self, key: TimerKey, now: float) -> list[Action]:
        if self.phase is Phase.ENDED:
            return []
        match key:
            case Deadline.MAX_CALL_LENGTH:
                return [EndCall(EndReason.MAX_CALL_LENGTH, f"the call reached LLC_MAX_CALL_S={self.max_call_s:g} s")]
            case Deadline.APOLOGY_DONE:
                return list(self.life.apology_over())
            case Deadline.PRIMING_GRACE:
                return self.talk.priming_grace()
            case Deadline.HANGUP_GRACE:
                return self.talk.hangup_grace()
            case ToolFiller(call_id):
                return self.talk.filler(call_id)
            case _:
                assert_never(key)

    def on_levers(self, levers: list[Lever], now: float) -> list[Action]:
        """What the call's mode asks for (a key press, a spoken menu choice), as actions."""
        return self.talk.on_levers(levers, now)

    # ---- the end --------------------------------------------------------------------------

    def end(self, reason: EndReason, detail: str = "", twilio_seen: float | None = None) -> EndReason:
        """The call is over: the first ending says why (``Lifecycle.end``), later ones change
        nothing. Returns the reason the record keeps. ``twilio_seen``: when Twilio's last message
        arrived; what had played by then is what the caller heard."""
        ended = self.life.end(reason, detail)
        if ended is None:
            return self.record.end_reason or reason
        self.journal.ended(ended.reason, ended.detail, self.playout, twilio_seen)
        # e.g. a transfer: Twilio ends the stream mid-tool.
        self.talk.tools.abandon("the call ended while the tool ran", forget=False)
        return ended.reason

    # ---- a lost OpenAI session ------------------------------------------------------------

    def on_openai_closed(self, code: int | None, reason: str) -> list[Action]:
        """OpenAI's socket is gone: renew after the 60-minute cap, reconnect once after a drop,
        else apologise and hang up."""
        if self.phase is not Phase.CONFIGURING and self.phase is not Phase.LIVE:
            return []  # no session was open (or the call is on its way out): nothing was lost
        detail = f"OpenAI closed the session (code {code}) {reason}".strip()
        if self.talk.hanging_up:
            return [EndCall(EndReason.OPENAI_CLOSED, detail)]  # the goodbye is under way: nothing to rescue
        step = self.recovery.next_session(code, reason)
        if step is None:
            return self.on_reconnect_failed(f"{detail}; no reconnect left")
        why, note = step
        # Forget the lost session's in-flight state; the next one gets the same config + a summary.
        self.life.move(Phase.CONNECTING)  # caller audio is held (bounded) until the new session is live
        self.talk.renew(_LOST)
        self.journal.session_renewed(note)
        self.recovery.resume = faults.resume(self.record.transcript, lost_turn=self.journal.owes_reply())
        return [Log("warning", f"OpenAI session lost ({note}): opening a new one with the conversation so far",
                    {"why": why}), ReconnectOpenAI(why)]

    def on_reconnect_failed(self, detail: str, reason: EndReason = EndReason.OPENAI_LOST) -> list[Action]:
        """No usable OpenAI session: the caller hears the apology clip, then the call ends.

        Also at call start (``reason`` OPENAI_UNREACHABLE): one bounded wait, then the apology,
        never dead air followed by a silent hang-up.
        """
        if self.life.ending:
            return []
        ending = self.life.apologise(reason, detail)
        self.talk.tools.abandon(_LOST, forget=True)  # their results have no session to go to
        log = Log("error", "OpenAI is gone for good: apologising and hanging up", {"detail": detail})
        sid = self.talk.stream_sid
        if not sid:
            return [log, ending]
        self.playout.on_clear()  # the marks the clear returns confirm nothing
        return [log, ToTwilio(tw.clear(sid)), PlayApology(faults.APOLOGY_MARK),
                Timer(Deadline.APOLOGY_DONE, self.apology_s + faults.APOLOGY_GRACE_S)]
