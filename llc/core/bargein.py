"""Barge-in: the caller started talking over the agent. Pure; returns what to send, in order.

1. ``clear`` to Twilio first: it is the only step the caller can hear, so it leaves first.
2. ``response.cancel`` only when a response is in flight and the session does not already
   cancel on speech itself (``interrupt_response``); otherwise the service would answer
   ``response_cancel_not_active``.
3. ``conversation.item.truncate`` to what the caller heard by the playout clock and marks
   (never beyond the audio received), or ``conversation.item.delete`` when they heard nothing: the model's memory
   must match what was actually said.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from llc.core import twilio_frames as tw
from llc.core.actions import Action, ToOpenAI, ToTwilio
from llc.core.playout import Playout, TruncatePoint
from llc.core.turns import ResponseGate


@dataclass
class BargeIn:
    actions: list[Action] = field(default_factory=list)
    truncate: TruncatePoint | None = None
    interrupted: bool = False  # was the agent speaking or about to?


def on_speech_started(playout: Playout, gate: ResponseGate, interrupt_response: bool, stream_sid: str,
                      now: float | None = None) -> BargeIn:
    result = BargeIn()
    speaking = playout.speaking
    if not speaking and not gate.busy:
        return result  # the agent was silent: an ordinary turn, nothing to stop
    result.interrupted = True
    if speaking:
        result.actions.append(ToTwilio(tw.clear(stream_sid)))
        result.truncate = playout.on_clear(now)
    if gate.active_id is not None and not interrupt_response:
        result.actions.append(ToOpenAI('{"type":"response.cancel"}'))
        gate.cancel_sent()
    tp = result.truncate
    if tp is not None:
        if tp.audio_end_ms > 0:
            event = {"type": "conversation.item.truncate", "item_id": tp.item_id, "content_index": 0, "audio_end_ms": tp.audio_end_ms}
        else:
            # The service rejects a 0 ms truncate; an item nobody heard is removed instead.
            event = {"type": "conversation.item.delete", "item_id": tp.item_id}
        result.actions.append(ToOpenAI(orjson.dumps(event).decode()))
    return result
