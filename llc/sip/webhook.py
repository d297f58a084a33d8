"""OpenAI's ``realtime.call.incoming`` webhook: verified, fresh, seen once.

OpenAI signs its webhooks the Standard Webhooks way (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``); the ``standardwebhooks`` package checks the signature and refuses a
timestamp more than 5 minutes off. A replayed delivery (same ``webhook-id``) is answered 200
without a second call: OpenAI retries a delivery it thinks failed, and a replay must not
ring twice. The memory of ids is bounded (oldest forgotten first); an id older than the
tolerance is refused by its timestamp anyway.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from standardwebhooks import Webhook, WebhookVerificationError

INCOMING = "realtime.call.incoming"
REMEMBERED_IDS = 4096  # webhook-ids kept for replay detection: ~a day of calls at a busy line's pace


@dataclass(frozen=True)
class IncomingCall:
    """A verified ``realtime.call.incoming``: the call's id and its SIP headers."""

    call_id: str
    sip_headers: tuple[tuple[str, str], ...] = ()
    event_id: str = ""

    def header(self, name: str) -> str:
        """The first SIP header called ``name`` (case-insensitive), "" when absent."""
        low = name.lower()
        return next((v for k, v in self.sip_headers if k.lower() == low), "")

    @property
    def called(self) -> str:
        """The number dialled: the SIP ``To`` header's user part (Twilio's trunk puts the E.164 number there)."""
        return phone_of(self.header("To"))

    @property
    def caller(self) -> str:
        return phone_of(self.header("From"))

    @property
    def twilio_call_sid(self) -> str:
        return self.header("X-Twilio-CallSid")


def phone_of(value: str) -> str:
    """``+15551234567`` out of ``"Ann" <sip:+15551234567@host;user=phone>;tag=x`` (or the value as is)."""
    v = value.strip()
    if "<" in v and ">" in v:
        v = v[v.index("<") + 1:v.index(">")]
    for scheme in ("sip:", "sips:", "tel:"):
        if v.lower().startswith(scheme):
            v = v[len(scheme):]
    return v.split("@", 1)[0].split(";", 1)[0]


def _versioned(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers with each bare signature given its ``v1,``: OpenAI's SDK accepts a signature
    without the version (its ``webhooks.unwrap``), the Standard Webhooks library does not, and
    llc accepts exactly what the SDK does. The HMAC itself is checked the same either way."""
    out = {k.lower(): v for k, v in headers.items()}
    if "webhook-signature" in out:
        out["webhook-signature"] = " ".join(p if "," in p else "v1," + p for p in out["webhook-signature"].split())
    return out


@dataclass(frozen=True)
class Verdict:
    """``status`` to answer; ``call`` to start (None: nothing to do); ``why`` for the log."""

    status: int
    call: IncomingCall | None = None
    why: str = ""


@dataclass
class WebhookGuard:
    secret: str
    remember: int = REMEMBERED_IDS
    _seen: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        self._webhook = Webhook(self.secret)

    def check(self, body: bytes, headers: Mapping[str, str]) -> Verdict:
        try:
            self._webhook.verify(body, _versioned(headers), json_parse=False)
            event: Any = orjson.loads(body)
        except WebhookVerificationError as exc:
            return Verdict(401, why=f"signature refused: {exc}")
        except orjson.JSONDecodeError:
            return Verdict(400, why="signed body is not JSON")
        msg_id = {k.lower(): v for k, v in headers.items()}.get("webhook-id", "")
        if msg_id in self._seen:
            return Verdict(200, why="a replayed delivery (webhook-id seen before): ignored")
        self._seen[msg_id] = None
        while len(self._seen) > self.remember:
            self._seen.popitem(last=False)
        if not isinstance(event, dict) or event.get("type") != INCOMING:
            return Verdict(200, why=f"event {event.get('type') if isinstance(event, dict) else '?'!r} is not for calls")
        data = event.get("data")
        call_id = data.get("call_id") if isinstance(data, dict) else None
        if not isinstance(call_id, str) or not call_id:
            return Verdict(400, why="realtime.call.incoming without data.call_id")
        raw = data.get("sip_headers") if isinstance(data, dict) else None
        headers_ = tuple((str(h.get("name", "")), str(h.get("value", ""))) for h in raw or () if isinstance(h, dict))
        return Verdict(200, IncomingCall(call_id, headers_, str(event.get("id", ""))))
