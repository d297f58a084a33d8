"""The store's SQL, once for both backends: SQLite (embedded default) and PostgreSQL.

Queries are written with ``?`` placeholders; the PostgreSQL backend rewrites them to ``%s``.
The dialect differences: how an auto-numbered key is spelled, and adding a column.

A call's row is written when the call starts and rewritten as it goes. Which write wins is
the record's own order, never a clock: an ended record over an open one, then the higher
``seq`` (the write's place among the call's writes). A replayed pending record or a write that
outlived its timeout never takes a record back, and a wall clock stepped back cannot make the
final write lose. ``updated_at`` says when the row was last true (the crash sweep ends a call there). ``instance`` names the
server that owns the call, so the next start of that server can close what it left open.
``events`` is the outbox of call events (``llc.store.outbox`` holds its queries).
"""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_sid TEXT PRIMARY KEY,
    stream_sid TEXT, direction TEXT, scenario TEXT, path TEXT,
    from_number TEXT, to_number TEXT, answered_by TEXT,
    started_at DOUBLE PRECISION, ended_at DOUBLE PRECISION,
    end_reason TEXT, end_detail TEXT,
    record_json TEXT NOT NULL,
    instance TEXT NOT NULL DEFAULT '', updated_at DOUBLE PRECISION, seq BIGINT
);
CREATE INDEX IF NOT EXISTS calls_started ON calls (started_at);
CREATE TABLE IF NOT EXISTS messages (
    id {serial},
    created_at DOUBLE PRECISION NOT NULL,
    call_sid TEXT, scenario TEXT, caller_id TEXT,
    name TEXT, number TEXT, reason TEXT, callback_time TEXT
);
CREATE TABLE IF NOT EXISTS customers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL, phone TEXT UNIQUE, email TEXT, plan TEXT, balance DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    item TEXT, status TEXT, placed_at TEXT, eta TEXT
);
CREATE TABLE IF NOT EXISTS tickets (
    id {serial},
    created_at DOUBLE PRECISION NOT NULL,
    call_sid TEXT, customer_id TEXT, subject TEXT, details TEXT, status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    call_sid TEXT NOT NULL, type TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0, next_at DOUBLE PRECISION NOT NULL, give_up_at DOUBLE PRECISION NOT NULL,
    claimed_until DOUBLE PRECISION, delivered_at DOUBLE PRECISION, last_error TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS events_once ON events (call_sid, type);
CREATE INDEX IF NOT EXISTS events_due ON events (status, next_at);
"""

SERIAL = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT", "postgres": "BIGSERIAL PRIMARY KEY"}

# Columns `calls` gained after its first version: added to an existing database on open.
CALL_MIGRATIONS = (("instance", "TEXT NOT NULL DEFAULT ''"), ("updated_at", "DOUBLE PRECISION"), ("seq", "BIGINT"))
# IF NOT EXISTS on PostgreSQL: several instances may open one database at the same moment.
ADD_COLUMN = {"sqlite": "ALTER TABLE {table} ADD COLUMN {name} {decl}",
              "postgres": "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {decl}"}
POST_MIGRATION = ("CREATE INDEX IF NOT EXISTS calls_open ON calls (instance) WHERE ended_at IS NULL",)

CALL_COLUMNS = ("call_sid", "stream_sid", "direction", "scenario", "path", "from_number", "to_number",
                "answered_by", "started_at", "ended_at", "end_reason", "end_detail")

_CALL_WRITE = (*CALL_COLUMNS, "record_json", "instance", "updated_at", "seq")
UPSERT_CALL = (
    f"INSERT INTO calls ({', '.join(_CALL_WRITE)}) VALUES ({', '.join('?' * len(_CALL_WRITE))}) "
    "ON CONFLICT (call_sid) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _CALL_WRITE[1:])
    + " WHERE (calls.ended_at IS NULL OR excluded.ended_at IS NOT NULL)"
    " AND (calls.seq IS NULL OR excluded.seq IS NULL OR excluded.seq >= calls.seq)"
)
LIST_CALLS = f"SELECT {', '.join(CALL_COLUMNS)}, instance FROM calls ORDER BY started_at DESC LIMIT ?"
GET_CALL = "SELECT record_json FROM calls WHERE call_sid = ?"
OPEN_CALLS = "SELECT call_sid, started_at, updated_at, record_json FROM calls WHERE instance = ? AND ended_at IS NULL"
# `ended_at IS NULL` again: a write that ended the call meanwhile wins over the start-up sweep.
# updated_at is left alone: a final record still waiting in the pending file (stamped after the
# last progress write) must still win over this sweep when it is replayed later.
CLOSE_CALL = ("UPDATE calls SET ended_at = ?, end_reason = ?, end_detail = ?, record_json = ? "
              "WHERE call_sid = ? AND ended_at IS NULL")

MESSAGE_COLUMNS = ("created_at", "call_sid", "scenario", "caller_id", "name", "number", "reason", "callback_time")
ADD_MESSAGE = f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) VALUES ({', '.join('?' * len(MESSAGE_COLUMNS))}) RETURNING id"
LIST_MESSAGES = f"SELECT id, {', '.join(MESSAGE_COLUMNS)} FROM messages ORDER BY id DESC LIMIT ?"

TICKET_COLUMNS = ("created_at", "call_sid", "customer_id", "subject", "details", "status")
ADD_TICKET = f"INSERT INTO tickets ({', '.join(TICKET_COLUMNS)}) VALUES ({', '.join('?' * len(TICKET_COLUMNS))}) RETURNING id"
LIST_TICKETS = f"SELECT id, {', '.join(TICKET_COLUMNS)} FROM tickets ORDER BY id DESC LIMIT ?"

CUSTOMER_COLUMNS = ("id", "name", "phone", "email", "plan", "balance")
CUSTOMER_BY_PHONE = f"SELECT {', '.join(CUSTOMER_COLUMNS)} FROM customers WHERE phone = ?"
ORDER_COLUMNS = ("id", "customer_id", "item", "status", "placed_at", "eta")
ORDERS_FOR = f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE customer_id = ? ORDER BY placed_at DESC"
UPSERT_CUSTOMER = (
    f"INSERT INTO customers ({', '.join(CUSTOMER_COLUMNS)}) VALUES ({', '.join('?' * len(CUSTOMER_COLUMNS))}) "
    "ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in CUSTOMER_COLUMNS[1:])
)
UPSERT_ORDER = (
    f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)}) VALUES ({', '.join('?' * len(ORDER_COLUMNS))}) "
    "ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in ORDER_COLUMNS[1:])
)
