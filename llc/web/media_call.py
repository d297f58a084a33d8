"""Running one media-stream call, whichever listener accepted its socket.

Both the Quart route (Twilio media through Hypercorn) and the fast media listener hand
their Transport here, so a call is the same thing on either engine. The record is written
here, in ``finally``: a call that ends by a fault still leaves its record (transcript so far).
"""

from __future__ import annotations

import trio

from llc import metrics
from llc.call.bridge import CallBridge
from llc.ws.transport import Transport
from llc.log import get_logger
from llc.web.security import admit_stream
from llc.web.state import ServerState

log = get_logger("records")
RECORD_WRITE_TIMEOUT_S = 5.0


async def run_media_call(state: ServerState, transport: Transport) -> None:
    admitted: list[str] = []  # the CallSid, once this stream was let in

    def admit(bridge: CallBridge) -> str | None:
        refusal = admit_stream(state, bridge.core.params, bridge.record.call_sid)
        if refusal is None:
            admitted.append(bridge.record.call_sid)
        return refusal

    bridge = CallBridge(
        transport,
        state.settings,
        state.profile.session_spec(state.settings.openai_voice, state.tools.schemas()),
        greeting=state.profile.greeting or None,
        policy=state.profile.turn_policy,
        tools=state.tools,
        transfer_allow=state.profile.transfer_allow,
        prepare=state.router.prepare,  # scenario per call, pre-accept / prewarm claim
        admit=admit,
    )
    state.active.add(bridge)
    state.calls_total += 1
    try:
        await bridge.run()
    finally:
        state.active.discard(bridge)
        for call_sid in admitted:
            state.admission.release(call_sid)
        state.router.finish(bridge.record)
        state.records.append(bridge.record)
        metrics.record_call(bridge.record)
        with trio.CancelScope(shield=True):
            await save_record(state, bridge)


async def save_record(state: ServerState, bridge: CallBridge) -> None:
    """Persist the record, bounded: a slow database delays nothing but this socket's cleanup.

    When the database fails or is too slow the record goes to the pending file (never
    dropped); the next successful write replays that file.
    """
    record = bridge.record
    if not record.call_sid:
        return  # the stream never started: nothing to file it under
    failure = ""
    with trio.move_on_after(RECORD_WRITE_TIMEOUT_S) as scope:
        try:
            await state.store.save_call(record)
        except Exception as exc:
            failure = str(exc) or type(exc).__name__
    if scope.cancelled_caught:
        failure = f"the write took over {RECORD_WRITE_TIMEOUT_S:g} s"
    if failure:
        await state.pending.add(record.as_dict())
        log.error("could not store the call record (%s); kept in %s and written when the database is back",
                  failure, state.pending.path, extra={"call_sid": record.call_sid})
    elif state.pending.has_pending():
        await replay_pending(state)


async def replay_pending(state: ServerState) -> None:
    """Write records that waited in the pending file; called at start-up and after a good write."""
    with trio.move_on_after(RECORD_WRITE_TIMEOUT_S * 4):
        written, left = await state.pending.replay(state.store.save_call_data)
        if written or left:
            log.info("pending call records replayed", extra={"written": written, "still_pending": left,
                                                             "file": str(state.pending.path)})
