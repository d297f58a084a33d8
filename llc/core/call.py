"""The call state machine: Twilio frames and OpenAI events in, actions out. No I/O, no Trio.

Like h11: the shell feeds every input with the current monotonic time and executes the
returned actions in order. Everything a call decides lives here or in the modules it
composes, so it is tested with plain data.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import orjson

from llc.core import session as sess
from llc.core.actions import Action, ConnectOpenAI, EndCall, Log, ToOpenAI, ToTwilio
from llc.core.record import CallRecord, TranscriptLine, TurnLatency
from llc.twilio import frames as tw

# Caller audio that arrives before OpenAI accepted the session is held, not dropped: the
# callee's "hello" often comes while the session is still being configured. 5 s is ample.
MAX_PENDING_FRAMES = 250
# More than this many unusable frames in one call is a broken peer, not noise.
MAX_BAD_FRAMES = 50


def _dump(event: dict[str, Any]) -> str:
    return orjson.dumps(event).decode()


def _append(payload: str) -> ToOpenAI:
    # orjson escapes the string but never changes base64: the bytes reach OpenAI untouched.
    return ToOpenAI(_dump({"type": "input_audio_buffer.append", "audio": payload}))


class CallCore:
    """One call's decisions. ``phase`` walks: waiting → connecting → configuring → live → ended."""

    def __init__(
        self,
        shape: sess.Shape,
        spec: sess.SessionSpec,
        *,
        greeting: str | None = None,
        now: float = 0.0,
        record: CallRecord | None = None,
    ) -> None:
        self.shape = shape
        self.spec = spec
        self.greeting = greeting
        self.t0 = now
        self.phase = "waiting"
        self.record = record or CallRecord()
        self.stream_sid = ""
        self.params: dict[str, str] = {}
        self._pending: deque[str] = deque(maxlen=MAX_PENDING_FRAMES)
        self._session_created = False
        self._awaiting_first_audio: TurnLatency | None = None

    # ---- Twilio leg -------------------------------------------------------------------

    def on_twilio_text(self, text: str | bytes, now: float) -> list[Action]:
        try:
            event = tw.parse(text)
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
            return []
        if isinstance(event, tw.Dtmf):
            return [Log("info", "caller pressed a key", {"digit": event.digit})]
        return []  # Connected: nothing to do until start

    def _on_media(self, event: tw.Media) -> list[Action]:
        if not self.stream_sid:
            return self.on_bad_frame("media before start")
        self.record.frames_from_twilio += 1
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
        return [ConnectOpenAI()]

    # ---- OpenAI leg -------------------------------------------------------------------

    def on_openai_open(self, already_configured: bool = False) -> list[Action]:
        """The OpenAI socket is open: configure the session before anything else.

        ``already_configured``: a claimed warm session (prewarm / pre-accept) was configured
        and primed before the call; sending session.update again would only add latency.
        """
        self.phase = "configuring"
        if already_configured:
            return self._on_session_updated({}, 0.0)
        return [ToOpenAI(_dump(sess.session_update(self.shape, self.spec)))]

    def on_openai_text(self, text: str | bytes, now: float) -> list[Action]:
        try:
            event = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [Log("warning", "OpenAI sent a frame that is not JSON; ignored")]
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return [Log("warning", "OpenAI sent an event without a type; ignored")]
        return self.on_openai(event, now)

    def on_openai(self, event: dict[str, Any], now: float) -> list[Action]:
        kind = sess.canonical_event(event["type"])
        if kind == "response.output_audio.delta":
            return self._on_audio_delta(event, now)
        handler = _HANDLERS.get(kind)
        return handler(self, event, now) if handler else []

    def on_openai_closed(self, code: int | None, reason: str) -> list[Action]:
        if self.phase == "ended":
            return []
        return [EndCall("openai_closed", f"OpenAI closed the session (code {code}) {reason}".strip())]

    def _on_audio_delta(self, event: dict[str, Any], now: float) -> list[Action]:
        delta = event.get("delta")
        if not isinstance(delta, str) or not self.stream_sid:
            return []
        turn = self._awaiting_first_audio
        if turn is not None:
            turn.first_audio_at = now - self.t0
            self._awaiting_first_audio = None
        self.record.frames_to_twilio += 1
        return [ToTwilio(tw.media(self.stream_sid, delta))]

    def _on_session_created(self, event: dict[str, Any], now: float) -> list[Action]:
        self._session_created = True
        return [Log("debug", "OpenAI session created")]

    def _on_session_updated(self, event: dict[str, Any], now: float) -> list[Action]:
        if self.phase != "configuring":
            return []
        self.phase = "live"
        actions: list[Action] = [Log("info", "OpenAI session accepted (session.updated)", {"shape": self.shape})]
        # Audio the caller sent while we were configuring goes first, in order.
        actions.extend(_append(p) for p in self._pending)
        self._pending.clear()
        if self.greeting:
            # The seed: greet with a user item + response.create, on session.updated only.
            actions.append(ToOpenAI(_dump(sess.user_message(self.greeting))))
            actions.append(ToOpenAI(_dump({"type": "response.create"})))
        return actions

    def _on_error(self, event: dict[str, Any], now: float) -> list[Action]:
        error = event.get("error") if isinstance(event.get("error"), dict) else {}
        code = str(error.get("code") or error.get("type") or "unknown")
        errors = self.record.openai_errors
        errors[code] = errors.get(code, 0) + 1
        fields = {"code": code, "param": error.get("param"), "openai_message": error.get("message")}
        if self.phase == "configuring":
            hint = sess.shape_hint(self.shape, error)
            return [Log("error", hint, fields), EndCall("openai_session_rejected", hint)]
        return [Log("warning", f"OpenAI error {code}: {error.get('message', '')}", fields)]

    def _on_speech_stopped(self, event: dict[str, Any], now: float) -> list[Action]:
        turn = TurnLatency(speech_stopped_at=now - self.t0)
        self.record.turns.append(turn)
        self._awaiting_first_audio = turn
        return []

    def _on_agent_transcript(self, event: dict[str, Any], now: float) -> list[Action]:
        text = event.get("transcript")
        if isinstance(text, str) and text:
            self.record.transcript.append(TranscriptLine("agent", text, round(now - self.t0, 3)))
        return []

    def _on_caller_transcript(self, event: dict[str, Any], now: float) -> list[Action]:
        text = event.get("transcript")
        if isinstance(text, str) and text.strip():
            self.record.transcript.append(TranscriptLine("caller", text.strip(), round(now - self.t0, 3)))
        return []

    def end(self) -> None:
        self.phase = "ended"


_HANDLERS = {
    "session.created": CallCore._on_session_created,
    "session.updated": CallCore._on_session_updated,
    "error": CallCore._on_error,
    "input_audio_buffer.speech_stopped": CallCore._on_speech_stopped,
    "response.output_audio_transcript.done": CallCore._on_agent_transcript,
    "conversation.item.input_audio_transcription.completed": CallCore._on_caller_transcript,
}
