"""`llc-phone doctor`: the debugging checklist, each line PASS/FAIL with its fix. Exit 1 if any FAIL."""

from __future__ import annotations

import argparse
import json
from functools import partial

import trio

from llc.config import load_settings


def run(args: argparse.Namespace) -> int:
    from llc.ops.doctor import render, run_checks

    settings = load_settings()
    if args.port is not None:
        settings = settings.with_overrides(port=args.port)
    checks = trio.run(partial(run_checks, settings, openai_timeout_s=args.openai_timeout, log_window_s=args.log_minutes * 60))
    if args.json:
        print(json.dumps([c.as_dict() for c in checks], indent=2))
    else:
        print(render(checks))
    return 1 if any(c.status == "FAIL" for c in checks) else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check the deployment: server, port, Twilio webhook, OpenAI session shape, log errors")
    p.add_argument("--port", type=int, help="override PORT")
    p.add_argument("--json", action="store_true", help="machine-readable output (for agents and scripts)")
    p.add_argument("--openai-timeout", type=float, default=10.0, help="seconds to wait for session.updated (default 10)")
    p.add_argument("--log-minutes", type=float, default=15.0, help="how far back to look for log errors (default 15)")
    p.set_defaults(func=run)
