"""`llc-phone messages`: messages the receptionist took (newest first)."""

from __future__ import annotations

import argparse
import time

import trio

from llc.commands.store_cli import open_cli_store, printed_as_json_or_empty


def run(args: argparse.Namespace) -> int:
    store = open_cli_store(args)
    rows = trio.run(store.list_messages, args.limit)
    if printed_as_json_or_empty(rows, args, f"no messages in {store.url}"):
        return 0
    for m in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m["created_at"]))
        print(f"#{m['id']}  {when}  {m['name']} ({m['number']}), call back {m['callback_time'] or 'any time'}: "
              f"{m['reason']}  [caller ID {m['caller_id'] or '-'}, call {m['call_sid']}]")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("messages", help="messages the receptionist took")
    p.add_argument("--limit", type=int, default=50, help="how many of the latest messages to list (default 50)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--db", help="database URL or path (default: LLC_DB_URL, else llc.db)")
    p.set_defaults(func=run)
