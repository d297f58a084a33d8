"""A warm session's decisions while nobody is on the line yet (prewarm, later pre-accept). Pure.

The seed's pre-warm: open the socket, ``session.update``, wait for ``session.updated``, then
prime inference with a text-only ``response.create`` whose output is thrown away, all while
the phone rings. The priming response is out of band (``conversation: "none"``) so it leaves
nothing in the conversation the callee's first turn would be answered against, and it asks
for a handful of tokens so it is over long before anyone says "hello".
"""

from __future__ import annotations

from typing import Any

import orjson

from llc.core.dialect import Dialect, canonical_event
from llc.core.session import SessionSpec
from llc.core.actions import Action, Log, ToOpenAI

PRIMING_INSTRUCTIONS = "Reply with the single word: ready."
PRIMING_MAX_TOKENS = 16


def priming_response(dialect: Dialect) -> dict[str, Any]:
    """Text only, out of band, a few tokens: warms the inference path, makes no audio."""
    event = dialect.text_only_response(PRIMING_INSTRUCTIONS)
    event["response"]["conversation"] = "none"
    event["response"][dialect.max_tokens_key] = PRIMING_MAX_TOKENS
    return event


class WarmCore:
    """``phase``: connecting → configuring → priming → ready, or failed (``reason`` says why)."""

    def __init__(self, dialect: Dialect, spec: SessionSpec, *, prime: bool = True) -> None:
        self.dialect = dialect
        self.spec = spec
        self.prime = prime
        self.phase = "connecting"
        self.reason = ""
        self.audio_deltas = 0  # must stay 0: a warm session never speaks

    @property
    def settled(self) -> bool:
        """Usable or failed. A session is usable once configured (``session.updated``): the
        priming response may still be in flight; the call treats it as out of band."""
        return self.phase in ("priming", "ready", "failed")

    def on_open(self) -> list[Action]:
        self.phase = "configuring"
        return [ToOpenAI(orjson.dumps(self.dialect.session_update(self.spec)).decode())]

    def on_text(self, text: str | bytes) -> list[Action]:
        try:
            event = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [Log("warning", "OpenAI sent a frame that is not JSON to a warm session; ignored")]
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return []
        return self.on_event(event)

    def on_event(self, event: dict[str, Any]) -> list[Action]:
        kind = canonical_event(event["type"])
        if kind == "error":
            return self._on_error(event.get("error") if isinstance(event.get("error"), dict) else {})
        if kind == "response.output_audio.delta":
            self.audio_deltas += 1
        if kind == "session.updated" and self.phase == "configuring":
            if not self.prime:
                self.phase = "ready"
                return [Log("debug", "warm session configured")]
            self.phase = "priming"
            return [ToOpenAI(orjson.dumps(priming_response(self.dialect)).decode())]
        if kind == "response.done" and self.phase == "priming":
            self.phase = "ready"
            return [Log("debug", "warm session configured and primed")]
        return []

    def _on_error(self, error: dict[str, Any]) -> list[Action]:
        code = str(error.get("code") or error.get("type") or "unknown")
        fields = {"code": code, "param": error.get("param"), "openai_message": error.get("message")}
        if self.phase == "configuring":
            self.phase, self.reason = "failed", self.dialect.hint(error)
            return [Log("error", self.reason, fields)]
        if self.phase == "priming":
            # The session is configured; a failed warm-up costs a little latency, not the call.
            self.phase = "ready"
            return [Log("warning", f"inference priming failed ({code}); the warm session is still usable", fields)]
        return [Log("warning", f"OpenAI error {code} on a warm session", fields)]
