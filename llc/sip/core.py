"""A SIP call's decisions: sideband events in, steps out. Pure: no sockets, no Trio.

On SIP the audio never passes through llc (Twilio and OpenAI exchange it directly), so there
is no playout clock, no truncate and no relay: the service stops its own speech on a barge-in
and says so (``output_audio_buffer.cleared``). llc records that barge-in from the sideband: what
the caller heard is the time between the service starting to play the reply
(``output_audio_buffer.started``) and clearing it, since that buffer plays in real time. Both
events come the same way, so the sideband's own delay cancels out; it is an estimate all the same.
What is left is the conversation's bookkeeping (transcripts, turns, tool calls, key presses,
routes), written by the same ``Journal`` as a media-stream call, and the call control: a
tool's output goes back to the model, ``end_call`` hangs up once the goodbye's response is
done, the IVR's transfer becomes a SIP REFER.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

import orjson

from llc.core.dialect import GA
from llc.core.journal import Journal
from llc.core.levers import Interrupt, Lever, Routed, RunLocalTool, SwitchSession, TellModel
from llc.core.playout import TruncatePoint
from llc.core.record import CallRecord, EndReason, ToolCallRecord
from llc.core.session import SessionSpec, TurnDetection, user_message
from llc.core.turns import SwitchState, TurnPolicy, later_spec, switch_update

# end_call asked for a hang-up: after the goodbye's response.done, or this long at most.
GOODBYE_GRACE_S = 15.0
SESSION_EXPIRED = "session_expired"  # the service's error at its 60-minute session limit


@dataclass(frozen=True, slots=True)
class Send:
    """A client event for the sideband socket."""

    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StartTool:
    call_id: str
    name: str
    arguments: str
    local: bool = False  # the call's own decision (a key press): its output is not sent to the model


@dataclass(frozen=True, slots=True)
class HangUp:
    reason: EndReason
    detail: str


Step: TypeAlias = Send | StartTool | HangUp


def semantic(spec: SessionSpec) -> SessionSpec:
    """A SIP call runs semantic VAD at the profile's eagerness: accept refuses server_vad's knobs."""
    td = spec.turn_detection
    if td.type == "semantic_vad":
        return spec
    return replace(spec, turn_detection=TurnDetection("semantic_vad", td.eagerness, td.create_response,
                                                      td.interrupt_response))


def sip_session(spec: SessionSpec, model: str) -> dict[str, Any]:
    """The accept body (and a scenario switch's session.update): the GA session without the audio
    formats, which SIP negotiates itself, and with semantic VAD only."""
    session: dict[str, Any] = GA.session_update(semantic(spec))["session"]
    session["audio"]["input"].pop("format", None)
    session["audio"]["output"].pop("format", None)
    return {**session, "model": model} if model else session


class SipCore:
    def __init__(self, record: CallRecord, now: float, spec: SessionSpec | None = None,
                 policy: TurnPolicy | None = None, tool_schemas: dict[str, dict[str, Any]] | None = None) -> None:
        """``spec``: the first turn's session (eager, lean tools), as accepted; after the first
        reply the call switches to ``policy``'s later eagerness and full tools, as on Media Streams."""
        self.record = record
        self.journal = Journal(record, now)
        self.t0 = now
        self.spec, self.policy, self.tool_schemas = spec or SessionSpec(), policy or TurnPolicy(), tool_schemas or {}
        self.switch = SwitchState(self.policy)
        self.responses_done = 0
        self.responding: str | None = None  # the response in flight, by id
        self.goodbye_asked = False  # end_call ran: the next response is the goodbye
        self.goodbye_response: str | None = None
        self.tools: dict[str, ToolCallRecord] = {}
        self.ended = False
        self.playing: tuple[str, float] | None = None  # the reply the caller is hearing: (response id, since)
        self.audio_items: dict[str, str] = {}  # response id -> its audio item, for the line a barge-in cuts
        self.caller_item = ""  # the caller's speech in progress (its input item)

    # ---- from the sideband ----------------------------------------------------------------

    def on_event(self, event: dict[str, Any], now: float) -> list[Step]:
        kind = event.get("type")
        j = self.journal
        if kind == "input_audio_buffer.speech_started":
            self.caller_item = str(event.get("item_id", ""))
        elif kind == "input_audio_buffer.speech_stopped":
            j.speech_stopped(now)
        elif kind in ("output_audio_buffer.started", "response.output_audio_transcript.delta", "response.output_audio.delta"):
            if j.awaiting_first_audio is not None:
                j.first_audio(now)
            rid = str(event.get("response_id", ""))
            if kind == "output_audio_buffer.started":
                self.playing = (rid, now)
            elif event.get("item_id"):
                self.audio_items.setdefault(rid, str(event["item_id"]))
        elif kind == "output_audio_buffer.stopped":
            self.playing = None
        elif kind == "output_audio_buffer.cleared":
            self._cleared(str(event.get("response_id", "")), now)
        elif kind == "response.output_audio_transcript.done":
            j.agent_said(str(event.get("item_id", "")), str(event.get("transcript", "")), now, interrupted=False)
        elif kind in ("conversation.item.input_audio_transcription.completed",
                      "conversation.item.input_audio_transcription.failed"):
            item = str(event.get("item_id", ""))
            j.caller_said(str(event.get("transcript", "")), now, item, failed=kind.endswith(".failed"))
            if item == self.caller_item:  # transcribed: a later clear is not about these words
                self.caller_item = ""
        elif kind == "response.created":
            rid = str((event.get("response") or {}).get("id", ""))
            self.responding = rid
            # A reply can still be playing long after its response.done: keep the newest few.
            while len(self.audio_items) > 4:
                self.audio_items.pop(next(iter(self.audio_items)))
            if self.goodbye_asked and self.goodbye_response is None:
                self.goodbye_response = rid
        elif kind == "response.done":
            return self._response_done(str((event.get("response") or {}).get("id", "")))
        elif kind == "response.function_call_arguments.done":
            return self._tool(str(event.get("call_id", "")), str(event.get("name", "")), str(event.get("arguments", "")), now)
        elif kind == "input_audio_buffer.dtmf_event_received":
            return self.on_key(str(event.get("event", "")), now)
        elif kind == "error":
            err = event.get("error") or {}
            code = str(err.get("code") or err.get("type") or "unknown")
            j.openai_error(code)
            if code == SESSION_EXPIRED:  # a SIP call's session cannot be replaced, as a media stream's is
                return [HangUp(EndReason.MAX_CALL_LENGTH, "OpenAI's 60-minute session limit: the SIP call ended with it")]
        return []

    def _cleared(self, rid: str, now: float) -> None:
        """The service cut the reply it was playing: a barge-in (or a clear llc asked for)."""
        if self.playing is None:
            return  # nothing was playing: nothing was cut
        (playing, since), self.playing = self.playing, None
        item = self.audio_items.get(rid)
        # Another reply's audio had followed on in the same buffer: a barge-in, but how much of
        # this reply was heard is unknown, so no line is cut.
        cut = TruncatePoint(item, max(0, round((now - since) * 1000))) if item and playing == rid else None
        # Words can only be told when the session transcribes the caller.
        words_of = self.caller_item if self.spec.transcription_model else ""
        self.journal.barge_in(now, cut, caller_item=words_of)
        self.caller_item = ""

    def _response_done(self, rid: str) -> list[Step]:
        if rid == self.responding:
            self.responding = None
        if self.goodbye_response is not None and rid == self.goodbye_response:
            return [HangUp(EndReason.AGENT_HANGUP, "end_call: the goodbye was said")]
        self.responses_done += 1
        if self.switch.due(self.responses_done):  # once: calmer VAD and the full tool set for later turns
            return [Send(switch_update(GA, semantic(self.spec), self.policy, self.tool_schemas))]
        return []

    def _tool(self, call_id: str, name: str, arguments: str, now: float) -> list[Step]:
        rec = ToolCallRecord(call_id, name, arguments, round(now - self.t0, 3))
        self.tools[call_id] = rec
        self.journal.tool_call(rec)
        return [StartTool(call_id, name, arguments)]

    def on_tool_result(self, call_id: str, output: str, error: str | None, now: float) -> list[Step]:
        rec = self.tools.pop(call_id, None)
        if rec is None or self.ended:
            return []
        self.journal.tool_finished(rec, output, error, round((now - self.t0) * 1000 - rec.started_at * 1000, 1))
        if call_id.startswith("local_"):
            return []
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        return [Send({"type": "conversation.item.create", "item": item}), Send({"type": "response.create"})]

    def hangup_after_goodbye(self) -> None:
        """end_call: hang up once the reply that follows its output is done."""
        self.goodbye_asked = True

    # ---- key presses and the mode's levers ----------------------------------------------------

    def on_key(self, digit: str, now: float, levers: list[Lever] | None = None) -> list[Step]:
        if not digit:
            return []
        self.journal.key_pressed(digit, now)
        return self.on_levers(levers or [], now)

    def on_levers(self, levers: list[Lever], now: float) -> list[Step]:
        steps: list[Step] = []
        for lever in levers:
            if isinstance(lever, Routed):
                self.journal.route(lever, now)
            elif isinstance(lever, Interrupt):  # a key press: stop the reply and its audio already queued
                if self.responding is not None:
                    steps.append(Send({"type": "response.cancel"}))
                if self.playing is not None:
                    self.caller_item = ""  # no speech to transcribe: whether it had words is unknown
                    steps.append(Send({"type": "output_audio_buffer.clear"}))
            elif isinstance(lever, RunLocalTool):
                call_id = f"local_{len(self.record.tool_calls) + 1}"
                rec = ToolCallRecord(call_id, lever.name, lever.arguments, round(now - self.t0, 3))
                self.tools[call_id] = rec
                self.journal.tool_call(rec)
                steps.append(StartTool(call_id, lever.name, lever.arguments, local=True))
            elif isinstance(lever, TellModel):
                steps += [Send(user_message(lever.text)), Send({"type": "response.create"})]
            elif isinstance(lever, SwitchSession):
                self.journal.scenario_switched(lever.scenario)
                self.policy, self.switch = lever.policy, SwitchState(lever.policy, switched=True)
                self.spec = later_spec(lever.spec, lever.policy, self.tool_schemas)
                session = sip_session(self.spec, "")
                session["audio"]["output"].pop("voice", None)  # the service refuses a voice change once it spoke
                steps.append(Send({"type": "session.update", "session": session}))
        return steps

    # ---- the end -----------------------------------------------------------------------------

    def end(self, reason: EndReason, detail: str) -> bool:
        """The first ending says why; returns False when the call had ended already."""
        if self.ended:
            return False
        self.ended = True
        self.journal.ended_unplayed(reason, detail)
        for tool in self.tools.values():
            self.journal.tool_abandoned(tool, "the call ended while the tool ran")
        return True

    def closed(self) -> None:
        self.journal.closed(time.time(), "")


def parse(text: str | bytes) -> dict[str, Any] | None:
    try:
        event = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None
