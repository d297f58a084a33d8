"""`llc-phone doctor`: the debugging checklist, automated. Infrastructure first, behaviour later.

Each check returns PASS or FAIL with the fix (SKIP when it cannot be checked here, with why):
server process up (/healthz on PORT, else on the port the pid file's process listens on),
exactly one listener on that port (and it is the server), the live profile parses (unknown
keys included), the tools load (LLC_TOOLS modules; scenarios name only known tools), Twilio's
voice webhook for every number (asked from the Twilio API, never from local files) equals
LLC_PUBLIC_URL/twiml, OpenAI accepts a test session in the configured
shape (``session.updated``; an ``error`` after ``session.created`` means the wrong shape),
and no recent errors in the server's log.

Checks run in Trio; blocking calls (HTTP to the server, the synchronous Twilio client, /proc
scans) go to threads so a server in the same process (tests) keeps serving meanwhile.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import orjson
import trio

from llc.config import Settings
from llc.core.dialect import SHAPE_ERRORS, Dialect, dialect
from llc.core.session import SessionSpec
from llc.ops.health import fetch_health, fetch_health_at, local_base_url, root_cause
from llc.ops.logs import recent_errors
from llc.ops.pidfile import pid_alive, read_pid
from llc.ops.ports import listener_pids, listeners, listening_ports, server_ports
from llc.ops.tools_check import tools_status
from llc.profile import ProfileError, live_profile_path, load_profile
from llc.ws.transport import Transport, TransportClosed

WIDTH = 110  # rendered lines wrap between words past this
RESTART = "run `llc-phone restart` (stop, kill orphaned listeners on PORT, start)"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # PASS | FAIL | SKIP
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def _pass(name: str, detail: str) -> Check:
    return Check(name, "PASS", detail)


def _fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "FAIL", detail, fix)


def locate_server(settings: Settings, timeout_s: float) -> Settings:
    """``settings`` with PORT where the server really listens: PORT when /healthz answers there,
    else the port the pid file's process (LLC_PID_FILE) answers /healthz on (`llc-phone serve --port N`)."""
    if fetch_health(settings, timeout_s).ok:
        return settings
    pid = read_pid(settings.pid_file)
    if pid is None or not pid_alive(pid):
        return settings
    for port in listening_ports(pid):
        moved = settings.with_overrides(port=port)
        health = fetch_health(moved, timeout_s)
        if health.ok and (health.body or {}).get("pid") == pid:
            return moved
    return settings


def check_server(settings: Settings, timeout_s: float, configured_port: int | None = None) -> tuple[Check, int | None]:
    health = fetch_health(settings, timeout_s)
    if health.ok:
        where = ""
        if configured_port is not None and configured_port != settings.port:
            where = f"; found by the pid file {settings.pid_file} (PORT is {configured_port}: the server was started with --port)"
        return _pass("server up", health.detail + where), (health.body or {}).get("pid")
    if health.body and health.body.get("status") == "draining":
        return _fail("server up", f"{health.detail}: the server is draining (stopping)",
                     "wait for it to exit, then start it: `llc-phone restart`"), None
    return _fail("server up", health.detail, f"start it: {RESTART}; under systemd `systemctl --user status llc-phone`, "
                 "under pm2 `pm2 status`"), None


def check_port(settings: Settings, server_pid: int | None, name: str = "PORT", port: int | None = None) -> Check:
    port = settings.port if port is None else port
    title = f"one listener on {name}"
    found = listeners(port)
    pids = listener_pids(found)
    names = "; ".join(entry.describe() for entry in found)
    if not found:
        return _fail(title, f"nothing listens on port {port}", f"start the server: {RESTART}")
    if len(pids) > 1:
        return _fail(title, f"{len(pids)} processes listen on port {port}: {names}",
                     f"{RESTART}; it kills every listener but the new server")
    if server_pid is None or pids != {server_pid}:
        who = f"/healthz is answered by pid {server_pid}" if server_pid else "nothing answers /healthz as llc"
        return _fail(title, f"port {port} is held by {names}, but {who}",
                     f"the port is taken by a stray process: {RESTART}")
    return _pass(title, names)


def check_ports(settings: Settings, server_pid: int | None) -> list[Check]:
    """PORT, and the fast media listener's port when it has a fixed one."""
    return [check_port(settings, server_pid, name, port) for name, port in server_ports(settings)]


