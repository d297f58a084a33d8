"""A call's record, written as the call goes: the record's one writer. Pure.

The caller's and the agent's transcript lines, the latency of each turn (caller speech
stopped → first agent audio sent, with the VAD's wait and llc's relay beside it), each
barge-in with what was heard, key presses, routes, tool calls, and how the call ended. The
call core decides; the journal only writes down, so what the record claims has one author.
The shell and the outer layers never write the record: they hand values to the call (the
plan's numbers, the warm session's path, the AMD answer), which hands them here.

What the caller heard: an agent line is cut by a barge-in on its audio item *whatever the
order* of the two events. The real service sends a reply faster than real time, so its
transcript usually arrives before the caller talks over the audio still queued at Twilio; the
line is then found by its item and cut after the fact. A transcript arriving after the
barge-in finds the cut waiting for it.
"""

from __future__ import annotations

from binascii import Error as Base64Error
from binascii import a2b_base64
from collections.abc import Iterator
from contextlib import contextmanager

from llc.core.levers import Routed
from llc.core.playout import BYTES_PER_MS, Playout, TruncatePoint
from llc.core.record import (
    BargeInRecord,
    CallRecord,
    EndReason,
    ToolCallRecord,
    TranscriptLine,
    TurnLatency,
    keep_newest,
)

FRAME_MS = 20  # Twilio media frames carry 20 ms of caller audio
RECENT_FRAMES = 250  # how far back (5 s) a turn's end is looked for: further back, the wait is unknown
UNSEEN_FRAMES = 25  # caller payloads held, not yet looked at (a few KiB): see Journal.caller_frame
LOUD = 1000  # |sample| on the 16-bit scale above which a frame counts as speech (phone-line hiss is far below)
LOUD_SAMPLES = 8  # ... when at least this many of its samples are


