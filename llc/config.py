"""Configuration read once at start-up from the environment and a ``.env`` file.

Every variable is defined once, in ``llc.config_vars``; this module reads them. Precedence: the
process environment, then ``.env`` (path: LLC_ENV_FILE), then defaults. Every problem is collected
and reported together, each naming the variable and the fix, so a person fixing a deployment sees
all of them at once instead of one per restart.

``python -m llc.config`` prints the table of docs/configuration.md; ``--write`` updates that file.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from llc.config_shapes import credential_problems, url_fault
from llc.config_vars import (
    DEFAULT_REALTIME_URL,
    DEFAULT_TWILIO_API_URL,
    ENV,
    ENV_FILE,
    LOOPBACK_HOSTS,
    REMOVED,
    RENAMED,
    SECTIONS,
    TWILIO_EDGES,
    VARS,
    Settings,
    Var,
    in_the_clear,
    stream_url_for,
)
from llc.events.signing import MAKE_SECRET

__all__ = [
    "DEFAULT_REALTIME_URL", "DEFAULT_TWILIO_API_URL", "E164_HINT", "ENV", "LOOPBACK_HOSTS", "TWILIO_EDGES",
    "VARS", "ConfigError", "Settings", "Var", "config_table_markdown", "is_e164", "load_settings",
    "stream_url_for",
]

E164_HINT = "a number in E.164 form, like +15551234567"
# "+", then 7-15 digits, the first not 0: the shortest real numbers (e.g. +290 plus 4 digits) have 7.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_DEFAULTS = Settings()
DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
TABLE_START, TABLE_END = "<!-- config-table:start -->", "<!-- config-table:end -->"


class ConfigError(Exception):
    """Configuration is missing or malformed; ``problems`` lists each one with its fix."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("configuration problems:\n" + "\n".join(f"  - {p}" for p in problems))


def is_e164(number: str) -> bool:
    """The one E.164 rule: for To/From, transfers, drain fallback and scenario numbers alike."""
    return _E164.fullmatch(number) is not None


def _one_of(choices: tuple[str, ...]) -> str:
    return " or ".join(choices) if len(choices) < 3 else ", ".join(choices[:-1]) + " or " + choices[-1]


def _convert(var: Var, raw: str, problems: list[str]) -> object:
    """``raw`` as ``var``'s declared type; None (and a problem naming the fix) when it is not one."""
    text, env = raw.strip(), var.env
    if var.choices:
        value = next((c for c in var.choices if c.lower() == text.lower()), None)
        if value is None:
            fix = f"set {env}={var.default}" if var.default is not None else f"pick one or unset {env}"
            problems.append(f"{env}={raw!r} is not one of {_one_of(var.choices)}; {fix}")
        return value
    if var.type is bool:
        if text.lower() not in _TRUE + _FALSE:
            problems.append(f"{env}={raw!r} is not on or off; set {env}=on or {env}=off")
            return None
        return text.lower() in _TRUE
    if var.type in (int, float):
        try:
            return var.type(text)
        except ValueError:
            what = "a whole number" if var.type is int else "a number"
            problems.append(f"{env}={raw!r} is not {what}; set it like {env}={var.default or 10:g}")
            return None
    return text


