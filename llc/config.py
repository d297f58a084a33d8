"""One typed configuration object, read once at start-up from the environment and a ``.env`` file.

Precedence: process environment, then ``.env`` (the seed keeps PORT there), then defaults.
Every problem is collected and reported together, each naming the variable and the fix, so a
person fixing a deployment sees all of them at once instead of one per restart.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Literal, Mapping
from urllib.parse import urlsplit

from dotenv import dotenv_values

from llc.core.dialect import SHAPES, Shape

DEFAULT_REALTIME_URL = "wss://api.openai.com/v1/realtime"
DEFAULT_TWILIO_API_URL = "https://api.twilio.com"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


class ConfigError(Exception):
    """Configuration is missing or malformed; ``problems`` lists each one with its fix."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("configuration problems:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to know. Names in ``ENV`` are the public contract."""

    port: int = 8080
    host: str = "127.0.0.1"
    public_url: str | None = None
    openai_api_key: str | None = field(default=None, repr=False)
    openai_realtime_url: str = DEFAULT_REALTIME_URL
    openai_model: str = "gpt-realtime-1.5"
    openai_api_shape: Shape = "ga"
    openai_voice: str = "cedar"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = field(default=None, repr=False)
    twilio_api_url: str = DEFAULT_TWILIO_API_URL
    profile_path: str | None = None
    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: str = "INFO"
    max_frame_bytes: int = 64 * 1024
    openai_connect_timeout_s: float = 10.0
    api_token: str | None = field(default=None, repr=False)  # bearer token for POST /calls
    twilio_from_number: str | None = None  # caller ID of outbound calls (E.164)
    twilio_edge: str | None = None  # applied to the real Twilio API host only
    twilio_region: str | None = None
    prewarm_timeout_s: float = 10.0  # the seed: a warm session not ready by then -> cold connect
    outbound_scenarios_path: str | None = None
    # The WebSocket engine for the OpenAI leg: "fast" (websockets' sans-I/O protocol on a Trio
    # socket) or "wsproto" (trio-websocket). Default chosen by `llc bench relay`: see docs/performance.md.
    ws_engine: Literal["fast", "wsproto"] = "fast"
    # Twilio media on its own listener with the fast engine; None = through Hypercorn on PORT.
    media_port: int | None = None
    # Operations (issue 7): drain, pid file, logs, snapshots, the supervisor's name.
    drain_timeout_s: float = 30.0
    drain_fallback_number: str | None = None
    pid_file: str = "llc-phone.pid"
    log_file: str | None = None
    snapshot_dir: str = "snapshots"
    service_name: str = "llc-phone"
    # Security and limits (docs/security.md). Signatures are checked whenever TWILIO_AUTH_TOKEN is
    # set; turning them off takes LLC_TWILIO_SIGNATURES=off and logs a warning at start-up.
    twilio_signatures: bool = True
    stream_admission: bool = True  # media streams need this server's one-time token
    stream_token_ttl_s: float = 300.0  # webhook/dial -> stream start; covers 60 s of ringing + AMD
    max_calls: int = 100  # concurrent calls; over it /twiml answers a polite busy message
    max_call_s: float = 3600.0  # a call is ended after this long (0 = no limit)
    calls_per_minute: int = 60  # POST /calls rate limit (0 = no limit)
    apology_clip: str | None = None  # PCMU file played when OpenAI is lost for good
    # Inbound scenarios and pre-accept (docs/scenarios.md).
    scenarios_path: str | None = None  # None: LLC_OUTBOUND_SCENARIOS, else the bundled scenarios.toml
    db_url: str = "llc.db"  # SQLite file path (default), sqlite:///path, or postgresql://...
    preaccept: bool = True  # start the OpenAI session on the inbound webhook, before the stream
    preaccept_hold_s: float = 10.0  # a ready pre-accept session waits this long for its stream
    # This instance's own base URL when several run behind one load balancer: TwiML stream URLs
    # and callbacks point here, so the stream reaches the instance holding the warm session.
    instance_url: str | None = None
    # Records the database could not take wait here (JSON lines) until it is back.
    pending_records_path: str = "llc-records-pending.jsonl"

    @property
    def stream_url(self) -> str | None:
        """The media-stream URL Twilio must open: PUBLIC_URL with https→wss, http→ws."""
        return stream_url_for(self.public_url) if self.public_url else None

    @property
    def openai_is_local(self) -> bool:
        """True when the Realtime URL points at this machine (the simulator): no key needed."""
        return (urlsplit(self.openai_realtime_url).hostname or "") in LOOPBACK_HOSTS

    def with_overrides(self, **changes: object) -> "Settings":
        return replace(self, **changes)  # type: ignore[arg-type]


# Environment variable -> Settings field.
ENV: dict[str, str] = {
    "PORT": "port",
    "HOST": "host",
    "PUBLIC_URL": "public_url",
    "OPENAI_API_KEY": "openai_api_key",
    "OPENAI_REALTIME_URL": "openai_realtime_url",
    "OPENAI_MODEL": "openai_model",
    "OPENAI_API_SHAPE": "openai_api_shape",
    "OPENAI_VOICE": "openai_voice",
    "TWILIO_ACCOUNT_SID": "twilio_account_sid",
    "TWILIO_AUTH_TOKEN": "twilio_auth_token",
    "TWILIO_API_URL": "twilio_api_url",
    "LLC_PROFILE": "profile_path",
    "LOG_FORMAT": "log_format",
    "LOG_LEVEL": "log_level",
    "LLC_MAX_FRAME_BYTES": "max_frame_bytes",
    "OPENAI_CONNECT_TIMEOUT_S": "openai_connect_timeout_s",
    "LLC_API_TOKEN": "api_token",
    "TWILIO_FROM_NUMBER": "twilio_from_number",
    "TWILIO_EDGE": "twilio_edge",
    "TWILIO_REGION": "twilio_region",
    "LLC_PREWARM_TIMEOUT_S": "prewarm_timeout_s",
    "LLC_OUTBOUND_SCENARIOS": "outbound_scenarios_path",
    "LLC_WS_ENGINE": "ws_engine",
    "LLC_MEDIA_PORT": "media_port",
    "LLC_DRAIN_TIMEOUT_S": "drain_timeout_s",
    "LLC_DRAIN_FALLBACK_NUMBER": "drain_fallback_number",
    "LLC_PID_FILE": "pid_file",
    "LOG_FILE": "log_file",
    "LLC_SNAPSHOT_DIR": "snapshot_dir",
    "LLC_SERVICE_NAME": "service_name",
    "LLC_TWILIO_SIGNATURES": "twilio_signatures",
    "LLC_STREAM_ADMISSION": "stream_admission",
    "LLC_STREAM_TOKEN_TTL_S": "stream_token_ttl_s",
    "LLC_MAX_CALLS": "max_calls",
    "LLC_MAX_CALL_S": "max_call_s",
    "LLC_CALLS_PER_MINUTE": "calls_per_minute",
    "LLC_APOLOGY_CLIP": "apology_clip",
    "LLC_SCENARIOS": "scenarios_path",
    "LLC_DB_URL": "db_url",
    "LLC_PREACCEPT": "preaccept",
    "LLC_PREACCEPT_HOLD_S": "preaccept_hold_s",
    "LLC_INSTANCE_URL": "instance_url",
    "LLC_PENDING_RECORDS": "pending_records_path",
}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
# Twilio's documented edge locations (protocol notes); a typo would silently route via the default.
TWILIO_EDGES = ("ashburn", "umatilla", "dublin", "frankfurt", "singapore", "tokyo", "sao-paulo", "sydney")
E164_HINT = "a number in E.164 form, like +15551234567"
_FIELD_TYPES = {f.name: f.type for f in fields(Settings)}
_CHOICES: dict[str, tuple[str, ...]] = {
    "openai_api_shape": SHAPES,
    "log_format": ("auto", "json", "text"),
    "log_level": ("DEBUG", "INFO", "WARNING", "ERROR"),
    "ws_engine": ("fast", "wsproto"),
}


def is_dialable(number: str) -> bool:
    """E.164 with 7-15 digits: a number this server may transfer or drain calls to."""
    return _E164.fullmatch(number) is not None


def is_e164(number: str) -> bool:
    """``+`` then 2-15 digits, the first not 0: what Twilio accepts as To/From."""
    return re.fullmatch(r"\+[1-9][0-9]{1,14}", number) is not None


def stream_url_for(public_url: str) -> str:
    base = public_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    return base + "/media"


def _convert(name: str, env_name: str, raw: str, problems: list[str]) -> object:
    kind = str(_FIELD_TYPES[name])
    value: object = raw.strip()
    if kind == "bool":
        if raw.strip().lower() not in _TRUE + _FALSE:
            problems.append(f"{env_name}={raw!r} is not on or off; set {env_name}=on or {env_name}=off")
            return None
        return raw.strip().lower() in _TRUE
    if "int" in kind and "str" not in kind:
        try:
            value = int(raw)
        except ValueError:
            problems.append(f"{env_name}={raw!r} is not a whole number; set it like {env_name}=8080")
            return None
    elif "float" in kind:
        try:
            value = float(raw)
        except ValueError:
            problems.append(f"{env_name}={raw!r} is not a number; set it like {env_name}=10")
            return None
    if name in _CHOICES:
        value = str(value).lower() if name != "log_level" else str(value).upper()
        if value not in _CHOICES[name]:
            choices = " or ".join(_CHOICES[name])
            problems.append(f"{env_name}={raw!r} is not one of {choices}; set {env_name}={_CHOICES[name][0]}")
            return None
    return value


def _check(s: Settings, problems: list[str]) -> None:
    if not 0 <= s.port <= 65535:
        problems.append(f"PORT={s.port} is out of range; use 1-65535 (0 picks a free port)")
    for env_name, url in (("PUBLIC_URL", s.public_url), ("LLC_INSTANCE_URL", s.instance_url)):
        if url is None:
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            problems.append(f"{env_name}={url!r} must be a base URL Twilio reaches, like https://voice.example.com")
        elif parts.query or parts.fragment:
            problems.append(f"{env_name} must not carry a query string: Twilio's <Stream> URL takes none")
    if s.preaccept_hold_s <= 0:
        problems.append("LLC_PREACCEPT_HOLD_S must be above 0 (default 10)")
    if urlsplit(s.openai_realtime_url).scheme not in ("wss", "ws"):
        problems.append(
            f"OPENAI_REALTIME_URL={s.openai_realtime_url!r} must be a WebSocket URL (wss://…); "
            f"the default is {DEFAULT_REALTIME_URL}"
        )
    if urlsplit(s.twilio_api_url).scheme not in ("https", "http"):
        problems.append(f"TWILIO_API_URL={s.twilio_api_url!r} must be an http(s) URL; the default is {DEFAULT_TWILIO_API_URL}")
    if s.twilio_from_number is not None and not is_e164(s.twilio_from_number):
        problems.append(f"TWILIO_FROM_NUMBER={s.twilio_from_number!r} must be {E164_HINT}")
    if s.twilio_edge is not None and s.twilio_edge not in TWILIO_EDGES:
        problems.append(f"TWILIO_EDGE={s.twilio_edge!r} is not a Twilio edge; use one of {', '.join(TWILIO_EDGES)}")
    if s.prewarm_timeout_s <= 0:
        problems.append("LLC_PREWARM_TIMEOUT_S must be above 0 (the seed uses 10)")
    if s.media_port is not None and not 0 <= s.media_port <= 65535:
        problems.append(f"LLC_MEDIA_PORT={s.media_port} is out of range; use 1-65535, 0 for a free port, or unset it")
    if s.max_calls < 1:
        problems.append("LLC_MAX_CALLS must be at least 1 (the default is 100)")
    if s.max_call_s < 0 or s.calls_per_minute < 0:
        problems.append("LLC_MAX_CALL_S and LLC_CALLS_PER_MINUTE must be 0 (no limit) or more")
    if s.stream_token_ttl_s <= 0:
        problems.append("LLC_STREAM_TOKEN_TTL_S must be above 0 (the default is 300)")
    if s.apology_clip is not None and not Path(s.apology_clip).is_file():
        problems.append(f"LLC_APOLOGY_CLIP={s.apology_clip!r} is not a file; give a raw 8 kHz mu-law (.ulaw) file or unset it")
    if s.max_frame_bytes < 1024:
        problems.append("LLC_MAX_FRAME_BYTES must be at least 1024 (a Twilio media frame is ~400 bytes)")
    if s.drain_timeout_s < 0:
        problems.append(f"LLC_DRAIN_TIMEOUT_S={s.drain_timeout_s:g} must be 0 or more (seconds active calls may run on after SIGTERM)")
    if s.drain_fallback_number is not None and not is_dialable(s.drain_fallback_number):
        problems.append(
            f"LLC_DRAIN_FALLBACK_NUMBER={s.drain_fallback_number!r} must be an E.164 number like +14155550100"
        )


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: str | os.PathLike[str] | None = None,
    *,
    require_keys: bool = False,
) -> Settings:
    """Build Settings from ``environ`` (default ``os.environ``) over ``env_file`` (default ``./.env``).

    ``require_keys`` is for ``llc serve``: a real (non-loopback) OpenAI URL needs a key.
    Raises ConfigError listing every problem.
    """
    environ = os.environ if environ is None else environ
    path = Path(env_file if env_file is not None else environ.get("LLC_ENV_FILE", ".env"))
    merged: dict[str, str] = {}
    if path.is_file():
        merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(environ)

    problems: list[str] = []
    values: dict[str, object] = {}
    for env_name, name in ENV.items():
        raw = merged.get(env_name)
        if raw is None or raw.strip() == "":
            continue
        value = _convert(name, env_name, raw, problems)
        if value is not None:
            values[name] = value
    settings = Settings(**values)  # type: ignore[arg-type]
    _check(settings, problems)
    if require_keys and not settings.openai_api_key and not settings.openai_is_local:
        problems.append(
            "OPENAI_API_KEY is not set: put it in the environment or .env "
            "(or point OPENAI_REALTIME_URL at the simulator for a keyless run)"
        )
    if problems:
        raise ConfigError(problems)
    return settings
