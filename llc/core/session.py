"""Session configuration and event names for both OpenAI Realtime shapes. Pure data, no I/O.

"flat" is the old beta shape the seed documents (and compatible gateways still speak);
"ga" is what the live service accepts today. Both express the same intent: mu-law in and
out, semantic VAD that answers on its own (caller-first) and lets the caller interrupt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Shape = Literal["ga", "flat"]

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
    """Map a server event type of either shape to its GA name (unknown names pass through)."""
    return _FLAT_TO_GA.get(event_type, event_type)


@dataclass(frozen=True)
class TurnDetection:
    type: Literal["semantic_vad", "server_vad"] = "semantic_vad"
    eagerness: Literal["low", "medium", "high", "auto"] = "high"
    create_response: bool = True
    interrupt_response: bool = True

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.type == "semantic_vad":
            out["eagerness"] = self.eagerness
        out["create_response"] = self.create_response
        out["interrupt_response"] = self.interrupt_response
        return out


@dataclass(frozen=True)
class SessionSpec:
    """What the session should be, independent of shape."""

    voice: str = "cedar"
    instructions: str | None = None
    turn_detection: TurnDetection = field(default_factory=TurnDetection)
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str = "auto"
    transcription_model: str | None = None


def session_update(shape: Shape, spec: SessionSpec) -> dict[str, Any]:
    """The ``session.update`` client event for ``shape``."""
    return {"type": "session.update", "session": _flat(spec) if shape == "flat" else _ga(spec)}


def _flat(spec: SessionSpec) -> dict[str, Any]:
    # Key for key the seed's "CORRECT" block, then the optional parts.
    session: dict[str, Any] = {
        "modalities": ["text", "audio"],
        "voice": spec.voice,
        "turn_detection": spec.turn_detection.as_dict(),
        "input_audio_format": "g711_ulaw",
        "output_audio_format": "g711_ulaw",
    }
    if spec.instructions:
        session["instructions"] = spec.instructions
    if spec.tools:
        session["tools"] = list(spec.tools)
        session["tool_choice"] = spec.tool_choice
    if spec.transcription_model:
        session["input_audio_transcription"] = {"model": spec.transcription_model}
    return session


def _ga(spec: SessionSpec) -> dict[str, Any]:
    audio_in: dict[str, Any] = {
        "format": {"type": "audio/pcmu"},
        "turn_detection": spec.turn_detection.as_dict(),
    }
    if spec.transcription_model:
        audio_in["transcription"] = {"model": spec.transcription_model}
    session: dict[str, Any] = {
        "type": "realtime",
        # GA takes one output modality; audio responses still carry their transcript.
        "output_modalities": ["audio"],
        "audio": {"input": audio_in, "output": {"format": {"type": "audio/pcmu"}, "voice": spec.voice}},
    }
    if spec.instructions:
        session["instructions"] = spec.instructions
    if spec.tools:
        session["tools"] = list(spec.tools)
        session["tool_choice"] = spec.tool_choice
    return session


def tools_update(shape: Shape, tools: tuple[dict[str, Any], ...], tool_choice: str = "auto") -> dict[str, Any]:
    """A partial ``session.update`` that only swaps the tool list (GA still needs ``type``)."""
    session: dict[str, Any] = {"tools": list(tools), "tool_choice": tool_choice}
    if shape == "ga":
        session = {"type": "realtime", **session}
    return {"type": "session.update", "session": session}


def turn_detection_update(shape: Shape, td: TurnDetection) -> dict[str, Any]:
    """A partial ``session.update`` that only changes turn detection (e.g. eagerness)."""
    if shape == "flat":
        return {"type": "session.update", "session": {"turn_detection": td.as_dict()}}
    return {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"turn_detection": td.as_dict()}}},
    }


def connect_url(base_url: str, model: str) -> str:
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}model={model}"


def connect_headers(shape: Shape, api_key: str) -> list[tuple[str, str]]:
    headers = [("Authorization", f"Bearer {api_key}")]
    if shape == "flat":
        headers.append(("OpenAI-Beta", "realtime=v1"))
    return headers


def user_message(text: str) -> dict[str, Any]:
    """A user text item: the seed's greeting trigger (then ``response.create``)."""
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
    }


def text_only_response(shape: Shape, instructions: str | None = None) -> dict[str, Any]:
    """A ``response.create`` that produces text only: used to prime inference without audio."""
    response: dict[str, Any] = {"modalities": ["text"]} if shape == "flat" else {"output_modalities": ["text"]}
    if instructions:
        response["instructions"] = instructions
    return {"type": "response.create", "response": response}


def shape_hint(shape: Shape, error: dict[str, Any]) -> str:
    """Plain words for an ``error`` that arrives before the session was accepted."""
    code = error.get("code") or ""
    other = "ga" if shape == "flat" else "flat"
    if code == "beta_api_shape_disabled":
        return (
            "this endpoint has switched off the old beta (flat) session shape; "
            "set OPENAI_API_SHAPE=ga"
        )
    if code in ("missing_required_parameter", "unknown_parameter", "invalid_type", "invalid_value"):
        return (
            f"OpenAI rejected the session config ({code} {error.get('param') or ''}): the session shape "
            f"is probably wrong for this endpoint; OPENAI_API_SHAPE is {shape!r}, try OPENAI_API_SHAPE={other}"
        )
    return f"OpenAI sent an error before accepting the session: check OPENAI_API_SHAPE (now {shape!r}) and the key"