def _check(s: Settings, problems: list[str]) -> None:
    """Rules a single value's type cannot say: ranges, URL forms, numbers, files."""
    if not 0 <= s.port <= 65535:
        problems.append(f"PORT={s.port} is out of range; use 1-65535 (0 picks a free port)")
    for env_name, url in (("LLC_PUBLIC_URL", s.public_url), ("LLC_INSTANCE_URL", s.instance_url)):
        if url is None:
            continue
        if fault := url_fault(url, ("https", "http")):
            problems.append(f"{env_name}={url!r} is not a base URL Twilio reaches: {fault}; "
                            "write it like https://voice.example.com")
        elif urlsplit(url).query or urlsplit(url).fragment:
            problems.append(f"{env_name} must not carry a query string: Twilio's <Stream> URL takes none")
    if s.events_url is not None:
        if fault := url_fault(s.events_url, ("https", "http")):
            problems.append(f"LLC_EVENTS_URL={s.events_url!r} is not an http(s) URL: {fault}; "
                            "write it like https://hooks.example.com/llc")
        if not s.webhook_secret:
            problems.append(f"LLC_EVENTS_URL is set but LLC_WEBHOOK_SECRET is not: events are sent signed; make one with "
                            f"{MAKE_SECRET}")
    try:
        _ = s.trusted_networks  # parsed here so a bad entry fails at start-up, not on the first request
    except ValueError as exc:
        problems.append(str(exc))
    if s.preaccept_hold_s <= 0:
        problems.append(f"LLC_PREACCEPT_HOLD_S must be above 0 (default {_DEFAULTS.preaccept_hold_s:g})")
    if fault := url_fault(s.openai_realtime_url, ("wss", "ws")):
        problems.append(f"OPENAI_REALTIME_URL={s.openai_realtime_url!r} is not a WebSocket URL (wss://…): {fault}; "
                        f"the default is {DEFAULT_REALTIME_URL}")
    if fault := url_fault(s.openai_api_url, ("https", "http")):
        problems.append(f"OPENAI_API_URL={s.openai_api_url!r} is not an http(s) URL: {fault}; "
                        "the default is https://api.openai.com/v1")
    if s.openai_webhook_secret and not s.openai_webhook_secret.startswith("whsec_"):
        problems.append("OPENAI_WEBHOOK_SECRET does not start with whsec_: copy the signing secret shown when the "
                        "webhook was created (platform.openai.com, project settings, Webhooks)")
    if fault := url_fault(s.twilio_api_url, ("https", "http")):
        problems.append(f"TWILIO_API_URL={s.twilio_api_url!r} is not an http(s) URL: {fault}; "
                        f"the default is {DEFAULT_TWILIO_API_URL}")
    problems += credential_problems(s)
    if s.twilio_from_number is not None and not is_e164(s.twilio_from_number):
        problems.append(f"TWILIO_FROM_NUMBER={s.twilio_from_number!r} must be {E164_HINT}")
    if s.prewarm_timeout_s <= 0:
        problems.append(f"LLC_PREWARM_TIMEOUT_S must be above 0 (the default is {_DEFAULTS.prewarm_timeout_s:g})")
    if s.max_calls < 1:
        problems.append(f"LLC_MAX_CALLS must be at least 1 (the default is {_DEFAULTS.max_calls})")
    if s.max_call_s < 0 or s.calls_per_minute < 0:
        problems.append("LLC_MAX_CALL_S and LLC_CALLS_PER_MINUTE must be 0 (no limit) or more")
    if s.stream_token_ttl_s <= 0:
        problems.append(f"LLC_STREAM_TOKEN_TTL_S must be above 0 (the default is {_DEFAULTS.stream_token_ttl_s:g})")
    if s.apology_clip is not None and not Path(s.apology_clip).is_file():
        problems.append(f"LLC_APOLOGY_CLIP={s.apology_clip!r} is not a file; give a raw 8 kHz mu-law (.ulaw) file or unset it")
    if s.max_frame_bytes < 1024:
        problems.append("LLC_MAX_FRAME_BYTES must be at least 1024 (a Twilio media frame is ~400 bytes)")
    if s.drain_timeout_s < 0:
        problems.append(f"LLC_DRAIN_TIMEOUT_S={s.drain_timeout_s:g} must be 0 or more (seconds active calls may run on after SIGTERM)")
    if s.fallback_number is not None and not is_e164(s.fallback_number):
        problems.append(f"LLC_FALLBACK_NUMBER={s.fallback_number!r} must be an E.164 number like +14155550100")
    if s.drain_fallback_number is not None and not is_e164(s.drain_fallback_number):
        problems.append(f"LLC_DRAIN_FALLBACK_NUMBER={s.drain_fallback_number!r} must be an E.164 number like +14155550100")
    for name, attr in (("OPENAI_CONNECT_TIMEOUT_S", "openai_connect_timeout_s"), ("LLC_WARM_WAIT_S", "warm_wait_s"),
                       ("LLC_OPENAI_PONG_TIMEOUT_S", "openai_pong_timeout_s"), ("LLC_TWILIO_IDLE_S", "twilio_idle_s"),
                       ("LLC_START_TIMEOUT_S", "start_timeout_s"), ("LLC_SEND_STALL_S", "send_stall_s")):
        if getattr(s, attr) <= 0:  # a liveness bound of 0 would end every call at once
            problems.append(f"{name} must be above 0 seconds (the default is {getattr(_DEFAULTS, attr):g})")
    if s.openai_ping_s < 0:
        problems.append("LLC_OPENAI_PING_S must be 0 (no pings) or more seconds")


LOCAL_SWITCH = "or LLC_LOCAL_ONLY=on for an experiment on this machine only"


def _serve_checks(s: Settings, problems: list[str]) -> None:
    """What `llc-phone serve` needs to be reachable by Twilio and safe in public (docs/going-live.md).

    The recommended set-up listens on loopback behind a TLS proxy, so the listening address says
    nothing about exposure: these hold whatever LLC_HOST is, unless LLC_LOCAL_ONLY says the run
    is an experiment on this machine (then it must listen on loopback only).
    """
    if not s.openai_api_key and not s.openai_is_local:
        problems.append(
            "OPENAI_API_KEY is not set: put it in the environment or .env "
            "(or point OPENAI_REALTIME_URL at the simulator for a keyless run)"
        )
    if s.local_only:
        if s.host not in LOOPBACK_HOSTS:
            problems.append(f"LLC_LOCAL_ONLY=on but LLC_HOST={s.host} is not loopback: "
                            "unset LLC_HOST (127.0.0.1), or unset LLC_LOCAL_ONLY for a public deployment")
        return
    if s.public_url is None:
        problems.append("LLC_PUBLIC_URL is not set: Twilio could not reach the webhook or the media stream; "
                        f"set LLC_PUBLIC_URL=https://your-host (docs/going-live.md), {LOCAL_SWITCH}")
    else:
        if in_the_clear(s.public_url):
            problems.append(f"LLC_PUBLIC_URL={s.public_url!r} is not https: Twilio needs https:// for the webhook "
                            "and wss:// for the media stream; put a TLS proxy or tunnel in front "
                            "(docs/going-live.md) and set its https:// address, " + LOCAL_SWITCH)
    if s.events_url and in_the_clear(s.events_url):
        problems.append(f"LLC_EVENTS_URL={s.events_url!r} is not https: call records would cross the network in "
                        "the clear; give the receiver's https:// address, " + LOCAL_SWITCH)
    if s.twilio_signatures and not s.twilio_auth_token:
        problems.append("TWILIO_AUTH_TOKEN is not set: Twilio's signatures cannot be checked, so anyone could post "
                        "to the webhooks; set it (console.twilio.com → Account info), " + LOCAL_SWITCH)


