"""What a call's record says about its turns, kept as the events arrive. Pure.

The caller's and the agent's transcript lines, the latency of each turn (caller speech
stopped → first agent audio sent, with the VAD's wait and llc's relay beside it) and each
barge-in with what was heard. The call core decides; the journal only writes down, so what the
record claims has one author.

What the caller heard: an agent line is cut by a barge-in on its audio item *whatever the
order* of the two events. The real service sends a reply faster than real time, so its
transcript usually arrives before the caller talks over the audio still queued at Twilio; the
line is then found by its item and cut after the fact. A transcript arriving after the
barge-in finds the cut waiting for it.
"""

from __future__ import annotations

import binascii
from collections import deque
from typing import Any

from llc.core.playout import BYTES_PER_MS, Playout, TruncatePoint
from llc.core.record import BargeInRecord, CallRecord, TranscriptLine, TurnLatency

FRAME_MS = 20  # Twilio media frames carry 20 ms of caller audio
RECENT_FRAMES = 250  # the caller's last 5 s, looked back through once per turn for where speech ended
LOUD = 1000  # |sample| on the 16-bit scale above which a frame counts as speech (phone-line hiss is far below)
LOUD_SAMPLES = 8  # ... when at least this many of its samples are


def _loud_table() -> bytes:
    """mu-law byte -> 1 when its magnitude is over LOUD: a frame's loudness by translate + count."""
    table = bytearray(256)
    for code in range(256):
        u = ~code & 0xFF
        magnitude = ((((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)) - 0x84
        table[code] = 1 if magnitude > LOUD else 0
    return bytes(table)


LOUD_TABLE = _loud_table()


def is_loud(payload: str) -> bool:
    try:
        audio = binascii.a2b_base64(payload)
    except (binascii.Error, ValueError):
        return False
    return audio.translate(LOUD_TABLE).count(1) >= LOUD_SAMPLES


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
        self._muted_bytes: dict[str, int] = {}  # audio the service generated after the cut (never played)
        # The caller's latest payloads, as received (a reference each, nothing decoded per frame):
        # when the service says the turn ended, the frames since the last loud one tell how long
        # its turn detection waited after the caller fell silent.
        self.recent_caller: deque[str] = deque(maxlen=RECENT_FRAMES)

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

    def session_renewed(self) -> None:
        """A new OpenAI session: no reply of the old one will sound."""
        self.awaiting_first_audio = None

    def _quiet_ms(self) -> float | None:
        """Caller audio since their last loud frame (frames come at real-time pace); None when
        nothing in the last RECENT_FRAMES was loud (an estimate either way: it is labelled so)."""
        quiet = 0
        for payload in reversed(self.recent_caller):
            if is_loud(payload):
                return float(quiet * FRAME_MS)
            quiet += 1
        return None

    # ---- what was said, and what was heard ------------------------------------------------

    def agent_said(self, event: dict[str, Any], now: float, interrupted: bool, playout: Playout | None = None) -> None:
        text = event.get("transcript")
        if not isinstance(text, str) or not text:
            return
        item_id = str(event.get("item_id") or "")
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

    def caller_said(self, event: dict[str, Any], now: float) -> None:
        text = event.get("transcript")
        if isinstance(text, str) and text.strip():
            self.record.transcript.append(TranscriptLine("caller", text.strip(), round(now - self.t0, 3)))

    def key_pressed(self, digit: str, now: float) -> None:
        self.record.dtmf.append(digit)
        self.record.dtmf_at.append(round(now - self.t0, 3))

    def muted_audio(self, item_id: str, delta: str) -> None:
        """Audio of a cut item still arriving: never played, but part of what was generated."""
        n_bytes = len(delta) * 3 // 4 - delta.count("=", -2)
        self._muted_bytes[item_id] = self._muted_bytes.get(item_id, 0) + n_bytes
        line = self._lines.get(item_id)
        if line is not None:
            line.generated_ms = (line.generated_ms or 0) + n_bytes // BYTES_PER_MS
            self._estimate(line)

    def barge_in(self, now: float, truncate: TruncatePoint | None, playout: Playout | None = None) -> None:
        tp = truncate
        self.record.barge_ins.append(
            BargeInRecord(at=round(now - self.t0, 3), item_id=tp.item_id if tp else "",
                          heard_ms=tp.audio_end_ms if tp else 0, deleted=bool(tp and tp.audio_end_ms == 0)))
        # The item talked over, truncated where the caller stopped hearing it. (No truncate
        # point: nothing was unheard, the agent was between items, so no line is cut.)
        if tp is None:
            return
        line = self._lines.get(tp.item_id)
        if line is None:
            self._cuts[tp.item_id] = tp.audio_end_ms  # its transcript comes later
        else:
            line.generated_ms = max(line.generated_ms or 0, self._generated_ms(tp.item_id, playout) or 0)
            self._cut(line, tp.audio_end_ms)

    def finish(self, playout: Playout, twilio_seen: float | None = None) -> None:
        """The call ended: lines not cut were heard as far as the marks confirmed, and the one
        still playing as far as the playout clock says (marks are 500 ms apart) when Twilio was
        last heard from (its ``stop``; for a leg gone quiet, its last frame)."""
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

    def _cut(self, line: TranscriptLine, heard_ms: int) -> None:
        line.interrupted, line.heard_ms = True, heard_ms
        self._estimate(line)

    @staticmethod
    def _estimate(line: TranscriptLine) -> None:
        if line.interrupted and line.heard_ms is not None:
            line.heard_text = heard_text(line.text, line.heard_ms, line.generated_ms)
