"""Try a call from the browser: a console page that stands in for Twilio's leg.

The page turns the microphone into 8 kHz mu-law and sends it as Media Streams messages; the
agent's audio comes back the same way and plays, with the live transcript beside it. The call
is admitted by a ticket the page is issued (as a phone call is by the one in its TwiML), runs
through the same planner, bridge and records, and is listed in the console like any call
(``direction`` browser). With a real ``OPENAI_API_KEY`` it is a real call to your agent with no
Twilio number; against the simulator it is a demo.

Served by the admin listener only (loopback, or the API token), and only to its own pages:
a request whose ``Origin`` is another site is refused, so a page elsewhere cannot start a
call or open the socket from a browser on this machine.
"""

from __future__ import annotations

import secrets
from typing import Any

import trio
from quart import Blueprint, Response, render_template, request, websocket

from llc.core.ticket import TICKET_PARAM
from llc.log import get_logger
from llc.web.browser_leg import BrowserLeg
from llc.web.media import run_media_call
from llc.web.security import at_capacity
from llc.web.server import Server

log = get_logger("web.try")
CALL_PREFIX = "CAtry"  # a CallSid no Twilio call has (theirs are CA + 32 hex)
MAX_NUMBER = 32


def same_origin(origin: str | None, host: str | None) -> bool:
    """No ``Origin`` (curl, a script) or this listener's own: a page of another site is refused."""
    if not origin:
        return True
    return bool(host) and origin.lower() in (f"http://{host}".lower(), f"https://{host}".lower())


def _number(value: Any) -> str:
    text = str(value or "").strip()
    return text if len(text) <= MAX_NUMBER and all(c.isdigit() or c in "+-() " for c in text) else ""


def try_blueprint(server: Server, templates: str) -> Blueprint:
    bp = Blueprint("try_call", __name__, url_prefix="/console/try", template_folder=templates)

    @bp.get("/")
    async def page() -> str:
        return await render_template("console/try.html")

    @bp.post("/start")
    async def start() -> Response | dict[str, Any]:
        if not same_origin(request.headers.get("Origin"), request.headers.get("Host")):
            return Response("another site's page may not start a call here\n", status=403)
        body = await request.get_json(silent=True) or {}
        if server.draining or at_capacity(server):
            why = "the server is draining" if server.draining else f"LLC_MAX_CALLS={server.settings.max_calls} calls are in progress"
            return Response(f"no call can start now: {why}; try again in a moment\n", status=503)
        call_sid = CALL_PREFIX + secrets.token_hex(16)
        ticket = server.tickets.issue(trio.current_time(), call_sid)
        called = _number(body.get("called"))
        log.info("a call from the browser was issued its ticket", extra={"call_sid": call_sid, "called": called})
        return {"call_sid": call_sid, "stream_sid": "MZ" + call_sid[2:], "socket": "/console/try/media",
                "parameters": {TICKET_PARAM: ticket, "direction": "browser", "caller": "browser", "called": called}}

    @bp.get("/<sid>.json")
    async def progress(sid: str) -> Response | dict[str, Any]:
        """The call's transcript so far, for the page beside the audio (live, then stored)."""
        live = next((b.record for b in list(server.active) if b.record.call_sid == sid), None)
        record = live.as_dict() if live is not None else await server.store.get_call(sid)
        if record is None or not sid.startswith(CALL_PREFIX):
            return Response("no such call from this page\n", status=404)
        return {"ended": live is None, "end_reason": record.get("end_reason") or "",
                "transcript": [{k: line.get(k) for k in ("role", "text", "at", "interrupted")} for line in record["transcript"]],
                "voice_to_voice_ms": [t.get("voice_to_voice_ms") for t in record.get("turns", [])]}

    @bp.websocket("/media")
    async def media() -> None:
        if not same_origin(websocket.headers.get("Origin"), websocket.headers.get("Host")):
            log.warning("refused a browser call socket from another site's page",
                        extra={"origin": websocket.headers.get("Origin", "")[:100]})
            await websocket.close(1008, "forbidden")
            return
        await websocket.accept()
        await run_media_call(server, BrowserLeg(websocket))

    return bp
