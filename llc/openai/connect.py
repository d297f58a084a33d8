"""Opening a Realtime WebSocket: URL and headers per shape, errors turned into plain words."""

from __future__ import annotations

import trio
import trio_websocket

from llc.call.transport import TrioWebsocketTransport
from llc.config import Settings
from llc.core.session import connect_headers, connect_url

# Audio deltas are small, but a session.updated echo with a long prompt and tools is not.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class OpenAIConnectError(Exception):
    """The Realtime socket could not be opened; the message names the likely fix."""


async def connect_openai(nursery: trio.Nursery, settings: Settings) -> TrioWebsocketTransport:
    """Open the Realtime socket; its reader task lives in ``nursery`` (the call's)."""
    url = connect_url(settings.openai_realtime_url, settings.openai_model)
    # The simulator accepts any bearer token; the real service never sees this placeholder
    # because `llc serve` refuses to start without a key for a non-loopback URL.
    key = settings.openai_api_key or "sk-llc-simulator"
    headers = [(k.encode(), v.encode()) for k, v in connect_headers(settings.openai_api_shape, key)]
    try:
        with trio.fail_after(settings.openai_connect_timeout_s):
            ws = await trio_websocket.connect_websocket_url(
                nursery, url, extra_headers=headers, max_message_size=MAX_MESSAGE_BYTES
            )
    except trio.TooSlowError:
        raise OpenAIConnectError(
            f"no answer from {settings.openai_realtime_url} within {settings.openai_connect_timeout_s:g} s; "
            "check the network path to OpenAI (status.openai.com) or raise OPENAI_CONNECT_TIMEOUT_S"
        ) from None
    except trio_websocket.ConnectionRejected as exc:
        status = exc.status_code
        fix = "check OPENAI_API_KEY" if status in (401, 403) else "check OPENAI_REALTIME_URL and OPENAI_MODEL"
        raise OpenAIConnectError(f"OpenAI refused the WebSocket with HTTP {status}; {fix}") from None
    except (OSError, trio_websocket.HandshakeError) as exc:
        raise OpenAIConnectError(
            f"could not connect to {settings.openai_realtime_url}: {exc}; check OPENAI_REALTIME_URL"
        ) from None
    return TrioWebsocketTransport(ws)
