"""`llc-phone calls` lists stored call records; `llc-phone calls show SID` prints one's timeline;
`llc-phone calls audio SID` exports its recording (LLC_RECORD_AUDIO)."""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import orjson
import trio

from llc.commands.store_cli import open_cli_store, printed_as_json_or_empty
from llc.core.timeline import timeline, waterfalls


def run(args: argparse.Namespace) -> int:
    store = open_cli_store(args)
    if args.action in ("show", "audio"):
        if not args.sid:
            print(f"llc-phone calls {args.action}: give the call SID, like: llc-phone calls {args.action} CA0123...")
            return 2
        record = trio.run(store.get_call, args.sid)
        if record is None:
            print(f"no call {args.sid} in {store.url}; `llc-phone calls` lists the stored ones")
            return 1
        if args.action == "audio":
            return export_audio(record, args.out)
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
    if r.get("audio_path"):
        print(f"  recording: {r['audio_path']} (`llc-phone calls audio {r['call_sid']}` exports it)")
    print("timeline (seconds since the call started)")
    for e in timeline(r):
        at = "      -" if e.at is None else f"{e.at:7.2f}"
        print(f"  {at}s  {e.kind:<9} {e.text}")
        if e.kind == "agent" and e.detail.get("interrupted"):
            heard, generated = e.detail.get("heard_ms"), e.detail.get("generated_ms")
            print(f"{'':21}(interrupted: heard {_ms(heard)} of {_ms(generated)}; "
                  f"heard, estimated: {e.detail.get('heard_text') or '(nothing)'!r})")
    print("latency per turn (caller's last loud frame -> first agent audio sent):" + ("" if waterfalls(r) else " -"))
    for w in waterfalls(r):
        print(f"  turn {w.turn}: {w.said()}")
    if r.get("openai_errors"):
        print(f"OpenAI errors: {r['openai_errors']}")


def _ms(v: float | None) -> str:
    return "?" if v is None else f"{v:g} ms"


def export_audio(record: dict, out: str | None) -> int:
    sid, source = record["call_sid"], record.get("audio_path") or ""
    if not source:
        print(f"call {sid} has no recording: calls are recorded only with LLC_RECORD_AUDIO=on")
        return 1
    if not Path(source).is_file():
        print(f"the recording of {sid} is gone ({source}): removed by hand or by LLC_RECORDINGS_KEEP_DAYS")
        return 1
    target = Path(out or f"{sid}.wav")
    shutil.copyfile(source, target)
    print(f"wrote {target} (stereo WAV: caller left, agent right as the caller heard it)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calls", help="stored call records: list them, `show SID` (its timeline), `audio SID`")
    p.add_argument("action", nargs="?", choices=["list", "show", "audio"], default="list",
                   help="list the latest calls (default), show one call's record, or give its audio file")
    p.add_argument("sid", nargs="?", help="the CallSid for `show` or `audio`")
    p.add_argument("--out", help="`audio`: where to write the WAV (default: <CallSid>.wav here)")
    p.add_argument("--limit", type=int, default=50, help="how many of the latest calls to list (default 50)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--db", help="database URL or path (default: LLC_DB_URL, else llc.db)")
    p.set_defaults(func=run)
