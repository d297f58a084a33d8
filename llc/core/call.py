"""The call state machine: Twilio frames and OpenAI events in, actions out. No I/O, no Trio.

Like h11: the shell feeds every input with the current monotonic time and executes the
returned actions in order. Everything a call decides lives here or in the modules it
composes, so it is tested with plain data.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import orjson

from llc.core import faults
from llc.core import session as sess
from llc.core.actions import (Action, ConnectOpenAI, EndCall, Log, PlayApology, ReconnectOpenAI, RunTool, Timer,
                              ToOpenAI, ToTwilio, json_text)
from llc.core.agent_audio import AgentAudio
from llc.core.dialect import Dialect, canonical_event
from llc.core.journal import Journal
from llc.core.levers import Interrupt, KeyHandler, Lever, RunLocalTool, SwitchSession, TellModel
from llc.core.playout import Playout
from llc.core.recovery import SessionRecovery
from llc.core.record import CallRecord
from llc.core.toolcalls import ToolCalls
from llc.core.turns import ResponseGate, SwitchState, TurnPolicy, first_turn_spec, later_spec, switch_update
from llc.core import frames as tw

# Caller audio that arrives before OpenAI accepted the session is held, not dropped: the
# callee's "hello" often comes while the session is still being configured. 5 s is ample.
MAX_PENDING_FRAMES = 250
# More than this many unusable frames in one call is a broken peer, not noise.
MAX_BAD_FRAMES = 50
# A claimed warm session's priming reply still running holds the greeting this long at most.
PRIMING_GRACE_S = 0.5


def _out_of_band(response: dict[str, Any]) -> bool:
    """A response outside the conversation (``conversation: "none"``; the service says
    ``conversation_id: null``): never one of ours, so it neither holds nor frees the gate."""
    return "conversation_id" in response and response["conversation_id"] is None


def _append(payload: str) -> ToOpenAI:
    # orjson escapes the string but never changes base64: the bytes reach OpenAI untouched.
    return ToOpenAI(json_text({"type": "input_audio_buffer.append", "audio": payload}))


class CallCore:
    """One call's decisions. ``phase`` walks: waiting → connecting → configuring → live → ended.

    Built from parts: the playout clock, the response gate, the tool calls in flight and the
    session recovery (handed in, or a default one); the call's mode arrives with its plan.
    """

    def __init__(
        self,
        dialect: Dialect,
        spec: sess.SessionSpec,
        *,
        greeting: str | None = None,
        policy: TurnPolicy | None = None,
        tool_schemas: dict[str, dict[str, Any]] | None = None,
        now: float = 0.0,
        record: CallRecord | None = None,
        max_call_s: float = 0.0,
        apology_s: float = 0.0,
        recovery: SessionRecovery | None = None,
    ) -> None:
        self.dialect = dialect
        self.policy = policy or TurnPolicy()
        self.tool_schemas = tool_schemas or {}
        # The first turn runs eager and lean (the seed's levers); the switch widens both once.
        self.spec = first_turn_spec(spec, self.policy, self.tool_schemas)
        self.greeting = greeting
        self.t0 = now
        self.phase = "waiting"
        self.record = record or CallRecord()
        self.stream_sid = ""
        self.params: dict[str, str] = {}
        self.audio = AgentAudio(Playout(self.policy.mark_every_ms))
        self.gate = ResponseGate()
        self.switch = SwitchState(self.policy)
        self._pending: deque[str] = deque(maxlen=MAX_PENDING_FRAMES)
        self._session_created = False
        self._priming: str | None = None  # a warm session's priming reply still running
        self.journal = Journal(self.record, now)
        self.tools = ToolCalls(self.record)
        self._hangup_after: int | None = None  # responses done when end_call asked to hang up
        self.max_call_s = max_call_s  # 0: no limit
        self.apology_s = apology_s  # length of the apology clip the shell plays
        self.recovery = recovery or SessionRecovery()
        self.mode: KeyHandler | None = None  # the scenario's key presses (the IVR), from the plan

    @property
    def playout(self) -> Playout:
        """What the caller has heard of the agent, by marks."""
        return self.audio.playout

    def on_plan(self, spec: sess.SessionSpec, policy: TurnPolicy, greeting: str | None,
                mode: KeyHandler | None = None) -> None:
        """The call's plan is known (its scenario, before the session opens): take it on."""
        self.policy, self.switch, self.greeting, self.mode = policy, SwitchState(policy), greeting, mode
        self.spec = first_turn_spec(spec, policy, self.tool_schemas)
        self.audio = self.audio.renewed(policy.mark_every_ms)  # no agent audio has gone out yet

    # ---- Twilio leg -------------------------------------------------------------------

    def on_twilio_text(self, text: str | bytes, now: float) -> list[Action]:
        try:
            frame = tw.load(text)
            payload = tw.inbound_payload(frame)
            if payload is not None and self.phase == "live" and self.stream_sid:
                # Nearly every frame: straight through, no event object (what _on_media does).
                self.record.frames_from_twilio += 1
                self.journal.recent_caller.append(payload)  # as _on_media: the VAD-wait estimate reads it
                return [_append(payload)]
            event = tw.from_json(frame)
        except tw.FrameError as exc:
            return self.on_bad_frame(str(exc))
        return self.on_twilio(event, now)

    def on_bad_frame(self, reason: str) -> list[Action]:
        self.record.bad_frames += 1
        actions: list[Action] = [Log("warning", f"ignored a bad Twilio frame: {reason}", {"bad_frames": self.record.bad_frames})]
        if self.record.bad_frames > MAX_BAD_FRAMES:
            actions.append(EndCall("bad_frames", f"more than {MAX_BAD_FRAMES} unusable frames from Twilio"))
        return actions

    def on_twilio(self, event: tw.TwilioEvent, now: float) -> list[Action]:
        if isinstance(event, tw.Media):
            return self._on_media(event)
        if isinstance(event, tw.Start):
            return self._on_start(event)
        if isinstance(event, tw.Stop):
            return [EndCall("caller_hangup")]
        if isinstance(event, tw.Mark):
            if self.recovery.ending is not None and event.name == faults.APOLOGY_MARK:
                return [EndCall(*self.recovery.ending)]
            self.playout.on_mark(event.name, now)
            return self._maybe_hang_up()
        if isinstance(event, tw.Dtmf):
            self.journal.key_pressed(event.digit, now)
            actions: list[Action] = [Log("info", "caller pressed a key", {"digit": event.digit})]
            if self.mode is not None and self.phase == "live":
                actions += self.on_levers(self.mode.on_dtmf(event.digit, now), now)
            return actions
        return []  # Connected: nothing to do until start

    def _on_media(self, event: tw.Media) -> list[Action]:
        if not self.stream_sid:
            return self.on_bad_frame("media before start")
        self.record.frames_from_twilio += 1
        self.journal.recent_caller.append(event.payload)  # a reference: looked at once per turn
        if self.phase == "live":
            # The payload string goes through untouched: no decode, no resample, no gain.
            return [_append(event.payload)]
        self._pending.append(event.payload)
        return []

    def _on_start(self, event: tw.Start) -> list[Action]:
        if self.stream_sid:
            return [Log("warning", "second start frame on one stream ignored", {"other_stream_sid": event.stream_sid})]
        self.stream_sid = event.stream_sid
        self.params = dict(event.custom_parameters)
        rec = self.record
        rec.stream_sid, rec.call_sid = event.stream_sid, event.call_sid
        rec.direction = self.params.get("direction", rec.direction)
        rec.scenario = self.params.get("scenario", rec.scenario)
        self.phase = "connecting"
        if self.max_call_s > 0:
            return [ConnectOpenAI(), Timer("max_call_length", self.max_call_s)]
        return [ConnectOpenAI()]

    # ---- OpenAI leg -------------------------------------------------------------------

    def on_openai_open(self, already_configured: bool = False, priming: str | None = None) -> list[Action]:
        """The OpenAI socket is open: configure the session before anything else.

        ``already_configured``: a claimed warm session (prewarm / pre-accept) was configured
        and primed before the call; sending session.update again would only add latency.
        ``priming``: its priming response is still running (its id, "?" before the service named
        it). Creates wait for it (the service may allow one response at a time), for at most
        ``PRIMING_GRACE_S``; then it is cancelled, so a slow priming never silences the greeting.
        """
        self.phase = "configuring"
        if already_configured:
            if priming:
                self._priming = priming
                self.gate.hold(priming)
            actions = self._on_session_updated({}, 0.0)
            if priming:
                actions.append(Timer("priming_grace", PRIMING_GRACE_S))
            return actions
        return [ToOpenAI(json_text(self.dialect.session_update(self._current_spec())))]

    def _current_spec(self) -> sess.SessionSpec:
        """The session as it stands now: after the first-turn switch, later eagerness and all tools."""
        return later_spec(self.spec, self.policy, self.tool_schemas) if self.switch.switched else self.spec

    def on_openai_text(self, text: str | bytes, now: float) -> list[Action]:
        try:
            event = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [Log("warning", "OpenAI sent a frame that is not JSON; ignored")]
        if type(event) is dict and event.get("type") in _AUDIO_DELTAS:
            return self._on_audio_delta(event, now)  # nearly every event: straight to its handler
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return [Log("warning", "OpenAI sent an event without a type; ignored")]
        return self.on_openai(event, now)

    def on_openai(self, event: dict[str, Any], now: float) -> list[Action]:
        kind = canonical_event(event["type"])
        if kind == "response.output_audio.delta":
            return self._on_audio_delta(event, now)
        handler = _HANDLERS.get(kind)
        return handler(self, event, now) if handler else []

    def _on_audio_delta(self, event: dict[str, Any], now: float) -> list[Action]:
        delta = event.get("delta")
        if not isinstance(delta, str) or not self.stream_sid:
            return []
        item_id = str(event.get("item_id") or event.get("response_id") or "?")
        if self.audio.is_muted(item_id, event.get("response_id")):
            self.journal.muted_audio(item_id, delta)  # generated, never played: the record says so
            return []
        if self.journal.awaiting_first_audio is not None:
            self.journal.first_audio(now)
        self.record.frames_to_twilio += 1
        return self.audio.frames(self.stream_sid, item_id, delta, now)

    def _on_audio_done(self, event: dict[str, Any], now: float) -> list[Action]:
        return self.audio.tail(self.stream_sid)

    def _on_session_created(self, event: dict[str, Any], now: float) -> list[Action]:
        self._session_created = True
        return [Log("debug", "OpenAI session created")]

    def _on_session_updated(self, event: dict[str, Any], now: float) -> list[Action]:
        if self.phase != "configuring":
            return []
        self.phase = "live"
        actions: list[Action] = [Log("info", "OpenAI session accepted (session.updated)", {"shape": self.dialect.shape})]
        # Audio the caller sent while we were configuring goes first, in order.
        actions.extend(_append(p) for p in self._pending)
        self._pending.clear()
        resume = self.recovery.take_resume()
        if resume is not None:  # a replacement session: context, no second greeting
            actions.insert(1, ToOpenAI(json_text(faults.context_item(resume))))
        elif self.greeting:
            # The seed: greet with a user item + response.create, on session.updated only.
            actions.append(ToOpenAI(json_text(sess.user_message(self.greeting))))
            actions.extend(self.request_response())
        return actions

    def _on_error(self, event: dict[str, Any], now: float) -> list[Action]:
        error = event.get("error") if isinstance(event.get("error"), dict) else {}
        code = str(error.get("code") or error.get("type") or "unknown")
        errors = self.record.openai_errors
        errors[code] = errors.get(code, 0) + 1
        fields = {"code": code, "param": error.get("param"), "openai_message": error.get("message")}
        if code == "session_expired":
            self.recovery.expired = True  # the close that follows renews the session
            return [Log("info", "OpenAI session reached its time cap; a new one follows", fields)]
        if self.phase == "configuring":
            hint = self.dialect.hint(error)
            if self.record.reconnects:  # the replacement session failed: the caller is mid-call
                return [Log("error", hint, fields)] + self.on_reconnect_failed(f"the new OpenAI session was rejected: {hint}")
            return [Log("error", hint, fields), EndCall("openai_session_rejected", hint)]
        if code == "conversation_already_has_active_response":
            self.gate.on_already_active(error.get("event_id"))  # raced the VAD's own: resend after it
        return [Log("warning", f"OpenAI error {code}: {error.get('message', '')}", fields)]

    # ---- turns, barge-in, tools ---------------------------------------------------------

    def _send_gated(self, events: list[dict[str, Any]]) -> list[Action]:
        return [ToOpenAI(json_text(e)) for e in events]

    def request_response(self, create: dict[str, Any] | None = None) -> list[Action]:
        """Ask for a response; it waits for ``response.done`` if one is active."""
        return self._send_gated(self.gate.request(create or {"type": "response.create"}))

    def _on_response_created(self, event: dict[str, Any], now: float) -> list[Action]:
        response = event.get("response") if isinstance(event.get("response"), dict) else {}
        if not _out_of_band(response):
            self.gate.on_created(str(response.get("id") or ""))
        return []

    def _on_response_done(self, event: dict[str, Any], now: float) -> list[Action]:
        response = event.get("response") if isinstance(event.get("response"), dict) else {}
        if _out_of_band(response):
            # e.g. a warm session's priming, still in flight when the call claimed it: the
            # creates it held go now.
            self._priming = None
            return self._send_gated(self.gate.release(str(response.get("id") or "?")))
        actions = self._on_audio_done(event, now)  # no audio.done came (e.g. cancelled): mark the tail
        actions += self._send_gated(self.gate.on_done(str(response.get("id") or "")))
        if self.switch.due(self.gate.done_count):
            # One session.update, once: calmer VAD and the full tool set for later turns.
            update = switch_update(self.dialect, self.spec, self.policy, self.tool_schemas)
            actions.insert(0, ToOpenAI(json_text(update)))
            actions.append(Log("info", "first turn done: switched eagerness and tool set",
                               {"eagerness": self.policy.later_eagerness, "tools": list(self.policy.full_tools)}))
        return actions + self._maybe_hang_up()

    def _on_speech_started(self, event: dict[str, Any], now: float) -> list[Action]:
        return self._interrupt(now, service_cancels=self.spec.turn_detection.interrupt_response)

    def _interrupt(self, now: float, service_cancels: bool) -> list[Action]:
        """Barge-in: clear, cancel, truncate. ``service_cancels``: the service already cancelled the
        response itself (``interrupt_response`` on detected speech); a key press it never sees."""
        result = self.audio.barge_in(self.gate, service_cancels, self.stream_sid, now)
        if not result.interrupted:
            return []
        self.journal.barge_in(now, result.truncate, self.playout)
        return result.actions

    def _on_function_call(self, event: dict[str, Any], now: float) -> list[Action]:
        call_id, name = str(event.get("call_id") or ""), str(event.get("name") or "")
        if not call_id or call_id in self.tools:
            return []
        arguments = event.get("arguments") if isinstance(event.get("arguments"), str) else "{}"
        self.tools.start(call_id, name, arguments, now - self.t0)
        actions: list[Action] = [RunTool(call_id, name, arguments), Log("info", "tool call", {"tool": name, "call_id": call_id})]
        if self.policy.tool_filler_after_ms > 0:
            actions.append(Timer(f"filler:{call_id}", self.policy.tool_filler_after_ms / 1000))
        return actions

    def on_tool_result(self, call_id: str, output: str, now: float, error: str | None = None) -> list[Action]:
        """A tool finished (or failed, or timed out): hand the output to the model, then respond."""
        if self.phase == "ended":
            return []
        finished = self.tools.finish(call_id, output, error, now - self.t0)
        if finished is None:
            return []
        rec, local = finished
        if local:
            return [Log("warning" if error else "info", f"local tool {rec.name} finished", {"output": output})]
        item = {"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": call_id, "output": output}}
        actions: list[Action] = [ToOpenAI(json_text(item))]
        if error:
            actions.append(Log("warning", f"tool {rec.name} failed; the model was told and the call goes on", {"error": error}))
        return actions + self.request_response()

    def request_hangup(self) -> list[Action]:
        """end_call: hang up after the agent's next reply has been heard (by mark)."""
        self._hangup_after = self.gate.done_count
        return [Timer("hangup_grace", self.policy.hangup_grace_s)]

    def _maybe_hang_up(self) -> list[Action]:
        if self._hangup_after is None or self.phase == "ended":
            return []
        goodbye_done = self.gate.done_count > self._hangup_after and not self.gate.busy and not self.gate.queued
        if goodbye_done and not self.playout.speaking and not self.tools:
            return [EndCall("agent_hangup", "end_call: goodbye played")]
        return []

    def on_timer(self, key: str, now: float) -> list[Action]:
        if self.phase == "ended":
            return []
        if key == "max_call_length":
            return [EndCall("max_call_length", f"the call reached LLC_MAX_CALL_S={self.max_call_s:g} s")]
        if key == "apology_done" and self.recovery.ending is not None:
            return [EndCall(*self.recovery.ending)]
        if key == "priming_grace" and self._priming is not None:
            priming, self._priming = self._priming, None
            if priming == "?" or self.gate.active_id != priming:
                return self._send_gated(self.gate.release(priming))  # never named: stop waiting
            # Still running: cancel it by id; its response.done (cancelled) releases the gate.
            return [ToOpenAI(json_text({"type": "response.cancel", "response_id": priming})),
                    Log("info", f"warm session's priming reply still running after {PRIMING_GRACE_S:g} s: cancelled")]
        if key == "hangup_grace" and self._hangup_after is not None:
            return [EndCall("agent_hangup", f"end_call: goodbye not confirmed within {self.policy.hangup_grace_s:g} s")]
        if key.startswith("filler:") and key[7:] in self.tools:
            if self.gate.busy or self.playout.speaking:
                return []  # the agent is already talking: no filler needed
            filler = {"type": "response.create", "response": {"instructions": self.policy.filler_instructions}}
            return self.request_response(filler)
        return []

    def _on_speech_stopped(self, event: dict[str, Any], now: float) -> list[Action]:
        self.journal.speech_stopped(now)
        return []

    def _on_agent_transcript(self, event: dict[str, Any], now: float) -> list[Action]:
        # Before or after a barge-in on its item, the journal matches the two (core/journal.py).
        muted = self.audio.is_muted(str(event.get("item_id") or ""), event.get("response_id"))
        self.journal.agent_said(event, now, interrupted=muted, playout=self.playout)
        return []

    def _on_caller_transcript(self, event: dict[str, Any], now: float) -> list[Action]:
        self.journal.caller_said(event, now)
        return []

    def end(self, twilio_seen: float | None = None) -> None:
        """The call is over. ``twilio_seen``: when Twilio's last message arrived; what had
        played by then is what the caller heard."""
        self.phase = "ended"
        self.journal.finish(self.playout, twilio_seen)
        # e.g. a transfer: Twilio ends the stream mid-tool.
        self.tools.abandon("the call ended while the tool ran", forget=False)

    # ---- a lost OpenAI session ------------------------------------------------------------

    def on_openai_closed(self, code: int | None, reason: str) -> list[Action]:
        """OpenAI's socket is gone: renew after the 60-minute cap, reconnect once after a drop,
        else apologise and hang up."""
        if self.phase == "ended" or self.recovery.ending is not None:
            return []
        detail = f"OpenAI closed the session (code {code}) {reason}".strip()
        if self._hangup_after is not None:
            return [EndCall("openai_closed", detail)]  # the goodbye is under way: nothing to rescue
        step = self.recovery.next_session(code, reason)
        if step is None:
            return self.on_reconnect_failed(f"{detail}; no reconnect left")
        why, note = step
        # Forget the lost session's in-flight state; the next one gets the same config + a summary.
        self.phase = "connecting"  # caller audio is held (bounded) until the new session is live
        self._session_created = False
        self.gate = ResponseGate()
        self.audio = self.audio.renewed(self.policy.mark_every_ms)
        self.journal.session_renewed()
        self.tools.abandon(_LOST, forget=True)
        self.recovery.resume = faults.summary(self.record.transcript)
        self.record.reconnects.append(note)
        return [Log("warning", f"OpenAI session lost ({note}): opening a new one with the conversation so far",
                    {"why": why}), ReconnectOpenAI(why)]

    def on_reconnect_failed(self, detail: str, reason: str = "openai_lost") -> list[Action]:
        """No usable OpenAI session: the caller hears the apology clip, then the call ends.

        Also at call start (``reason="openai_unreachable"``): one bounded wait, then the apology,
        never dead air followed by a silent hang-up.
        """
        if self.phase == "ended" or self.recovery.ending is not None:
            return []
        ending = self.recovery.ending = (reason, detail)
        self.phase = "apology"
        self.tools.abandon(_LOST, forget=True)  # their results have no session to go to
        log = Log("error", "OpenAI is gone for good: apologising and hanging up", {"detail": detail})
        if not self.stream_sid:
            return [log, EndCall(*ending)]
        self.playout.on_clear()  # the marks the clear returns confirm nothing
        return [log, ToTwilio(tw.clear(self.stream_sid)), PlayApology(faults.APOLOGY_MARK),
                Timer("apology_done", self.apology_s + faults.APOLOGY_GRACE_S)]

    # ---- the mode's levers (a key press, a spoken menu choice) ------------------------------

    def on_levers(self, levers: list[Lever], now: float) -> list[Action]:
        """What the call's mode asks for, in order, as actions."""
        actions: list[Action] = []
        for lever in levers:
            if isinstance(lever, Interrupt):
                actions += self._interrupt(now, service_cancels=False)
            elif isinstance(lever, RunLocalTool):
                call_id = self.tools.next_local_id()
                self.tools.start(call_id, lever.name, lever.arguments, now - self.t0, local=True)
                actions.append(RunTool(call_id, lever.name, lever.arguments))
            elif isinstance(lever, TellModel):
                actions += [ToOpenAI(json_text(sess.user_message(lever.text)))] + self.request_response()
            elif isinstance(lever, SwitchSession):
                actions += self._switch_session(lever)
        return actions

    def _switch_session(self, lever: SwitchSession) -> list[Action]:
        self.policy, self.switch = lever.policy, SwitchState(lever.policy, switched=True)
        self.spec = later_spec(lever.spec, lever.policy, self.tool_schemas)
        # The service refuses a voice change once the agent has spoken: the voice stays.
        update = self.dialect.without_voice(self.dialect.session_update(self.spec))
        return [ToOpenAI(json_text(update)), Log("info", "switched scenario", {"scenario": lever.scenario})]


# Both shapes' names of the audio delta (a tuple: an unhashable "type" must not raise).
_AUDIO_DELTAS = ("response.output_audio.delta", "response.audio.delta")
_LOST = "the OpenAI session was lost before the tool finished"


_HANDLERS = {
    "response.created": CallCore._on_response_created,
    "response.done": CallCore._on_response_done,
    "response.output_audio.done": CallCore._on_audio_done,
    "input_audio_buffer.speech_started": CallCore._on_speech_started,
    "response.function_call_arguments.done": CallCore._on_function_call,
    "session.created": CallCore._on_session_created,
    "session.updated": CallCore._on_session_updated,
    "error": CallCore._on_error,
    "input_audio_buffer.speech_stopped": CallCore._on_speech_stopped,
    "response.output_audio_transcript.done": CallCore._on_agent_transcript,
    "conversation.item.input_audio_transcription.completed": CallCore._on_caller_transcript,
}
