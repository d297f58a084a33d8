"""Turn policy: when a response may be created, and the first-turn → later-turn switch. Pure.

``ResponseGate`` keeps ``response.create`` from ever meeting an active response (the service
answers ``conversation_already_has_active_response``): requests made while one is active, or
while our own create is still unanswered, wait in order for ``response.done``.

``TurnPolicy`` holds the turn levers: eager VAD and a lean tool set for the first turn (the
callee's "hello" must be answered fast and cheaply), then calmer VAD and the full tool set.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from llc.core.dialect import Dialect
from llc.core.playout import MARK_EVERY_MS
from llc.core.session import Eagerness, SessionSpec, TurnDetection


class ResponseGate:
    def __init__(self) -> None:
        self.active_id: str | None = None  # response.created seen, response.done not yet
        self._in_flight: dict[str, Any] | None = None  # our create, not yet answered
        self._queue: deque[dict[str, Any]] = deque()
        # Creates we sent, by event_id: an error names the event that caused it, so a create
        # that bounced off a response the VAD started can be found and sent again.
        self._sent: dict[str, dict[str, Any]] = {}
        self._seq = 0
        self.done_count = 0
        # A response.cancel we sent, and whether that response's own response.done reached us
        # after it: then the two crossed on the wire, and the service's answer to the cancel,
        # response_cancel_not_active, is the expected end of that race rather than a fault.
        self._cancelled: str | None = None
        self._done_after_cancel = False

    @property
    def busy(self) -> bool:
        return self.active_id is not None or self._in_flight is not None

    @property
    def queued(self) -> int:
        return len(self._queue)

    def request(self, create: dict[str, Any]) -> list[dict[str, Any]]:
        """Ask for a response; returns the events to send now (empty when it had to wait)."""
        if self.busy:
            self._queue.append(create)
            return []
        return [self._send(create)]

    def _send(self, create: dict[str, Any]) -> dict[str, Any]:
        self._seq += 1
        create = {**create, "event_id": f"llc_rc{self._seq}"}
        self._sent[create["event_id"]] = create
        if len(self._sent) > 16:
            self._sent.pop(next(iter(self._sent)))
        self._in_flight = create
        return create

    def on_created(self, response_id: str) -> None:
        self.active_id = response_id or "?"
        self._in_flight = None

    def cancel_sent(self) -> None:
        """We sent response.cancel for the active response."""
        self._cancelled, self._done_after_cancel = self.active_id, False

    def cancel_crossed(self) -> bool:
        """The service said no response was active to cancel: True (once) when the cancelled
        response's response.done came after our cancel went out, i.e. the two crossed."""
        crossed, self._done_after_cancel, self._cancelled = self._done_after_cancel, False, None
        return crossed

    def on_done(self, response_id: str) -> list[dict[str, Any]]:
        unnamed = not response_id or self._cancelled == "?"  # a response without an id to compare
        if self._cancelled is not None and (unnamed or response_id == self._cancelled):
            self._done_after_cancel = True
        if self.active_id is not None and response_id and response_id != self.active_id and self.active_id != "?":
            return []  # a stale done (e.g. of an out-of-band response); ours is still running
        self.active_id = None
        self.done_count += 1
        return self._next()

    def hold(self, response_id: str) -> None:
        """A response we did not create is running (a warm session's priming): creates wait."""
        if self.active_id is None:
            self.active_id = response_id

    def release(self, response_id: str) -> list[dict[str, Any]]:
        """That response ended (or ``"?"``: give up waiting): the creates it held may go now."""
        if self._cancelled is not None and response_id == self._cancelled:  # e.g. a cancelled priming reply
            self._done_after_cancel = True
        if self.active_id is not None and self.active_id in (response_id, "?"):
            self.active_id = None
        return self._next()

    def on_already_active(self, event_id: str | None) -> None:
        """Our create raced a response the service started itself: send it again after that one."""
        create = self._sent.pop(event_id or "", None)
        if create is None:
            return
        if self._in_flight is create:
            self._in_flight = None
        self._queue.appendleft({k: v for k, v in create.items() if k != "event_id"})

    def _next(self) -> list[dict[str, Any]]:
        if self.busy or not self._queue:
            return []
        return [self._send(self._queue.popleft())]


@dataclass(frozen=True)
class TurnPolicy:
    first_eagerness: Eagerness = "high"
    later_eagerness: Eagerness = "medium"
    switch_after_responses: int = 1  # 0 disables the switch
    lean_tools: tuple[str, ...] = ("end_call",)
    full_tools: tuple[str, ...] = ("end_call", "transfer_call")
    tool_filler_after_ms: int = 1500  # a tool slower than this gets a short spoken filler (0: never)
    filler_instructions: str = "In a few words, tell the caller you are still checking and will be right back."
    tool_timeout_s: float = 10.0  # then the model gets an error output and the call goes on
    hangup_grace_s: float = 15.0  # end_call hangs up by mark; this bounds a goodbye that never plays
    mark_every_ms: int = MARK_EVERY_MS  # the clock's calibration vs Twilio frames (0: a mark per delta)

    def first_turn_detection(self, base: TurnDetection) -> TurnDetection:
        return _with_eagerness(base, self.first_eagerness)

    def later_turn_detection(self, base: TurnDetection) -> TurnDetection:
        return _with_eagerness(base, self.later_eagerness)


def _with_eagerness(td: TurnDetection, eagerness: Eagerness) -> TurnDetection:
    return TurnDetection(td.type, eagerness, td.create_response, td.interrupt_response)


@dataclass
class SwitchState:
    """Makes the first-turn → later-turn switch happen exactly once."""

    policy: TurnPolicy = field(default_factory=TurnPolicy)
    switched: bool = False

    def due(self, responses_done: int) -> bool:
        if self.switched or self.policy.switch_after_responses <= 0:
            return False
        if responses_done >= self.policy.switch_after_responses:
            self.switched = True
            return True
        return False


def first_turn_spec(spec: SessionSpec, policy: TurnPolicy, tool_schemas: dict[str, dict[str, Any]]) -> SessionSpec:
    """The session a call starts with: first-turn eagerness and the lean tool set.

    Used by the call core and by warm sessions alike, so a prewarmed call starts exactly as a
    cold one would.
    """
    tools = _named(tool_schemas, policy.lean_tools) if tool_schemas else spec.tools
    return replace(spec, turn_detection=policy.first_turn_detection(spec.turn_detection), tools=tools)


def _named(tool_schemas: dict[str, dict[str, Any]], names: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    return tuple(tool_schemas[n] for n in names if n in tool_schemas)


def later_spec(spec: SessionSpec, policy: TurnPolicy, tool_schemas: dict[str, dict[str, Any]]) -> SessionSpec:
    """The session after the first-turn switch: later eagerness and the full tool set."""
    tools = _named(tool_schemas, policy.full_tools) if tool_schemas else spec.tools
    return replace(spec, turn_detection=policy.later_turn_detection(spec.turn_detection), tools=tools)


def switch_update(dialect: Dialect, spec: SessionSpec, policy: TurnPolicy,
                  tool_schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The one ``session.update`` of the first-turn switch: calmer VAD and the full tool set."""
    update = dialect.turn_detection_update(policy.later_turn_detection(spec.turn_detection))
    if tool_schemas:
        update["session"].update(tools=list(_named(tool_schemas, policy.full_tools)), tool_choice=spec.tool_choice)
    return update
