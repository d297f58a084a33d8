"""What llc signs, verified by implementations nobody here wrote: the standardwebhooks package
and the openai SDK's webhooks.unwrap (both Standard Webhooks receivers)."""

from __future__ import annotations

import time

import openai
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from llc.events.signing import SecretError, Signer, check_secret, new_message_id, new_secret


def test_what_llc_signs_verifies_with_standard_webhooks_receivers() -> None:
    secret, body = new_secret(), b'{"type":"call.ended","data":{"call_sid":"CA1"}}'
    headers = Signer(secret).headers(new_message_id(), body, time.time())
    assert Webhook(secret).verify(body, headers) == {"type": "call.ended", "data": {"call_sid": "CA1"}}
    client = openai.OpenAI(api_key="sk-test", webhook_secret=secret)
    assert client.webhooks.unwrap(body.decode(), headers).type == "call.ended"  # type: ignore[union-attr]  # a model per event type
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)  # a changed body fails
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)  # so does another secret


@pytest.mark.parametrize(("value", "why"), [
    ("", "does not start with whsec_"), ("abc", "does not start with whsec_"),
    ("whsec_c2hvcnQ=", "its key is 5 bytes"), ("whsec_...", "not base64"),
])
def test_a_secret_that_cannot_sign_says_why(value: str, why: str) -> None:
    problem = check_secret(value)
    assert problem is not None and why in problem
    with pytest.raises(SecretError):
        Signer(value)


def test_a_new_secret_is_accepted() -> None:
    assert check_secret(new_secret()) is None
