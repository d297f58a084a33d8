"""Deployment hardening, the pure parts: key presses cancel the reply, metric labels from closed sets, tickets
freed by Twilio's final status, signatures against either URL Twilio was given, trusted proxies."""

from __future__ import annotations

import ast
from pathlib import Path

import orjson
import pytest

from llc import metrics
from llc.config import Settings
from llc.core import openai_events as oa
from llc.core.actions import ToOpenAI, ToTwilio
from llc.core.record import CallRecord, EndReason
from llc.core.ticket import TicketBook
from llc.twilio.signature import signature_refusal
from tests.unit.test_modes_units import _dtmf, _ivr_call

LLC = Path(__file__).resolve().parents[2] / "llc"


# ---- a key press stops the agent's reply ----------------------------------------


def test_a_key_press_cancels_the_active_response_even_with_interrupt_response_on() -> None:
    core, _ = _ivr_call()
    assert core.talk.spec.turn_detection.interrupt_response  # the default: the service cancels on *speech*
    core.on_openai(oa.from_json({"type": "response.created", "response": {"id": "r1"}}), 1.0)
    core.on_openai(oa.from_json({"type": "response.output_audio.delta", "item_id": "i1", "response_id": "r1", "delta": "A" * 1600}), 1.1)
    actions = _dtmf(core, "9", 1.1)  # not on the menu: the agent is stopped, then told so
    sent = [a for a in actions if isinstance(a, (ToOpenAI, ToTwilio))]
    kinds = [orjson.loads(a.text)["event"] if isinstance(a, ToTwilio) else orjson.loads(a.text)["type"] for a in sent]
    # Barge-in order: clear (what the caller hears) first, cancel, then truncate (delete: the
    # key came as the audio went out, so none of it was heard); the follow-up response.create waits for the cancelled
    # response's done (the gate queues it).
    assert kinds[:3] == ["clear", "response.cancel", "conversation.item.delete"], kinds
    assert "response.create" not in kinds
    done = core.on_openai(oa.from_json({"type": "response.done", "response": {"id": "r1", "status": "cancelled"}}), 1.6)
    assert "response.create" in [orjson.loads(a.text)["type"] for a in done if isinstance(a, ToOpenAI)]


# ---- metrics: every label value from a closed set -------------------------------


def _labels(name: str) -> set[tuple[tuple[str, str], ...]]:
    return {tuple(sorted(s.labels.items())) for fam in metrics.REGISTRY.collect() for s in fam.samples
            if s.name == name}


def test_a_forged_direction_or_error_code_never_becomes_a_label() -> None:
    metrics.record_call(CallRecord(direction="x' } evil-label-123", end_reason="made_up_reason",
                                   openai_errors={"attacker_code_456": 1}))
    values = {v for labels in _labels("llc_calls_total") | _labels("llc_openai_errors_total") for _, v in labels}
    assert not {"x' } evil-label-123", "made_up_reason", "attacker_code_456"} & values
    assert metrics.OTHER in values


def _end_reasons_given() -> set[str]:
    """Every ``EndReason.X`` the product names (the simulators' own endings are not records')."""
    given: set[str] = set()
    for path in LLC.rglob("*.py"):
        if "kit" in path.relative_to(LLC).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "EndReason":
                given.add(node.attr)
    return given


def test_the_outcome_labels_are_the_end_reasons_and_each_is_given_somewhere() -> None:
    assert metrics.OUTCOMES == {r.value for r in EndReason} | {"unknown"}
    # A reason nothing gives would be a label that never moves (and a record nobody writes).
    assert _end_reasons_given() == {r.name for r in EndReason}


# ---- a ticket is freed by Twilio's final status ------------------------------------


def test_final_status_frees_the_ticket_even_when_it_beats_the_bind() -> None:
    book = TicketBook(ttl_s=300)
    for n in range(3):
        book.bind(book.issue(0.0), f"CA{n}")
    assert book.outstanding(1.0) == 3 and book.waiting_calls(1.0) == {"CA0", "CA1", "CA2"}
    book.call_ended("CA0")  # no-answer
    assert book.outstanding(1.0) == 2
    book.call_ended("CA9")  # busy, reported before calls.create returned
    book.bind(book.issue(1.0), "CA9")
    assert book.outstanding(1.0) == 2 and "CA9" not in book.waiting_calls(1.0)
    token = book.issue(1.0, "CA5")
    assert book.admit(token, "CA5", 2.0).refusal is None and book.admitted == 1
    book.call_ended("CA5")  # completed after its stream: nothing unspent, the live stream is the stream's
    assert book.admitted == 1
    book.release("CA5")
    assert book.admitted == 0


