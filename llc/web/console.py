"""The call console at ``/console/``: the calls, one call's story, its audio, calls in progress.

Server-rendered HTML from the same store the server writes (templates and one small script in
``llc/web/console_assets/``; no front-end build). The list filters by direction, scenario,
outcome and date; a call's page shows its timeline, what the caller heard of each reply, the
per-turn latency waterfall and the recording when there is one. Calls in progress come from
the running server itself, polled as JSON (``live.json``) about once a second.

Who may look: the same rule as /metrics (loopback clients, or the API bearer token): call
content is personal data. Mounted by ``console_blueprint(server)``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from quart import Blueprint, Response, abort, render_template, request, send_file

from llc.core.timeline import timeline, waterfalls
from llc.web.server import Server

ASSETS = Path(__file__).with_name("console_assets")
LIST_SCAN = 500  # the latest calls the list's filters look through
LIST_SHOWN = 100
LIVE_SCAN = 50  # live.json runs every second per open list: it looks at the newest calls only
FILTERS = ("direction", "scenario", "outcome", "date")


def _day(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(ts)) if ts else ""


def _row(r: dict[str, Any]) -> dict[str, Any]:
    """A call as the list shows it (stored rows and live records alike)."""
    ended, started = r.get("ended_at"), r.get("started_at") or 0.0
    return {
        "call_sid": r.get("call_sid", ""), "direction": r.get("direction", ""), "scenario": r.get("scenario", ""),
        "path": r.get("path", ""), "outcome": r.get("end_reason", "") or ("in progress" if not ended else ""),
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "-",
        "started_at": started, "seconds": round((ended or time.time()) - started, 1) if started else None,
        "from_number": r.get("from_number", ""), "to_number": r.get("to_number", ""),
    }


def matches(row: dict[str, Any], wanted: dict[str, str]) -> bool:
    for key, value in wanted.items():
        have = _day(row["started_at"]) if key == "date" else str(row.get(key, ""))
        if value and have != value:
            return False
    return True


def _wanted() -> dict[str, str]:
    return {k: request.args.get(k, "").strip() for k in FILTERS}


def _live(server: Server) -> list[dict[str, Any]]:
    rows = []
    for rec in server.calls.live_records():  # media streams and SIP calls
        if not rec.call_sid:
            continue  # the stream has not said which call it is yet
        # The few fields the list shows, read directly: as_dict would copy the whole transcript
        # of every call in progress on every poll.
        row = _row({"call_sid": rec.call_sid, "direction": rec.direction, "scenario": rec.scenario, "path": rec.path,
                    "started_at": rec.started_at, "from_number": rec.from_number, "to_number": rec.to_number})
        said = rec.transcript[-1] if rec.transcript else None
        row["last_line"] = f"{said.role}: {said.text}" if said else ""
        row["turns"] = len(rec.turns)
        rows.append(row)
    return sorted(rows, key=lambda r: r["started_at"], reverse=True)


def heard_parts(line: dict[str, Any]) -> tuple[str, str]:
    """An interrupted agent line as (heard, not heard) text, the heard part being the estimate."""
    text, heard = line.get("text", ""), line.get("heard_text")
    if not line.get("interrupted") or heard is None:
        return text, ""
    kept = heard.rstrip("…")
    return heard, text[len(kept):].lstrip() if text.startswith(kept) else text


def console_blueprint(server: Server) -> Blueprint:
    bp = Blueprint("console", __name__, url_prefix="/console", template_folder=str(ASSETS / "templates"),
                   static_folder=str(ASSETS / "static"), static_url_path="/static")

    # No guard of its own: it is served by the admin app (llc/web/admin.py), whose guard covers it.
    async def stored_rows(wanted: dict[str, str], scan: int = LIST_SCAN) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
        rows = [_row(r) for r in await server.store.list_calls(scan)]
        choices = {k: sorted({str(r[k]) for r in rows if r[k]}) for k in ("direction", "scenario", "outcome")}
        return [r for r in rows if matches(r, wanted)][:LIST_SHOWN], choices

    @bp.get("/")
    async def calls() -> str:
        wanted = _wanted()
        rows, choices = await stored_rows(wanted)
        return await render_template("console/list.html", rows=rows, live=_live(server), wanted=wanted,
                                     choices=choices, scanned=LIST_SCAN)

    @bp.get("/live.json")
    async def live() -> dict[str, Any]:
        rows, _ = await stored_rows(_wanted(), LIVE_SCAN)
        return {"active": _live(server), "recent": rows[:20], "now": time.time()}

    @bp.get("/calls/<sid>")
    async def call(sid: str) -> str:
        live_record = next((r for r in server.calls.live_records() if r.call_sid == sid), None)
        record = live_record.as_dict() if live_record is not None else await server.store.get_call(sid)
        if record is None:
            abort(404)
        falls = waterfalls(record)
        scale = max((w.total_ms for w in falls), default=0.0) or 1.0
        audio = bool(record.get("audio_path")) and Path(record["audio_path"]).is_file()
        return await render_template("console/call.html", r=record, row=_row(record), entries=timeline(record),
                                     falls=falls, scale=scale, audio=audio, in_progress=live_record is not None,
                                     heard_parts=heard_parts)

    @bp.get("/calls/<sid>/audio.wav")
    async def audio(sid: str) -> Response:
        record = await server.store.get_call(sid)
        path = Path(record.get("audio_path") or "") if record else None
        if path is None or not path.is_file():
            abort(404)
        return await send_file(path, mimetype="audio/wav")

    return bp
