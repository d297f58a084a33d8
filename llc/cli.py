"""The `llc` command: serve, demo (more subcommands join as features land)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import trio

from llc.config import ConfigError, Settings, load_settings
from llc.log import get_logger, setup_logging
from llc.profile import ProfileError, load_profile

log = get_logger("cli")


def _cmd_serve(args: argparse.Namespace) -> int:
    from llc.web.app import serve
    from llc.web.state import ServerState

    settings: Settings = load_settings(require_keys=True)
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


def _cmd_demo(args: argparse.Namespace) -> int:
    from llc.demo import render, run_demo

    setup_logging("text", "INFO" if args.verbose else "WARNING")
    demo = trio.run(run_demo, args.shape, args.ttfb_ms, args.silence_ms)
    render(demo, args.shape, args.ttfb_ms, args.silence_ms)
    return 0 if demo.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llc", description="Lowest Latency Calls: OpenAI Realtime voice agents on Twilio.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the server (TwiML webhook, media stream, health)")
    p.add_argument("--port", type=int, help="override PORT")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("demo", help="a whole simulated call on loopback: no keys, no network")
    p.add_argument("--shape", choices=["ga", "flat"], default="ga", help="OpenAI session shape to speak (default ga)")
    p.add_argument("--ttfb-ms", type=int, default=300, help="simulated model time to first audio byte")
    p.add_argument("--silence-ms", type=int, default=400, help="simulated end-of-turn silence the VAD waits for")
    p.add_argument("-v", "--verbose", action="store_true", help="show the server's log lines")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, ProfileError) as exc:
        print(f"llc: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
