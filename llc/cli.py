"""The `llc` command. Subcommands are one module each, listed in ``llc.commands.COMMANDS``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from llc.commands import COMMANDS
from llc.config import ConfigError
from llc.profile import ProfileError
from llc.store import StoreError


def _version() -> str:
    try:
        return version("llc-phone")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed: pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llc-phone", description="Lowest Latency Calls: OpenAI Realtime voice agents on Twilio.")
    parser.add_argument("--version", action="version", version=f"llc-phone {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(name).add_parser(sub)
    _describe(sub)
    return parser


def _describe(sub: argparse._SubParsersAction) -> None:
    """Each command's page (``llc <command> -h``) opens with its one-line help, nested commands too.

    argparse keeps a sub-command's help line only on its private choice actions (no public
    accessor), so they are read there; the standard library, not another module of ours."""
    helps = {action.dest: action.help for action in sub._choices_actions}
    for name, parser in sub.choices.items():
        if not parser.description:
            parser.description = helps.get(name)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _describe(action)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, ProfileError, StoreError) as exc:
        # Configuration mistakes are the user's to fix: say what and how, no traceback.
        # A driver's message may span lines (psycopg's does): a database problem is one line.
        text = " ".join(str(exc).split()) if isinstance(exc, StoreError) else str(exc)
        print(f"llc-phone: {text}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
