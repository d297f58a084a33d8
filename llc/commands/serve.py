"""`llc serve`: the server (TwiML webhook, media stream, health)."""

from __future__ import annotations

import argparse

import trio

from llc.config import load_settings
from llc.log import get_logger, setup_logging
from llc.profile import load_profile

log = get_logger("serve")


def run(args: argparse.Namespace) -> int:
    from llc.web.app import serve
    from llc.web.state import ServerState

    settings = load_settings(require_keys=True)
    if args.port is not None:
        settings = settings.with_overrides(port=args.port)
    setup_logging(settings.log_format, settings.log_level)
    profile = load_profile(settings.profile_path)
    log.info(
        "starting llc serve",
        extra={"port": settings.port, "shape": settings.openai_api_shape, "model": settings.openai_model,
               "profile": profile.source, "prompt_tokens_estimate": profile.prompt_tokens},
    )
    try:
        trio.run(serve, ServerState(settings, profile, public_url=settings.public_url))
    except KeyboardInterrupt:
        log.info("stopped by Ctrl-C")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the server (TwiML webhook, media stream, health)")
    p.add_argument("--port", type=int, help="override PORT")
    p.set_defaults(func=run)