def check_public_url(settings: Settings, timeout_s: float) -> Check:
    """LLC_PUBLIC_URL/healthz answers with this server's nonce: the proxy or tunnel leads here, not elsewhere."""
    name = "public URL reaches this server"
    if not settings.public_url:
        return Check(name, "SKIP", "LLC_PUBLIC_URL is not set", "set LLC_PUBLIC_URL=https://your-host (the https base Twilio reaches)")
    mine = (fetch_health(settings, timeout_s).body or {}).get("nonce")
    if not mine:
        return Check(name, "SKIP", "the server does not answer on loopback, so there is nothing to compare with",
                     "fix 'server up' first")
    here = local_base_url(settings).removeprefix("http://")
    fix = f"point your tunnel or proxy (nginx) at {here}, where this server listens"
    there = fetch_health_at(settings.public_url, timeout_s)
    if not there.status:
        return _fail(name, f"LLC_PUBLIC_URL does not answer: {there.detail}", f"start the tunnel or the proxy, and {fix}")
    theirs = (there.body or {}).get("nonce")
    if theirs is None:
        return _fail(name, f"LLC_PUBLIC_URL reaches something that is not llc-phone: {there.detail}", fix)
    if theirs != mine:
        return _fail(name, f"LLC_PUBLIC_URL reaches another llc-phone server (pid {(there.body or {}).get('pid')}), "
                     "not this one", fix)
    return _pass(name, f"{settings.public_url.rstrip('/')}/healthz answered as this server in {there.ms:.0f} ms")


def check_profile(settings: Settings) -> Check:
    try:
        profile = load_profile(live_profile_path(settings.profile_path))
    except ProfileError as exc:
        return _fail("profile", str(exc), "fix the file, or `llc-phone snapshot restore <NAME>` a known-good one")
    return _pass("profile", f"{profile.source} parses (prompt ~{profile.prompt_tokens} tokens)")


