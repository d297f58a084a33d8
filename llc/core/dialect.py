"""The two OpenAI Realtime session shapes as dialect objects. Pure data, no I/O.

"flat" is the old beta shape (``modalities``, ``g711_ulaw``; compatible gateways still speak
it); "ga" is what the live service accepts today. What the client sends differently lives here
and nowhere else: the ``session.update`` payloads, the connect headers, the text-only
response, and the plain-words hint when a session is rejected. (The server's event names of
both shapes are read by ``llc.core.openai_events``.) Callers hold a ``Dialect`` and never
branch on the shape themselves.
"""

from __future__ import annotations

from typing import Any, Literal

from llc.core.session import SessionSpec, TurnDetection

Shape = Literal["ga", "flat"]
SHAPES: tuple[Shape, ...] = ("ga", "flat")

# Error codes that mean "this endpoint speaks the other shape".
SHAPE_ERRORS = frozenset({"beta_api_shape_disabled", "missing_required_parameter", "unknown_parameter",
                          "invalid_type", "invalid_value"})


class Dialect:
    """One session shape. Subclasses override only what their wire differs in."""

    shape: Shape
    other: Shape
    # ``response.create``'s cap on output tokens (used by the warm session's priming).
    max_tokens_key: str

    def session_update(self, spec: SessionSpec) -> dict[str, Any]:
        """The full ``session.update`` client event."""
        return {"type": "session.update", "session": self._session(spec)}

    def _session(self, spec: SessionSpec) -> dict[str, Any]:
        raise NotImplementedError

    def turn_detection_update(self, td: TurnDetection) -> dict[str, Any]:
        """A partial ``session.update`` that only changes turn detection (e.g. eagerness)."""
        raise NotImplementedError

    def tools_update(self, tools: tuple[dict[str, Any], ...], tool_choice: str = "auto") -> dict[str, Any]:
        """A partial ``session.update`` that only swaps the tool list."""
        return {"type": "session.update", "session": self._partial({"tools": list(tools), "tool_choice": tool_choice})}

    def _partial(self, session: dict[str, Any]) -> dict[str, Any]:
        return session

    def without_voice(self, update: dict[str, Any]) -> dict[str, Any]:
        """``update`` with the voice taken out: the service refuses a change once the agent spoke."""
        update["session"].pop("voice", None)
        return update

    def text_only_response(self, instructions: str | None = None) -> dict[str, Any]:
        """A ``response.create`` that produces text only: primes inference without audio."""
        response: dict[str, Any] = {self._modalities_key: ["text"]}
        if instructions:
            response["instructions"] = instructions
        return {"type": "response.create", "response": response}

    _modalities_key: str

    def connect_headers(self, api_key: str) -> list[tuple[str, str]]:
        return [("Authorization", f"Bearer {api_key}")]

    def hint(self, code: str, param: str | None = None) -> str:
        """Plain words for an ``error`` (its ``code`` and ``param``) that arrives before the session was accepted."""
        if code == "beta_api_shape_disabled":
            return "this endpoint has switched off the old beta (flat) session shape; set OPENAI_API_SHAPE=ga"
        if code in SHAPE_ERRORS:
            return (
                f"OpenAI rejected the session config ({code} {param or ''}): the session shape "
                f"is probably wrong for this endpoint; OPENAI_API_SHAPE is {self.shape!r}, try OPENAI_API_SHAPE={self.other}"
            )
        return f"OpenAI sent an error before accepting the session: check OPENAI_API_SHAPE (now {self.shape!r}) and the key"


class _GA(Dialect):
    shape, other = "ga", "flat"
    max_tokens_key = "max_output_tokens"
    _modalities_key = "output_modalities"

    def _session(self, spec: SessionSpec) -> dict[str, Any]:
        audio_in: dict[str, Any] = {"format": {"type": "audio/pcmu"}, "turn_detection": spec.turn_detection.as_dict()}
        if spec.transcription_model:
            audio_in["transcription"] = {"model": spec.transcription_model}
        audio_in["noise_reduction"] = _noise(spec)
        session: dict[str, Any] = {
            "type": "realtime",
            # GA takes one output modality; audio responses still carry their transcript.
            "output_modalities": ["audio"],
            "audio": {"input": audio_in, "output": {"format": {"type": "audio/pcmu"}, "voice": spec.voice}},
        }
        _optional(session, spec)
        return session

    def _partial(self, session: dict[str, Any]) -> dict[str, Any]:
        return {"type": "realtime", **session}  # GA needs the session type even in a partial update

    def turn_detection_update(self, td: TurnDetection) -> dict[str, Any]:
        return {"type": "session.update", "session": self._partial({"audio": {"input": {"turn_detection": td.as_dict()}}})}

    def without_voice(self, update: dict[str, Any]) -> dict[str, Any]:
        update["session"].get("audio", {}).get("output", {}).pop("voice", None)
        return update


class _Flat(Dialect):
    shape, other = "flat", "ga"
    max_tokens_key = "max_response_output_tokens"
    _modalities_key = "modalities"

    def _session(self, spec: SessionSpec) -> dict[str, Any]:
        # Key for key the flat shape as the beta documented it, then the optional parts.
        session: dict[str, Any] = {
            "modalities": ["text", "audio"],
            "voice": spec.voice,
            "turn_detection": spec.turn_detection.as_dict(),
            "input_audio_format": "g711_ulaw",
            "output_audio_format": "g711_ulaw",
        }
        _optional(session, spec)
        if spec.transcription_model:
            session["input_audio_transcription"] = {"model": spec.transcription_model}
        session["input_audio_noise_reduction"] = _noise(spec)
        return session

    def turn_detection_update(self, td: TurnDetection) -> dict[str, Any]:
        return {"type": "session.update", "session": {"turn_detection": td.as_dict()}}

    def connect_headers(self, api_key: str) -> list[tuple[str, str]]:
        return super().connect_headers(api_key) + [("OpenAI-Beta", "realtime=v1")]


def _noise(spec: SessionSpec) -> dict[str, str] | None:
    # Sent even when off: null is how the service is told to stop cleaning the caller's audio.
    return {"type": spec.noise_reduction} if spec.noise_reduction else None


def _optional(session: dict[str, Any], spec: SessionSpec) -> None:
    if spec.instructions:
        session["instructions"] = spec.instructions
    if spec.tools:
        session["tools"] = list(spec.tools)
        session["tool_choice"] = spec.tool_choice


GA: Dialect = _GA()
FLAT: Dialect = _Flat()
_BY_SHAPE: dict[Shape, Dialect] = {"ga": GA, "flat": FLAT}


def dialect(shape: Shape) -> Dialect:
    """The dialect for a configured ``OPENAI_API_SHAPE``."""
    return _BY_SHAPE[shape]
