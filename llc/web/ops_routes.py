"""What /healthz says while draining (503, so load balancers and ``llc-phone doctor`` see the drain).

Kept out of app.py so the operations feature adds one line there. The drain's answers to
/twiml and POST /calls are given by those routes, after their signature and token checks:
an unsigned request must not learn LLC_DRAIN_FALLBACK_NUMBER. /metrics is on the admin
listener (llc/web/admin.py).
"""

from __future__ import annotations

import os

import orjson
from quart import Response, request
from quart_trio import QuartTrio

from llc.web.server import Server


def register(app: QuartTrio, server: Server) -> None:
    @app.before_request
    async def healthz_while_draining() -> Response | None:
        if server.draining and request.path == "/healthz":
            body = {"status": "draining", "active_calls": server.active_calls,
                    "calls_total": server.calls_total, "pid": os.getpid(), "nonce": server.nonce}
            return Response(orjson.dumps(body), status=503, content_type="application/json")
        return None
