"""Every credential and URL refusal, as a user meets it: `llc-phone serve` with a .env holding one
bad value prints one line naming the variable and the fix, no traceback, exit 2.

The guide's .env copied as is used to start the server without a word."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llc.config import load_settings
from llc.events.signing import new_secret

SECRET = new_secret()

# A complete public set-up that loads cleanly: each case changes one value of it.
GOOD = {"PORT": "0", "LLC_PUBLIC_URL": "https://voice.example.com", "OPENAI_API_KEY": "sk-proj-abcdefgh",
        "TWILIO_ACCOUNT_SID": "AC" + "0123456789abcdef" * 2, "TWILIO_AUTH_TOKEN": "fedcba9876543210" * 2,
        "TWILIO_FROM_NUMBER": "+14155550100", "LLC_API_TOKEN": "k3Jd8s-random-token"}

CASES = [
    ({"OPENAI_API_KEY": "sk-..."},
     "OPENAI_API_KEY='sk-…' is still the example value from the docs: replace it with your key from platform.openai.com"),
    ({"TWILIO_ACCOUNT_SID": "AC..."}, ("TWILIO_ACCOUNT_SID='AC.…' is still the example value from the docs: replace it "
                                      "with the Account SID from console.twilio.com → Account info")),
    ({"TWILIO_AUTH_TOKEN": "..."}, ("TWILIO_AUTH_TOKEN='...…' is still the example value from the docs: replace it "
                                   "with the Auth Token from console.twilio.com → Account info")),
    ({"TWILIO_AUTH_TOKEN": "abcd…"}, "TWILIO_AUTH_TOKEN='abc…' is still the example value"),
    ({"LLC_API_TOKEN": "change-me-to-a-long-random-string"},
     "LLC_API_TOKEN='cha…' is still the example value from the docs: replace it with a random one: python3 -c"),
    ({"LLC_API_TOKEN": "a-long-random-string"}, "LLC_API_TOKEN='a-l…' is still the example value"),
    ({"OPENAI_API_KEY": "proj-1234567890"}, "OPENAI_API_KEY='pro…' does not start with sk-, so it is not an OpenAI API key"),
    ({"TWILIO_ACCOUNT_SID": "SK123"}, ("TWILIO_ACCOUNT_SID='SK1…' is not an Account SID, AC and 32 hex digits; "
                                      "SK… is an API key's SID, not the account's: copy the Account SID")),
    ({"TWILIO_ACCOUNT_SID": "AC123"}, ("TWILIO_ACCOUNT_SID='AC1…' is not an Account SID, AC and 32 hex digits "
                                      "(this one has 5 characters)")),
    ({"TWILIO_AUTH_TOKEN": "not-hex-but-32-characters-long!!"},
     "TWILIO_AUTH_TOKEN='not…' is not an Auth Token, 32 hex digits (this one has 32 characters): copy the Auth Token"),
    ({"LLC_PUBLIC_URL": "https://voice example.com"},
     ("LLC_PUBLIC_URL='https://voice example.com' is not a base URL Twilio reaches: it contains a space; "
     "write it like https://voice.example.com")),
    ({"LLC_PUBLIC_URL": "voice.example.com"}, ("LLC_PUBLIC_URL='voice.example.com' is not a base URL Twilio reaches: "
                                              "it has no scheme (https://…)")),
    ({"LLC_INSTANCE_URL": "https://node_2!.example.com"}, ("LLC_INSTANCE_URL='https://node_2!.example.com' is not a "
                                                          "base URL Twilio reaches: it has no valid host name")),
    ({"OPENAI_REALTIME_URL": "api.openai.com/v1/realtime"},
     ("OPENAI_REALTIME_URL='api.openai.com/v1/realtime' is not a WebSocket URL (wss://…): it has no scheme (wss://…); "
     "the default is wss://api.openai.com/v1/realtime")),
    ({"TWILIO_API_URL": "https://api.twilio.com:http"}, ("TWILIO_API_URL='https://api.twilio.com:http' is not an http(s) "
                                                        "URL: its port is not a number from 0 to 65535")),
    ({"TWILIO_ACCOUNT_SID": ""}, ("TWILIO_FROM_NUMBER is set but TWILIO_ACCOUNT_SID is not: outbound calls are placed "
                                 "with the account; set TWILIO_ACCOUNT_SID (console.twilio.com → Account info) "
                                 "or unset TWILIO_FROM_NUMBER")),
    ({"LLC_EVENTS_URL": "https://hooks.example.com/llc"},
     "LLC_EVENTS_URL is set but LLC_WEBHOOK_SECRET is not: events are sent signed; make one with python3 -c"),
    ({"LLC_EVENTS_URL": "http://hooks.example.com/llc", "LLC_WEBHOOK_SECRET": SECRET},
     "LLC_EVENTS_URL='http://hooks.example.com/llc' is not https: call records would cross the network in the clear"),
    ({"LLC_EVENTS_URL": "hooks.example.com/llc", "LLC_WEBHOOK_SECRET": SECRET},
     "LLC_EVENTS_URL='hooks.example.com/llc' is not an http(s) URL: it has no scheme (https://…)"),
]


def _env_file(tmp_path: Path, values: dict[str, str]) -> Path:
    path = tmp_path / "bad.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return path


def test_the_good_set_up_loads(tmp_path: Path) -> None:
    """Each case below then has exactly one thing wrong."""
    settings = load_settings({}, _env_file(tmp_path, GOOD), require_keys=True)
    assert settings.twilio_account_sid == GOOD["TWILIO_ACCOUNT_SID"]


@pytest.mark.parametrize("change, expected", CASES, ids=[f"{next(iter(c))}={c[next(iter(c))]}" for c, _ in CASES])
def test_serve_refuses_one_bad_value_in_one_line(tmp_path: Path, change: dict[str, str], expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLC_", "OPENAI_", "TWILIO_", "PORT"))}
    env["LLC_ENV_FILE"] = str(_env_file(tmp_path, {**GOOD, **change}))
    # Were the check gone, the server would start and serve until the timeout.
    done = subprocess.run([sys.executable, "-m", "llc", "serve"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    problems = [line for line in done.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 1 and expected in problems[0], done.stderr
    for name, value in change.items():  # a secret is never echoed whole
        if name in ("OPENAI_API_KEY", "TWILIO_AUTH_TOKEN", "LLC_API_TOKEN") and len(value) > 3:
            assert value not in done.stderr


@pytest.mark.parametrize("change", [
    {"OPENAI_REALTIME_URL": "ws://[::1]:9/v1/realtime", "OPENAI_API_KEY": "any-key-for-the-simulator"},
    {"OPENAI_REALTIME_URL": "wss://my-proxy.internal:8443/v1/realtime", "OPENAI_API_KEY": "az-key"},
    {"LLC_PUBLIC_URL": "https://xn--bcher-kva.example/", "LLC_INSTANCE_URL": "https://10.0.0.5:8443"},
    {"TWILIO_API_URL": "http://localhost:8099", "TWILIO_ACCOUNT_SID": "AC" + "ABCDEF0123456789" * 2},
    {"LLC_EVENTS_URL": "http://127.0.0.1:9000/events", "LLC_WEBHOOK_SECRET": SECRET},
    {"LLC_EVENTS_URL": "http://hooks.lan/llc", "LLC_WEBHOOK_SECRET": SECRET, "LLC_LOCAL_ONLY": "on"},
], ids=["simulator-on-ipv6", "another-endpoint", "punycode-and-ip", "local-twilio", "events-on-loopback",
        "events-local-only"])
def test_real_shapes_are_not_refused(tmp_path: Path, change: dict[str, str]) -> None:
    """The rules must not turn away a working set-up: the sk- rule holds for api.openai.com only."""
    settings = load_settings({}, _env_file(tmp_path, {**GOOD, **change}), require_keys=True)
    assert settings.openai_realtime_url == change.get("OPENAI_REALTIME_URL", settings.openai_realtime_url)
