"""Running the server: ``serve`` opens what ``build_server`` wired and serves until cancelled.

Start-up does what must come before the first call: the database is opened (a bad
LLC_DB_URL fails now), records kept in the pending file while the database was down are
written, and the records a killed run left open are closed. Then, in the server's nursery:
the warm-session registry, the media hub, the ticker, the front door on PORT (the media
stream on the fast engine, everything else on Hypercorn) and the admin listener.
"""

from __future__ import annotations

import trio

from llc.config import LOOPBACK_HOSTS
from llc.log import get_logger
from llc.openai.connect import tls_context
from llc.profile import check_tools
from llc.web import security
from llc.web.admin import create_admin_app, serve_admin
from llc.web.app import create_app
from llc.web.drain import watch_signals
from llc.web.front_door import serve_front_door
from llc.web.proxies import behind_proxies
from llc.web.server import Server
from llc.web.sip import serve_sip_calls

log = get_logger("web")


async def serve(server: Server, *, handle_signals: bool = False,
                task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve on PORT until cancelled (HTTP on Hypercorn, the media stream on the fast engine);
    reports the bound URLs. ``handle_signals`` (``llc-phone serve``): SIGTERM/SIGINT drain, then return."""
    from hypercorn.config import Config

    check_tools(server.profile, set(server.tools.tools))  # a profile naming a missing tool fails now
    security.log_posture(server.settings)
    await server.store.open()  # a bad LLC_DB_URL fails now; the schema is created on first run
    await server.durable.replay_pending()  # records kept while the database was down
    await server.durable.close_left_open()  # then what a killed run of this instance left open
    if server.settings.openai_realtime_url.startswith("wss:"):
        tls_context()  # once, now: not on the Trio thread during the first calls

    config = Config()
    config.bind = [f"{server.settings.host}:{server.settings.port}"]
    config.accesslog = None
    config.errorlog = None
    app = behind_proxies(create_app(server), server.settings.trusted_networks)  # X-Forwarded-* from LLC_TRUSTED_PROXIES only

    async with trio.open_nursery() as nursery:
        await nursery.start(server.warm.run)  # warm sessions live in the server nursery, closed on shutdown
        await nursery.start(serve_sip_calls, server)  # each SIP call the webhook queued, a nursery of its own
        if server.http_tools is not None:
            await nursery.start(server.http_tools.run)  # one pooled client for every HTTP tool, closed on shutdown
        await nursery.start(server.durable.drain_pending)  # what the start-up replay did not get through
        if server.events is not None:
            await nursery.start(server.events.run)  # call events out, rows left by a killed run first
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
