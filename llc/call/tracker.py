"""The calls in progress and the recently finished ones, for health, drain, metrics and callbacks."""

from __future__ import annotations

from collections import deque
from typing import Protocol

from llc.call.bridge import CallBridge
from llc.core.record import CallRecord, EndReason


class SipLine(Protocol):
    """A SIP call as the tracker sees it (``llc.sip.call.SipCall``): no media socket of ours."""

    record: CallRecord
    admitted: bool

    def end(self, reason: EndReason, detail: str, *, hang_up: bool = False) -> None: ...

# Finished calls kept in memory for a fast find_record; every record also goes to the store.
RECENT_RECORDS = 200


class CallTracker:
    def __init__(self, recent: int = RECENT_RECORDS) -> None:
        self.active: set[CallBridge] = set()
        self.sip: set[SipLine] = set()  # SIP calls, from the webhook on (accepting, then running)
        self.records: deque[CallRecord] = deque(maxlen=recent)
        self.total = 0  # media streams accepted since start

    @property
    def admitted(self) -> int:
        """Calls whose stream started and was admitted: what LLC_MAX_CALLS counts."""
        return sum(1 for b in self.active if b.plan is not None) + sum(1 for c in self.sip if c.admitted)

    def sip_started(self, call: SipLine) -> None:
        self.sip.add(call)
        self.total += 1

    def sip_finished(self, call: SipLine) -> None:
        self.sip.discard(call)
        if call.admitted:
            self.records.append(call.record)

    def live_records(self) -> list[CallRecord]:
        """Every call in progress, media stream or SIP (the console lists them)."""
        return [b.record for b in self.active] + [c.record for c in self.sip if c.admitted]

    def started(self, bridge: CallBridge) -> None:
        self.active.add(bridge)
        self.total += 1

    def finished(self, bridge: CallBridge) -> None:
        self.active.discard(bridge)
        if bridge.plan is not None:  # a refused or never-started stream has no call to remember
            self.records.append(bridge.record)

    def find_active(self, call_sid: str) -> CallBridge | None:
        """The call in progress with this CallSid (for what Twilio tells about it mid-call)."""
        return next((b for b in self.active if b.record.call_sid == call_sid), None) if call_sid else None

    def find_record(self, call_sid: str) -> CallRecord | None:
        """The call's record, live or recently finished."""
        for record in self.live_records():
            if record.call_sid == call_sid:
                return record
        return next((r for r in reversed(self.records) if r.call_sid == call_sid), None)