def _old_names(merged: Mapping[str, str], problems: list[str]) -> None:
    """Renamed and removed variables stop start-up with their fix; their values are never read.

    A renamed one is let be when its new name is set too: shells such as tcsh export HOST for
    themselves, and a deployment that has moved to LLC_HOST should not trip over it.
    """
    for old, new in RENAMED.items():
        if merged.get(old, "").strip() and not merged.get(new, "").strip():
            problems.append(f"{old} is now {new}: rename it")
    for old, why in REMOVED.items():
        if merged.get(old, "").strip():
            problems.append(f"{old} was removed: {why}; unset it")


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: str | os.PathLike[str] | None = None,
    *,
    require_keys: bool = False,
) -> Settings:
    """Build Settings from ``environ`` (default ``os.environ``) over ``env_file`` (default LLC_ENV_FILE).

    ``require_keys`` is for ``llc-phone serve``: a real (non-loopback) OpenAI URL needs a key, and a
    public deployment an https LLC_PUBLIC_URL and TWILIO_AUTH_TOKEN unless LLC_LOCAL_ONLY is on.
    Raises ConfigError listing every problem.
    """
    environ = os.environ if environ is None else environ
    path = Path(env_file if env_file is not None else environ.get(ENV_FILE.env) or str(ENV_FILE.default))
    merged: dict[str, str] = {}
    if path.is_file():
        merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(environ)

    problems: list[str] = []
    _old_names(merged, problems)
    values: dict[str, object] = {}
    for var in VARS:
        raw = merged.get(var.env)
        if not var.field or raw is None or raw.strip() == "":
            continue
        value = _convert(var, raw, problems)
        if value is not None:
            values[var.field] = value
    settings = Settings(**values)  # type: ignore[arg-type]  # every value was converted to its field's type by _convert
    _check(settings, problems)
    if require_keys:
        _serve_checks(settings, problems)
    if problems:
        raise ConfigError(problems)
    return settings


def _shown_default(var: Var) -> str:
    if var.default is None:
        return var.unset
    if isinstance(var.default, bool):
        return "`on`" if var.default else "`off`"
    return f"`{var.default:g}`" if isinstance(var.default, float) else f"`{var.default}`"


def config_table_markdown() -> str:
    """The configuration table, one sub-table per section, rendered from the one definition."""
    lines: list[str] = []
    for key, title in SECTIONS.items():
        lines += [f"### {title}", "", "| variable | default | meaning |", "|---|---|---|"]
        for var in (v for v in VARS if v.section == key):
            meaning = var.meaning + (f"; one of {', '.join(f'`{c}`' for c in var.choices)}" if var.choices else "")
            meaning = meaning.replace("|", r"\|")  # a pipe would end the cell
            lines.append(f"| `{var.env}` | {_shown_default(var)} | {meaning} |")
        lines.append("")
    lines += ["### Old names", "", "Set, they stop start-up with this fix; their values are not read.", "",
              "| old name | fix |", "|---|---|"]
    lines += [f"| `{old}` | rename it to `{new}` |" for old, new in RENAMED.items()]
    lines += [f"| `{old}` | unset it: {why} |" for old, why in REMOVED.items()]
    return "\n".join(lines) + "\n"


def with_table(doc: str) -> str:
    """``doc`` with the text between the table markers replaced by the generated table."""
    head, start, rest = doc.partition(TABLE_START)
    _, end, tail = rest.partition(TABLE_END)
    if not start or not end:
        raise ValueError(f"the markers {TABLE_START} and {TABLE_END} are missing")
    return f"{head}{TABLE_START}\n{config_table_markdown()}{TABLE_END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llc.config", description="Print the configuration table.")
    parser.add_argument("--write", type=Path, metavar="DOC", nargs="?", const=DOC_PATH,
                        help=f"replace the table between the markers in DOC (default {DOC_PATH.name} in docs/)")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(config_table_markdown())
        return 0
    args.write.write_text(with_table(args.write.read_text()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
