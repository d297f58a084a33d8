"""The per-call ticket: one token in the TwiML that admits the stream and names its warm session.

Every TwiML this server hands out (inbound webhook, outbound dial) carries one ticket as a
``<Parameter>``; the stream's ``start`` frame brings it back. A ticket works once, only for
the CallSid it was bound to, and only until it expires; a call has at most one live stream.
The ticket also says which warm OpenAI session (pre-accept, prewarm) belongs to the call, so
the stream needs no second token to claim it. Pure bookkeeping: the caller passes the clock.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass

from llc.core.refusal import Refusal, RefusalReason

# The wire name predates the ticket naming the warm session too; Twilio echoes it in ``start``.
TICKET_PARAM = "stream_token"
# Unused tickets kept at most (oldest dropped first): a flood of webhooks cannot grow memory.
MAX_TICKETS = 10_000


@dataclass
class Ticket:
    token: str
    expires: float
    call_sid: str | None  # None until the outbound dial returns its CallSid
    warm: str | None = None  # the warm session's key in the registry, if the call has one


@dataclass(frozen=True)
class Admission:
    """What a stream's ticket said: ``refusal`` None admits it; ``warm`` names its warm session."""

    refusal: Refusal | None
    warm: str | None = None


class TicketBook:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._tickets: OrderedDict[str, Ticket] = OrderedDict()
        self._live: set[str] = set()  # CallSids with an admitted stream still running
        # Calls Twilio said were over before their ticket was bound (the final status beat the
        # dial's answer): bind() drops their ticket at once. Bounded like the tickets.
        self._ended: deque[str] = deque(maxlen=1000)
        self.refused = 0

    def issue(self, now: float, call_sid: str | None = None, warm: str | None = None) -> str:
        """A new one-time ticket, bound to ``call_sid`` if it is known already."""
        self._prune(now)
        token = secrets.token_urlsafe(18)
        self._tickets[token] = Ticket(token, now + self.ttl_s, call_sid or None, warm)
        while len(self._tickets) > MAX_TICKETS:
            self._tickets.popitem(last=False)
        return token

    def bind(self, token: str, call_sid: str) -> None:
        """The outbound dial returned: from now on only this call's stream may use the ticket."""
        ticket = self._tickets.get(token)
        if ticket is not None:
            ticket.call_sid = call_sid
            if call_sid in self._ended:
                del self._tickets[token]

    def call_ended(self, call_sid: str) -> None:
        """Twilio's final status (busy, no-answer, failed, canceled, completed): a stream that has
        not come will not, so its ticket stops holding a slot now rather than at its expiry."""
        unspent = [token for token, ticket in self._tickets.items() if ticket.call_sid == call_sid]
        for token in unspent:
            del self._tickets[token]
        if not unspent and call_sid not in self._live:
            self._ended.append(call_sid)

    def warm_of(self, token: str) -> str | None:
        """The warm session an unspent ticket names (for operators' probes and tests)."""
        ticket = self._tickets.get(token)
        return ticket.warm if ticket is not None else None

    def outstanding(self, now: float) -> int:
        """Tickets handed out whose streams have not arrived yet: calls about to start."""
        self._prune(now)
        return len(self._tickets)

    def waiting_calls(self, now: float) -> set[str]:
        """CallSids whose TwiML is out but whose stream has not arrived (ringing, or just answered)."""
        self._prune(now)
        return {ticket.call_sid for ticket in self._tickets.values() if ticket.call_sid}

    @property
    def admitted(self) -> int:
        """Streams admitted by a ticket and still running: the calls that count against the limit."""
        return len(self._live)

    def admit(self, token: str | None, call_sid: str, now: float, *, enforce: bool = True) -> Admission:
        """Spend the ticket for this stream. ``enforce`` False (LLC_STREAM_ADMISSION=off) never
        refuses, but a valid ticket still names its warm session."""
        reason = self._check(token, call_sid, now)
        if reason is None:
            assert token is not None  # _check refuses a stream without one
            ticket = self._tickets.pop(token)
            self._live.add(call_sid)
            return Admission(None, ticket.warm)
        if not enforce:
            return Admission(None)
        self.refused += 1
        return Admission(reason)

    def _check(self, token: str | None, call_sid: str, now: float) -> Refusal | None:
        if not token:
            return Refusal(RefusalReason.NO_TICKET,
                           f"no {TICKET_PARAM} parameter: the stream did not come from TwiML this server answered")
        if not call_sid:
            return Refusal(RefusalReason.NO_CALL_SID, "the start frame has no callSid")
        ticket = self._tickets.get(token)
        if ticket is None:
            return Refusal(RefusalReason.UNKNOWN_TICKET, "unknown or already used stream token")
        if now > ticket.expires:
            del self._tickets[token]
            return Refusal(RefusalReason.TICKET_EXPIRED, "stream token expired")
        if ticket.call_sid is not None and ticket.call_sid != call_sid:
            return Refusal(RefusalReason.ANOTHER_CALLS_TICKET, "stream token belongs to another call")
        if call_sid in self._live:
            return Refusal(RefusalReason.STREAM_EXISTS, "this call already has a media stream")
        return None

    def release(self, call_sid: str) -> None:
        """The admitted stream of ``call_sid`` ended."""
        self._live.discard(call_sid)

    def _prune(self, now: float) -> None:
        while self._tickets:
            token, ticket = next(iter(self._tickets.items()))
            if ticket.expires >= now:
                break  # issued in order with one TTL: the rest are younger
            del self._tickets[token]
