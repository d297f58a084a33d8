"""`llc-phone serve`: the server (TwiML webhook, media stream, health)."""

from __future__ import annotations

import argparse
import errno
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

import trio

from llc.config import ConfigError, load_settings
from llc.config_vars import ENV_FILE
from llc.log import get_logger, setup_logging
from llc.ops.pidfile import remove_pid, write_pid
from llc.ops.ports import listeners
from llc.ops.writable import unwritable_paths
from llc.profile import ProfileError, live_profile_path, load_profile
from llc.store import StoreError

log = get_logger("serve")


def run(args: argparse.Namespace) -> int:
    from llc.app import build_server, serve

    settings = load_settings(require_keys=True)
    if args.port is not None:
        settings = settings.with_overrides(port=args.port)
    if problems := unwritable_paths(settings):
        _warn_missing_env_file()  # logging is not set up (its file is one of the problems): said plainly
        raise ConfigError(problems)
    setup_logging(settings.log_format, settings.log_level, log_file=settings.log_file)
    _warn_missing_env_file()
    profile = load_profile(live_profile_path(settings.profile_path))
    log.info(
        "starting llc-phone serve",
        extra={"port": settings.port, "shape": settings.openai_api_shape, "model": settings.openai_model,
               "profile": profile.source, "prompt_tokens_estimate": profile.prompt_tokens,
               "pid": os.getpid(), "pid_file": settings.pid_file, "log_file": settings.log_file},
    )
    state = build_server(settings, profile)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(serve, state, handle_signals=True))
            write_pid(settings.pid_file)  # only once the port is ours: a failed start leaves the file alone

    try:
        trio.run(main)
    except KeyboardInterrupt:
        log.info("stopped by Ctrl-C")
    except (OSError, BaseExceptionGroup) as exc:
        # A setting that fails only once the server opens it (the database, the profile's tools)
        # is the user's to fix like any other: the CLI prints it in one line, exit 2.
        usage = _inside(exc, lambda e: isinstance(e, (StoreError, ProfileError, ConfigError)))
        if usage is not None:
            raise usage from None
        if _inside(exc, lambda e: isinstance(e, OSError) and e.errno == errno.EADDRINUSE) is None:
            raise
        # PORT or the admin listener's port: name the one that is actually held.
        name, port = next(((n, p) for n, p in (("PORT", settings.port), ("LLC_ADMIN_PORT", settings.admin_listen_port))
                           if p and listeners(p)), ("PORT", settings.port))
        holders = "; ".join(entry.describe() for entry in listeners(port)) or "another process"
        log.error("%s %s is already taken by %s; see what `llc-phone restart --dry-run` would stop, "
                  "or set %s to a free port", name, port, holders, name)
        return 1
    finally:
        remove_pid(settings.pid_file)
    log.info("stopped")
    return 0


def _warn_missing_env_file() -> None:
    """LLC_ENV_FILE names a file that is not there: its settings are silently absent otherwise."""
    named = os.environ.get(ENV_FILE.env, "").strip()
    if named and not Path(named).exists():  # /dev/null is a deliberate "no file"
        log.warning("LLC_ENV_FILE=%s does not exist: only the environment is read; fix the path or unset it", named)


def _inside(exc: BaseException, match: Callable[[BaseException], bool]) -> BaseException | None:
    """The first exception in ``exc`` that ``match`` accepts (Trio wraps errors in exception groups)."""
    if match(exc):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _inside(inner, match)
        if found is not None:
            return found
    return None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the server (TwiML webhook, media stream, health); "
                       "refuses a public set-up Twilio could not reach or that is unsafe, unless LLC_LOCAL_ONLY=on")
    p.add_argument("--port", type=int, help="override PORT")
    p.set_defaults(func=run)
