"""OpenAI Realtime server events: parsed once, at the edge, into typed values. Pure, no I/O.

The twin of ``llc.core.twilio_frames`` for the other leg. Only the events a call or a warm
session acts on get a type; anything else is ``Unknown`` (its name kept for the logs), so a
new event from the service never breaks a call. Both session shapes are read: flat names are
mapped to their GA names first (``canonical_event``).

Parsing is strict about what the core relies on and lenient about the rest: a field of the
wrong type reads as absent, exactly as the core treated it when it read the dicts itself.

The audio delta has a fast lane: nearly every event of a call is one, so ``CallCore`` reads
its three fields with ``delta_fields`` and hands them straight to its handler, without the
event object. ``AudioDelta`` is built from the same function, so the two cannot differ
(``tests/unit/test_media_splice.py`` checks it for any input).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import orjson

# Both shapes' names of the audio delta (a tuple: an unhashable "type" must not raise).
AUDIO_DELTAS = ("response.output_audio.delta", "response.audio.delta")


# The live service names some server events differently per shape; the core speaks GA names.
_FLAT_TO_GA: dict[str, str] = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
}
def canonical_event(event_type: str) -> str:
    """A server event type of either shape, by its GA name (unknown names pass through).

    Shape-independent on purpose: a gateway that mixes names is still understood.
    """
    return _FLAT_TO_GA.get(event_type, event_type)


class EventError(ValueError):
    """A server event that cannot be used; the message says what was wrong with it."""


@dataclass(frozen=True, slots=True)
class SessionCreated:
    pass


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    pass


@dataclass(frozen=True, slots=True)
class AudioDelta:
    item_id: str  # the item's id, else the response's, else "?"
    response_id: str | None
    delta: str | None  # base64 mu-law, forwarded untouched; None when it was not a string


@dataclass(frozen=True, slots=True)
class AudioDone:
    pass


@dataclass(frozen=True, slots=True)
class ResponseCreated:
    response_id: str  # "" when the service named none
    out_of_band: bool  # ``conversation: "none"`` (never one of the call's own)


@dataclass(frozen=True, slots=True)
class ResponseDone:
    response_id: str
    out_of_band: bool


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    item_id: str = ""  # the caller's input item this speech becomes ("" when the service names none)


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    pass


@dataclass(frozen=True, slots=True)
class FunctionCall:
    call_id: str
    name: str
    arguments: str  # JSON text as the model sent it ("{}" when it sent none)


@dataclass(frozen=True, slots=True)
class McpCall:
    """A call the service made to an MCP server itself: started (``done`` False), then its result
    (the ``mcp_call`` output item, ``done`` True). llc only records it."""

    item_id: str
    done: bool = False
    name: str = ""  # server label and tool, "crm.get_order"
    arguments: str = ""
    output: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AgentTranscript:
    item_id: str
    response_id: str | None
    transcript: str  # "" when it carried none


@dataclass(frozen=True, slots=True)
class CallerTranscript:
    transcript: str
    item_id: str = ""  # the caller's input item it transcribes
    failed: bool = False  # the service could not transcribe it (``...transcription.failed``)


@dataclass(frozen=True, slots=True)
class ServiceError:
    """An ``error`` event. ``name`` is what the logs and metrics call it."""

    code: str  # "" when the error had no code
    kind: str  # the error's ``type``
    message: str | None
    param: str | None
    event_id: str | None  # the client event that caused it

    @property
    def name(self) -> str:
        return self.code or self.kind or "unknown"


@dataclass(frozen=True, slots=True)
class Unknown:
    type: str


OpenAIEvent: TypeAlias = (SessionCreated | SessionUpdated | AudioDelta | AudioDone | ResponseCreated | ResponseDone
                          | SpeechStarted | SpeechStopped | FunctionCall | McpCall | AgentTranscript | CallerTranscript
                          | ServiceError | Unknown)


def load(text: str | bytes) -> Any:
    """The event's JSON value (``from_json`` says what it means). Raises EventError."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise EventError("a frame that is not JSON") from None


