"""Asking Twilio's REST API what each phone number's voice webhook is (for `llc-phone doctor`).

The webhook is checked with the Twilio API, not local config files: only Twilio knows where it
really points. The official client is synchronous; callers in Trio run it in
``trio.to_thread.run_sync``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from llc.config import Settings


@dataclass(frozen=True)
class NumberWebhook:
    phone_number: str
    voice_url: str
    voice_method: str
    voice_application_sid: str | None = None


def rest_client(settings: Settings):  # -> twilio.rest.Client
    """A client for TWILIO_API_URL, built once for the project (edge/region on the real host only)."""
    from llc.twilio.rest import TwilioRest

    return TwilioRest(settings).client


def list_webhooks(settings: Settings, limit: int = 200) -> list[NumberWebhook]:
    """Every incoming number on the account with its voice webhook (raises TwilioException)."""
    client = rest_client(settings)
    return [
        NumberWebhook(n.phone_number or "?", n.voice_url or "", (n.voice_method or "POST").upper(), n.voice_application_sid)
        for n in client.incoming_phone_numbers.list(limit=limit)
    ]


def same_endpoint(configured: str, expected: str) -> bool:
    """Scheme, host and path equal; a query (e.g. ?scenario=receptionist) and trailing / are allowed."""
    a, b = urlsplit(configured), urlsplit(expected)
    return (a.scheme.lower(), (a.hostname or "").lower(), a.port, a.path.rstrip("/")) == (
        b.scheme.lower(), (b.hostname or "").lower(), b.port, b.path.rstrip("/"))
