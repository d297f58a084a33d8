"""The Quart-Trio application: the TwiML webhook, the API, Twilio's callbacks, health (``llc.app.run`` serves it)."""

from __future__ import annotations

import os

from quart import Response, request
from quart_trio import QuartTrio

from llc.log import get_logger
from llc.twilio.twiml import say_and_hangup
from llc.web import inbound, ops_routes, outbound, security, sip
from llc.web.drain import drain_twiml
from llc.web.server import Server

log = get_logger("web")


def create_app(server: Server) -> QuartTrio:
    app = QuartTrio("llc")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024  # webhooks are small forms
    ops_routes.register(app, server)  # /healthz while draining

    @app.post("/twiml")
    @security.twilio_signed(server)
    async def twiml() -> Response:
        form = await request.form
        if server.draining:  # answered after the signature check: the fallback number is not public
            log.warning("draining: turned a new call away", extra={"call_sid": form.get("CallSid")})
            return Response(drain_twiml(server.settings.drain_fallback_number), content_type="text/xml")
        if security.at_capacity(server):
            log.warning("at LLC_MAX_CALLS: answered busy", extra={"call_sid": form.get("CallSid"), "max_calls": server.settings.max_calls})
            return Response(say_and_hangup(security.BUSY_MESSAGE), content_type="text/xml")
        try:  # scenario by called number, pre-accept started (llc/web/inbound.py)
            body = await inbound.answer(server, form, request.args.get("scenario"))
        except LookupError as exc:
            log.error("%s: cannot tell Twilio where the media stream is", exc)
            return Response(str(exc), status=500)
        return Response(body, content_type="text/xml")

    outbound.register(app, server)
    sip.register(app, server)  # POST /openai/webhook: Realtime over SIP

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "active_calls": server.active_calls, "calls_total": server.calls_total, "pid": os.getpid(),
                "nonce": server.nonce}

    return app
