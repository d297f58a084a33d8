"""The events outbox: call events written with the record they belong to, delivered later.

A row is made in the same transaction as the record write it belongs to (``call.started`` with
every write of a call until one lands, ``call.ended`` with the ended record), so an event
exists exactly when its record does: a record kept in the pending file brings its events with
it when it is replayed. ``(call_sid, type)`` is unique and a second insert does nothing, so
the replays and repeated writes that the record rules already tolerate make no second event,
and the ``id`` (the ``webhook-id`` receivers deduplicate by) stays the one made first.

Delivery claims rows with a lease (``claimed_until``): on PostgreSQL the claim skips rows
another instance holds (``FOR UPDATE SKIP LOCKED``), so one event is sent by one instance at
a time; a claim whose instance died runs out and the row is taken again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from llc.events.signing import new_message_id
from llc.store.backends import Backend

GIVE_UP_S = 24 * 3600.0

INSERT_EVENT = ("INSERT INTO events (id, call_sid, type, created_at, body, next_at, give_up_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_sid, type) DO NOTHING")
_CLAIM = ("UPDATE events SET claimed_until = ?, attempts = attempts + 1 WHERE id IN ("
          "SELECT id FROM events WHERE status = 'pending' AND next_at <= ? "
          "AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY next_at LIMIT ? {lock}) "
          "RETURNING id, call_sid, type, body, attempts, give_up_at")
CLAIM = {"sqlite": _CLAIM.format(lock=""), "postgres": _CLAIM.format(lock="FOR UPDATE SKIP LOCKED")}
DELIVERED = ("UPDATE events SET status = 'delivered', delivered_at = ?, claimed_until = NULL, last_error = NULL "
             "WHERE id = ?")
RETRY_LATER = "UPDATE events SET next_at = ?, claimed_until = NULL, last_error = ? WHERE id = ?"
FAILED = "UPDATE events SET status = 'failed', claimed_until = NULL, last_error = ? WHERE id = ?"
RETRY_FAILED = ("UPDATE events SET status = 'pending', next_at = ?, give_up_at = ?, attempts = 0 "
                "WHERE status = 'failed' RETURNING id")
LIST = ("SELECT id, call_sid, type, created_at, status, attempts, next_at, last_error FROM events "
        "WHERE status = ? ORDER BY created_at LIMIT ?")
STATS = "SELECT status, COUNT(*) AS n, MIN(created_at) AS oldest FROM events GROUP BY status"
OLDEST_PENDING = "SELECT MIN(created_at) AS oldest FROM events WHERE status = 'pending'"
PRUNE = "DELETE FROM events WHERE status = 'delivered' AND delivered_at < ?"


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payload(kind: str, at: float, record: dict[str, Any]) -> str:
    """What the receiver gets: ``{"type", "timestamp", "data"}``, data the whole record."""
    return orjson.dumps({"type": kind, "timestamp": iso(at), "data": record}).decode()


def event_statements(record: dict[str, Any], now: float) -> list[tuple[str, list[Any]]]:
    """The event rows a write of ``record`` (``CallRecord.as_dict()``) carries."""
    sid = record["call_sid"]
    started = float(record.get("started_at") or now)
    rows = [("call.started", started)]
    if record.get("ended_at") is not None:
        rows.append(("call.ended", float(record["ended_at"])))
    # The started event carries the record as it was first stored: no end yet.
    opening = {**record, "ended_at": None, "end_reason": None, "end_detail": None} if len(rows) > 1 else record
    return [(INSERT_EVENT, [new_message_id(), sid, kind, now, payload(kind, at, opening if kind == "call.started" else record),
                            now, now + GIVE_UP_S]) for kind, at in rows]


def claim(b: Backend, now: float, lease_s: float, limit: int) -> list[dict[str, Any]]:
    return b.query(CLAIM[b.dialect], [now + lease_s, now, now, limit])


def stats(b: Backend) -> dict[str, dict[str, Any]]:
    return {r["status"]: {"count": int(r["n"]), "oldest": r["oldest"]} for r in b.query(STATS)}
