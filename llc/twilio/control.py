"""Changing a live call through Twilio's REST API (transfer, hang up), off the Trio loop.

The official client is blocking, so every request runs in a worker thread. Edge and region
rewrite host names, so they apply only to Twilio's own host, never to a local simulator.
"""

from __future__ import annotations

from functools import partial

import trio
from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from llc.config import DEFAULT_TWILIO_API_URL, Settings


class CallControlError(Exception):
    """The call could not be changed; the message says why in plain words."""


def rest_client(settings: Settings) -> Client:
    if not settings.twilio_account_sid or not settings.twilio_auth_token:
        raise CallControlError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set to change a live call")
    client = Client(settings.twilio_account_sid, settings.twilio_auth_token)
    if settings.twilio_api_url.rstrip("/") != DEFAULT_TWILIO_API_URL:
        client.api.base_url = settings.twilio_api_url.rstrip("/")
    return client


class TwilioCallControl:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def update(self, call_sid: str, **changes: str) -> None:
        client = rest_client(self.settings)
        try:
            await trio.to_thread.run_sync(partial(client.calls(call_sid).update, **changes))
        except TwilioException as exc:
            raise CallControlError(f"Twilio refused to update call {call_sid}: {exc}") from None

    async def redirect(self, call_sid: str, twiml: str) -> None:
        await self.update(call_sid, twiml=twiml)