def _http_status(exc: Exception) -> int | None:
    """The HTTP status in a twilio error: TwilioRestException has ``status``; a failed page load
    (``list()``) raises TwilioException("Unable to fetch page", response)."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status
    for arg in getattr(exc, "args", ())[1:]:
        code = getattr(arg, "status_code", None)
        if isinstance(code, int):
            return code
    return None


def check_twilio(settings: Settings) -> list[Check]:
    from llc.twilio.numbers import list_webhooks, same_endpoint

    name = "twilio webhook"
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        return [_fail(name, "TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN are not set: cannot ask Twilio",
                      "put both in .env (console.twilio.com → Account info)")]
    if not settings.public_url:
        return [_fail(name, "LLC_PUBLIC_URL is not set: cannot say what the webhook should be",
                      "set LLC_PUBLIC_URL=https://your-host (the https base Twilio reaches)")]
    expected = settings.public_url.rstrip("/") + "/twiml"
    try:
        numbers = list_webhooks(settings)
    except Exception as exc:  # noqa: BLE001  TwilioException, or requests' connection errors
        status = _http_status(exc)
        if status is None:
            return [_fail(name, f"cannot reach {settings.twilio_api_url}: {root_cause(exc)}",
                          "check the network and TWILIO_API_URL (status.twilio.com)")]
        fix = "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN" if status in (401, 403) else "check TWILIO_API_URL"
        return [_fail(name, f"Twilio answered HTTP {status} when asked for the numbers", fix)]
    if not numbers:
        return [_fail(name, "this Twilio account has no phone numbers", "buy or port a number in the Twilio console")]
    out: list[Check] = []
    for n in numbers:
        label = f"{name} {n.phone_number}"
        if n.voice_application_sid:
            out.append(_fail(label, f"calls go to TwiML App {n.voice_application_sid}, not the voice URL",
                             f"clear the number's TwiML App, or set the app's voice URL to POST {expected}"))
        elif not same_endpoint(n.voice_url, expected):
            out.append(_fail(label, f"voice URL is {n.voice_url or '(empty)'}, not {expected}",
                             f"set the number's voice webhook to POST {expected} (console or API)"))
        elif n.voice_method != "POST":
            out.append(_fail(label, f"voice URL is right but the method is {n.voice_method}; /twiml takes POST",
                             "set the number's voice method to POST"))
        else:
            out.append(_pass(label, f"POST {n.voice_url}"))
    return out


async def check_openai(settings: Settings, timeout_s: float) -> Check:
    """Open a test session with the configured shape and wait for ``session.updated``."""
    from llc.openai.connect import OpenAIConnectError, connect_openai

    name = "openai session"
    wire = dialect(settings.openai_api_shape)
    try:
        spec = load_profile(live_profile_path(settings.profile_path)).session_spec(settings.openai_voice)
    except ProfileError:
        spec = None
    try:
        conn = await connect_openai(settings.with_overrides(openai_connect_timeout_s=timeout_s))
    except OpenAIConnectError as exc:
        return _fail(name, str(exc), "check status.openai.com, OPENAI_REALTIME_URL and OPENAI_API_KEY")
    try:
        return await _session_test(conn, wire, spec, timeout_s)
    finally:
        with trio.move_on_after(1.0):
            await conn.close()


async def _session_test(conn: Transport, wire: Dialect, spec: SessionSpec | None, timeout_s: float) -> Check:
    name = "openai session"
    created = False
    sent_at = trio.current_time()
    try:
        with trio.fail_after(timeout_s):
            while True:
                event = orjson.loads(await conn.receive_text())
                kind = event.get("type")
                if kind == "session.created" and not created:
                    created = True
                    await conn.send_text(orjson.dumps(wire.session_update(spec or SessionSpec())).decode())
                    sent_at = trio.current_time()
                elif kind == "session.updated":
                    ms = (trio.current_time() - sent_at) * 1000
                    return _pass(name, f"session.updated in {ms:.0f} ms with OPENAI_API_SHAPE={wire.shape}")
                elif kind == "error":
                    error = event.get("error") or {}
                    code = str(error.get("code") or "")
                    # An error after session.created means the wrong shape. The live service
                    # rejects the beta header even before session.created.
                    if created or code in SHAPE_ERRORS:
                        return _fail(name, f"wrong session shape: {error.get('code')}: {wire.hint(code, error.get('param'))}",
                                     f"set OPENAI_API_SHAPE={wire.other}")
                    return _fail(name, f"error before session.created: {error.get('code')} {error.get('message')}",
                                 "check OPENAI_API_KEY and OPENAI_MODEL")
    except trio.TooSlowError:
        seen = "session.created but no session.updated" if created else "no session.created"
        return _fail(name, f"{seen} within {timeout_s:g} s", "check status.openai.com; retry later")
    except TransportClosed as exc:
        return _fail(name, f"OpenAI closed the socket (code {exc.code}) before session.updated",
                     f"check OPENAI_API_SHAPE (now {wire.shape}; try {wire.other}) and OPENAI_MODEL")


def check_logs(settings: Settings, window_s: float) -> Check:
    name = "recent log errors"
    minutes = f"{window_s / 60:g} min"
    if settings.log_file and not Path(settings.log_file).is_file():
        return _fail(name, f"LLC_LOG_FILE={settings.log_file} does not exist: has the server run with it?",
                     "check the path and that the server may write there")
    scan = recent_errors(settings, window_s)
    if scan is None:
        return Check(name, "SKIP", "no log file found and no journald unit; logs went to the server's stderr",
                     "set LLC_LOG_FILE=/var/log/llc-phone.jsonl (or run under the systemd unit) so doctor can read them")
    if scan.errors:
        latest = " | ".join(scan.latest)
        return _fail(name, f"{scan.errors} error lines in the last {minutes} of {scan.where}; latest: {latest}",
                     f"read them: {scan.read_with}")
    return _pass(name, f"no error lines in the last {minutes} of {scan.where}")


def check_sip(settings: Settings) -> Check | None:
    """Realtime over SIP, when OPENAI_WEBHOOK_SECRET is set: where the webhook goes and what SIP calls lack."""
    if not settings.openai_webhook_secret:
        return None
    name = "SIP (OpenAI webhook)"
    if not settings.public_url:
        return _fail(name, "OPENAI_WEBHOOK_SECRET is set but LLC_PUBLIC_URL is not: OpenAI has nowhere to send "
                           "realtime.call.incoming", "set LLC_PUBLIC_URL=https://your-host (docs/sip.md)")
    return _pass(name, f"inbound SIP calls on {settings.public_url.rstrip('/')}/openai/webhook (set it in the OpenAI "
                       "project's webhooks for realtime.call.incoming); on SIP there is no playout-accurate truncate, "
                       "no call audio recording, no prewarm or pre-accept, and no outbound calls (docs/sip.md)")


async def run_checks(
    settings: Settings, *, health_timeout_s: float = 2.0, openai_timeout_s: float = 10.0, log_window_s: float = 900.0,
    public_timeout_s: float = 5.0,
) -> list[Check]:
    configured = settings.port
    settings = await trio.to_thread.run_sync(locate_server, settings, health_timeout_s)
    server, pid = await trio.to_thread.run_sync(check_server, settings, health_timeout_s, configured)
    checks = [server, *await trio.to_thread.run_sync(check_ports, settings, pid)]
    checks += [await trio.to_thread.run_sync(check_public_url, settings, public_timeout_s), check_profile(settings)]
    checks.append(Check("tools", *tools_status(settings)))
    checks += await trio.to_thread.run_sync(check_twilio, settings)
    checks.append(await check_openai(settings, openai_timeout_s))
    if (sip := check_sip(settings)) is not None:
        checks.append(sip)
    checks.append(await trio.to_thread.run_sync(check_logs, settings, log_window_s))
    return checks


def _wrapped(head: str, text: str, indent: int) -> list[str]:
    """``text`` after ``head``, whole, wrapped between words (never inside a URL or a word)."""
    parts = textwrap.wrap(text, width=max(40, WIDTH - indent), break_long_words=False, break_on_hyphens=False) or [""]
    return [head + parts[0], *(" " * indent + part for part in parts[1:])]


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    indent = 4 + 2 + width + 2
    lines = []
    for c in checks:
        lines += _wrapped(f"{c.status:<4}  {c.name:<{width}}  ", c.detail, indent)
        if c.fix and c.status != "PASS":
            lines += _wrapped(f"{'':<4}  {'':<{width}}  fix: ", c.fix, indent + 5)
    failed = sum(c.status == "FAIL" for c in checks)
    lines.append("all checks passed" if not failed else f"{failed} check(s) failed: fix the first one first")
    return "\n".join(lines)
