"""A minimal fake of Twilio's REST API: just IncomingPhoneNumbers.json, for `llc-phone doctor` tests.

Doctor asks Twilio (never local files) which voice URL each number has. This fake answers
that one question the way api.twilio.com does (a page of ``incoming_phone_numbers``, HTTP
Basic auth with the account SID and token, 401 otherwise), on loopback only. A fuller fake
of the REST API (calls, AMD) is separate work.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson
import trio
from quart import Response, request
from quart_trio import QuartTrio

API_VERSION = "2010-04-01"


@dataclass
class FakeNumber:
    phone_number: str
    voice_url: str
    voice_method: str = "POST"
    sid: str = "PN00000000000000000000000000000001"
    voice_application_sid: str | None = None

    def as_json(self, account_sid: str) -> dict[str, Any]:
        return {
            "sid": self.sid, "account_sid": account_sid, "phone_number": self.phone_number,
            "friendly_name": self.phone_number, "voice_url": self.voice_url, "voice_method": self.voice_method,
            "voice_application_sid": self.voice_application_sid, "trunk_sid": None, "api_version": API_VERSION,
        }


@dataclass
class FakeTwilioNumbers:
    account_sid: str = "AC" + "0" * 32
    auth_token: str = "0f" * 16  # the shape of a real Auth Token: 32 hex digits
    numbers: list[FakeNumber] = field(default_factory=list)
    requests: int = 0

    def _authorized(self, header: str | None) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return header == f"Basic {expected}"

    def app(self) -> QuartTrio:
        app = QuartTrio("fake_twilio_numbers")

        @app.get(f"/{API_VERSION}/Accounts/<account_sid>/IncomingPhoneNumbers.json")
        async def list_numbers(account_sid: str) -> Response | dict[str, Any]:
            self.requests += 1
            if not self._authorized(request.headers.get("Authorization")) or account_sid != self.account_sid:
                body = {"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}
                return Response(orjson.dumps(body), status=401, content_type="application/json")
            wanted = request.args.get("PhoneNumber")
            rows = [n.as_json(account_sid) for n in self.numbers if wanted in (None, n.phone_number)]
            uri = f"/{API_VERSION}/Accounts/{account_sid}/IncomingPhoneNumbers.json"
            return {"incoming_phone_numbers": rows, "first_page_uri": uri, "next_page_uri": None,
                    "previous_page_uri": None, "page": 0, "page_size": 50, "start": 0, "end": len(rows), "uri": uri}

        return app

    async def serve(self, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve on a free loopback port until cancelled; reports the base URL (for TWILIO_API_URL)."""
        from hypercorn.config import Config
        from hypercorn.trio import serve as hypercorn_serve

        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        config.errorlog = None
        await hypercorn_serve(self.app(), config, task_status=task_status)  # reports ["http://127.0.0.1:N"]
