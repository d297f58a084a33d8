"""The Quart-Trio application: TwiML webhook, the media-stream WebSocket, health."""

from __future__ import annotations

import os

import trio
from quart import Response, request, websocket
from quart_trio import QuartTrio

from llc.ws.transport import QuartWebsocketTransport
from llc.config import LOOPBACK_HOSTS
from llc.log import get_logger
from llc.profile import check_tools
from llc.twilio.twiml import say_and_hangup
from llc.web import debug, inbound, ops_routes, outbound, security
from llc.web.drain import watch_signals
from llc.web.media_call import replay_pending, run_media_call
from llc.web.state import ServerState

log = get_logger("web")
MEDIA_PATH = "/media"


def create_app(state: ServerState) -> QuartTrio:
    app = QuartTrio("llc")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024  # webhooks are small forms
    app.config["llc_state"] = state
    ops_routes.register(app, state)  # /metrics, drain answers

    @app.post("/twiml")
    @security.twilio_signed(state)
    async def twiml() -> Response:
        form = await request.form
        if security.at_capacity(state):
            log.warning("at LLC_MAX_CALLS: answered busy", extra={"call_sid": form.get("CallSid"), "max_calls": state.settings.max_calls})
            return Response(say_and_hangup(security.BUSY_MESSAGE), content_type="text/xml")
        try:  # scenario by called number, pre-accept started (llc/web/inbound.py)
            body = await inbound.answer(state, form, request.args.get("scenario"))
        except LookupError as exc:
            log.error("%s: cannot tell Twilio where the media stream is", exc)
            return Response(str(exc), status=500)
        return Response(body, content_type="text/xml")

    @app.websocket(MEDIA_PATH)
    async def media() -> None:
        await websocket.accept()
        target = websocket.path + (f"?{websocket.query_string.decode('latin-1')}" if websocket.query_string else "")
        if (refusal := security.upgrade_refusal(state, target, websocket.headers)) is not None:
            log.warning("media stream refused: %s", refusal, extra={"remote": websocket.remote_addr})
            await websocket.close(security.POLICY_VIOLATION, "forbidden")
            return
        await run_media_call(state, QuartWebsocketTransport(websocket._get_current_object()))  # type: ignore[attr-defined]

    outbound.register(app, state)

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "active_calls": state.active_calls, "calls_total": state.calls_total, "pid": os.getpid()}

    debug.register(app)
    return app


async def serve(
    state: ServerState, *, handle_signals: bool = False, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve the app with Hypercorn's Trio worker until cancelled; reports the bound URLs.

    ``handle_signals`` (``llc serve``): SIGTERM/SIGINT drain the server, then this returns.
    """
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    check_tools(state.profile, set(state.tools.tools))  # a profile naming a missing tool fails now
    security.log_posture(state.settings)
    await state.store.open()  # a bad LLC_DB_URL fails now; the schema is created on first run
    await replay_pending(state)  # records kept while the database was down
    from llc.web.front_door import serve_front_door
    from llc.web.media_listener import start_media_listener

    config = Config()
    config.bind = [f"{state.settings.host}:{state.settings.port}"]
    config.accesslog = None
    config.errorlog = None
    # Hypercorn's cap is the hard stop; the call applies LLC_MAX_FRAME_BYTES itself so an
    # oversized frame is logged and skipped instead of silently dropping the socket.
    config.websocket_max_message_size = max(1024 * 1024, 4 * state.settings.max_frame_bytes)
    app = create_app(state)

    one_port_fast = state.settings.ws_engine == "fast" and state.settings.media_port is None

    async def started(task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
        if one_port_fast:  # the default: one port, the media stream on the fast engine
            await serve_front_door(state, app, config, task_status=task_status)
        else:  # LLC_MEDIA_PORT (the fast engine on its own port), or everything on Hypercorn
            await hypercorn_serve(app, config, task_status=task_status)

    async with trio.open_nursery() as nursery:
        await nursery.start(state.warm.run)  # warm sessions live in the server nursery, closed on shutdown
        binds = await nursery.start(started)
        if state.settings.media_port is not None:
            await start_media_listener(nursery, state)
        if not state.public_url:
            if state.settings.host in LOOPBACK_HOSTS:
                state.public_url = binds[0]  # a local run: Twilio is the simulator on this box
            else:
                log.warning("PUBLIC_URL is not set: /twiml answers 500 until it is; set PUBLIC_URL=https://your-host")
        if handle_signals:
            await nursery.start(watch_signals, state, nursery.cancel_scope)
        log.info("serving", extra={"binds": binds, "public_url": state.public_url})
        task_status.started(binds)
