"""The one way in for a media stream: upgrade on the fast engine, judge it, run its call.

The front door (llc/web/front_door.py) hands every ``GET /media`` connection here. The call
itself (its nursery, its record, written as it goes and when it ends) is the bridge's
(``llc.call.bridge``); this module only admits the connection and keeps the server's view of
the calls in progress (for health, drain, metrics and the console).
"""

from __future__ import annotations

import trio

from llc import metrics
from llc.call.bridge import POLICY_VIOLATION, CallBridge
from llc.call.record_writer import RecordWriter
from llc.log import get_logger
from llc.web.security import upgrade_refusal
from llc.web.server import Server
from llc.ws import handshake
from llc.ws.transport import Transport

log = get_logger("media")
MEDIA_PATH = "/media"
# A client that connects and never finishes its upgrade request is dropped after this.
HANDSHAKE_TIMEOUT_S = 10.0
TRY_AGAIN_LATER = 1013  # RFC 6455 close code: the server is going away for now


async def handle_media_connection(server: Server, stream: trio.SocketStream) -> None:
    """Upgrade one connection on the fast engine and run its call.

    An exception here would end the listener's serve loop, and with it every call: a bug is
    logged and ends this connection only.
    """
    try:
        await _upgrade_and_run(server, stream)
    except Exception:
        log.exception("a media connection failed on an internal error; the server keeps running")


async def _upgrade_and_run(server: Server, stream: trio.SocketStream) -> None:
    max_size = max(1024 * 1024, 4 * server.settings.max_frame_bytes)
    ws = await handshake.accept(stream, MEDIA_PATH, max_size=max_size, timeout_s=HANDSHAKE_TIMEOUT_S)
    if ws is None:
        log.info("refused a connection (not a WebSocket upgrade to %s)", MEDIA_PATH)
        return
    ws.send_stall_s = server.settings.send_stall_s  # Twilio stops reading: a dead leg, never a held task
    assert ws.request is not None
    try:
        refusal = upgrade_refusal(server, ws.request.path, ws.request.headers)
    except BaseException:  # a bug in the check: the socket is ours to close before it propagates
        ws.abort("the upgrade check failed")
        raise
    if refusal is not None:
        log.warning("media stream refused: %s", refusal)
        with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
            await ws.close(POLICY_VIOLATION, "forbidden")
        return
    if server.draining and not server.expecting_streams():
        log.warning("media stream refused: the server is draining and no answered call is waiting for its "
                    "stream; new calls go to another instance")
        with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
            await ws.close(TRY_AGAIN_LATER, "draining")
        return
    await run_media_call(server, ws)


async def run_media_call(server: Server, transport: Transport) -> None:
    bridge = CallBridge(transport, server.deps, server.planner, RecordWriter(server.durable))
    server.calls.started(bridge)
    try:
        await bridge.run()
    finally:
        server.calls.finished(bridge)
        if bridge.plan is not None:  # a refused stream's fields came from whoever opened the socket
            metrics.record_call(bridge.record)
