"""The one place a media-stream TwiML is built, for both directions: it issues the call's ticket.

The inbound webhook and the outbound dial hand Twilio the same thing: ``<Connect><Stream>``
to this instance's ``/media`` with the call's values as ``<Parameter>``s, one of them the
ticket (``llc.core.ticket``) that admits the stream once and names its warm session.
"""

from __future__ import annotations

from llc.config import stream_url_for
from llc.core.ticket import TICKET_PARAM, TicketBook
from llc.twilio.twiml import connect_stream


class StreamTwiml:
    def __init__(self, tickets: TicketBook) -> None:
        self.tickets = tickets

    def render(self, base_url: str, params: dict[str, str], now: float, *,
               call_sid: str | None = None, warm: str | None = None) -> tuple[str, str]:
        """The TwiML and its ticket; ``call_sid`` None until the outbound dial returns it."""
        ticket = self.tickets.issue(now, call_sid, warm)
        return connect_stream(stream_url_for(base_url), {**params, TICKET_PARAM: ticket}), ticket
