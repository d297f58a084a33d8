"""Twilio's REST API through the official client, which is blocking: every call runs in a worker thread.

Edge and region (TWILIO_EDGE / TWILIO_REGION) apply to the real API host only. The client
rewrites every host name it is given once either is set (``127.0.0.1`` would become
``127.dublin.ie1.0.1``), so with TWILIO_API_URL pointing anywhere else (the
simulator) both are switched off, even when the client found them in the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from llc.config import DEFAULT_TWILIO_API_URL, Settings

HTTP_TIMEOUT_S = 10.0


class TwilioError(Exception):
    """A REST request failed; the message is Twilio's own plus the likely fix."""

    def __init__(self, message: str, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class CreatedCall:
    sid: str
    status: str


def _explain(exc: Exception) -> TwilioError:
    if isinstance(exc, TwilioRestException):
        fix = " (check TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN)" if exc.status in (401, 403) else ""
        return TwilioError(f"Twilio answered HTTP {exc.status}, code {exc.code}: {exc.msg}{fix}", exc.status, exc.code)
    return TwilioError(f"could not reach the Twilio API: {exc}; check TWILIO_API_URL and the network")


class TwilioRest:
    def __init__(self, settings: Settings) -> None:
        if not settings.twilio_account_sid or not settings.twilio_auth_token:
            raise TwilioError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set to place calls")
        real_host = settings.twilio_api_url.rstrip("/") == DEFAULT_TWILIO_API_URL
        self.client = Client(
            settings.twilio_account_sid, settings.twilio_auth_token,
            edge=settings.twilio_edge if real_host else None,
            region=settings.twilio_region if real_host else None,
            http_client=TwilioHttpClient(timeout=HTTP_TIMEOUT_S),
        )
        if not real_host:
            self.client.edge = self.client.region = None  # the client also reads them from the environment
            self.client.api.base_url = settings.twilio_api_url.rstrip("/")

    async def create_call(self, **params: Any) -> CreatedCall:
        """``client.calls.create(**params)`` off the event loop."""
        def create() -> CreatedCall:
            call = self.client.calls.create(**params)
            return CreatedCall(str(call.sid), str(call.status))
        return await self._run(create)

    async def update_call(self, call_sid: str, **params: Any) -> None:
        """Redirect (``twiml=``) or hang up (``status="completed"``) a live call."""
        await self._run(lambda: self.client.calls(call_sid).update(**params))

    @staticmethod
    async def _run(fn: Any) -> Any:
        try:
            # abandon_on_cancel: a cancelled request's thread finishes on its own, bounded by
            # HTTP_TIMEOUT_S; the caller is not held hostage by a slow API.
            return await trio.to_thread.run_sync(fn, abandon_on_cancel=True)
        except (TwilioException, OSError) as exc:
            raise _explain(exc) from None
