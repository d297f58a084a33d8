"""Twilio request signatures: which URL was signed, and whether a signature matches it.

Twilio signs every webhook with ``X-Twilio-Signature`` = HMAC-SHA1(auth token, full URL +
sorted POST parameters), and the media-stream WebSocket upgrade with the same HMAC over the
``wss://`` URL alone. Behind a reverse proxy the server sees its local
address, so the URL checked is rebuilt from LLC_PUBLIC_URL (the address Twilio was given), never
from the Host header the proxy forwarded. Pure functions: no I/O, tested with plain data.
"""

from __future__ import annotations

from typing import Any

from twilio.request_validator import RequestValidator

from llc.core.refusal import Refusal, RefusalReason

SIGNATURE_HEADER = "X-Twilio-Signature"


def signed_url(public_base: str, path: str, query: str = "") -> str:
    """The URL Twilio signed: the public base (scheme + host [+ prefix]) + the request path + query."""
    url = public_base.rstrip("/") + path
    return f"{url}?{query}" if query else url


def signature_refusal(auth_token: str, url: str, params: Any, signature: str | None) -> Refusal | None:
    """None when ``signature`` is Twilio's for ``url`` and ``params``; else why it is refused.

    ``params`` is the POST form (a dict or a MultiDict), ``{}`` for a WebSocket upgrade.
    RequestValidator compares in constant time and accepts the URL with or without its
    default port, as Twilio's own signing is inconsistent about it.
    """
    if not signature:
        return Refusal(RefusalReason.NO_SIGNATURE, f"no {SIGNATURE_HEADER} header")
    if not RequestValidator(auth_token).validate(url, params, signature):
        return Refusal(RefusalReason.BAD_SIGNATURE,
                       f"{SIGNATURE_HEADER} does not match {url} (is LLC_PUBLIC_URL the address Twilio calls?)")
    return None
