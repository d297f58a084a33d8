"""Stream admission: a media stream is let in only for a call this server answered or placed.

Every TwiML the server hands out (inbound webhook, outbound dial) carries a one-time token as
a ``<Parameter>``; the stream's ``start`` frame brings it back. A token works once, only for
the CallSid it was bound to, and only until it expires; and a call has at most one live
stream. Pure bookkeeping: the caller passes the clock, so tests need no sleeps.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass

TOKEN_PARAM = "stream_token"
# Unused tokens kept at most (oldest dropped first): a flood of webhooks cannot grow memory.
MAX_TOKENS = 10_000


@dataclass
class _Token:
    expires: float
    call_sid: str | None  # None until the outbound dial returns its CallSid


class AdmissionBook:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._tokens: OrderedDict[str, _Token] = OrderedDict()
        self._live: set[str] = set()  # CallSids with an admitted stream still running
        self.refused = 0

    def issue(self, now: float, call_sid: str | None = None) -> str:
        """A new one-time token, bound to ``call_sid`` if it is known already."""
        self._prune(now)
        token = secrets.token_urlsafe(18)
        self._tokens[token] = _Token(now + self.ttl_s, call_sid or None)
        while len(self._tokens) > MAX_TOKENS:
            self._tokens.popitem(last=False)
        return token

    def bind(self, token: str, call_sid: str) -> None:
        """The outbound dial returned: from now on only this call's stream may use the token."""
        entry = self._tokens.get(token)
        if entry is not None:
            entry.call_sid = call_sid

    def outstanding(self, now: float) -> int:
        """Tokens handed out whose streams have not arrived yet: calls about to start."""
        self._prune(now)
        return len(self._tokens)

    def admit(self, token: str | None, call_sid: str, now: float) -> str | None:
        """None admits the stream (the token is spent); otherwise the reason it is refused."""
        reason = self._check(token, call_sid, now)
        if reason is None:
            del self._tokens[token]  # type: ignore[arg-type]
            self._live.add(call_sid)
        else:
            self.refused += 1
        return reason

    def _check(self, token: str | None, call_sid: str, now: float) -> str | None:
        if not token:
            return f"no {TOKEN_PARAM} parameter: the stream did not come from TwiML this server answered"
        if not call_sid:
            return "the start frame has no callSid"
        entry = self._tokens.get(token)
        if entry is None:
            return "unknown or already used stream token"
        if now > entry.expires:
            del self._tokens[token]
            return "stream token expired"
        if entry.call_sid is not None and entry.call_sid != call_sid:
            return "stream token belongs to another call"
        if call_sid in self._live:
            return "this call already has a media stream"
        return None

    def release(self, call_sid: str) -> None:
        """The admitted stream of ``call_sid`` ended."""
        self._live.discard(call_sid)

    def _prune(self, now: float) -> None:
        while self._tokens:
            token, entry = next(iter(self._tokens.items()))
            if entry.expires >= now:
                break  # issued in order with one TTL: the rest are younger
            del self._tokens[token]
