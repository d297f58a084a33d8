"""What a call may change about itself through Twilio's REST API (a transfer, today).

Built on ``TwilioRest`` (official client, in a worker thread, edge/region only on the real
host), created on first use so calls that never transfer need no Twilio credentials.
"""

from __future__ import annotations

from llc.config import Settings
from llc.twilio.rest import TwilioRest


class TwilioCallControl:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._rest: TwilioRest | None = None

    async def redirect(self, call_sid: str, twiml: str) -> None:
        """Replace the live call's TwiML (e.g. ``<Dial>``); raises TwilioError in plain words."""
        if self._rest is None:
            self._rest = TwilioRest(self.settings)
        await self._rest.update_call(call_sid, twiml=twiml)
