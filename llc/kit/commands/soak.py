"""`llc-phone soak`: continuous calls through a real server; fails on leaks, lost calls or errors."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import trio

from llc.log import setup_logging


def run(args: argparse.Namespace) -> int:
    from llc.kit.soak import plot, soak

    if args.calls < 1 or args.minutes <= 0:
        print("llc-phone soak: --calls must be at least 1 and --minutes above 0")
        return 2
    setup_logging("text", "WARNING")
    csv_path = Path(args.csv)
    print(f"soak: {args.calls} calls in flight for {args.minutes:g} min, sampling every {args.sample_s:g} s -> {csv_path}")
    if args.faults:
        print(f"faults: one every {args.fault_every_s:g} s (OpenAI leg frozen, the wall clock stepped, upgrade without "
              "start, Twilio leg silent, a flood of key presses)")
    report = trio.run(partial(soak, args.calls, args.minutes * 60, args.sample_s, csv_path,
                              faults_every_s=args.fault_every_s if args.faults else 0.0))
    png = plot(csv_path)
    print(f"{report.calls_done} calls done; CSV {csv_path}" + (f", plot {png}" if png else
          " (no PNG: pip install matplotlib for a plot)"))
    print(f"idle before: {report.idle_before}\nidle after:  {report.idle_after}")
    print(f"records: {report.records_checked} of {len(report.call_sids)} calls stored with a transcript; "
          f"tool calls recorded: {report.tool_calls}")
    if report.rss_note:
        print(report.rss_note)
    if report.faults is not None:
        print(f"faults injected: {report.faults.summary()}; zombies {report.zombies}")
        for note in report.faults.notes:
            print(f"note: {note}")
    for failure in report.failures:
        print(f"FAIL {failure}")
    print("soak passed" if not report.failures else f"soak FAILED ({len(report.failures)} problems)")
    return 0 if not report.failures else 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("soak", help="continuous calls through a real server; fails on leaks or errors")
    p.add_argument("--calls", type=int, default=50, help="calls kept in flight (default 50)")
    p.add_argument("--minutes", type=float, default=10, help="how long (default 10; hours are fine)")
    p.add_argument("--sample-s", type=float, default=60, help="seconds between samples (default 60)")
    p.add_argument("--csv", default="soak.csv", help="where the samples go (default soak.csv)")
    p.add_argument("--faults", action="store_true",
                   help="mix in faults: a frozen OpenAI leg, the server's wall clock stepped back and forward (needs "
                        "libfaketime), a silent Twilio leg, an upgrade without start, a key-press flood")
    p.add_argument("--fault-every-s", type=float, default=20, help="seconds between faults (default 20)")
    p.set_defaults(func=run)
