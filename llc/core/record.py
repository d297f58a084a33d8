"""What is remembered about a call. Pure data; ``llc.store`` persists it when the call ends."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class EndReason(StrEnum):
    """Why a call ended: the record's ``end_reason`` and the ``outcome`` label of ``llc_calls``."""

    CALLER_HANGUP = "caller_hangup"  # Twilio's ``stop``: the caller (or Twilio) ended the call
    TWILIO_CLOSED = "twilio_closed"  # the media socket closed without a ``stop``
    AGENT_HANGUP = "agent_hangup"  # end_call: after the goodbye was heard (or its grace ran out)
    TRANSFERRED = "transferred"  # handed to a person (transfer_call, an IVR option); the leg then closed
    MAX_CALL_LENGTH = "max_call_length"  # LLC_MAX_CALL_S
    BAD_FRAMES = "bad_frames"  # too many unusable frames from Twilio
    STREAM_REFUSED = "stream_refused"  # no valid ticket: the stream was closed with 1008
    SERVER_DRAIN = "server_drain"  # still running when the drain's deadline came
    SERVER_DIED = "server_died"  # found open at the next start: the process was killed
    INTERNAL_ERROR = "internal_error"  # a bug ended this call (and only this call)
    OPENAI_SESSION_REJECTED = "openai_session_rejected"  # the session config was refused at start
    OPENAI_CLOSED = "openai_closed"  # OpenAI closed the session during the goodbye
    OPENAI_LOST = "openai_lost"  # the session was lost mid-call and could not be replaced
    OPENAI_UNREACHABLE = "openai_unreachable"  # no usable session at call start
    NO_START = "no_start"  # the media socket never sent ``start``
    TWILIO_SILENT = "twilio_silent"  # the media leg went quiet: a dead leg


@dataclass
class TranscriptLine:
    role: str  # "caller" | "agent"
    text: str
    at: float  # seconds since the call started
    interrupted: bool = False  # a barge-in cut this agent line short, whichever came first
    # Agent lines: the reply's audio item, the ms of audio the service generated for it and the
    # ms the caller heard (by marks). ``text`` is the whole generated text; when the line was cut,
    # ``heard_text`` estimates what was heard by cutting it in proportion to the audio heard.
    item_id: str = ""
    generated_ms: int | None = None
    heard_ms: int | None = None
    heard_text: str | None = None  # an estimate (proportional), only for an interrupted line


@dataclass
class TurnLatency:
    """Server-side view of one turn, and its voice-to-voice time: from the caller's last loud
    frame to the agent's first audio frame sent to the caller. The one definition every view
    uses (the demo, ``llc-phone calls``, the console, the metric); its parts add up to it:
    VAD wait + model + llc relay."""

    speech_stopped_at: float
    first_audio_at: float | None = None
    # The waterfall of one turn, in ms: how long the service's VAD waited after the caller's
    # speech ended (caller audio forwarded past the speech's end when speech_stopped came: an
    # estimate at real-time pacing), and what llc took to write the first audio frame to Twilio
    # after its delta arrived. The model's part is ``ms`` (speech_stopped -> first audio delta).
    vad_wait_ms: float | None = None
    relay_ms: float | None = None

    @property
    def ms(self) -> float | None:
        """speech_stopped → first agent audio sent: the model's part and llc's relay."""
        if self.first_audio_at is None:
            return None
        return round((self.first_audio_at - self.speech_stopped_at) * 1000, 1)

    @property
    def voice_to_voice_ms(self) -> float | None:
        """VAD wait + ``ms``; None when either is unknown (no reply, or no loud frame to start from)."""
        ms = self.ms
        return None if ms is None or self.vad_wait_ms is None else round(self.vad_wait_ms + ms, 1)

    def as_dict(self) -> dict[str, Any]:
        return {"speech_stopped_at": self.speech_stopped_at, "ms": self.ms, "first_audio_at": self.first_audio_at,
                "vad_wait_ms": self.vad_wait_ms, "relay_ms": self.relay_ms, "voice_to_voice_ms": self.voice_to_voice_ms}


@dataclass
class BargeInRecord:
    at: float  # seconds since the call started
    item_id: str  # the agent item cut short ("" when nothing had been played yet)
    heard_ms: int  # what the caller heard of it (marks); the item was truncated there
    deleted: bool  # nothing was heard, so the item was deleted instead
    # Did the caller's interrupting speech have words? True: its transcript did. False: it came
    # back empty, or never came (likely noise: a cough, a door, line hiss). None: cannot tell (a
    # key press, transcription off or failed, the session replaced before it came).
    words: bool | None = None
    caller_item_id: str = ""  # the caller's input item the speech became ("" for a key press)


@dataclass
class ToolCallRecord:
    call_id: str
    name: str
    arguments: str
    started_at: float
    output: str | None = None
    error: str | None = None
    ms: float | None = None


KEPT_ENTRIES = 200


def keep_newest(items: list[Any], item: Any) -> None:
    """Append ``item``, dropping the oldest entry past KEPT_ENTRIES."""
    items.append(item)
    if len(items) > KEPT_ENTRIES:
        del items[0]


@dataclass
class CallRecord:
    call_sid: str = ""
    stream_sid: str = ""
    direction: str = "inbound"
    scenario: str = "default"
    path: str = "cold"  # cold | prewarm | pre-accept
    answered_by: str = ""  # outbound with AMD: Twilio's AnsweredBy (human, machine_end_beep, ...)
    from_number: str = ""  # the caller (inbound) or our caller ID (outbound)
    to_number: str = ""  # the number called: picks the inbound scenario
    started_at: float = 0.0  # wall clock
    ended_at: float | None = None
    end_reason: EndReason | None = None  # None while the call runs
    end_detail: str = ""
    transcript: list[TranscriptLine] = field(default_factory=list)
    turns: list[TurnLatency] = field(default_factory=list)
    barge_ins: list[BargeInRecord] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    openai_errors: dict[str, int] = field(default_factory=dict)
    # A barge-in's response.cancel that crossed the response's own response.done on the wire
    # (the service then answers response_cancel_not_active): expected, counted apart from errors.
    cancels_crossed: int = 0
    barge_ins_without_words: int = 0  # barge-ins whose ``words`` is False: likely noise, not the caller
    statuses: list[dict[str, str]] = field(default_factory=list)  # Twilio status callbacks seen
    # Key presses and the routes they lead to come at the caller's pace, as many as a caller (or a
    # forged stream) sends: the record keeps the newest KEPT_ENTRIES and counts them all, so a
    # flood costs a bounded record, not every progress write a longer copy.
    dtmf: list[str] = field(default_factory=list)  # the newest keys the caller pressed, in order
    dtmf_at: list[float] = field(default_factory=list)  # when each was pressed (seconds since the start)
    dtmf_total: int = 0  # every key pressed, kept or not
    routes: list[dict[str, Any]] = field(default_factory=list)  # IVR decisions: {at, via, choice, action, target}
    routes_total: int = 0
    frames_from_twilio: int = 0
    frames_to_twilio: int = 0
    bad_frames: int = 0
    # OpenAI faults survived: one line per reconnect ("dropped (code 1011)", "session_expired").
    reconnects: list[str] = field(default_factory=list)
    audio_path: str = ""  # the call's stereo WAV when LLC_RECORD_AUDIO is on (llc/call/recording.py)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["end_reason"] = str(self.end_reason or "")
        data["turns"] = [t.as_dict() for t in self.turns]
        return data
