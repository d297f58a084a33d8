"""Opening a Realtime WebSocket on the fast engine: URL and headers per dialect, errors in plain words."""

from __future__ import annotations

import functools
import ssl

import trio

from llc.config import Settings
from llc.core.dialect import dialect
from llc.core.session import connect_url
from llc.ws import handshake
from llc.ws.transport import HandshakeFailed, Transport

# Audio deltas are small, but a session.updated echo with a long prompt and tools is not.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class OpenAIConnectError(Exception):
    """The Realtime socket could not be opened; the message names the likely fix."""


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's one TLS client context, made at start-up (``llc.web.app.serve``).

    Building one loads the system trust store: 17-33 ms of blocking work on the Trio thread
    measured on the test box, a stall for every call in flight if it happened per connect.
    The context is reusable across connections (it holds settings and trust, not session state).
    """
    return ssl.create_default_context()


async def connect_openai(settings: Settings) -> Transport:
    """Open the Realtime socket, bounded by OPENAI_CONNECT_TIMEOUT_S; no helper task is left behind."""
    url = connect_url(settings.openai_realtime_url, settings.openai_model)
    # The simulator accepts any bearer token; the real service never sees this placeholder
    # because `llc-phone serve` refuses to start without a key for a non-loopback URL.
    key = settings.openai_api_key or "sk-llc-simulator"
    headers = dialect(settings.openai_api_shape).connect_headers(key)
    try:
        with trio.fail_after(settings.openai_connect_timeout_s):
            ws = await handshake.connect(url, headers, max_size=MAX_MESSAGE_BYTES,
                                      ssl_context=tls_context() if url.startswith("wss:") else None)
        ws.send_stall_s = settings.send_stall_s  # a peer that stops reading is a dead leg (LLC_SEND_STALL_S)
        return ws
    except trio.TooSlowError:
        raise OpenAIConnectError(
            f"no answer from {settings.openai_realtime_url} within {settings.openai_connect_timeout_s:g} s; "
            "check the network path to OpenAI (status.openai.com) or raise OPENAI_CONNECT_TIMEOUT_S"
        ) from None
    except HandshakeFailed as exc:
        if exc.status is not None:
            fix = "check OPENAI_API_KEY" if exc.status in (401, 403) else "check OPENAI_REALTIME_URL and OPENAI_MODEL"
            raise OpenAIConnectError(f"OpenAI refused the WebSocket with HTTP {exc.status}; {fix}") from None
        raise OpenAIConnectError(f"could not connect to {settings.openai_realtime_url}: {exc}; check OPENAI_REALTIME_URL") from None
    except (OSError, trio.BrokenResourceError) as exc:  # refused, DNS, TLS verify, reset mid-handshake
        raise OpenAIConnectError(
            f"could not connect to {settings.openai_realtime_url}: {_reason(exc)}; check OPENAI_REALTIME_URL"
        ) from None


def _reason(exc: BaseException) -> str:
    # trio wraps TLS failures (e.g. certificate verify failed) in an empty BrokenResourceError.
    return str(exc) or str(exc.__cause__ or "") or type(exc).__name__