def from_json(event: Any) -> OpenAIEvent:
    """What a parsed server event means. Raises EventError when it has no type."""
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise EventError("an event without a type")
    kind = canonical_event(event["type"])
    build = _BUILDERS.get(kind)
    return build(event) if build is not None else Unknown(kind)


def parse(text: str | bytes) -> OpenAIEvent:
    """Parse one server event. Raises EventError for a frame that is not a typed JSON object."""
    return from_json(load(text))


def delta_fields(event: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """An audio delta's item id, response id and payload: the fast lane's reading of it."""
    delta, response_id = event.get("delta"), event.get("response_id")
    return (str(event.get("item_id") or response_id or "?"), response_id if isinstance(response_id, str) else None,
            delta if isinstance(delta, str) else None)


def _id(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _text(value: object) -> str:
    return str(value) if value else ""


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def _response(event: dict[str, Any]) -> tuple[str, bool]:
    response = event.get("response")
    if not isinstance(response, dict):
        return "", False
    # The service says ``conversation_id: null`` for a response outside the conversation.
    return str(response.get("id") or ""), "conversation_id" in response and response["conversation_id"] is None


def _error(event: dict[str, Any]) -> ServiceError:
    error = event.get("error")
    if not isinstance(error, dict):
        error = {}
    return ServiceError(_text(error.get("code")), _text(error.get("type")), _opt(error.get("message")),
                        _opt(error.get("param")), _opt(error.get("event_id")))


def _mcp_done(event: dict[str, Any]) -> OpenAIEvent:
    item = event.get("item")
    if not isinstance(item, dict) or item.get("type") != "mcp_call":
        return Unknown("response.output_item.done")  # a message or function call: read by their own events
    error = item.get("error")
    if isinstance(error, dict):  # protocol_error, tool_execution_error, http_error: all carry a message
        error = " ".join(str(error[k]) for k in ("type", "code", "message") if error.get(k) is not None)
    name = ".".join(str(item[k]) for k in ("server_label", "name") if item.get(k))
    return McpCall(_text(item.get("id")), True, name, _text(item.get("arguments")),
                   _opt(item.get("output")), _opt(error) or None)


def _transcript(event: dict[str, Any]) -> str:
    text = event.get("transcript")
    return text if isinstance(text, str) else ""


_BUILDERS: dict[str, Callable[[dict[str, Any]], OpenAIEvent]] = {
    "session.created": lambda e: SessionCreated(),
    "session.updated": lambda e: SessionUpdated(),
    "response.output_audio.delta": lambda e: AudioDelta(*delta_fields(e)),
    "response.output_audio.done": lambda e: AudioDone(),
    "response.created": lambda e: ResponseCreated(*_response(e)),
    "response.done": lambda e: ResponseDone(*_response(e)),
    "input_audio_buffer.speech_started": lambda e: SpeechStarted(_text(e.get("item_id"))),
    "input_audio_buffer.speech_stopped": lambda e: SpeechStopped(),
    "response.function_call_arguments.done": lambda e: FunctionCall(
        str(e.get("call_id") or ""), str(e.get("name") or ""),
        e["arguments"] if isinstance(e.get("arguments"), str) else "{}"),
    "response.mcp_call.in_progress": lambda e: McpCall(_text(e.get("item_id"))),
    "response.output_item.done": _mcp_done,
    # Only the item's id comes with it: the record says which listing failed by that.
    "mcp_list_tools.failed": lambda e: McpCall(_text(e.get("item_id")), True, "mcp_list_tools", "", None,
                                               "OpenAI could not list the MCP server's tools; is it reachable "
                                               "from the internet, and are its headers right?"),
    "response.output_audio_transcript.done": lambda e: AgentTranscript(
        str(e.get("item_id") or ""), _id(e.get("response_id")), _transcript(e)),
    "conversation.item.input_audio_transcription.completed": lambda e: CallerTranscript(
        _transcript(e), _text(e.get("item_id"))),
    "conversation.item.input_audio_transcription.failed": lambda e: CallerTranscript(
        "", _text(e.get("item_id")), failed=True),
    "error": _error,
}
