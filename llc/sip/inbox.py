"""Verified incoming SIP calls on their way from the webhook route to the server's nursery.

The route answers OpenAI at once (200) and hands the call over here; a call_id is taken once
(OpenAI may deliver the same call twice under different webhook-ids), remembered boundedly.
"""

from __future__ import annotations

from collections import OrderedDict

import trio

from llc.sip.webhook import IncomingCall, WebhookGuard

RECENT_CALL_IDS = 4096
QUEUE = 256  # calls accepted by the route but not yet picked up: far above any real burst


class SipInbox:
    def __init__(self, guard: WebhookGuard | None) -> None:
        self.guard = guard  # None: OPENAI_WEBHOOK_SECRET unset, SIP is off
        self._send, self.incoming = trio.open_memory_channel[IncomingCall](QUEUE)
        self._call_ids: OrderedDict[str, None] = OrderedDict()

    def offer(self, call: IncomingCall) -> str | None:
        """Queue ``call``; why not (a duplicate, a full queue) or None when queued."""
        if call.call_id in self._call_ids:
            return "a call already started for this call_id"
        try:
            self._send.send_nowait(call)
        except trio.WouldBlock:
            return f"{QUEUE} calls waiting to be picked up"
        self._call_ids[call.call_id] = None
        while len(self._call_ids) > RECENT_CALL_IDS:
            self._call_ids.popitem(last=False)
        return None
