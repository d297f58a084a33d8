"""The one way in for a media stream: upgrade on the fast engine, judge it, run its call.

The front door (llc/web/front_door.py) hands every ``GET /media`` connection here. The
record of an admitted call is written here: open when the stream is admitted, brought up to
date as turns end (so ``kill -9`` loses nothing already said), and in ``finally`` when it ends,
whatever ended it. A refused stream writes nothing: it must not touch the real call's record.
"""

from __future__ import annotations

from functools import partial

import trio

from llc import metrics
from llc.call.bridge import POLICY_VIOLATION, CallBridge
from llc.core.record import CallRecord
from llc.log import get_logger
from llc.web.security import upgrade_refusal
from llc.web.server import Server
from llc.ws import handshake
from llc.ws.transport import Transport

log = get_logger("media")
records_log = get_logger("records")
MEDIA_PATH = "/media"
# A client that connects and never finishes its upgrade request is dropped after this.
HANDSHAKE_TIMEOUT_S = 10.0
RECORD_WRITE_TIMEOUT_S = 5.0


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
        ws._shutdown()
        raise
    if refusal is not None:
        log.warning("media stream refused: %s", refusal)
        with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
            await ws.close(POLICY_VIOLATION, "forbidden")
        return
    await run_media_call(server, ws)


async def run_media_call(server: Server, transport: Transport) -> None:
    bridge = CallBridge(transport, server.deps, server.planner, partial(save_progress, server))
    server.calls.started(bridge)
    try:
        await bridge.run()
    finally:
        admitted = bridge.plan is not None
        server.planner.finish(bridge.record, admitted=admitted)
        server.calls.finished(bridge)
        if admitted:  # a refused stream's fields came from whoever opened the socket
            metrics.record_call(bridge.record)
            with trio.CancelScope(shield=True):
                await save_record(server, bridge)


async def _write(server: Server, record: CallRecord) -> str:
    """One bounded write of a record; "" when it was stored, else why not (in plain words)."""
    with trio.move_on_after(RECORD_WRITE_TIMEOUT_S):
        try:
            await server.store.save_call(record)
        except Exception as exc:
            return str(exc) or type(exc).__name__
        return ""
    return f"the write took over {RECORD_WRITE_TIMEOUT_S:g} s"


async def save_progress(server: Server, record: CallRecord) -> None:
    """A call in progress, written as it stands (bounded; the final write keeps what fails)."""
    if failure := await _write(server, record):
        records_log.warning("could not write the record of a call in progress (%s); its final record is "
                            "still written when it ends", failure, extra={"call_sid": record.call_sid})


async def save_record(server: Server, bridge: CallBridge) -> None:
    """Persist the record, bounded: a slow database delays nothing but this socket's cleanup.

    When the database fails or is too slow the record goes to the pending file (never
    dropped); the next successful write replays that file.
    """
    record = bridge.record
    if not record.call_sid:
        return  # the stream never started: nothing to file it under
    if failure := await _write(server, record):
        await server.pending.add(record.as_dict())
        records_log.error("could not store the call record (%s); kept in %s and written when the database is back",
                          failure, server.pending.path, extra={"call_sid": record.call_sid})
    elif server.pending.has_pending():
        await replay_pending(server)


async def replay_pending(server: Server) -> None:
    """Write records that waited in the pending file; called at start-up and after a good write."""
    with trio.move_on_after(RECORD_WRITE_TIMEOUT_S * 4):
        written, left = await server.pending.replay(server.store.save_call_data)
        if written or left:
            records_log.info("pending call records replayed", extra={"written": written, "still_pending": left,
                                                                     "file": str(server.pending.path)})


async def close_left_open(server: Server) -> None:
    """At start-up, after the pending replay (a pending final record is a better ending than
    ``server_died``): close the records a killed run of this instance left open."""
    try:
        closed = await server.store.close_orphans()
    except Exception as exc:  # the database is down: the next start closes them
        records_log.warning("could not close the calls a previous run left open (%s); the next start will", exc)
        return
    for sid in closed:
        records_log.warning("call left open by a previous run of this server (killed?): closed as server_died with "
                            "what was saved; `llc calls show` has its transcript", extra={"call_sid": sid})
