"""The admin surface: `/metrics`, `/debug/*` (and the call console), on a listener of its own.

Never on the public port: behind a reverse proxy on the same host every public request
arrives from 127.0.0.1, so "loopback only" cannot be told from the TCP peer there. This
listener is bound to LLC_ADMIN_HOST:LLC_ADMIN_PORT (loopback by default) and the proxy recipes
(ops/nginx/) never forward to it. Bound anywhere else, every request needs
``Authorization: Bearer <LLC_API_TOKEN>``.

Other features add their pages with ``register(app, server)`` on the app ``create_admin_app``
returns; the guard applies to every route of it.
"""

from __future__ import annotations

import trio
from quart import Response, request, websocket
from quart_trio import QuartTrio

from llc import metrics
from llc.config import LOOPBACK_HOSTS, Settings
from llc.core.refusal import Refusal, RefusalReason
from llc.log import get_logger
from llc.web import debug
from llc.web.console import ASSETS, console_blueprint
from llc.web.security import bearer_refusal
from llc.web.server import Server
from llc.web.try_call import try_blueprint

log = get_logger("web.admin")


def is_loopback_host(host_header: str | None) -> bool:
    """A ``Host`` naming this machine's loopback (127.0.0.1, localhost, [::1]), with or without a port."""
    host = (host_header or "").strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        name, _, port = host.partition(":")
    return name in LOOPBACK_HOSTS and (port == "" or port.isdigit())


def admin_refusal(settings: Settings, authorization: str | None, host: str | None) -> Refusal | None:
    """None when the admin listener may answer: asked on loopback by a loopback name, or with the token.

    Why the name matters on loopback: a web page on a domain that re-resolves to 127.0.0.1 (DNS
    rebinding), opened in a browser on the server, reaches this listener as its own origin and
    could read the console and the metrics. Its requests carry that domain as their ``Host``; a
    person or a scraper on the machine says 127.0.0.1 or localhost.
    """
    if settings.admin_host in LOOPBACK_HOSTS:
        if is_loopback_host(host) or bearer_refusal(settings.api_token, authorization) is None:
            return None
        return Refusal(RefusalReason.NOT_LOOPBACK_HOST,
                       f"Host {(host or '')[:100]!r} is not a loopback name: open the admin listener as "
                       "http://127.0.0.1:<LLC_ADMIN_PORT>/ (or send Authorization: Bearer <LLC_API_TOKEN>)")
    return bearer_refusal(settings.api_token, authorization)


def create_admin_app(server: Server) -> QuartTrio:
    app = QuartTrio("llc-admin")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024

    @app.before_request
    async def guard() -> Response | None:
        refusal = admin_refusal(server.settings, request.headers.get("Authorization"), request.headers.get("Host"))
        if refusal is None:
            return None
        log.warning("admin request refused: %s", refusal, extra={"path": request.path, "remote": request.remote_addr})
        if refusal.reason is RefusalReason.NOT_LOOPBACK_HOST:
            return Response(f"{refusal}\n", status=403)
        return Response(f"{refusal}\n", status=401, headers={"WWW-Authenticate": 'Bearer realm="llc-admin"'})

    @app.before_websocket
    async def guard_socket() -> Response | None:
        # Quart's before_request does not run for WebSockets (the try-a-call page's socket).
        refusal = admin_refusal(server.settings, websocket.headers.get("Authorization"), websocket.headers.get("Host"))
        if refusal is None:
            return None
        log.warning("admin socket refused: %s", refusal, extra={"path": websocket.path})
        return Response(f"{refusal}\n", status=403)

    @app.after_request
    async def same_origin_only(response: Response) -> Response:
        # Another site's page may not embed or read these answers (no CORS header is ever sent).
        response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.get("/metrics")
    async def metrics_page() -> Response:
        body, content_type = metrics.exposition(server.active_calls, server.draining)
        return Response(body, content_type=content_type)

    debug.register(app)
    app.register_blueprint(console_blueprint(server))  # /console/ (docs/console.md)
    app.register_blueprint(try_blueprint(server, str(ASSETS / "templates")))  # /console/try/: a call from the browser
    return app


async def serve_admin(server: Server, app: QuartTrio, *,
                      task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the admin app on LLC_ADMIN_HOST:LLC_ADMIN_PORT until cancelled; reports its URLs."""
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    host = server.settings.admin_host
    config = Config()
    config.bind = [f"[{host}]:{server.settings.admin_listen_port}" if ":" in host else f"{host}:{server.settings.admin_listen_port}"]
    config.accesslog = None
    config.errorlog = None

    async with trio.open_nursery() as nursery:
        try:
            binds = await nursery.start(hypercorn_serve, app, config)
        except BaseException as exc:
            if (failure := _os_error(exc)) is not None:  # Hypercorn's nursery wraps it in a group
                log.error("cannot listen on LLC_ADMIN_HOST:LLC_ADMIN_PORT %s (%s); set LLC_ADMIN_PORT to a free "
                          "port (or stop what holds it)", config.bind[0], failure.strerror or failure)
            raise
        server.admin_url = binds[0]
        log.info("admin surface (/metrics, /debug, /console/)", extra={"binds": binds, "token_required": host not in LOOPBACK_HOSTS})
        task_status.started(binds)


def _os_error(exc: BaseException) -> OSError | None:
    if isinstance(exc, OSError):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        if (found := _os_error(inner)) is not None:
            return found
    return None
