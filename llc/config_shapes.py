"""Value shapes a variable's type cannot say: credentials left as the guide's examples, keys and
SIDs of the wrong form, URLs that do not parse. Each problem names the variable, what is wrong and
the fix, and shows at most a secret's first 3 characters.

Found at start-up, these would otherwise surface as a 401 on the first call, or as nothing at all.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from llc.config_vars import Settings
from llc.events.signing import MAKE_SECRET, check_secret

TWILIO_CONSOLE = "console.twilio.com → Account info"
# What to put in place of an example value, per variable.
_WHERE = {
    "OPENAI_API_KEY": "your key from platform.openai.com → API keys",
    "TWILIO_ACCOUNT_SID": f"the Account SID from {TWILIO_CONSOLE}",
    "TWILIO_AUTH_TOKEN": f"the Auth Token from {TWILIO_CONSOLE}",
    "LLC_API_TOKEN": "a random one: python3 -c \"import secrets; print(secrets.token_urlsafe(32))\"",
}
# The example values the docs show, lower-cased; values with "..." or "…" are caught by that rule.
_EXAMPLES = {"a-long-random-string"}
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_HOST = re.compile(r"[\w-]+(\.[\w-]+)*\.?")


def shown(secret: str) -> str:
    """A secret as a message may show it: its first 3 characters."""
    return repr(secret[:3] + "…")


def is_placeholder(value: str) -> bool:
    low = value.strip().lower()
    return "..." in low or "…" in low or low.startswith(("change-me", "changeme")) or low in _EXAMPLES


def credential_problems(s: Settings) -> list[str]:
    """Placeholders, malformed keys and SIDs, and outbound settings without their account."""
    problems: list[str] = []
    given = {"OPENAI_API_KEY": s.openai_api_key, "TWILIO_ACCOUNT_SID": s.twilio_account_sid,
             "TWILIO_AUTH_TOKEN": s.twilio_auth_token, "LLC_API_TOKEN": s.api_token}
    placeholders = {env for env, value in given.items() if value is not None and is_placeholder(value)}
    problems += [f"{env}={shown(given[env] or '')} is still the example value from the docs: replace it with {_WHERE[env]}"
                 for env in given if env in placeholders]
    key, sid, token = s.openai_api_key, s.twilio_account_sid, s.twilio_auth_token
    # Only the real API's keys have a known form; the simulator and other endpoints take anything.
    real_openai = (urlsplit(s.openai_realtime_url).hostname or "").endswith("api.openai.com")
    if key and "OPENAI_API_KEY" not in placeholders and real_openai and not key.startswith("sk-"):
        problems.append(f"OPENAI_API_KEY={shown(key)} does not start with sk-, so it is not an OpenAI API key: "
                        f"replace it with {_WHERE['OPENAI_API_KEY']}")
    if sid and "TWILIO_ACCOUNT_SID" not in placeholders and not (sid.startswith("AC") and _HEX32.fullmatch(sid[2:])):
        why = "; SK… is an API key's SID, not the account's" if sid.startswith("SK") else f" (this one has {len(sid)} characters)"
        problems.append(f"TWILIO_ACCOUNT_SID={shown(sid)} is not an Account SID, AC and 32 hex digits{why}: "
                        f"copy {_WHERE['TWILIO_ACCOUNT_SID']}")
    if token and "TWILIO_AUTH_TOKEN" not in placeholders and not _HEX32.fullmatch(token):
        problems.append(f"TWILIO_AUTH_TOKEN={shown(token)} is not an Auth Token, 32 hex digits (this one has "
                        f"{len(token)} characters): copy {_WHERE['TWILIO_AUTH_TOKEN']}")
    if s.webhook_secret and (unusable := check_secret(s.webhook_secret)) is not None:
        problems.append(f"LLC_WEBHOOK_SECRET={shown(s.webhook_secret)} cannot sign: {unusable}; make one with {MAKE_SECRET}")
    if s.twilio_from_number and not sid:
        problems.append("TWILIO_FROM_NUMBER is set but TWILIO_ACCOUNT_SID is not: outbound calls are placed with the "
                        f"account; set TWILIO_ACCOUNT_SID ({TWILIO_CONSOLE}) or unset TWILIO_FROM_NUMBER")
    return problems


def url_fault(url: str, schemes: tuple[str, ...]) -> str | None:
    """Why ``url`` is not a ``schemes`` URL with a host, or None when it is one."""
    if any(c.isspace() for c in url):
        return "it contains a space"
    parts = urlsplit(url)
    if "://" not in url:
        return f"it has no scheme ({schemes[0]}://…)"
    if parts.scheme.lower() not in schemes:
        return f"its scheme is {parts.scheme or 'missing'}, not {' or '.join(schemes)}"
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST.fullmatch(host):
            return "it has no valid host name"
    try:
        _ = parts.port
    except ValueError:
        return "its port is not a number from 0 to 65535"
    return None
