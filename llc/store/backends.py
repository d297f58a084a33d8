"""Blocking database backends behind one small interface; ``llc.store.Store`` runs them in threads.

SQLite is the embedded default (a file path, schema created on first use). PostgreSQL (psycopg
3, the optional ``[postgres]`` extra) serves several instances sharing one database. Both keep
one connection guarded by a lock: the work per call is a handful of short statements.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit

import llc.store.sql as sql


class StoreError(Exception):
    """The database cannot be opened or used; the message names the setting and the fix."""


class Backend:
    dialect = "sqlite"

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def _run(self, query: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def query(self, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return self._run(query, params)

    def init_schema(self) -> None:
        script = sql.SCHEMA.format(serial=sql.SERIAL[self.dialect])
        with self._lock:
            for statement in filter(str.strip, script.split(";")):
                self._run(statement, ())

    def close(self) -> None:
        raise NotImplementedError


class SqliteBackend(Backend):
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        if path != ":memory:":
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreError(f"LLC_DB_URL: the folder {parent} does not exist; create it or point LLC_DB_URL elsewhere")
        try:
            # One connection used from worker threads, one at a time (the lock).
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5.0)
            self._conn.execute("PRAGMA journal_mode=WAL" if path != ":memory:" else "PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise StoreError(f"LLC_DB_URL: cannot open SQLite database {path!r} ({exc})") from None
        self._conn.row_factory = sqlite3.Row

    def _run(self, query: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        cur = self._conn.execute(query, tuple(params))
        rows = [dict(r) for r in cur.fetchall()] if cur.description else []
        return rows

    def close(self) -> None:
        self._conn.close()


class PostgresBackend(Backend):
    dialect = "postgres"

    def __init__(self, url: str) -> None:
        super().__init__()
        try:
            import psycopg
            from psycopg.rows import dict_row
        except ImportError:
            raise StoreError("LLC_DB_URL is a PostgreSQL URL but psycopg is not installed: pip install 'llc-phone[postgres]'") from None
        self._psycopg = psycopg
        try:
            self._conn = psycopg.connect(url, autocommit=True, row_factory=dict_row, connect_timeout=5)
        except psycopg.Error as exc:
            host = urlsplit(url).hostname or "?"
            raise StoreError(f"LLC_DB_URL: cannot connect to PostgreSQL on {host} ({str(exc).strip()})") from None

    def _run(self, query: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        with self._conn.cursor() as cur:
            cur.execute(query.replace("?", "%s"), tuple(params))  # type: ignore[arg-type]
            return list(cur.fetchall()) if cur.description else []

    def close(self) -> None:
        self._conn.close()


def open_backend(url: str) -> Backend:
    """``postgresql://…`` / ``postgres://…``, ``sqlite:///path``, ``sqlite://:memory:``, or a plain file path."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresBackend(url)
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):]
        path = path[1:] if path.startswith("/") else path  # sqlite:///rel.db, sqlite:////abs/path.db
        return SqliteBackend(path or ":memory:")
    if "://" in url:
        raise StoreError(f"LLC_DB_URL={url!r}: use a file path, sqlite:///path.db or postgresql://user@host/db")
    return SqliteBackend(url)
