"""The Quart-Trio application: TwiML webhook, the media-stream WebSocket, health."""

from __future__ import annotations

import os

import trio
from quart import Response, request, websocket
from quart_trio import QuartTrio

from llc import metrics
from llc.call.bridge import CallBridge
from llc.call.transport import QuartWebsocketTransport
from llc.config import LOOPBACK_HOSTS, stream_url_for
from llc.log import get_logger
from llc.twilio.twiml import connect_stream
from llc.web import ops_routes
from llc.web.drain import watch_signals
from llc.web.state import ServerState

log = get_logger("web")
MEDIA_PATH = "/media"


def create_app(state: ServerState) -> QuartTrio:
    app = QuartTrio("llc")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024  # webhooks are small forms
    app.config["llc_state"] = state
    ops_routes.register(app, state)  # /metrics, drain answers

    @app.post("/twiml")
    async def twiml() -> Response:
        form = await request.form
        direction = "outbound" if form.get("Direction", "inbound").startswith("outbound") else "inbound"
        params = {"direction": direction, "scenario": request.args.get("scenario", "default")}
        if not state.public_url:
            log.error("PUBLIC_URL is not set: cannot tell Twilio where the media stream is")
            return Response("PUBLIC_URL is not set on the server", status=500)
        body = connect_stream(stream_url_for(state.public_url), params)
        log.info("answered webhook with TwiML", extra={"call_sid": form.get("CallSid"), **params})
        return Response(body, content_type="text/xml")

    @app.websocket(MEDIA_PATH)
    async def media() -> None:
        await websocket.accept()
        bridge = CallBridge(
            QuartWebsocketTransport(websocket._get_current_object()),  # type: ignore[attr-defined]
            state.settings,
            state.profile.session_spec(state.settings.openai_voice),
            greeting=state.profile.greeting or None,
        )
        state.active.add(bridge)
        state.calls_total += 1
        try:
            await bridge.run()
        finally:
            state.active.discard(bridge)
            state.records.append(bridge.record)
            metrics.record_call(bridge.record)

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "active_calls": state.active_calls, "calls_total": state.calls_total, "pid": os.getpid()}

    return app


async def serve(
    state: ServerState, *, handle_signals: bool = False, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve the app with Hypercorn's Trio worker until cancelled; reports the bound URLs.

    ``handle_signals`` (``llc serve``): SIGTERM/SIGINT drain the server, then this returns.
    """
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    config = Config()
    config.bind = [f"{state.settings.host}:{state.settings.port}"]
    config.accesslog = None
    config.errorlog = None
    # Hypercorn's cap is the hard stop; the call applies LLC_MAX_FRAME_BYTES itself so an
    # oversized frame is logged and skipped instead of silently dropping the socket.
    config.websocket_max_message_size = max(1024 * 1024, 4 * state.settings.max_frame_bytes)
    app = create_app(state)

    async def started(task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
        await hypercorn_serve(app, config, task_status=task_status)

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(started)
        if not state.public_url:
            if state.settings.host in LOOPBACK_HOSTS:
                state.public_url = binds[0]  # a local run: Twilio is the simulator on this box
            else:
                log.warning("PUBLIC_URL is not set: /twiml answers 500 until it is; set PUBLIC_URL=https://your-host")
        if handle_signals:
            await nursery.start(watch_signals, state, nursery.cancel_scope)
        log.info("serving", extra={"binds": binds, "public_url": state.public_url})
        task_status.started(binds)
