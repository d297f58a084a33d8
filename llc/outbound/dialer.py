"""Placing an outbound call: validate, start the warm session, dial through Twilio, follow its statuses.

POST /calls and `llc-phone call` share this path. The warm session starts first and the REST
request second, so session setup runs while Twilio dials and the phone rings; the call's
ticket (which names the warm session) rides in the TwiML and comes back in the stream's ``start``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from llc.config import E164_HINT, Settings, is_e164
from llc.core.outbound import FINAL_STATUSES, TemplateError, amd_outcome
from llc.core.session import SessionSpec
from llc.log import get_logger
from llc.modes.scenario import Scenario
from llc.modes.spec import scenario_spec
from llc.openai.prewarm import WarmRegistry
from llc.profile import Profile
from llc.twilio.rest import TwilioError, TwilioRest
from llc.twilio.stream_twiml import StreamTwiml
from llc.twilio.twiml import say_and_hangup

log = get_logger("outbound")

STATUS_PATH = "/twilio/status"
AMD_PATH = "/twilio/amd"
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]
RING_TIMEOUT_S = 60  # Twilio's default; the warm registry holds a ready session about this long
RECENT_CALLS = 1000


class CallRequestError(Exception):
    """The request cannot be dialled; ``status`` is the HTTP status, the message names the fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CallRequest:
    to: str
    scenario: Scenario
    variables: dict[str, str]
    prompt: str
    voicemail: str
    prewarm: bool = True
    machine_detection: bool = False


@dataclass
class OutboundCall:
    call_sid: str
    to: str
    scenario: Scenario
    spec: SessionSpec
    voicemail: str
    prewarmed: bool
    statuses: list[dict[str, str]] = field(default_factory=list)  # {status, timestamp, received}
    answered_by: str = ""
    amd_outcome: str = ""
    created_at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {"call_sid": self.call_sid, "to": self.to, "scenario": self.scenario.name, "prewarm": self.prewarmed,
                "statuses": self.statuses, "answered_by": self.answered_by, "amd_outcome": self.amd_outcome}


def parse_call_request(body: Any, scenarios: dict[str, Scenario], profile: Profile) -> CallRequest:
    """Validate a POST /calls body; every problem is a 400 naming the field and the fix."""
    if not isinstance(body, dict):
        raise CallRequestError(400, 'send a JSON object like {"to": "+15551234567", "scenario": "default"}')
    to = body.get("to")
    if not isinstance(to, str) or not is_e164(to):
        raise CallRequestError(400, f"\"to\" must be {E164_HINT}, not {to!r}")
    name = body.get("scenario", "default")
    if name not in scenarios:
        raise CallRequestError(400, f"unknown scenario {name!r}; known: {', '.join(sorted(scenarios))}")
    raw_vars = body.get("variables", {})
    if not isinstance(raw_vars, dict) or not all(isinstance(v, (str, int, float)) for v in raw_vars.values()):
        raise CallRequestError(400, '"variables" must be an object of strings, like {"name": "Ann"}')
    variables = {str(k): str(v) for k, v in raw_vars.items()}
    for flag in ("prewarm", "machine_detection"):
        if flag in body and not isinstance(body[flag], bool):
            raise CallRequestError(400, f'"{flag}" must be true or false')
    scenario = scenarios[name]
    try:
        prompt = scenario.prompt(profile.instructions, variables)
        voicemail = scenario.voicemail_text(variables)
    except TemplateError as exc:
        raise CallRequestError(400, str(exc)) from None
    return CallRequest(to, scenario, variables, prompt, voicemail, body.get("prewarm", True),
                       body.get("machine_detection", scenario.machine_detection))


