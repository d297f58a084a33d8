"""`llc bench NAME`: the benchmarks listed in ``llc.bench.BENCHES``, one module each."""

from __future__ import annotations

import argparse
import importlib

from llc.bench import BENCHES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="offline benchmarks against the simulators (no keys, no network)")
    benches = p.add_subparsers(dest="bench", required=True, metavar="NAME")
    for name in BENCHES:
        importlib.import_module(f"llc.bench.{name}").add_parser(benches)
