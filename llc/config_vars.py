"""The one definition of llc's configuration: every environment variable, once, in sections.

Each ``Settings`` field is declared by ``_var(...)``: environment name, section, type, default,
one-line meaning and allowed choices sit on that line, as a ``Var`` in the field's metadata.
``llc.config`` converts the environment by each Var's declared type, and renders the table in
docs/configuration.md from the same Vars. The annotation beside it is for the type checker; a test
checks that the two agree.

Naming rule: llc's own variables start with ``LLC_``; the ecosystem's keep their names (``PORT``,
``OPENAI_*``, ``TWILIO_*``). Old names are refused with their fix (``RENAMED``, ``REMOVED``), never
read as aliases.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from llc.core.dialect import SHAPES, Shape
from llc.core.session import VOICES

# Section key -> title in the docs, in the order the docs list them.
SECTIONS = {
    "server": "Server",
    "openai": "OpenAI",
    "twilio": "Twilio",
    "calls": "Calls and limits",
    "security": "Security",
    "scenarios": "Scenarios and records",
    "ops": "Operations and logs",
}
DEFAULT_REALTIME_URL = "wss://api.openai.com/v1/realtime"
DEFAULT_API_URL = "https://api.openai.com/v1"
DEFAULT_TWILIO_API_URL = "https://api.twilio.com"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def in_the_clear(url: str) -> bool:
    """Plain http to a host other than this machine: what goes there crosses the network unencrypted."""
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS
# Twilio's documented edge locations; a typo would silently route via the default.
TWILIO_EDGES = ("ashburn", "umatilla", "dublin", "frankfurt", "singapore", "tokyo", "sao-paulo", "sydney")
LOG_FORMATS = ("auto", "json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class Var:
    """One environment variable: how it is read, and how the docs describe it."""

    env: str
    section: str  # a key of SECTIONS
    type: type  # int, float, bool or str: how the text is converted
    default: object  # None: unset unless given
    meaning: str
    choices: tuple[str, ...] = ()  # allowed values of a str, matched without regard to case
    unset: str = "—"  # what the docs say happens when a None default stays unset
    field: str = ""  # the Settings field ("" for LLC_ENV_FILE, read before Settings exist)

    def __post_init__(self) -> None:
        # A typo here would drop the variable from the docs or from conversion without a word.
        if self.section not in SECTIONS or self.type not in (int, float, bool, str):
            raise TypeError(f"{self.env}: section {self.section!r} or type {self.type!r} is not one llc.config reads")
        if self.choices and self.type is not str:
            raise TypeError(f"{self.env}: choices are for str variables")


def _var(env: str, section: str, kind: type, default: object, meaning: str, *,
         choices: tuple[str, ...] = (), unset: str = "—", secret: bool = False) -> Any:
    """A dataclass field carrying its Var; ``secret`` keeps the value out of repr (and logs)."""
    var = Var(env, section, kind, default, meaning, choices, unset)
    return field(default=default, repr=not secret, metadata={"var": var})


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to know, read once at start-up (``llc.config.load_settings``)."""

    # -- server --
    port: int = _var("PORT", "server", int, 8080, "listening port (0 picks a free one)")
    host: str = _var("LLC_HOST", "server", str, "127.0.0.1", "listening address; put a TLS reverse proxy in front")
    public_url: str | None = _var("LLC_PUBLIC_URL", "server", str, None,
                                  "the https base Twilio reaches: webhook `…/twiml`, stream `wss://…/media`")
    # Behind a load balancer, TwiML stream URLs and callbacks point here so the stream reaches the
    # instance holding the warm session; LLC_PUBLIC_URL stays the balanced webhook address.
    instance_url: str | None = _var("LLC_INSTANCE_URL", "server", str, None,
                                    "this instance's own base URL behind a load balancer")
    # The admin surface (/metrics, /debug/*, the console) is its own listener, never the public port:
    # behind a proxy on the same host every public request comes from loopback (docs/security.md).
    admin_host: str = _var("LLC_ADMIN_HOST", "server", str, "127.0.0.1",
                           "admin listener address (/metrics, /debug); off loopback it requires LLC_API_TOKEN")
    admin_port: int | None = _var("LLC_ADMIN_PORT", "server", int, None, "admin listener port",
                                  unset="PORT + 1 (a free port when PORT is 0)")
    # Forwarded headers (X-Forwarded-For/-Proto/-Host) are read only from these peers, one hop.
    trusted_proxies: str | None = _var("LLC_TRUSTED_PROXIES", "server", str, None,
                                       "comma-separated proxy addresses or networks whose X-Forwarded-* "
                                       "headers are honoured", unset="forwarded headers ignored")
    # The one switch for experiments on this machine: without it `llc-phone serve` refuses a set-up that
    # Twilio could not reach, or that would accept forged webhooks (llc.config._serve_checks).
    local_only: bool = _var("LLC_LOCAL_ONLY", "server", bool, False,
                            "a local experiment: `llc-phone serve` skips the public checks (LLC_PUBLIC_URL https, "
                            "TWILIO_AUTH_TOKEN) and must listen on loopback")
    # -- openai --
    openai_api_key: str | None = _var("OPENAI_API_KEY", "openai", str, None,
                                      "required by `llc-phone serve` unless the Realtime URL is on loopback", secret=True)
    openai_realtime_url: str = _var("OPENAI_REALTIME_URL", "openai", str, DEFAULT_REALTIME_URL,
                                    "Realtime endpoint (the simulator in tests)")
    openai_model: str = _var("OPENAI_MODEL", "openai", str, "gpt-realtime-1.5",
                             "model (`gpt-realtime-mini` is cheaper)")
    openai_api_shape: Shape = _var("OPENAI_API_SHAPE", "openai", str, "ga", "Realtime session shape",  # noqa: RUF009  a field()
                                   choices=SHAPES)
    # Realtime over SIP (docs/sip.md): the calls API (accept, reject, refer, hang up) lives here; the
    # call's sideband socket is OPENAI_REALTIME_URL with ?call_id=.
    openai_api_url: str = _var("OPENAI_API_URL", "openai", str, DEFAULT_API_URL,
                               "REST base of the SIP calls API (the simulator in tests)")
    openai_webhook_secret: str | None = _var("OPENAI_WEBHOOK_SECRET", "openai", str, None,
                                             "SIP: verifies OpenAI's `realtime.call.incoming` webhooks "
                                             "(`whsec_…`, from the project's webhook settings)",
                                             unset="POST /openai/webhook answers 404 (SIP off)", secret=True)
    openai_voice: str = _var("OPENAI_VOICE", "openai", str, "cedar", "voice when the profile names none",
                                   choices=VOICES)
    # One wait at call start, warm or cold (not two in a row): then the caller hears the apology.
    openai_connect_timeout_s: float = _var("OPENAI_CONNECT_TIMEOUT_S", "openai", float, 5.0,
                                           "a call waits this long for its OpenAI session (warm or cold), then "
                                           "apologises and ends; also bounds each reconnect")
    warm_wait_s: float = _var("LLC_WARM_WAIT_S", "openai", float, 1.0,
                              "a stream whose warm session is not usable yet waits this long, then a cold "
                              "connect starts beside it (the first ready wins)")
    openai_ping_s: float = _var("LLC_OPENAI_PING_S", "openai", float, 2.0,
                                "ping the OpenAI socket this often during a call (0 = never)")
    openai_pong_timeout_s: float = _var("LLC_OPENAI_PONG_TIMEOUT_S", "openai", float, 3.0,
                                        "no pong within this: the OpenAI leg is dead (one reconnect, else the apology)")
    # A warm session not ready by then is dropped and the call connects cold.
    prewarm_timeout_s: float = _var("LLC_PREWARM_TIMEOUT_S", "openai", float, 10.0,
                                    "outbound: a warm session not ready by then is dropped; the call connects cold")
    preaccept: bool = _var("LLC_PREACCEPT", "openai", bool, True, "inbound: start the OpenAI session on the webhook")
    preaccept_hold_s: float = _var("LLC_PREACCEPT_HOLD_S", "openai", float, 10.0,
                                   "a ready pre-accepted session waits this long for its stream")
    # -- twilio --
    twilio_account_sid: str | None = _var("TWILIO_ACCOUNT_SID", "twilio", str, None, "account for the REST API")
    twilio_auth_token: str | None = _var("TWILIO_AUTH_TOKEN", "twilio", str, None,
                                         "REST API and webhook signatures", secret=True)
    twilio_api_url: str = _var("TWILIO_API_URL", "twilio", str, DEFAULT_TWILIO_API_URL,
                               "REST base (tests point it at the simulator)")
    twilio_from_number: str | None = _var("TWILIO_FROM_NUMBER", "twilio", str, None,
                                          "caller ID of outbound calls (E.164)")
    twilio_edge: str | None = _var("TWILIO_EDGE", "twilio", str, None,
                                   "REST API edge, applied to the real API host only", choices=TWILIO_EDGES)
    twilio_region: str | None = _var("TWILIO_REGION", "twilio", str, None,
                                     "REST API region (e.g. `ie1`), applied to the real API host only")
    # -- calls and limits --
    max_calls: int = _var("LLC_MAX_CALLS", "calls", int, 100, "concurrent calls; over it new calls hear a busy message")
    max_call_s: float = _var("LLC_MAX_CALL_S", "calls", float, 3600.0, "a call is ended after this long (0 = no limit)")
    calls_per_minute: int = _var("LLC_CALLS_PER_MINUTE", "calls", int, 60, "`POST /calls` rate limit (0 = no limit)")
    # Twilio sends a media frame every 20 ms for the whole call: silence means a dead leg.
    twilio_idle_s: float = _var("LLC_TWILIO_IDLE_S", "calls", float, 5.0,
                                "a started call that receives nothing from Twilio this long ends (dead leg)")
    start_timeout_s: float = _var("LLC_START_TIMEOUT_S", "calls", float, 5.0,
                                  "a media socket that sends no `start` within this is closed")
    # A caller whose agent cannot be reached goes to a person instead of the apology.
    fallback_number: str | None = _var("LLC_FALLBACK_NUMBER", "calls", str, None,
                                       "when OpenAI cannot be reached at call start, the call is dialled here "
                                       "(E.164) instead of hearing the apology", unset="the apology, then a hang-up")
    send_stall_s: float = _var("LLC_SEND_STALL_S", "calls", float, 1.0,
                               "a write blocked this long (the peer stopped reading) fails that leg")
    max_frame_bytes: int = _var("LLC_MAX_FRAME_BYTES", "calls", int, 64 * 1024,
                                "larger Twilio frames are logged and skipped")
    apology_clip: str | None = _var("LLC_APOLOGY_CLIP", "calls", str, None,
                                    "raw 8 kHz mu-law file played when OpenAI is lost for good", unset="bundled chime")
    # -- security (docs/security.md) --
    api_token: str | None = _var("LLC_API_TOKEN", "security", str, None,
                                 "bearer token for `POST /calls`, `GET /calls/<sid>` (unset: they answer 401)",
                                 secret=True)
    webhook_secret: str | None = _var("LLC_WEBHOOK_SECRET", "security", str, None,
                                      "signs what llc sends (HTTP tools, call events), Standard Webhooks form "
                                      "`whsec_` + base64", unset="nothing is sent signed", secret=True)
    # Delivered by one task per server from the store's outbox (llc.events.delivery), never by a call.
    events_url: str | None = _var("LLC_EVENTS_URL", "security", str, None,
                                  "receives `call.started` and `call.ended` (the whole record), signed with "
                                  "LLC_WEBHOOK_SECRET (docs/events.md)", unset="no events sent")
    # Signatures are checked whenever TWILIO_AUTH_TOKEN is set; off is logged as a warning at start-up.
    twilio_signatures: bool = _var("LLC_TWILIO_SIGNATURES", "security", bool, True,
                                   "check Twilio's request signatures (`off` is warned at start-up)")
    stream_admission: bool = _var("LLC_STREAM_ADMISSION", "security", bool, True,
                                  "media streams need this server's one-time token (`off` for load generators)")
    # Webhook/dial -> stream start; covers 60 s of ringing plus answering-machine detection.
    stream_token_ttl_s: float = _var("LLC_STREAM_TOKEN_TTL_S", "security", float, 300.0,
                                     "seconds a stream token stays valid")
    # -- scenarios and records (docs/scenarios.md) --
    profile_path: str | None = _var("LLC_PROFILE", "scenarios", str, None,
                                    "the tuned profile TOML (prompt, voice, greeting, VAD)", unset="bundled default")
    scenarios_path: str | None = _var("LLC_SCENARIOS", "scenarios", str, None,
                                      "scenarios TOML for both directions, `[numbers]` → scenario",
                                      unset="bundled `scenarios.toml`")
    # Modules of the user's own @tool functions, imported at start (docs/05-async-tools.md).
    tool_modules: str | None = _var("LLC_TOOLS", "scenarios", str, None,
                                    "comma-separated Python modules whose `@tool` functions scenarios may name, "
                                    "found in the start folder first, then installed packages", unset="built-in tools only")
    db_url: str = _var("LLC_DB_URL", "scenarios", str, "llc.db",
                       "SQLite path, `sqlite:///path`, or `postgresql://…` (`[postgres]` extra)")
    pending_records_path: str = _var("LLC_PENDING_RECORDS", "scenarios", str, "llc-records-pending.jsonl",
                                     "call records the database could not take wait here (JSON lines) until it is back")
    # One bound for every database operation: PostgreSQL's statement_timeout and connect_timeout,
    # SQLite's busy_timeout, and the wait for a free connection (docs/operations.md, "The database").
    db_timeout_s: float = _var("LLC_DB_TIMEOUT_S", "scenarios", float, 3.0,
                               "seconds any one database operation may take; past it the operation fails")
    # Several instances share one PostgreSQL: each start closes as server_died only its own open records.
    instance: str | None = _var("LLC_INSTANCE", "scenarios", str, None,
                                "this server's name on its call records; unique among servers sharing a database",
                                unset="the host name")
    # Call audio (llc/call/recording.py, docs/console.md): off by default, it is personal data.
    record_audio: bool = _var("LLC_RECORD_AUDIO", "scenarios", bool, False,
                              "record each call as a stereo WAV: caller left, agent right as the caller heard it")
    recordings_dir: str = _var("LLC_RECORDINGS_DIR", "scenarios", str, "recordings",
                               "where call recordings go (`<CallSid>.wav`; `llc-phone calls audio SID` exports one)")
    recordings_keep_days: float = _var("LLC_RECORDINGS_KEEP_DAYS", "scenarios", float, 30.0,
                                       "recordings older than this many days are deleted (0 = kept forever)")
    # -- operations and logs (docs/operations.md) --
    log_format: Literal["auto", "json", "text"] = _var("LLC_LOG_FORMAT", "ops", str, "auto",
                                                        "log lines on stderr; `auto` is text on a terminal",
                                                        choices=LOG_FORMATS)
    log_level: str = _var("LLC_LOG_LEVEL", "ops", str, "INFO", "least severe level logged", choices=LOG_LEVELS)
    log_file: str | None = _var("LLC_LOG_FILE", "ops", str, None,
                                "also write JSON log lines here (`llc-phone doctor` reads them)")
    pid_file: str = _var("LLC_PID_FILE", "ops", str, "llc-phone.pid",
                         "written by `llc-phone serve` once it listens, removed on exit")
    snapshot_dir: str = _var("LLC_SNAPSHOT_DIR", "ops", str, "snapshots", "where `llc-phone snapshot` keeps profiles")
    service_name: str = _var("LLC_SERVICE_NAME", "ops", str, "llc-phone",
                             "the systemd unit / pm2 app `llc-phone restart` and `llc-phone doctor` look for")
    drain_timeout_s: float = _var("LLC_DRAIN_TIMEOUT_S", "ops", float, 30.0,
                                  "after SIGTERM, active calls may run this long, then are ended")
    drain_fallback_number: str | None = _var("LLC_DRAIN_FALLBACK_NUMBER", "ops", str, None,
                                             "E.164; while draining, new calls are `<Dial>`ed here instead of hung up")

    @property
    def stream_url(self) -> str | None:
        """The media-stream URL Twilio must open: LLC_PUBLIC_URL with https→wss, http→ws."""
        return stream_url_for(self.public_url) if self.public_url else None

    @property
    def openai_is_local(self) -> bool:
        """True when the Realtime URL points at this machine (the simulator): no key needed."""
        return (urlsplit(self.openai_realtime_url).hostname or "") in LOOPBACK_HOSTS

    @property
    def admin_listen_port(self) -> int:
        """LLC_ADMIN_PORT, else PORT + 1 (a free port when PORT is 0, as in tests)."""
        if self.admin_port is not None:
            return self.admin_port
        return self.port + 1 if self.port else 0

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """LLC_TRUSTED_PROXIES as networks; ValueError names the entry that is not an address."""
        networks = []
        for entry in (self.trusted_proxies or "").split(","):
            if entry.strip():
                try:
                    networks.append(ipaddress.ip_network(entry.strip(), strict=False))
                except ValueError:
                    raise ValueError(f"LLC_TRUSTED_PROXIES entry {entry.strip()!r} is not an IP address or network; "
                                     "list the proxy's addresses like LLC_TRUSTED_PROXIES=127.0.0.1,10.0.0.0/8") from None
        return tuple(networks)

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]  # each change's type is the field's: a typo or wrong type raises in replace


def stream_url_for(public_url: str) -> str:
    base = public_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    return base + "/media"


# Read before the others, to find the .env file; not a Settings field.
ENV_FILE = Var("LLC_ENV_FILE", "ops", str, ".env", "the `.env` file read under the environment", field="")
VARS: tuple[Var, ...] = tuple(replace(f.metadata["var"], field=f.name) for f in fields(Settings)) + (ENV_FILE,)
ENV: dict[str, str] = {v.env: v.field for v in VARS if v.field}  # environment name -> Settings field

# Old names: set, they stop start-up with their fix instead of being read.
RENAMED = {
    "HOST": "LLC_HOST",
    "PUBLIC_URL": "LLC_PUBLIC_URL",
    "LOG_FORMAT": "LLC_LOG_FORMAT",
    "LOG_LEVEL": "LLC_LOG_LEVEL",
    "LOG_FILE": "LLC_LOG_FILE",
    "LLC_OUTBOUND_SCENARIOS": "LLC_SCENARIOS",
}
REMOVED = {
    "LLC_WS_ENGINE": "the media stream always runs on the fast engine through PORT",
    "LLC_MEDIA_PORT": "Twilio media always arrives on PORT (the front door); point the proxy's /media at PORT",
}
