"""A fake Twilio REST API: outbound calls placed with the official client ring, answer and stream, offline.

It implements the slice of ``/2010-04-01/Accounts/{sid}/Calls.json`` and ``Calls/{sid}.json``
that ``twilio.rest.Client`` uses to create, redirect and hang up calls (point the client at it
with ``client.api.base_url``). Each created call is then driven like the real network would:
status callbacks (initiated, ringing, answered, completed, or busy / no-answer / failed) at
configurable delays, an async AMD result, and, once answered, the fake caller
(``FakeCaller.run_stream``) against the ``<Connect><Stream>`` of the call's TwiML. Every step
is stamped with ``trio.current_time()`` in a per-call event log so tests can compare it with
the fake OpenAI's log.
"""

from __future__ import annotations

import email.utils
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import trio
from quart import Response, jsonify, request
from quart_trio import QuartTrio
from twilio.request_validator import RequestValidator

from llc.config import is_e164
from llc.kit.sim.client_tls import client_tls
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, CallResult, FakeCaller, parse_twiml

API = "/2010-04-01/Accounts/<account_sid>"
OUTCOMES = ("answer", "busy", "no-answer", "failed", "canceled")
# StatusCallbackEvent names for each CallStatus Twilio reports (final ones are always sent).
_EVENT_FOR = {"queued": "initiated", "ringing": "ringing", "in-progress": "answered"}


def default_script() -> CallerScript:
    """The callee picks up and says hello, hears the reply, hangs up: caller-first."""
    return CallerScript(turns=[CallerTurn("Hello?")], max_call_s=20)


@dataclass
class Behaviour:
    """How one dialled number behaves."""

    outcome: str = "answer"  # answer | busy | no-answer | failed | canceled
    answer_ms: int = 500  # ringing -> answered (or -> the unanswered outcome)
    answered_by: str = "human"  # the async AMD result, when AMD was asked for
    amd_ms: int = 800  # answered -> AMD callback


@dataclass
class FakeTwilioConfig:
    account_sid: str = "AC" + "f" * 32
    auth_token: str = "f0" * 16  # the shape of a real Auth Token: 32 hex digits
    ring_ms: int = 100  # created -> ringing
    default: Behaviour = field(default_factory=Behaviour)
    numbers: dict[str, Behaviour] = field(default_factory=dict)  # per To number
    script: Callable[[], CallerScript] = default_script


@dataclass
class FakeCall:
    sid: str
    to: str
    from_: str
    form: dict[str, Any]
    twiml: str
    created_at: float
    status: str = "queued"
    events: list[tuple[float, str]] = field(default_factory=list)  # (trio time, what happened)
    callbacks: list[dict[str, Any]] = field(default_factory=list)  # what we POSTed and the answer
    updates: list[dict[str, str]] = field(default_factory=list)  # REST updates received
    said: list[str] = field(default_factory=list)  # <Say> text played after a redirect
    dialed: list[str] = field(default_factory=list)  # <Dial> numbers after a redirect (a transfer)
    result: CallResult | None = None
    caller: FakeCaller | None = None
    done: trio.Event = field(default_factory=trio.Event)

    def at(self, event: str) -> float | None:
        return next((t for t, e in self.events if e == event), None)

    def resource(self, base: str) -> dict[str, Any]:
        return {"sid": self.sid, "account_sid": self.form["account_sid"], "to": self.to, "from": self.from_,
                "status": self.status, "direction": "outbound-api", "api_version": "2010-04-01",
                "date_created": email.utils.format_datetime(datetime.now(UTC)),
                "uri": f"/2010-04-01/Accounts/{self.form['account_sid']}/Calls/{self.sid}.json"}


def _error(status: int, code: int, message: str) -> Response:
    response = jsonify({"code": code, "message": message, "status": status,
                        "more_info": f"https://www.twilio.com/docs/errors/{code}"})
    response.status_code = status
    return response


