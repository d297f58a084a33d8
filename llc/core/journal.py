"""What a call's record says about its turns, kept as the events arrive. Pure.

The caller's and the agent's transcript lines, the voice-to-voice latency of each turn
(caller speech stopped → first agent audio sent) and each barge-in with what was heard. The
call core decides; the journal only writes down, so what the record claims has one author.
"""

from __future__ import annotations

from typing import Any

from llc.core.playout import TruncatePoint
from llc.core.record import BargeInRecord, CallRecord, TranscriptLine, TurnLatency


class Journal:
    def __init__(self, record: CallRecord, t0: float) -> None:
        self.record = record
        self.t0 = t0
        self.awaiting_first_audio: TurnLatency | None = None  # the turn whose reply has not sounded yet

    def speech_stopped(self, now: float) -> None:
        turn = TurnLatency(speech_stopped_at=now - self.t0)
        self.record.turns.append(turn)
        self.awaiting_first_audio = turn

    def first_audio(self, now: float) -> None:
        """The agent's first audio of the turn was sent (callers check ``awaiting_first_audio`` first)."""
        assert self.awaiting_first_audio is not None
        self.awaiting_first_audio.first_audio_at = now - self.t0
        self.awaiting_first_audio = None

    def agent_said(self, event: dict[str, Any], now: float, interrupted: bool) -> None:
        text = event.get("transcript")
        if isinstance(text, str) and text:
            self.record.transcript.append(TranscriptLine("agent", text, round(now - self.t0, 3), interrupted))

    def caller_said(self, event: dict[str, Any], now: float) -> None:
        text = event.get("transcript")
        if isinstance(text, str) and text.strip():
            self.record.transcript.append(TranscriptLine("caller", text.strip(), round(now - self.t0, 3)))

    def barge_in(self, now: float, truncate: TruncatePoint | None) -> None:
        tp = truncate
        self.record.barge_ins.append(
            BargeInRecord(at=round(now - self.t0, 3), item_id=tp.item_id if tp else "",
                          heard_ms=tp.audio_end_ms if tp else 0, deleted=bool(tp and tp.audio_end_ms == 0)))
