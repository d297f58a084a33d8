"""Requests llc sends (HTTP tools, call events) are signed the Standard Webhooks way.

Headers ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256 of
id.timestamp.body>`` with the secret ``LLC_WEBHOOK_SECRET`` (``whsec_`` + base64), so a receiver
verifies them with any Standard Webhooks library. The signing is the ``standardwebhooks``
package's own, not a copy of it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets

from standardwebhooks import Webhook

PREFIX = "whsec_"
MIN_KEY_BYTES = 24  # what `llc-phone` prints as a new secret is 32


# How every message about a missing or unusable LLC_WEBHOOK_SECRET says to make one.
MAKE_SECRET = 'python3 -c "from llc.events.signing import new_secret; print(new_secret())"'


class SecretError(ValueError):
    """The secret is not ``whsec_`` + base64 of enough random bytes."""


def new_secret() -> str:
    """A fresh secret in the form receivers expect (``whsec_`` + base64 of 32 random bytes)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_secret(value: str) -> str | None:
    """Why ``value`` cannot sign (one line, without the secret), or None when it can."""
    if not value.startswith(PREFIX):
        return f"it does not start with {PREFIX} (Standard Webhooks form: {PREFIX} + base64)"
    raw = value[len(PREFIX):]
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        return "what follows whsec_ is not base64"
    if len(key) < MIN_KEY_BYTES:
        return f"its key is {len(key)} bytes, fewer than {MIN_KEY_BYTES}"
    return None


class Signer:
    def __init__(self, secret: str) -> None:
        problem = check_secret(secret)
        if problem is not None:
            raise SecretError(problem)
        self._webhook = Webhook(secret)

    def headers(self, msg_id: str, body: bytes, now: float) -> dict[str, str]:
        """The three headers for ``body``; ``msg_id`` stays the same on every retry of one message
        (receivers drop duplicates by it), ``now`` is the wall clock of this attempt."""
        at = dt.datetime.fromtimestamp(int(now), tz=dt.UTC)
        return {"webhook-id": msg_id, "webhook-timestamp": str(int(now)),
                "webhook-signature": self._webhook.sign(msg_id, at, body)}


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(12)
