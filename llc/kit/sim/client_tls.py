"""The simulator's HTTP clients share one TLS context per trust setting.

Why: ``httpx.AsyncClient()`` builds a fresh context and loads the CA bundle into it, about
60 ms of CPU. The fake callers, the fake SIP control plane and the soak's faults make a client
per call or per event, on the same Trio loop as every other simulated call; a soak with a
dozen calls spent that on its loop several times a second, and its own lateness showed up as
the server's. A context built once (for the CA settings in the environment at the time, so a
test that points SSL_CERT_FILE at its own CA still gets it) costs nothing per client.
"""

from __future__ import annotations

import os
import ssl
from functools import lru_cache

import httpx


def client_tls() -> ssl.SSLContext:
    """The context for ``httpx.AsyncClient(verify=...)``: the environment's CA settings, built once."""
    return _context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@lru_cache(maxsize=4)
def _context(cafile: str | None, capath: str | None) -> ssl.SSLContext:  # the cache key
    return httpx.create_ssl_context(trust_env=True)
