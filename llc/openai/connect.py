"""Opening a Realtime WebSocket: URL and headers per shape, errors turned into plain words."""

from __future__ import annotations

import trio
import trio_websocket

from llc.ws import fastws
from llc.ws.transport import Transport, TrioWebsocketTransport
from llc.config import Settings
from llc.core.dialect import dialect
from llc.core.session import connect_url

# Audio deltas are small, but a session.updated echo with a long prompt and tools is not.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class OpenAIConnectError(Exception):
    """The Realtime socket could not be opened; the message names the likely fix."""


def _timeout_error(settings: Settings) -> OpenAIConnectError:
    return OpenAIConnectError(
        f"no answer from {settings.openai_realtime_url} within {settings.openai_connect_timeout_s:g} s; "
        "check the network path to OpenAI (status.openai.com) or raise OPENAI_CONNECT_TIMEOUT_S"
    )


def _refused_error(status: int | None) -> OpenAIConnectError:
    fix = "check OPENAI_API_KEY" if status in (401, 403) else "check OPENAI_REALTIME_URL and OPENAI_MODEL"
    return OpenAIConnectError(f"OpenAI refused the WebSocket with HTTP {status}; {fix}")


def _url_and_headers(settings: Settings) -> tuple[str, list[tuple[str, str]]]:
    url = connect_url(settings.openai_realtime_url, settings.openai_model)
    # The simulator accepts any bearer token; the real service never sees this placeholder
    # because `llc serve` refuses to start without a key for a non-loopback URL.
    key = settings.openai_api_key or "sk-llc-simulator"
    return url, dialect(settings.openai_api_shape).connect_headers(key)


async def connect_openai(nursery: trio.Nursery, settings: Settings) -> Transport:
    """Open the Realtime socket on the configured engine (LLC_WS_ENGINE)."""
    if settings.ws_engine == "fast":
        return await _connect_fast(settings)
    return await _connect_trio_websocket(nursery, settings)


async def _connect_fast(settings: Settings) -> Transport:
    """The fast engine: no helper task, so ``nursery`` is not needed."""
    url, headers = _url_and_headers(settings)
    try:
        with trio.fail_after(settings.openai_connect_timeout_s):
            return await fastws.connect(url, headers, max_size=MAX_MESSAGE_BYTES)
    except trio.TooSlowError:
        raise _timeout_error(settings) from None
    except fastws.HandshakeFailed as exc:
        if exc.status is not None:
            raise _refused_error(exc.status) from None
        raise OpenAIConnectError(f"could not connect to {settings.openai_realtime_url}: {exc}; check OPENAI_REALTIME_URL") from None
    except (OSError, trio.BrokenResourceError) as exc:  # refused, DNS, TLS verify, reset mid-handshake
        raise OpenAIConnectError(
            f"could not connect to {settings.openai_realtime_url}: {_reason(exc)}; check OPENAI_REALTIME_URL"
        ) from None


def _reason(exc: BaseException) -> str:
    # trio wraps TLS failures (e.g. certificate verify failed) in an empty BrokenResourceError.
    return str(exc) or str(exc.__cause__ or "") or type(exc).__name__


async def _connect_trio_websocket(nursery: trio.Nursery, settings: Settings) -> Transport:
    """trio-websocket (wsproto); its reader task lives in ``nursery`` (the call's)."""
    url, str_headers = _url_and_headers(settings)
    headers = [(k.encode(), v.encode()) for k, v in str_headers]
    try:
        with trio.fail_after(settings.openai_connect_timeout_s):
            ws = await trio_websocket.connect_websocket_url(
                nursery, url, extra_headers=headers, max_message_size=MAX_MESSAGE_BYTES
            )
    except trio.TooSlowError:
        raise _timeout_error(settings) from None
    except trio_websocket.ConnectionRejected as exc:
        raise _refused_error(exc.status_code) from None
    except (OSError, trio_websocket.HandshakeError) as exc:
        raise OpenAIConnectError(
            f"could not connect to {settings.openai_realtime_url}: {exc}; check OPENAI_REALTIME_URL"
        ) from None
    return TrioWebsocketTransport(ws)
