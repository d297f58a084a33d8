"""A real HTTP receiver of llc's call events on loopback, verifying each with ``standardwebhooks``.

``http.server`` in a thread: it keeps answering while the test's Trio loop waits. ``mode``:
``ok`` (200), ``fail`` (500), ``slow`` (200 after ``slow_s``). ``stop()``/``start()`` take it
off the port and back (connection refused meanwhile), the same port both times.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

from llc.kit.bench.server_proc import free_port


class Receiver:
    def __init__(self, secret: str, port: int = 0) -> None:
        self.webhook = Webhook(secret)
        self.port = port or free_port()
        self.mode = "ok"
        self.slow_s = 3.0
        self.deliveries: list[tuple[str, dict[str, Any]]] = []  # (webhook-id, payload), verified, answered 2xx
        self.attempts = 0
        self.bad_signatures = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def by_id(self) -> dict[str, dict[str, Any]]:
        """Deliveries after dropping duplicates by webhook-id, as a receiver would."""
        with self._lock:
            return dict(self.deliveries)

    def duplicates(self) -> int:
        with self._lock:
            return len(self.deliveries) - len(dict(self.deliveries))

    def _handle(self, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            self.attempts += 1
        try:
            payload = self.webhook.verify(body, headers)
        except Exception:  # noqa: BLE001  any failure to verify is a bad signature here
            with self._lock:
                self.bad_signatures += 1
            return 400
        if self.mode == "fail":
            return 500
        if self.mode == "slow":
            time.sleep(self.slow_s)
        with self._lock:
            self.deliveries.append((headers["webhook-id"], payload))
        return 200

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status = receiver._handle({k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def events(self) -> list[tuple[str, str]]:
        """(call_sid, type) of each unique delivery."""
        return sorted((p["data"]["call_sid"], p["type"]) for p in self.by_id().values())


def dump(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True)
