"""The per-call ticket as data: one token admits the stream once and names its warm session."""

from __future__ import annotations

from llc.core.refusal import Refusal, RefusalReason
from llc.core.ticket import TICKET_PARAM, TicketBook
from llc.kit.sim.fake_caller import parse_twiml
from llc.twilio.stream_twiml import StreamTwiml


def test_the_ticket_names_the_warm_session_of_its_own_call_only() -> None:
    book = TicketBook(ttl_s=60)
    token = book.issue(0.0, "CA1", warm="w1")
    assert book.warm_of(token) == "w1"
    assert book.admit(token, "CA2", 1.0).warm is None  # someone else's call: refused, no session
    admitted = book.admit(token, "CA1", 1.0)
    assert admitted.refusal is None and admitted.warm == "w1"
    assert book.admit(token, "CA1", 1.0).warm is None  # spent: once only


def test_with_admission_off_a_stream_is_let_in_but_gets_no_foreign_session() -> None:
    book = TicketBook(ttl_s=60)
    token = book.issue(0.0, "CA1", warm="w1")
    assert book.admit(None, "CAx", 1.0, enforce=False).refusal is None  # no ticket at all: let in
    foreign = book.admit(token, "CAx", 1.0, enforce=False)
    assert foreign.refusal is None and foreign.warm is None
    assert book.refused == 0  # nothing refused while off
    assert book.admit(token, "CA1", 1.0, enforce=False).warm == "w1"  # the rightful call still claims it


def test_one_twiml_builder_gives_each_call_one_ticket_parameter() -> None:
    book = TicketBook(ttl_s=60)
    twiml, ticket = StreamTwiml(book).render("https://voice.example.com", {"direction": "outbound"}, 0.0, warm="w9")
    url, params = parse_twiml(twiml)
    assert url == "wss://voice.example.com/media"
    assert params == {"direction": "outbound", TICKET_PARAM: ticket}
    assert book.outstanding(1.0) == 1 and book.warm_of(ticket) == "w9"
    book.bind(ticket, "CA7")  # the dial returned its CallSid
    assert book.admit(ticket, "CA8", 1.0).refusal == Refusal(RefusalReason.ANOTHER_CALLS_TICKET, "stream token belongs to another call")
