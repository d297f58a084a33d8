"""Why a request or a stream is turned away, as a value: a reason to act on, and words for a person. Pure.

Checks return ``Refusal | None`` (None: nothing to refuse) or ``Admitted-thing | Refusal``, never a
bare string: the caller can tell the cases apart without parsing text, and the text is what the
log line and the HTTP answer say.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class RefusalReason(Enum):
    # the per-call ticket (a media stream's start)
    NO_TICKET = "no_ticket"
    NO_CALL_SID = "no_call_sid"
    UNKNOWN_TICKET = "unknown_ticket"  # never issued, or already spent
    TICKET_EXPIRED = "ticket_expired"
    ANOTHER_CALLS_TICKET = "another_calls_ticket"
    STREAM_EXISTS = "stream_exists"  # the call already has a media stream
    # Twilio's signature (a webhook, the media upgrade)
    NO_PUBLIC_URL = "no_public_url"  # the signed URL cannot be rebuilt
    NO_SIGNATURE = "no_signature"
    BAD_SIGNATURE = "bad_signature"
    # the bearer token (the API, the admin listener)
    API_TOKEN_UNSET = "api_token_unset"
    NO_BEARER = "no_bearer"
    WRONG_TOKEN = "wrong_token"
    # the admin listener on loopback, asked under another name (a DNS-rebinding page)
    NOT_LOOPBACK_HOST = "not_loopback_host"


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: RefusalReason
    text: str  # plain words, for the log and the answer

    def __str__(self) -> str:
        return self.text
