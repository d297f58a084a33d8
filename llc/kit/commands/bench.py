"""`llc-phone bench <name>`: dispatch to ``llc.kit.bench.<name>`` (each exposes add_arguments and run)."""

from __future__ import annotations

import argparse
import importlib

from llc.kit.bench import BENCHES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure the relay: " + ", ".join(BENCHES))
    benches = p.add_subparsers(dest="bench", required=True)
    for name in BENCHES:
        module = importlib.import_module(f"llc.kit.bench.{name}")
        q = benches.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(q)
        q.set_defaults(func=module.run)