# ---- signatures against the URL Twilio was given --------------------------------


class _FakeServer:
    def __init__(self, public: str | None, instance: str | None) -> None:
        self.public_url = public
        self.settings = Settings(public_url=public, instance_url=instance, twilio_auth_token="tok")


def test_signed_bases_are_the_public_and_the_instance_url() -> None:
    from llc.web.security import first_match, signed_bases

    server = _FakeServer("https://voice.example.com/", "https://voice.example.com/i/a")
    bases = signed_bases(server)  # type: ignore[arg-type]
    assert bases == ["https://voice.example.com", "https://voice.example.com/i/a"]
    from twilio.request_validator import RequestValidator

    url = "https://voice.example.com/i/a/twilio/status"
    sig = RequestValidator("tok").compute_signature(url, {"CallSid": "CA1"})
    urls = [b + "/twilio/status" for b in bases]
    assert first_match("tok", urls, {"CallSid": "CA1"}, sig) is None
    assert first_match("tok", urls[:1], {"CallSid": "CA1"}, sig) == signature_refusal("tok", urls[0], {"CallSid": "CA1"}, sig)
    assert first_match("tok", urls, {"CallSid": "CA2"}, sig) is not None


# ---- forwarded headers only from configured proxies ------------------------------


def test_trusted_proxies_are_parsed_and_bad_entries_named() -> None:
    from llc.web.proxies import is_trusted

    nets = Settings(trusted_proxies="127.0.0.1, 10.0.0.0/8,::1").trusted_networks
    assert is_trusted("127.0.0.1", nets) and is_trusted("10.2.3.4", nets) and is_trusted("::1", nets)
    assert not is_trusted("192.168.1.1", nets) and not is_trusted("not-an-ip", nets) and not is_trusted(None, nets)
    assert Settings().trusted_networks == ()
    with pytest.raises(ValueError, match="LLC_TRUSTED_PROXIES entry 'nginx'"):
        _ = Settings(trusted_proxies="127.0.0.1,nginx").trusted_networks


async def test_forwarded_headers_are_applied_only_for_a_trusted_peer() -> None:
    from llc.web.proxies import behind_proxies

    seen: list[tuple[object, object]] = []

    async def app(scope: dict, receive: object, send: object) -> None:
        seen.append((scope["client"], scope["scheme"]))

    wrapped = behind_proxies(app, Settings(trusted_proxies="127.0.0.1").trusted_networks)
    headers = [(b"x-forwarded-for", b"203.0.113.9"), (b"x-forwarded-proto", b"https")]
    for peer in ("127.0.0.1", "198.51.100.7"):
        await wrapped({"type": "http", "client": (peer, 1234), "scheme": "http", "headers": headers}, None, None)
    assert seen == [(("203.0.113.9", 0), "https"), (("198.51.100.7", 1234), "http")]
    assert behind_proxies(app, ()) is app  # none configured: nothing wraps the app


# ---- docs/security.md: every test the threat table names exists -----------------------------


def test_the_threat_table_names_tests_that_exist() -> None:
    import re

    doc = (LLC.parent / "docs" / "security.md").read_text()
    table = doc[doc.index("## Threat table"):]
    table = table[: table.index("\n## ", 5)]
    named = re.findall(r"`((?:unit|e2e)/test_\w+\.py)(?:::(\w+))?`", table)
    assert len(named) >= 10
    for path, test in named:
        source = LLC.parent / "tests" / path
        assert source.exists(), path
        if test:
            assert re.search(rf"def {test}\(", source.read_text()), f"{path}::{test}"


def test_an_admin_listener_off_loopback_without_a_token_is_warned() -> None:
    from llc.web.security import posture_warnings

    assert not [w for w in posture_warnings(Settings()) if "LLC_ADMIN_HOST" in w]
    assert not [w for w in posture_warnings(Settings(admin_host="10.0.0.5", api_token="t")) if "LLC_ADMIN_HOST" in w]
    [warning] = [w for w in posture_warnings(Settings(admin_host="10.0.0.5")) if "LLC_ADMIN_HOST" in w]
    assert "set LLC_API_TOKEN" in warning
