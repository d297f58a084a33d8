"""The agent's audio on its way to the caller, and what a barge-in does to it. Pure.

Each ``response.output_audio.delta`` becomes a Twilio ``media`` frame with its payload
untouched, plus the marks the playout clock asks for (``core/playout.py``). A barge-in clears
Twilio's buffer, truncates the item to what was heard (``core/bargein.py``) and mutes the
interrupted response: its deltas still in flight are never played after the clear.
"""

from __future__ import annotations

from llc.core import twilio_frames as tw
from llc.core.actions import Action, ToTwilio
from llc.core.bargein import BargeIn, on_speech_started
from llc.core.playout import Playout
from llc.core.turns import ResponseGate


class AgentAudio:
    def __init__(self, playout: Playout) -> None:
        self.playout = playout
        self.muted_items: set[str] = set()
        self.muted_responses: set[str] = set()

    def renewed(self, mark_every_ms: int) -> AgentAudio:
        """A fresh start (a new session, a new policy): see ``Playout.successor``."""
        return AgentAudio(self.playout.successor(mark_every_ms))

    def is_muted(self, item_id: str, response_id: object) -> bool:
        """Audio of an interrupted response still in flight: never after the clear."""
        return item_id in self.muted_items or response_id in self.muted_responses

    def frames(self, stream_sid: str, item_id: str, delta: str, now: float | None = None) -> list[Action]:
        """The delta as a media frame, with the marks due before and after it."""
        # base64 length tells the byte count without decoding: 4 chars per 3 bytes, minus padding.
        n_bytes = len(delta) * 3 // 4 - delta.count("=", -2)
        before, after = self.playout.on_audio(item_id, n_bytes, now)
        audio = ToTwilio(tw.media(stream_sid, delta))
        if before is None and after is None:
            return [audio]
        actions: list[Action] = [] if before is None else [ToTwilio(tw.mark(stream_sid, before))]
        actions.append(audio)
        if after is not None:
            actions.append(ToTwilio(tw.mark(stream_sid, after)))
        return actions

    def tail(self, stream_sid: str) -> list[Action]:
        """The item's audio is complete: mark its tail, so "heard it all" can be confirmed."""
        mark = self.playout.flush() if stream_sid else None
        return [] if mark is None else [ToTwilio(tw.mark(stream_sid, mark))]

    def barge_in(self, gate: ResponseGate, interrupt_response: bool, stream_sid: str, now: float | None = None) -> BargeIn:
        """The caller talks over the agent: stop the audio and mute what is still coming."""
        result = on_speech_started(self.playout, gate, interrupt_response, stream_sid, now)
        if result.interrupted:
            if gate.active_id:
                self.muted_responses.add(gate.active_id)
            if self.playout.current is not None:
                self.muted_items.add(self.playout.current.item_id)
        return result
