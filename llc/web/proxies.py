"""Forwarded headers, honoured only from the proxies named in LLC_TRUSTED_PROXIES.

Behind nginx every request's TCP peer is the proxy; the client's address and the scheme it
used arrive in ``X-Forwarded-For`` / ``-Proto`` / ``-Host``. Anyone can send those headers, so
they are read only when the peer is a configured proxy, and then by Hypercorn's own
``ProxyFixMiddleware`` (one hop: the proxy's own entry), never parsed here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from hypercorn.middleware import ProxyFixMiddleware

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_trusted(peer: str | None, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return False
    return any(address in network for network in networks)


class TrustedProxies:
    """ASGI wrapper: requests from a trusted proxy go through ProxyFixMiddleware, others untouched."""

    def __init__(self, app: Any, networks: tuple[Network, ...]) -> None:
        self.app = app
        self.networks = networks
        self.fixed = ProxyFixMiddleware(app, mode="legacy", trusted_hops=1)

    async def __call__(self, scope: Any, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        client = scope.get("client")
        if scope.get("type") in ("http", "websocket") and client and is_trusted(client[0], self.networks):
            await self.fixed(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def behind_proxies(app: Any, networks: tuple[Network, ...]) -> Any:
    """``app`` wrapped for LLC_TRUSTED_PROXIES (``Settings.trusted_networks``), or ``app`` itself when none is set."""
    return TrustedProxies(app, networks) if networks else app
