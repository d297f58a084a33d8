"""One port for everything, with Twilio's media WebSocket on the fast engine.

Why: the media leg is nearly all of the server's work (100+ frames a second per call), and
under Hypercorn it would pay for the ASGI and wsproto layers on every frame: measured, about
three times the CPU of the fast engine (docs/performance.md). One port needs no proxy rule.

How: each accepted connection's first bytes are *peeked* (MSG_PEEK: nothing is consumed).
``GET /media`` goes to the fast engine (llc/web/media.py); anything else is
handed, untouched, to Hypercorn's own per-connection server, exactly as Hypercorn's Trio
worker would (its lifespan, worker context and app wrapper are used as that worker uses them).
That uses Hypercorn classes outside its documented ``serve()``; the version is pinned in
pyproject.toml and every HTTP test goes through this path.
"""

from __future__ import annotations

import socket
from typing import Any

import trio

from llc.log import get_logger
from llc.web.media import MEDIA_PATH, handle_media_connection
from llc.web.server import Server

log = get_logger("front_door")
# How long a new connection may take to send its request line before it goes to Hypercorn,
# which applies its own timeouts (a slow client is Hypercorn's business, not a media stream).
PEEK_TIMEOUT_S = 2.0
PEEK_BYTES = 64
_MEDIA_LINE = b"GET " + MEDIA_PATH.encode()


async def _first_bytes(sock: trio.socket.SocketType) -> bytes:
    """Peek at what the client sent first, without consuming it: enough to tell a media upgrade."""
    data = b""
    wait = 0.005
    with trio.move_on_after(PEEK_TIMEOUT_S):
        while True:
            try:
                data = await sock.recv(PEEK_BYTES, socket.MSG_PEEK)
            except OSError:  # reset before a byte arrived: Hypercorn sees the dead socket and drops it
                return b""
            if not data or len(data) > len(_MEDIA_LINE) or not _MEDIA_LINE.startswith(data):
                return data
            # A request line split across segments (rare): peek again once more has arrived,
            # backing off so a client that stalls mid-line costs a few wake-ups, not hundreds.
            await trio.sleep(wait)
            wait = min(wait * 2, 0.25)
    return data


def is_media_upgrade(first: bytes) -> bool:
    """``GET /media`` followed by a space or a query: Twilio's stream. Anything else is HTTP."""
    return first.startswith(_MEDIA_LINE) and first[len(_MEDIA_LINE) : len(_MEDIA_LINE) + 1] in (b" ", b"?")


async def serve_front_door(
    server: Server, app: Any, config: Any, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve HTTP (Hypercorn) and the media stream (fast engine) on PORT until cancelled."""
    from hypercorn.trio.lifespan import Lifespan
    from hypercorn.trio.tcp_server import TCPServer
    from hypercorn.trio.worker_context import WorkerContext
    from hypercorn.typing import ConnectionState
    from hypercorn.utils import repr_socket_addr, wrap_app

    asgi = wrap_app(app, config.wsgi_max_body_size, None)
    lifespan_state: dict[str, Any] = {}
    lifespan = Lifespan(asgi, config, lifespan_state)
    context = WorkerContext(None)

    async def on_connection(stream: trio.SocketStream) -> None:
        if is_media_upgrade(await _first_bytes(stream.socket)):
            await handle_media_connection(server, stream)
        else:
            # Hypercorn annotates the stream as TLS only; it reads any trio Stream (its own plain path does).
            await TCPServer(asgi, config, context, ConnectionState(lifespan_state.copy()), stream)  # type: ignore[arg-type]

    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        listeners = await trio.open_tcp_listeners(server.settings.port, host=server.settings.host)
        binds = [f"http://{repr_socket_addr(ln.socket.family, ln.socket.getsockname())}" for ln in listeners]
        log.info("one port: HTTP on Hypercorn, the media stream on the fast engine", extra={"binds": binds})
        task_status.started(binds)
        try:
            await trio.serve_listeners(on_connection, listeners)
        finally:
            lifespan_nursery.cancel_scope.cancel()
