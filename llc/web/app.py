"""The Quart-Trio application (TwiML webhook, API, Twilio callbacks, health) and ``serve``."""

from __future__ import annotations

import os

import trio
from quart import Response, request
from quart_trio import QuartTrio

from llc.config import LOOPBACK_HOSTS
from llc.log import get_logger
from llc.openai.connect import tls_context
from llc.profile import check_tools
from llc.twilio.twiml import say_and_hangup
from llc.web import inbound, ops_routes, outbound, security
from llc.web.admin import create_admin_app, serve_admin
from llc.web.drain import drain_twiml, watch_signals
from llc.web.front_door import serve_front_door
from llc.web.proxies import behind_proxies
from llc.web.media import close_left_open, replay_pending
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

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "active_calls": server.active_calls, "calls_total": server.calls_total, "pid": os.getpid()}

    return app


async def serve(server: Server, *, handle_signals: bool = False,
                task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve on PORT until cancelled (HTTP on Hypercorn, the media stream on the fast engine);
    reports the bound URLs. ``handle_signals`` (``llc serve``): SIGTERM/SIGINT drain, then return."""
    from hypercorn.config import Config

    check_tools(server.profile, set(server.tools.tools))  # a profile naming a missing tool fails now
    security.log_posture(server.settings)
    await server.store.open()  # a bad LLC_DB_URL fails now; the schema is created on first run
    await replay_pending(server)  # records kept while the database was down
    await close_left_open(server)  # then what a killed run of this instance left open
    if server.settings.openai_realtime_url.startswith("wss:"):
        tls_context()  # once, now: not on the Trio thread during the first calls

    config = Config()
    config.bind = [f"{server.settings.host}:{server.settings.port}"]
    config.accesslog = None
    config.errorlog = None
    app = behind_proxies(create_app(server), server.settings.trusted_networks)  # X-Forwarded-* from LLC_TRUSTED_PROXIES only

    async with trio.open_nursery() as nursery:
        await nursery.start(server.warm.run)  # warm sessions live in the server nursery, closed on shutdown
        if server.deps.hub is not None:
            await nursery.start(server.deps.hub.run)  # reads the parked media sockets (llc/ws/hub.py)
        if server.deps.ticker is not None:
            await nursery.start(server.deps.ticker.run)  # every call's watchdog, one wake-up a tick
        binds = await nursery.start(serve_front_door, server, app, config)
        await nursery.start(serve_admin, server, create_admin_app(server))  # /metrics, /debug: not on PORT
        if not server.public_url:
            if server.settings.host in LOOPBACK_HOSTS:
                server.public_url = binds[0]  # a local run: Twilio is the simulator on this box
            else:
                log.warning("LLC_PUBLIC_URL is not set: /twiml answers 500 until it is; "
                            "set LLC_PUBLIC_URL=https://your-host")
        if handle_signals:
            await nursery.start(watch_signals, server, nursery.cancel_scope)
        log.info("serving", extra={"binds": binds, "public_url": server.public_url})
        task_status.started(binds)
