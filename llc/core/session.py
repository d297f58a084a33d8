"""What a Realtime session should be, whatever its shape. Pure data, no I/O.

mu-law in and out, semantic VAD that answers on its own (caller-first) and lets the caller
interrupt. How each shape spells it on the wire is ``llc.core.dialect``'s business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

Eagerness: TypeAlias = Literal["low", "medium", "high", "auto"]
NoiseReduction: TypeAlias = Literal["near_field", "far_field"]
# The service's built-in voices (the GA session's ``audio.output.voice``): a name outside these is
# refused by the service only once a call is up, so the profile is checked against them at start.
VOICES: tuple[str, ...] = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")


@dataclass(frozen=True)
class TurnDetection:
    type: Literal["semantic_vad", "server_vad"] = "semantic_vad"
    eagerness: Eagerness = "high"
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
    # Cleans the caller's audio before VAD and the model hear it; None sends null (off).
    noise_reduction: NoiseReduction | None = "near_field"


def connect_url(base_url: str, model: str) -> str:
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}model={model}"


def user_message(text: str) -> dict[str, Any]:
    """A user text item: how a greeting is triggered (then ``response.create``, on session.updated)."""
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
    }
