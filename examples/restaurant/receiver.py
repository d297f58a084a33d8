"""The restaurant's own web service: the `opening_hours` HTTP tool and the call events, both
signed by llc the Standard Webhooks way and verified here before anything is read.

    LLC_WEBHOOK_SECRET=whsec_... python receiver.py      # listens on 127.0.0.1:8099

Call events (call.started, call.ended with the whole record) are appended to events.jsonl,
once per webhook-id: llc retries until it gets a 2xx, so a receiver drops the repeats.
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks import Webhook, WebhookVerificationError

HOURS = {"sunday": ("12:00", "22:00"), "monday": None}  # closed on Mondays
DEFAULT_HOURS = ("18:00", "23:00")
EVENTS = Path(os.environ.get("EVENTS_FILE", "events.jsonl"))
seen: set[str] = set()


def opening_hours(arguments: dict[str, str]) -> dict[str, object]:
    day = str(arguments.get("day", "")).strip().lower()
    hours = HOURS.get(day, DEFAULT_HOURS)
    return {"day": day, "closed": True} if hours is None else {"day": day, "opens": hours[0], "closes": hours[1]}


class Handler(BaseHTTPRequestHandler):
    webhook = Webhook(os.environ["LLC_WEBHOOK_SECRET"])

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            payload = self.webhook.verify(body, dict(self.headers))
        except WebhookVerificationError:
            return self.answer(401, {"error": "bad signature"})
        if self.path == "/tools/opening-hours":
            return self.answer(200, opening_hours(payload.get("arguments", {})))
        if self.path == "/events":
            message_id = self.headers["webhook-id"]
            if message_id not in seen:  # a retry of an event already stored
                seen.add(message_id)
                with EVENTS.open("a") as f:
                    f.write(json.dumps({"webhook-id": message_id, **payload}) + "\n")
            return self.answer(204, None)
        return self.answer(404, {"error": "no such path"})

    def answer(self, status: int, data: object) -> None:
        body = b"" if data is None else json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


if __name__ == "__main__":
    port = int(os.environ.get("RECEIVER_PORT", "8099"))
    print(f"restaurant service on http://127.0.0.1:{port} (tools/opening-hours, events)", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
