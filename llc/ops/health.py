"""Asking a running server for `/healthz`: used by `llc-phone restart` (wait until up) and `llc-phone doctor`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from llc.config import Settings


def local_base_url(settings: Settings) -> str:
    """Where this machine reaches the server: a wildcard bind is reached through loopback."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str
    body: dict[str, Any] | None = None
    ms: float = 0.0
    status: int = 0  # the HTTP status; 0 when nothing answered


def root_cause(exc: BaseException) -> str:
    """The innermost error of a chain, whole and on one line: "ConnectionRefusedError: [Errno 111] Connection
    refused" says more than the client library's wrapper around it, and is short enough to keep entire."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def fetch_health(settings: Settings, timeout_s: float = 2.0) -> Health:
    return fetch_health_at(local_base_url(settings), timeout_s)


def fetch_health_at(base_url: str, timeout_s: float = 2.0) -> Health:
    """``base_url``/healthz; redirects are followed (a proxy may send http to https)."""
    url = base_url.rstrip("/") + "/healthz"
    started = time.perf_counter()
    try:
        response = httpx.get(url, timeout=timeout_s, follow_redirects=True)
    except httpx.HTTPError as exc:
        return Health(False, f"no answer from {url}: {root_cause(exc)}")
    ms = (time.perf_counter() - started) * 1000
    try:
        body = response.json()
        if not isinstance(body, dict):
            raise ValueError("not an object")  # noqa: TRY004  joins the not-JSON answer below
    except ValueError:
        return Health(False, f"{url} answered HTTP {response.status_code} but not with llc's JSON: another program holds the port?",
                      ms=ms, status=response.status_code)
    if response.status_code != 200 or body.get("status") != "ok":
        return Health(False, f"{url} answered HTTP {response.status_code} status={body.get('status')!r}", body, ms,
                      response.status_code)
    return Health(True, f"{url} answered in {ms:.0f} ms (pid {body.get('pid')}, {body.get('active_calls')} active calls)",
                  body, ms, response.status_code)


def wait_healthy(settings: Settings, timeout_s: float, poll_s: float = 0.2) -> Health:
    """Poll /healthz until it answers ok or ``timeout_s`` passes; returns the last answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        health = fetch_health(settings, timeout_s=min(2.0, max(0.2, deadline - time.monotonic())))
        if health.ok or time.monotonic() >= deadline:
            return health
        time.sleep(poll_s)
