"""`llc-phone tools`: every tool scenarios may name (built-in and LLC_TOOLS modules), with its source."""

from __future__ import annotations

import argparse
import json

from llc.config import load_settings


def run(args: argparse.Namespace) -> int:
    from llc.tools.listing import render_rows, tool_rows
    from llc.tools.loader import load_tools

    rows = tool_rows(load_tools(load_settings()))  # a module that cannot load is one line, exit 2 (llc.cli)
    print(json.dumps(rows, indent=2) if args.json else render_rows(rows))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tools", help="list the tools scenarios may name: built-in and from LLC_TOOLS modules, "
                       "with source and description")
    p.add_argument("--json", action="store_true", help="machine-readable output, with each tool's JSON schema")
    p.set_defaults(func=run)