def _quiet_codes() -> bytes:
    """The mu-law bytes whose magnitude is at most LOUD: deleted, what is left is the loud samples."""
    quiet = bytearray()
    for code in range(256):
        u = ~code & 0xFF
        magnitude = ((((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)) - 0x84
        if magnitude <= LOUD:
            quiet.append(code)
    return bytes(quiet)


QUIET_CODES = _quiet_codes()


def is_loud(payload: str) -> bool:
    """Does this frame carry speech (at least LOUD_SAMPLES samples over LOUD)? Decoded once,
    counted with one translate: no per-sample Python."""
    try:
        audio = a2b_base64(payload)
    except (Base64Error, ValueError):
        return False
    return len(audio.translate(None, QUIET_CODES)) >= LOUD_SAMPLES


def heard_text(text: str, heard_ms: int, generated_ms: int | None) -> str:
    """The part of ``text`` the caller heard, estimated in proportion to the audio heard.

    Cut at a word boundary (never mid-word), ending in "…" when something was cut. Speech is not
    evenly paced, so this is an estimate and is labelled one wherever it is shown.
    """
    if not generated_ms or heard_ms >= generated_ms:
        return text
    if heard_ms <= 0:
        return ""
    cut = round(len(text) * heard_ms / generated_ms)
    space = text.rfind(" ", 0, cut + 1)
    kept = text[:space if space > 0 else cut].rstrip(" ,;:")
    return kept + "…" if kept else ""


class Journal:
    def __init__(self, record: CallRecord, t0: float) -> None:
        self.record = record
        self.t0 = t0
        self.awaiting_first_audio: TurnLatency | None = None  # the turn whose reply has not sounded yet
        self._lines: dict[str, TranscriptLine] = {}  # agent lines by audio item
        self._cuts: dict[str, int] = {}  # item -> ms heard, for barge-ins whose line has not come yet
        self._awaiting_words: dict[str, BargeInRecord] = {}  # caller item -> its barge-in, until transcribed
        self._muted_bytes: dict[str, int] = {}  # audio the service generated after the cut (never played)
        # When the service says the turn ended, the caller frames since the last loud one tell
        # how long its turn detection waited after the caller fell silent. Kept as the newest
        # payloads, not yet looked at, and a count of the quiet frames before them
        # (RECENT_FRAMES: no loud frame that recent).
        self._unseen: list[str] = []
        self._quiet_before = RECENT_FRAMES
        # Loud caller audio (or the service's speech_started) since the agent's last reply ended:
        # if the session is lost now, those words went with it and the caller is owed a reply.
        self.caller_spoke = False
        self.transferred_to = ""  # a transfer went through: the leg's close that follows is the hand-over

    # ---- the call: who, what, how it ended ------------------------------------------------

    def started(self, stream_sid: str, call_sid: str, params: dict[str, str]) -> None:
        """Twilio's ``start``: the stream, the call, and what its TwiML said (direction, scenario)."""
        rec = self.record
        rec.stream_sid, rec.call_sid = stream_sid, call_sid
        rec.direction = params.get("direction", rec.direction)
        rec.scenario = params.get("scenario", rec.scenario)

    def planned(self, scenario: str, caller: str, called: str) -> None:
        """The call's plan: the scenario it runs and its numbers (caller ID, number called)."""
        rec = self.record
        rec.scenario = scenario or rec.scenario
        rec.from_number, rec.to_number = caller, called

    def session_path(self, path: str) -> None:
        """How the OpenAI session was obtained: a claimed warm one (prewarm, pre-accept)."""
        self.record.path = path

    def answered_by(self, answered_by: str) -> None:
        """Twilio's answering-machine detection said who answered (outbound with AMD)."""
        self.record.answered_by = answered_by

    def outbound(self, statuses: list[dict[str, str]], answered_by: str) -> None:
        """An outbound call's Twilio statuses, and AMD's answer if none came during the call."""
        self.record.statuses = list(statuses)
        self.record.answered_by = self.record.answered_by or answered_by

    def ended(self, reason: EndReason, detail: str, playout: Playout, twilio_seen: float | None) -> None:
        self._end(reason, detail)
        self.finish(playout, twilio_seen)

    def ended_unplayed(self, reason: EndReason, detail: str) -> None:
        """A call with no playout of ours to settle (SIP: the audio never passed through llc)."""
        self._end(reason, detail)
        self._settle_unheard()

    @contextmanager
    def transferring(self, target: str) -> Iterator[None]:
        """Around the request that hands the call to ``target``: when the leg then closes, that is
        why. Set before the request, since the leg often closes before its answer is back (the
        ending is then already recorded); a request that fails or is cancelled takes it back."""
        self.transferred_to = target
        try:
            yield
        except BaseException:  # failed, or cancelled (the tool's timeout): not known to have gone through
            self.transferred_to = ""
            raise

    def _end(self, reason: EndReason, detail: str) -> None:
        if reason is EndReason.CALLER_HANGUP and self.transferred_to:
            reason, detail = EndReason.TRANSFERRED, f"transferred to {self.transferred_to}"
        self.record.end_reason, self.record.end_detail = reason, detail

    def closed(self, ended_at: float, audio_path: str) -> None:
        """The call's sockets are closed (wall clock) and its audio, if recorded, written."""
        self.record.ended_at, self.record.audio_path = ended_at, audio_path

    # ---- frames, errors, sessions ----------------------------------------------------------

    def caller_frame(self, payload: str) -> None:
        """A caller media frame (nearly every frame of a call: kept cheap).

        Why held, then looked at newest first: only the frames after the last loud one count,
        and while the caller talks the newest frame is loud, so one decode settles a whole
        batch; a call's memory stays a batch of payloads, not the seconds a look-back needs.
        """
        self.record.frames_from_twilio += 1
        unseen = self._unseen
        unseen.append(payload)
        if len(unseen) >= UNSEEN_FRAMES:
            self._look_at_unseen()

    def _look_at_unseen(self) -> None:
        self._quiet_before = quiet = self._quiet_frames()
        if quiet < len(self._unseen):  # a loud frame among them
            self.caller_spoke = True
        self._unseen.clear()

    def reply_ended(self) -> None:
        """One of the agent's replies ended: what the caller said before it was answered by it."""
        self._look_at_unseen()
        self.caller_spoke = False

    def owes_reply(self) -> bool:
        """Has the caller spoken since the agent's last reply ended (see ``caller_spoke``)?"""
        self._look_at_unseen()
        return self.caller_spoke

    def agent_frame(self, now: float) -> None:
        """Agent audio went to the caller: the turn waiting for its first audio has it now."""
        self.record.frames_to_twilio += 1
        if self.awaiting_first_audio is not None:
            self.first_audio(now)

    def bad_frame(self) -> int:
        """An unusable Twilio frame; returns how many the call has had."""
        self.record.bad_frames += 1
        return self.record.bad_frames

    def cancel_crossed(self) -> None:
        self.record.cancels_crossed += 1

    def openai_error(self, code: str) -> None:
        errors = self.record.openai_errors
        errors[code] = errors.get(code, 0) + 1

    def tool_call(self, call: ToolCallRecord) -> None:
        """A tool call started (``tool_finished`` completes it in place)."""
        self.record.tool_calls.append(call)

    @staticmethod
    def tool_finished(call: ToolCallRecord, output: str, error: str | None, ms: float) -> None:
        call.output, call.error, call.ms = output, error, ms

    @staticmethod
    def tool_abandoned(call: ToolCallRecord, reason: str) -> None:
        """The call ended (or lost its session) while the tool ran: why it has no result."""
        call.error = call.error or reason

    def route(self, routed: Routed, now: float) -> None:
        self.record.routes_total += 1
        keep_newest(self.record.routes, {"at": round(now - self.t0, 3), "via": routed.via, "choice": routed.choice,
                                         "action": routed.action, "target": routed.target})

    def scenario_switched(self, name: str) -> None:
        self.record.scenario = f"{self.record.scenario}>{name}"

    # ---- turns --------------------------------------------------------------------------

    def speech_stopped(self, now: float) -> None:
        turn = TurnLatency(speech_stopped_at=now - self.t0, vad_wait_ms=self._quiet_ms())
        self.record.turns.append(turn)
        self.awaiting_first_audio = turn

    def first_audio(self, now: float) -> None:
        """The agent's first audio of the turn was sent (callers check ``awaiting_first_audio`` first)."""
        assert self.awaiting_first_audio is not None
        self.awaiting_first_audio.first_audio_at = now - self.t0
        self.awaiting_first_audio = None

    @staticmethod
    def relayed(turn: TurnLatency, relay_ms: float) -> None:
        """What llc took to write the turn's first audio frame after its delta arrived (the shell times it)."""
        turn.relay_ms = relay_ms

    def session_renewed(self, note: str) -> None:
        """A new OpenAI session (``note``: why): no reply of the old one will sound."""
        self.awaiting_first_audio = None
        self._awaiting_words.clear()  # the old session's transcripts will never come: unknown, not noise
        self.record.reconnects.append(note)

    def _quiet_frames(self) -> int:
        """Caller frames since their last loud one, at most RECENT_FRAMES."""
        quiet = 0
        for payload in reversed(self._unseen):
            if is_loud(payload):
                return quiet
            quiet += 1
        return min(RECENT_FRAMES, quiet + self._quiet_before)

    def _quiet_ms(self) -> float | None:
        """Caller audio since their last loud frame (frames come at real-time pace); None when
        nothing in the last RECENT_FRAMES was loud (an estimate either way: it is labelled so)."""
        quiet = self._quiet_frames()
        return None if quiet >= RECENT_FRAMES else float(quiet * FRAME_MS)

    # ---- what was said, and what was heard ------------------------------------------------

    def agent_said(self, item_id: str, text: str, now: float, interrupted: bool, playout: Playout | None = None) -> None:
        if not text:
            return
        line = TranscriptLine("agent", text, round(now - self.t0, 3), interrupted, item_id=item_id)
        line.generated_ms = self._generated_ms(item_id, playout)
        self.record.transcript.append(line)
        if not item_id:
            return
        self._lines[item_id] = line
        if item_id in self._cuts:
            self._cut(line, self._cuts.pop(item_id))
        elif interrupted:  # muted after all it had sent was heard, or cut before any audio
            item = playout.items.get(item_id) if playout is not None else None
            self._cut(line, item.played_ms if item is not None else 0)

    def caller_said(self, text: str, now: float, item_id: str = "", failed: bool = False) -> None:
        """A caller transcript (``failed``: the service could not transcribe ``item_id``; its words stay unknown)."""
        if text.strip():
            self.record.transcript.append(TranscriptLine("caller", text.strip(), round(now - self.t0, 3)))
        # Matched by the caller's item, not by order: the transcript often lands after the
        # agent's next reply has begun, and a real interruption must not be counted as noise.
        barge = self._awaiting_words.pop(item_id, None) if item_id else None
        if barge is not None and not failed:
            self._settle(barge, bool(text.strip()))

    def key_pressed(self, digit: str, now: float) -> None:
        self.record.dtmf_total += 1
        keep_newest(self.record.dtmf, digit)
        keep_newest(self.record.dtmf_at, round(now - self.t0, 3))

    def muted_audio(self, item_id: str, delta: str) -> None:
        """Audio of a cut item still arriving: never played, but part of what was generated."""
        n_bytes = len(delta) * 3 // 4 - delta.count("=", -2)
        self._muted_bytes[item_id] = self._muted_bytes.get(item_id, 0) + n_bytes
        line = self._lines.get(item_id)
        if line is not None:
            line.generated_ms = (line.generated_ms or 0) + n_bytes // BYTES_PER_MS
            self._estimate(line)

    def barge_in(self, now: float, truncate: TruncatePoint | None, playout: Playout | None = None,
                 caller_item: str = "") -> None:
        """The agent was cut off. ``caller_item``: the caller's input item whose transcript will
        say whether the speech had words ("" when none will come: a key press, no transcription)."""
        tp = truncate
        barge = BargeInRecord(at=round(now - self.t0, 3), item_id=tp.item_id if tp else "",
                              heard_ms=tp.audio_end_ms if tp else 0, deleted=bool(tp and tp.audio_end_ms == 0),
                              caller_item_id=caller_item)
        self.record.barge_ins.append(barge)
        if caller_item:
            self._awaiting_words[caller_item] = barge
        # The item talked over, truncated where the caller stopped hearing it. (No truncate
        # point: nothing was unheard, the agent was between items, so no line is cut.)
        if tp is None:
            return
        line = self._lines.get(tp.item_id)
        if line is None:
            self._cuts[tp.item_id] = tp.audio_end_ms  # its transcript comes later
        else:
            generated = self._generated_ms(tp.item_id, playout)
            if generated is not None:  # unknown on SIP, where no audio passes llc
                line.generated_ms = max(line.generated_ms or 0, generated)
            self._cut(line, tp.audio_end_ms)

    def finish(self, playout: Playout, twilio_seen: float | None = None) -> None:
        """The call ended: lines not cut were heard as far as the marks confirmed, and the one
        still playing as far as the playout clock says (marks are 500 ms apart) when Twilio was
        last heard from (its ``stop``; for a leg gone quiet, its last frame)."""
        self._settle_unheard()
        current = playout.current
        for item_id, line in self._lines.items():
            if line.interrupted:
                continue
            item = playout.items.get(item_id)
            if item is None:
                line.heard_ms = line.generated_ms
            else:
                line.heard_ms = playout.heard_before(twilio_seen) if item is current else item.played_ms

    # ---- helpers --------------------------------------------------------------------------

    def _generated_ms(self, item_id: str, playout: Playout | None) -> int | None:
        item = playout.items.get(item_id) if playout is not None and item_id else None
        muted = self._muted_bytes.get(item_id, 0)
        if item is None and not muted:
            return None
        return ((item.received_bytes if item is not None else 0) + muted) // BYTES_PER_MS

    def _settle_unheard(self) -> None:
        for barge in self._awaiting_words.values():  # transcribed speech always gets a transcript
            self._settle(barge, False)
        self._awaiting_words.clear()

    def _settle(self, barge: BargeInRecord, words: bool) -> None:
        barge.words = words
        self.record.barge_ins_without_words += not words

    def _cut(self, line: TranscriptLine, heard_ms: int) -> None:
        line.interrupted, line.heard_ms = True, heard_ms
        self._estimate(line)

    @staticmethod
    def _estimate(line: TranscriptLine) -> None:
        # Without the length generated there is no proportion to cut by: no estimate, unless nothing was heard.
        if line.interrupted and line.heard_ms is not None and (line.generated_ms or line.heard_ms <= 0):
            line.heard_text = heard_text(line.text, line.heard_ms, line.generated_ms)
