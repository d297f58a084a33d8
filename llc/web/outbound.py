"""Outbound routes: POST /calls (bearer token), Twilio's status and AMD callbacks."""

from __future__ import annotations

import logging
import math

import trio
from quart import Quart, Response, jsonify, request

from llc.core.refusal import Refusal
from llc.log import get_logger
from llc.outbound.dialer import AMD_PATH, STATUS_PATH, CallRequestError, parse_call_request
from llc.twilio.rest import TwilioError
from llc.web.security import at_capacity, bearer_refusal, twilio_signed
from llc.web.server import Server

log = get_logger("web.outbound")


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="llc"'
    return response


def api_refusal(server: Server, header: str | None) -> Refusal | None:
    """Why the API refuses this ``Authorization`` header; None when it carries LLC_API_TOKEN."""
    return bearer_refusal(server.settings.api_token, header)


def register(app: Quart, server: Server) -> None:
    @app.post("/calls")
    async def place_call() -> Response:
        if (refusal := api_refusal(server, request.headers.get("Authorization"))) is not None:
            log.warning("POST /calls refused: %s", refusal)
            return _error(401, refusal.text)
        if server.draining:  # this instance is going away: a retry reaches another one, or this one restarted
            response = _error(503, "the server is draining (restarting or stopping); retry later")
            response.headers["Retry-After"] = str(max(1, math.ceil(server.settings.drain_timeout_s)))
            return response
        wait_s = server.calls_bucket.take(trio.current_time())
        if wait_s > 0:
            log.warning("POST /calls refused (429): over LLC_CALLS_PER_MINUTE=%s", server.settings.calls_per_minute)
            response = _error(429, f"more than LLC_CALLS_PER_MINUTE={server.settings.calls_per_minute} calls a minute; retry later")
            response.headers["Retry-After"] = str(max(1, round(wait_s)))
            return response
        if at_capacity(server):
            log.warning("POST /calls refused (503): at LLC_MAX_CALLS=%s; raise it if the machine has room",
                        server.settings.max_calls)
            return _error(503, f"at LLC_MAX_CALLS={server.settings.max_calls} concurrent calls; retry later")
        body = await request.get_json(force=True, silent=True)
        try:
            req = parse_call_request(body, server.scenarios, server.profile)
            call = await server.dialer.place(req, server.call_base_url)  # the instance holding the warm session
        except CallRequestError as exc:
            # 4xx: the caller's request to fix (INFO); 5xx: this server's set-up (WARNING).
            log.log(logging.WARNING if exc.status >= 500 else logging.INFO, "POST /calls refused (%s): %s", exc.status, exc)
            return _error(exc.status, str(exc))
        except TwilioError as exc:
            log.error("POST /calls failed: Twilio refused the call (%s); check TWILIO_* and `llc-phone doctor`", exc)
            return _error(503, str(exc))
        response = jsonify(call.as_dict())
        response.status_code = 201
        return response

    @app.get("/calls/<call_sid>")
    async def call_status(call_sid: str) -> Response:
        if (refusal := api_refusal(server, request.headers.get("Authorization"))) is not None:
            return _error(401, refusal.text)
        call = server.dialer.calls.get(call_sid)
        if call is None:
            return _error(404, f"no outbound call {call_sid} on this server")
        return jsonify(call.as_dict())

    @app.post(STATUS_PATH)
    @twilio_signed(server)
    async def twilio_status() -> Response:
        form = await request.form
        server.dialer.on_status(form.to_dict())
        return Response("", status=204)

    @app.post(AMD_PATH)
    @twilio_signed(server)
    async def twilio_amd() -> Response:
        form = (await request.form).to_dict()
        call = server.calls.find_active(form.get("CallSid", ""))
        if call is not None:  # the call's record says who answered, from now on
            call.answered_by(form.get("AnsweredBy", ""))
        try:
            await server.dialer.on_amd(form)
        except TwilioError as exc:
            log.error("could not act on the AMD result: %s", exc, extra={"call_sid": form.get("CallSid")})
        return Response("", status=204)
