"""`llc demo`: a whole simulated call on loopback, no keys, no network."""

from __future__ import annotations

import argparse

import trio

from llc.log import setup_logging


def run(args: argparse.Namespace) -> int:
    from llc.kit.demo import render, run_demo

    setup_logging("text", "INFO" if args.verbose else "WARNING")
    if args.scenario:
        from llc.kit.sim.modes import render as render_mode, run_mode

        run = trio.run(lambda: run_mode(args.scenario, ttfb_ms=args.ttfb_ms, silence_ms=args.silence_ms))
        render_mode(run)
        return 0 if run.record["transcript"] and not run.openai_errors else 1
    demo = trio.run(run_demo, args.shape, args.ttfb_ms, args.silence_ms)
    render(demo, args.shape, args.ttfb_ms, args.silence_ms)
    return 0 if demo.ok else 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="a whole simulated call on loopback: no keys, no network")
    p.add_argument("--shape", choices=["ga", "flat"], default="ga", help="OpenAI session shape to speak (default ga)")
    p.add_argument("--ttfb-ms", type=int, default=300, help="simulated model time to first audio byte")
    p.add_argument("--silence-ms", type=int, default=400, help="simulated end-of-turn silence the VAD waits for")
    p.add_argument("--scenario", choices=["ivr", "receptionist", "csr"],
                   help="an inbound mode end to end instead (scripted caller, DTMF, tools, in-memory database)")
    p.add_argument("-v", "--verbose", action="store_true", help="show the server's log lines")
    p.set_defaults(func=run)