class Dialer:
    def __init__(self, settings: Settings, profile: Profile, warm: WarmRegistry, twiml: StreamTwiml,
                 rest_factory: Callable[[Settings], TwilioRest] = TwilioRest,
                 tool_schemas: dict[str, dict[str, Any]] | None = None) -> None:
        self.settings = settings
        self.profile = profile
        self.tool_schemas = tool_schemas or {}
        self.warm = warm
        self.twiml = twiml
        self.rest_factory = rest_factory
        self._rest: TwilioRest | None = None
        self.calls: OrderedDict[str, OutboundCall] = OrderedDict()

    @property
    def rest(self) -> TwilioRest:
        if self._rest is None:
            self._rest = self.rest_factory(self.settings)
        return self._rest

    def _check_ready(self, public_url: str | None) -> None:
        missing = [name for name, value in (("TWILIO_ACCOUNT_SID", self.settings.twilio_account_sid),
                                            ("TWILIO_AUTH_TOKEN", self.settings.twilio_auth_token),
                                            ("TWILIO_FROM_NUMBER", self.settings.twilio_from_number),
                                            ("LLC_PUBLIC_URL", public_url)) if not value]
        if missing:
            raise CallRequestError(503, f"the server cannot place calls until {', '.join(missing)} is set")

    async def place(self, req: CallRequest, public_url: str | None) -> OutboundCall:
        self._check_ready(public_url)
        assert public_url is not None
        base = public_url.rstrip("/")
        # The scenario's overlay of the profile (voice, tools, policy), its prompt with this request's variables.
        _, spec = scenario_spec(req.scenario, self.profile, self.settings.openai_voice, self.tool_schemas,
                                variables=req.variables)
        token = self.warm.start(spec) if req.prewarm else None  # setup starts now, in parallel with the dial
        twiml, ticket = self.twiml.render(base, {"direction": "outbound", "scenario": req.scenario.name},
                                          trio.current_time(), warm=token)
        kwargs: dict[str, Any] = {
            "to": req.to, "from_": self.settings.twilio_from_number,
            "twiml": twiml,
            "status_callback": base + STATUS_PATH, "status_callback_event": STATUS_EVENTS,
            "status_callback_method": "POST", "timeout": RING_TIMEOUT_S,
        }
        if req.machine_detection:
            # DetectMessageEnd reports machines after the beep: the moment to leave a message.
            mode = "DetectMessageEnd" if req.scenario.on_machine == "voicemail" else "Enable"
            kwargs.update(machine_detection=mode, async_amd="true", async_amd_status_callback=base + AMD_PATH,
                          async_amd_status_callback_method="POST")
        try:
            created = await self.rest.create_call(**kwargs)
        except TwilioError as exc:
            if token:
                self.warm.discard(token, "Twilio did not place the call")
            status = 502 if exc.status is None or exc.status >= 500 or exc.status in (401, 403) else 400
            raise CallRequestError(status, str(exc)) from None
        call = OutboundCall(created.sid, req.to, req.scenario, spec, req.voicemail, token is not None)
        self.calls[created.sid] = call
        while len(self.calls) > RECENT_CALLS:
            self.calls.popitem(last=False)
        if token:
            self.warm.bind(token, created.sid)
        self.twiml.tickets.bind(ticket, created.sid)
        log.info("outbound call placed", extra={"call_sid": created.sid, "scenario": req.scenario.name,
                                                "prewarm": token is not None, "amd": req.machine_detection})
        return call

    # ---- Twilio's callbacks ---------------------------------------------------------------

    def on_status(self, form: dict[str, str]) -> None:
        sid, status = form.get("CallSid", ""), form.get("CallStatus", "")
        call = self.calls.get(sid)
        entry = {"status": status, "timestamp": form.get("Timestamp", ""), "received": f"{time.time():.3f}"}
        if call is not None:
            call.statuses.append(entry)
        log.info("call status %s", status, extra={"call_sid": sid, "known": call is not None})
        if status in FINAL_STATUSES:
            # Never answered (busy, no-answer, ...) or over before its stream claimed it: close
            # now, and free the capacity its unspent ticket held.
            self.warm.call_ended(sid, status)
            self.twiml.tickets.call_ended(sid)

    async def cancel_unconnected(self, call_sids: set[str]) -> list[str]:
        """End calls this server placed whose stream never came (the drain's deadline): ringing ones
        are canceled, answered ones completed, through the REST API. Returns the CallSids ended."""
        ended: list[str] = []
        for sid in sorted(call_sids):
            call = self.calls.get(sid)
            if call is None:
                continue
            last = call.statuses[-1]["status"] if call.statuses else "queued"
            status = "completed" if last in ("in-progress", "answered") else "canceled"
            try:
                await self.rest.update_call(sid, status=status)
            except TwilioError as exc:
                log.error("could not end the unconnected call: %s; end it in the Twilio console", exc,
                          extra={"call_sid": sid})
                continue
            log.warning("drain: ended a call whose stream never came", extra={"call_sid": sid, "status": status})
            ended.append(sid)
        return ended

    async def on_amd(self, form: dict[str, str]) -> str:
        """Answering-machine result: continue caller-first, leave the voicemail, or hang up."""
        sid, answered_by = form.get("CallSid", ""), form.get("AnsweredBy", "unknown")
        call = self.calls.get(sid)
        if call is None:
            log.warning("AMD result for a call this server did not place; ignored", extra={"call_sid": sid})
            return "ignored"
        call.answered_by = answered_by
        outcome = amd_outcome(answered_by, call.scenario.on_machine, bool(call.voicemail))
        call.amd_outcome = outcome
        log.info("answered by %s: %s", answered_by, outcome, extra={"call_sid": sid})
        if outcome == "voicemail":
            await self.rest.update_call(sid, twiml=say_and_hangup(call.voicemail))
        elif outcome == "hangup":
            await self.rest.update_call(sid, status="completed")
        return outcome
