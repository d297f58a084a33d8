"""The fast media listener: Twilio's media WebSocket on its own port (LLC_MEDIA_PORT).

Hypercorn keeps serving HTTP (TwiML, health, API) on PORT; this listener speaks only the
WebSocket upgrade to the media path, with the fast engine (llc/ws/fastws.py), and runs each
call under its own nursery, which lives in the server's nursery: nothing outlives the server.
A reverse proxy routes ``/media`` here and everything else to PORT (docs/performance.md).
"""

from __future__ import annotations

from functools import partial

import trio

from llc.ws import fastws
from llc.config import LOOPBACK_HOSTS
from llc.log import get_logger
from llc.web.media_call import run_media_call
from llc.web.security import POLICY_VIOLATION, upgrade_refusal
from llc.web.state import ServerState

log = get_logger("media")
MEDIA_PATH = "/media"
# A client that connects and never finishes its upgrade request is dropped after this.
HANDSHAKE_TIMEOUT_S = 10.0


async def handle_media_connection(state: ServerState, stream: trio.SocketStream) -> None:
    """Upgrade one connection on the fast engine and run its call (both listeners use this).

    An exception here would end the listener's serve loop, and with it every call: a bug is
    logged and ends this connection only.
    """
    try:
        await _upgrade_and_run(state, stream)
    except Exception:
        log.exception("a media connection failed on an internal error; the server keeps running")


async def _upgrade_and_run(state: ServerState, stream: trio.SocketStream) -> None:
    max_size = max(1024 * 1024, 4 * state.settings.max_frame_bytes)  # same cap as Hypercorn's
    ws = await fastws.accept(stream, MEDIA_PATH, max_size=max_size, timeout_s=HANDSHAKE_TIMEOUT_S)
    if ws is None:
        log.info("refused a connection on the media port (not a WebSocket upgrade to %s)", MEDIA_PATH)
        return
    assert ws.request is not None
    try:
        refusal = upgrade_refusal(state, ws.request.path, ws.request.headers)
    except BaseException:  # a bug in the check: the socket is ours to close before it propagates
        ws._shutdown()
        raise
    if refusal is not None:
        log.warning("media stream refused: %s", refusal)
        with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
            await ws.close(POLICY_VIOLATION, "forbidden")
        return
    await run_media_call(state, ws)


async def serve_media(state: ServerState, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Listen on LLC_MEDIA_PORT until cancelled; reports the bound port (0 picks a free one)."""
    port = state.settings.media_port or 0
    listeners = await trio.open_tcp_listeners(port, host=state.settings.host)
    bound = listeners[0].socket.getsockname()[1]
    log.info("media listener on the fast engine", extra={"media_port": bound})
    task_status.started(bound)
    await trio.serve_listeners(partial(handle_media_connection, state), listeners)


async def start_media_listener(nursery: trio.Nursery, state: ServerState) -> None:
    """Start the listener in the server's nursery; on a local run, point TwiML at it."""
    port = await nursery.start(serve_media, state)
    state.media_port = port
    if not state.public_url and state.settings.host in LOOPBACK_HOSTS:
        # Behind a proxy the public URL stays the same (the proxy routes /media here).
        state.stream_url = f"ws://{state.settings.host}:{port}{MEDIA_PATH}"
