"""`llc-phone events` lists call events not delivered yet (pending, failed); `events retry` sends the
failed ones again now (LLC_EVENTS_URL, docs/events.md)."""

from __future__ import annotations

import argparse
import time

import trio

from llc.commands.store_cli import open_cli_store, printed_as_json_or_empty
from llc.store import Store
from llc.store.outbox import GIVE_UP_S, LIST, RETRY_FAILED, stats


async def retry_failed(store: Store) -> int:
    """Failed events become pending, due now, with a new day of attempts; returns how many."""
    now = time.time()
    return len(await store.run(lambda b: b.query(RETRY_FAILED, [now, now + GIVE_UP_S])))


def run(args: argparse.Namespace) -> int:
    store = open_cli_store(args)
    if args.action == "retry":
        n = trio.run(retry_failed, store)
        print(f"{n} failed event(s) will be sent again by the running server" if n else "no failed events")
        return 0
    statuses = ["pending", "failed"] if args.action == "list" else [args.action]
    rows = [r for s in statuses for r in trio.run(store.run, lambda b, s=s: b.query(LIST, [s, args.limit]))]
    counts = trio.run(store.run, stats)
    summary = ", ".join(f"{counts.get(s, {}).get('count', 0)} {s}" for s in ("pending", "failed", "delivered"))
    if printed_as_json_or_empty(rows, args, f"no call events waiting or failed in {store.url} ({summary})"):
        return 0
    print(summary)
    print(f"{'created':<20}{'status':<9}{'type':<14}{'call_sid':<36}{'tries':>5}  last error")
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["created_at"]))
        print(f"{when:<20}{r['status']:<9}{r['type']:<14}{r['call_sid']:<36}{r['attempts']:>5}  {r['last_error'] or '-'}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("events", help="call events not delivered yet (pending, failed); `retry` sends failed ones again")
    p.add_argument("action", nargs="?", choices=["list", "pending", "failed", "retry"], default="list",
                   help="list pending and failed events (default), only one kind, or retry the failed ones now")
    p.add_argument("--limit", type=int, default=50, help="how many of each kind to list (default 50)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--db", help="database URL or path (default: LLC_DB_URL, else llc.db)")
    p.set_defaults(func=run)
