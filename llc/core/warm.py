"""A warm session's decisions while nobody is on the line yet (prewarm, pre-accept). Pure.

Opened while the phone rings: connect, ``session.update``, wait for ``session.updated``, then
prime inference with a text-only ``response.create`` whose output is thrown away, so the
first real reply does not pay for a cold inference path. The priming response is out of band
(``conversation: "none"``) so it leaves nothing in the conversation the callee's first turn
would be answered against, and it asks for a handful of tokens so it is over long before
anyone says "hello".
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from llc.core import openai_events as oa
from llc.core.actions import Log, SessionAction, ToOpenAI, json_text
from llc.core.dialect import Dialect
from llc.core.session import SessionSpec

PRIMING_INSTRUCTIONS = "Reply with the single word: ready."
PRIMING_MAX_TOKENS = 16


class WarmPhase(Enum):
    CONNECTING = "connecting"
    CONFIGURING = "configuring"  # session.update sent
    PRIMING = "priming"  # configured (usable); the priming response runs
    READY = "ready"  # configured and primed
    FAILED = "failed"  # ``reason`` says why


def priming_response(dialect: Dialect) -> dict[str, Any]:
    """Text only, out of band, a few tokens: warms the inference path, makes no audio."""
    event = dialect.text_only_response(PRIMING_INSTRUCTIONS)
    event["response"]["conversation"] = "none"
    event["response"][dialect.max_tokens_key] = PRIMING_MAX_TOKENS
    return event


class WarmCore:
    """``phase``: CONNECTING → CONFIGURING → PRIMING → READY, or FAILED (``reason`` says why)."""

    def __init__(self, dialect: Dialect, spec: SessionSpec, *, prime: bool = True) -> None:
        self.dialect = dialect
        self.spec = spec
        self.prime = prime
        self.phase = WarmPhase.CONNECTING
        self.reason = ""
        self.audio_deltas = 0  # must stay 0: a warm session never speaks
        self.priming_id: str | None = None  # the priming response, once the service named it

    @property
    def priming_in_flight(self) -> str | None:
        """A priming response still running: its id, "?" before the service named it; else None."""
        return (self.priming_id or "?") if self.phase is WarmPhase.PRIMING else None

    @property
    def settled(self) -> bool:
        """Usable or failed. A session is usable once configured (``session.updated``): the
        priming response may still be in flight; the call treats it as out of band."""
        return self.phase in (WarmPhase.PRIMING, WarmPhase.READY, WarmPhase.FAILED)

    def on_open(self) -> list[SessionAction]:
        self.phase = WarmPhase.CONFIGURING
        return [ToOpenAI(json_text(self.dialect.session_update(self.spec)))]

    def on_text(self, text: str | bytes) -> list[SessionAction]:
        try:
            event = oa.parse(text)
        except oa.EventError as exc:
            return [Log("warning", f"OpenAI sent {exc} to a warm session; ignored")]
        return self.on_event(event)

    def on_event(self, event: oa.OpenAIEvent) -> list[SessionAction]:
        phase = self.phase
        match event:
            case oa.ServiceError():
                return self._on_error(event)
            case oa.AudioDelta():
                self.audio_deltas += 1
            case oa.SessionUpdated() if phase is WarmPhase.CONFIGURING:
                if not self.prime:
                    self.phase = WarmPhase.READY
                    return [Log("debug", "warm session configured")]
                self.phase = WarmPhase.PRIMING
                return [ToOpenAI(json_text(priming_response(self.dialect)))]
            case oa.ResponseCreated(response_id) if phase is WarmPhase.PRIMING:
                self.priming_id = response_id or None
            case oa.ResponseDone() if phase is WarmPhase.PRIMING:
                self.phase = WarmPhase.READY
                return [Log("debug", "warm session configured and primed")]
            case _:
                pass  # nothing else matters to a session without a caller
        return []

    def _on_error(self, error: oa.ServiceError) -> list[SessionAction]:
        code = error.name
        fields: dict[str, object] = {"code": code, "param": error.param, "openai_message": error.message}
        if self.phase is WarmPhase.CONFIGURING:
            self.phase, self.reason = WarmPhase.FAILED, self.dialect.hint(error.code, error.param)
            return [Log("error", self.reason, fields)]
        if self.phase is WarmPhase.PRIMING:
            # The session is configured; a failed warm-up costs a little latency, not the call.
            self.phase = WarmPhase.READY
            return [Log("warning", f"inference priming failed ({code}); the warm session is still usable", fields)]
        return [Log("warning", f"OpenAI error {code} on a warm session", fields)]