class FakeTwilio:
    """``url = await nursery.start(fake.serve)``; ``fake.calls`` holds every call placed."""

    def __init__(self, config: FakeTwilioConfig | None = None) -> None:
        self.config = config or FakeTwilioConfig()
        self.calls: dict[str, FakeCall] = {}
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status): "nothing dialled" is checkable
        self._nursery: trio.Nursery | None = None
        self.url = ""

    async def serve(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        from hypercorn.config import Config
        from hypercorn.trio import serve as hypercorn_serve

        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = config.errorlog = None
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            binds = await nursery.start(partial(hypercorn_serve, self._app(), config))
            self.url = binds[0]
            task_status.started(self.url)

    def behaviour(self, to: str) -> Behaviour:
        return self.config.numbers.get(to, self.config.default)

    # -- REST ------------------------------------------------------------------------------

    def _app(self) -> QuartTrio:
        app = QuartTrio("fake-twilio")

        @app.post(API + "/Calls.json")
        async def create(account_sid: str) -> Response:
            if (refusal := self._auth(account_sid)) is not None:
                return refusal
            form = await request.form
            to, from_ = form.get("To", ""), form.get("From", "")
            if not is_e164(to):
                return self._log(_error(400, 21211, f"The 'To' number {to} is not a valid phone number."))
            if not from_:
                return self._log(_error(400, 21603, "A 'From' phone number is required."))
            twiml = form.get("Twiml", "")
            if not twiml:
                return self._log(_error(400, 21205, "Url or Twiml parameter is required (this fake takes Twiml)."))
            if len(twiml) > 4000:
                return self._log(_error(400, 13335, "Twiml is longer than 4,000 characters."))
            sid = "CA" + secrets.token_hex(16)
            data = {**form.to_dict(), "account_sid": account_sid,
                    "StatusCallbackEvent": form.getlist("StatusCallbackEvent")}
            call = FakeCall(sid, to, from_, data, twiml, trio.current_time())
            call.events.append((call.created_at, "created"))
            self.calls[sid] = call
            assert self._nursery is not None
            self._nursery.start_soon(self._drive, call)
            response = jsonify(call.resource(self.url))
            response.status_code = 201
            return self._log(response)

        @app.post(API + "/Calls/<call_sid>.json")
        async def update(account_sid: str, call_sid: str) -> Response:
            if (refusal := self._auth(account_sid)) is not None:
                return refusal
            call = self.calls.get(call_sid)
            if call is None:
                return self._log(_error(404, 20404, f"The requested resource {request.path} was not found"))
            form = (await request.form).to_dict()
            call.updates.append(form)
            call.events.append((trio.current_time(), "updated"))
            if "Twiml" in form:
                self._redirect(call, form["Twiml"])
            elif form.get("Status") in ("completed", "canceled"):
                self._hang_up(call)
            return self._log(jsonify(call.resource(self.url)))

        return app

    def _log(self, response: Response) -> Response:
        self.requests.append((request.method, request.path, response.status_code))
        return response

    def _auth(self, account_sid: str) -> Response | None:
        auth = request.authorization
        if (auth is None or auth.username != self.config.account_sid or auth.password != self.config.auth_token
                or account_sid != self.config.account_sid):
            return self._log(_error(401, 20003, "Authenticate"))
        return None

    def _redirect(self, call: FakeCall, twiml: str) -> None:
        """New TwiML replaces the stream: Twilio stops it, then plays <Say> and obeys <Hangup/>."""
        try:
            root = ET.fromstring(twiml)
            call.said.extend(el.text or "" for el in root.iter("Say"))
            call.dialed.extend((el.text or "").strip() for el in root.iter("Dial"))
        except ET.ParseError:
            call.events.append((trio.current_time(), "redirect TwiML unreadable"))
        self._hang_up(call, "redirected")

    def _hang_up(self, call: FakeCall, reason: str = "hung_up_by_api") -> None:
        call.events.append((trio.current_time(), reason))
        if call.caller is not None:
            call.caller.hang_up(reason)
        elif call.status in ("queued", "ringing"):
            call.status = "canceled"

    def inbound(self, caller: FakeCaller) -> FakeCall:
        """Register an inbound call the fake caller places itself, so REST updates (transfer,
        hang-up) reach it like they would on Twilio."""
        call = FakeCall(caller.call_sid, caller.to_number, caller.from_number, {"account_sid": self.config.account_sid},
                        "", trio.current_time(), status="in-progress", caller=caller)
        self.calls[call.sid] = call
        return call

    # -- the network's side of one call ------------------------------------------------------

    async def _drive(self, call: FakeCall) -> None:
        how = self.behaviour(call.to)
        try:
            async with httpx.AsyncClient(timeout=5.0, verify=client_tls()) as http:
                await self._set_status(http, call, "queued")
                await trio.sleep(self.config.ring_ms / 1000)
                if call.status == "canceled":
                    return await self._set_status(http, call, "canceled")
                await self._set_status(http, call, "ringing")
                await trio.sleep(how.answer_ms / 1000)
                if call.status == "canceled" or how.outcome != "answer":
                    outcome = "canceled" if call.status == "canceled" else how.outcome
                    return await self._set_status(http, call, outcome)
                await self._set_status(http, call, "in-progress")
                answered = trio.current_time()
                async with trio.open_nursery() as nursery:
                    if call.form.get("MachineDetection") and call.form.get("AsyncAmd") == "true":
                        nursery.start_soon(self._amd, http, call, how)
                    stream_url, params = parse_twiml(call.twiml)
                    call.caller = FakeCaller("", self.config.script(), call_sid=call.sid,
                                             account_sid=self.config.account_sid, to_number=call.to,
                                             from_number=call.from_, auth_token=self.config.auth_token)
                    call.events.append((trio.current_time(), "stream_opening"))
                    call.result = await call.caller.run_stream(stream_url, params)
                    call.events.append((trio.current_time(), "stream_ended"))
                    nursery.cancel_scope.cancel()
                if call.said:
                    call.events.append((trio.current_time(), "said"))
                duration = str(max(1, round(trio.current_time() - answered)))
                await self._set_status(http, call, "completed", CallDuration=duration)
        finally:
            call.done.set()

    async def _amd(self, http: httpx.AsyncClient, call: FakeCall, how: Behaviour) -> None:
        await trio.sleep(how.amd_ms / 1000)
        call.events.append((trio.current_time(), f"amd:{how.answered_by}"))
        await self._post(http, call, call.form.get("AsyncAmdStatusCallback", ""), {
            "CallSid": call.sid, "AccountSid": self.config.account_sid, "AnsweredBy": how.answered_by,
            "MachineDetectionDuration": str(how.amd_ms)})

    async def _set_status(self, http: httpx.AsyncClient, call: FakeCall, status: str, **extra: str) -> None:
        call.status = status
        call.events.append((trio.current_time(), status))
        event = _EVENT_FOR.get(status, "completed")
        wanted = call.form.get("StatusCallbackEvent") or []
        if not call.form.get("StatusCallback") or (event != "completed" and event not in wanted):
            return
        await self._post(http, call, call.form["StatusCallback"], {
            "CallSid": call.sid, "AccountSid": self.config.account_sid, "From": call.from_, "To": call.to,
            "CallStatus": status, "Direction": "outbound-api", "ApiVersion": "2010-04-01",
            "Timestamp": email.utils.format_datetime(datetime.now(UTC)),
            "CallbackSource": "call-progress-events", "SequenceNumber": str(len(call.callbacks)), **extra})

    async def _post(self, http: httpx.AsyncClient, call: FakeCall, url: str, params: dict[str, str]) -> None:
        """POST a signed callback like Twilio; a failing server is logged, never fatal to the call."""
        if not url:
            return
        signature = RequestValidator(self.config.auth_token).compute_signature(url, params)
        try:
            resp = await http.post(url, data=params, headers={"X-Twilio-Signature": signature})
            answer: int | str = resp.status_code
        except httpx.HTTPError as exc:
            answer = repr(exc)
        call.callbacks.append({"url": url, "params": params, "answer": answer, "at": trio.current_time()})
