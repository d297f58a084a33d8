"""Running one media-stream call, whichever listener accepted its socket.

Both the Quart route (Twilio media through Hypercorn) and the fast media listener hand
their Transport here, so a call is the same thing on either engine.
"""

from __future__ import annotations

from llc import metrics
from llc.call.bridge import CallBridge
from llc.call.transport import Transport
from llc.web.security import admit_stream
from llc.web.state import ServerState


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
        prepare=state.dialer.prepare,
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
        state.records.append(bridge.record)
        metrics.record_call(bridge.record)
