"""Operations routes: `GET /metrics`, and what /twiml and /healthz say while draining.

Kept out of app.py so the operations feature adds one line there. The drain answers come
from a ``before_request`` hook: while ``server.draining`` it answers /twiml itself (polite
TwiML, no stream) and /healthz with 503, so load balancers and ``llc doctor`` see the drain.
"""

from __future__ import annotations

import os

import orjson
from quart import Response, request
from quart_trio import QuartTrio

from llc import metrics
from llc.web.security import admin_refusal
from llc.log import get_logger
from llc.web.drain import drain_twiml
from llc.web.server import Server

log = get_logger("web")


def register(app: QuartTrio, server: Server) -> None:
    @app.before_request
    async def turn_away_while_draining() -> Response | None:
        if not server.draining:
            return None
        if request.path == "/twiml" and request.method == "POST":
            form = await request.form
            log.warning("draining: turned a new call away", extra={"call_sid": form.get("CallSid")})
            return Response(drain_twiml(server.settings.drain_fallback_number), content_type="text/xml")
        if request.path == "/healthz":
            body = {"status": "draining", "active_calls": server.active_calls,
                    "calls_total": server.calls_total, "pid": os.getpid()}
            return Response(orjson.dumps(body), status=503, content_type="application/json")
        return None

    @app.get("/metrics")
    async def metrics_page() -> Response:
        # Loopback scrapers, or the API bearer token: call counts are nobody else's business.
        if (refusal := admin_refusal(server)) is not None:
            return Response(refusal, status=401)
        body, content_type = metrics.exposition(server.active_calls, server.draining)
        return Response(body, content_type=content_type)

