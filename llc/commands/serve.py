"""`llc serve`: the server (TwiML webhook, media stream, health)."""

from __future__ import annotations

import argparse
import errno
import os
from functools import partial

import trio

from llc.config import load_settings
from llc.log import get_logger, setup_logging
from llc.ops.pidfile import remove_pid, write_pid
from llc.profile import load_profile

log = get_logger("serve")


def run(args: argparse.Namespace) -> int:
    from llc.web.app import serve
    from llc.web.server import build_server

    settings = load_settings(require_keys=True)
    if args.port is not None:
        settings = settings.with_overrides(port=args.port)
    setup_logging(settings.log_format, settings.log_level, log_file=settings.log_file)
    profile = load_profile(settings.profile_path)
    log.info(
        "starting llc serve",
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
        if _address_in_use(exc) is None:
            raise
        log.error("port %s is already taken; run `llc restart` (stop, kill orphans, start) or `llc doctor`", settings.port)
        return 1
    finally:
        remove_pid(settings.pid_file)
    log.info("stopped")
    return 0


def _address_in_use(exc: BaseException) -> OSError | None:
    """The EADDRINUSE error inside ``exc`` (Trio may wrap it in an exception group), if any."""
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _address_in_use(inner)
        if found is not None:
            return found
    return None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the server (TwiML webhook, media stream, health)")
    p.add_argument("--port", type=int, help="override PORT")
    p.set_defaults(func=run)
