"""Opening a SIP call's sideband socket (``OPENAI_REALTIME_URL?call_id=…``) on the fast engine."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

import trio

from llc.config import Settings
from llc.openai.connect import MAX_MESSAGE_BYTES, tls_context
from llc.ws import handshake
from llc.ws.transport import Transport

SidebandConnect = Callable[[str], Awaitable[Transport]]


def sideband_url(realtime_url: str, call_id: str) -> str:
    sep = "&" if "?" in realtime_url else "?"
    return f"{realtime_url}{sep}call_id={quote(call_id, safe='')}"


def sideband_connector(settings: Settings) -> SidebandConnect:
    async def connect(call_id: str) -> Transport:
        url = sideband_url(settings.openai_realtime_url, call_id)
        key = settings.openai_api_key or "sk-llc-simulator"  # the simulator takes any bearer
        with trio.fail_after(settings.openai_connect_timeout_s):
            ws = await handshake.connect(url, [("Authorization", f"Bearer {key}")], max_size=MAX_MESSAGE_BYTES,
                                         ssl_context=tls_context() if url.startswith("wss:") else None)
        ws.send_stall_s = settings.send_stall_s
        return ws

    return connect
