"""Who may talk to this server: Twilio signatures on webhooks and on the media upgrade, the
bearer token of the API, and the call limits. (A stream's ticket is checked when it starts:
``llc.call.planner``.)
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from functools import wraps
from typing import Any, TypeVar, cast

import trio
from quart import Response, request

from llc.config import LOOPBACK_HOSTS, Settings, stream_url_for
from llc.core.refusal import Refusal, RefusalReason
from llc.log import get_logger
from llc.twilio.signature import SIGNATURE_HEADER, signature_refusal, signed_url
from llc.web.server import Server

log = get_logger("security")
BUSY_MESSAGE = "Sorry, all our lines are busy right now. Please call again in a few minutes. Goodbye."

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def signatures_checked(settings: Settings) -> bool:
    """On whenever TWILIO_AUTH_TOKEN is set, unless LLC_TWILIO_SIGNATURES=off says otherwise."""
    return bool(settings.twilio_auth_token) and settings.twilio_signatures


def posture_warnings(settings: Settings) -> list[str]:
    """What start-up must say out loud about checks that are off."""
    warnings: list[str] = []
    if settings.twilio_auth_token and not settings.twilio_signatures:
        warnings.append("LLC_TWILIO_SIGNATURES=off: Twilio signatures are NOT checked; anyone can post "
                        "to the webhooks and open media streams. Remove it in production.")
    elif not settings.twilio_auth_token and not settings.local_only:  # behind a proxy the host is loopback
        warnings.append("TWILIO_AUTH_TOKEN is not set: Twilio signatures cannot be checked; set it so "
                        "forged webhooks and streams are refused")
    if settings.admin_host not in LOOPBACK_HOSTS and not settings.api_token:
        warnings.append(f"LLC_ADMIN_HOST={settings.admin_host} is off loopback and LLC_API_TOKEN is not set: "
                        "/metrics and /debug answer 401 to everyone; set LLC_API_TOKEN or bind LLC_ADMIN_HOST=127.0.0.1")
    if not settings.stream_admission:
        warnings.append("LLC_STREAM_ADMISSION=off: media streams are accepted without this server's "
                        "one-time token (for load generators only)")
    return warnings


def log_posture(settings: Settings) -> None:
    for warning in posture_warnings(settings):
        log.warning(warning)


# ---- webhooks -------------------------------------------------------------------------


def signed_bases(server: Server) -> list[str]:
    """The base URLs Twilio may have been given for this instance: the public URL (webhooks set in
    the console) and LLC_INSTANCE_URL (TwiML stream URLs and dial callbacks behind a load balancer)."""
    bases = [server.public_url, server.settings.instance_url]
    return list(dict.fromkeys(base.rstrip("/") for base in bases if base))


def first_match(auth_token: str, urls: list[str], params: Any, signature: str | None) -> Refusal | None:
    """None when the signature matches one of ``urls``; else the refusal for the first."""
    refusals = [signature_refusal(auth_token, url, params, signature) for url in urls]
    return None if None in refusals else refusals[0]


NO_PUBLIC_URL = Refusal(RefusalReason.NO_PUBLIC_URL, "LLC_PUBLIC_URL is not set: the signed URL cannot be rebuilt")


async def webhook_refusal(server: Server) -> Refusal | None:
    """None when the current request is signed by Twilio (or checking is off)."""
    if not signatures_checked(server.settings):
        return None
    bases = signed_bases(server)
    if not bases:
        return NO_PUBLIC_URL
    form = await request.form
    query = request.query_string.decode("latin-1")
    assert server.settings.twilio_auth_token is not None
    return first_match(server.settings.twilio_auth_token, [signed_url(base, request.path, query) for base in bases],
                       form, request.headers.get(SIGNATURE_HEADER))


def twilio_signed(server: Server) -> Callable[[F], F]:
    """Route decorator: HTTP 403 unless Twilio signed the request."""

    def decorate(handler: F) -> F:
        @wraps(handler)
        async def checked(*args: Any, **kwargs: Any) -> Any:
            refusal = await webhook_refusal(server)
            if refusal is not None:
                log.warning("webhook refused: %s", refusal, extra={"path": request.path,
                                                                    "remote": request.remote_addr})
                return Response(f"forbidden: {refusal}\n", status=403)
            return await handler(*args, **kwargs)

        return cast(F, checked)  # functools.wraps keeps the handler's signature

    return decorate


# ---- the media-stream upgrade ---------------------------------------------------------


def upgrade_refusal(server: Server, path: str, headers: Mapping[str, str]) -> Refusal | None:
    """Judge a media-stream upgrade: None to accept, else why it is closed with 1008.

    ``path`` is the request target (path and query); ``headers`` any mapping whose lookup of
    the signature header works (a case-insensitive one, or lower-case keys).
    """
    if not signatures_checked(server.settings):
        return None
    bases = signed_bases(server)
    if not bases:
        return NO_PUBLIC_URL
    _, _, query = path.partition("?")
    urls = [f"{stream_url_for(base)}?{query}" if query else stream_url_for(base) for base in bases]
    signature = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower())
    assert server.settings.twilio_auth_token is not None
    return first_match(server.settings.twilio_auth_token, urls, {}, signature)


# ---- limits ---------------------------------------------------------------------------


def at_capacity(server: Server) -> bool:
    """Calls admitted plus streams announced (tickets out) reach LLC_MAX_CALLS.

    Only admitted streams count: a connection to /media that never shows a valid ticket holds no
    slot. A ticket stops counting when its stream arrives, when Twilio's final status says the
    call is over (``Dialer.on_status``), or when it expires. With LLC_STREAM_ADMISSION=off no
    stream spends its token, so tokens out say nothing about calls about to start: only running
    calls count (else every webhook would hold a slot for the token's whole TTL).
    """
    sip = len(server.calls.sip)  # SIP calls hold a line from their webhook on
    if not server.settings.stream_admission:
        return server.active_calls - sum(c.admitted for c in server.calls.sip) + sip >= server.settings.max_calls
    announced = server.tickets.outstanding(trio.current_time())
    return server.tickets.admitted + announced + sip >= server.settings.max_calls


# ---- the API --------------------------------------------------------------------------


def bearer_refusal(expected: str | None, header: str | None) -> Refusal | None:
    """None when ``Authorization: Bearer <expected>`` (compared in constant time)."""
    if not expected:
        return Refusal(RefusalReason.API_TOKEN_UNSET, "LLC_API_TOKEN is not set on the server: set it to enable the API")
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return Refusal(RefusalReason.NO_BEARER, "send Authorization: Bearer <LLC_API_TOKEN>")
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        return Refusal(RefusalReason.WRONG_TOKEN, "wrong API token")
    return None

