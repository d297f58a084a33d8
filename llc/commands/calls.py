"""`llc calls` lists stored call records; `llc calls show SID` prints one."""

from __future__ import annotations

import argparse
import time

import orjson
import trio

from llc.commands.store_cli import open_cli_store, printed_as_json_or_empty


def run(args: argparse.Namespace) -> int:
    store = open_cli_store(args)
    if args.action == "show":
        if not args.sid:
            print("llc calls show: give the call SID, like: llc calls show CA0123...")
            return 2
        record = trio.run(store.get_call, args.sid)
        if record is None:
            print(f"no call {args.sid} in {store.url}; `llc calls` lists the stored ones")
            return 1
        if args.json:
            print(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode())
        else:
            show(record)
        return 0
    rows = trio.run(store.list_calls, args.limit)
    if printed_as_json_or_empty(rows, args, f"no calls stored in {store.url} yet"):
        return 0
    print(f"{'started':<20}{'call_sid':<36}{'dir':<9}{'scenario':<22}{'path':<11}{'secs':>6}  end")
    for r in rows:
        secs = f"{r['ended_at'] - r['started_at']:.1f}" if r["ended_at"] else "-"
        print(f"{_when(r['started_at']):<20}{r['call_sid']:<36}{r['direction']:<9}{r['scenario']:<22}{r['path']:<11}{secs:>6}  {r['end_reason']}")
    return 0


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def show(r: dict) -> None:
    print(f"call {r['call_sid']}  ({r['direction']}, scenario {r['scenario']}, path {r['path']})")
    print(f"  from {r['from_number'] or '-'} to {r['to_number'] or '-'}; answered by {r['answered_by'] or '-'}")
    print(f"  started {_when(r['started_at'])}, ended {_when(r['ended_at'])}: {r['end_reason']} {r['end_detail']}".rstrip())
    for s in r.get("statuses", []):
        print(f"  status {s.get('status')} at {s.get('timestamp') or s.get('received')}")
    print("transcript")
    for line in r["transcript"]:
        cut = " (interrupted)" if line.get("interrupted") else ""
        print(f"  {line['at']:7.2f}s  {line['role']:<6}  {line['text']}{cut}")
    if r.get("dtmf"):
        print(f"keys pressed: {''.join(r['dtmf'])}")
    for route in r.get("routes", []):
        print(f"route  {route['at']:.2f}s {route['via']} {route['choice']!r} -> {route['action']} {route['target']}")
    for t in r["tool_calls"]:
        print(f"tool   {t['started_at']:.2f}s {t['name']}({t['arguments']}) -> {t['error'] or t['output']} [{t['ms']} ms]")
    ms = [t["ms"] for t in r["turns"]]
    print("turn latency (ms): " + (", ".join("-" if m is None else f"{m:g}" for m in ms) or "-"))
    if r.get("openai_errors"):
        print(f"OpenAI errors: {r['openai_errors']}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calls", help="stored call records: list them, or `show SID`")
    p.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    p.add_argument("sid", nargs="?", help="the CallSid for `show`")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--db", help="database URL or path (default: LLC_DB_URL, else llc.db)")
    p.set_defaults(func=run)
