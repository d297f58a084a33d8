"""Blocking database backends behind one small interface; ``llc.store.Store`` runs them in threads.

SQLite is the embedded default (a file path, schema created on first use). PostgreSQL (psycopg
3 and psycopg_pool, the optional ``[postgres]`` extra) serves several instances sharing one
database. Both hand each statement a connection of its own from a small pool, so several
statements run at once and one that hangs holds one connection, not the store:

- PostgreSQL: ``psycopg_pool.ConnectionPool`` checks a connection before handing it out and
  reconnects in the background after a server restart; ``connect_timeout`` bounds a connect
  and ``statement_timeout`` makes the server cancel a statement that runs past the bound.
- SQLite: ``size`` connections (WAL, so readers never wait for the writer); a locked
  file waits ``busy_timeout`` and then fails instead of waiting for ever.
"""

from __future__ import annotations

import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from llc.log import get_logger
from llc.store.sql import ADD_COLUMN, CALL_MIGRATIONS, POST_MIGRATION, SCHEMA, SERIAL

log = get_logger("store")

# Connections per store: one slot group for records, one for lookups and tools (llc.store.database).
POOL_SIZE = 8


class StoreError(Exception):
    """The database cannot be opened or used; the message names the setting and the fix."""


class Backend:
    dialect = "sqlite"

    def query(self, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def columns(self, table: str) -> set[str]:
        raise NotImplementedError

    def transaction(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Run writes all or none (a record and the events it brings)."""
        raise NotImplementedError

    def init_schema(self) -> None:
        script = SCHEMA.format(serial=SERIAL[self.dialect])
        for statement in filter(str.strip, script.split(";")):
            self.query(statement)
        # Databases made by an earlier version lack the newer columns of `calls`.
        have = self.columns("calls")
        for name, decl in CALL_MIGRATIONS:
            if name not in have:
                self.query(ADD_COLUMN[self.dialect].format(table="calls", name=name, decl=decl))
        for statement in POST_MIGRATION:
            self.query(statement)

    def close(self) -> None:
        raise NotImplementedError


def _rows(cur: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in cur.fetchall()] if cur.description else []


class SqliteBackend(Backend):
    dialect = "sqlite"

    def __init__(self, path: str, timeout_s: float = 3.0, size: int = POOL_SIZE) -> None:
        self.path, self.timeout_s = path, timeout_s
        if path != ":memory:":
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreError(f"LLC_DB_URL: the folder {parent} does not exist; create it or point LLC_DB_URL elsewhere")
        # Each :memory: connection is a database of its own: that one gets a single connection.
        self._size = 1 if path == ":memory:" else size
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(self._size)
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._writer = threading.Lock()
        # All opened now (a bad path fails here, with the fix), none later: the server's file
        # descriptors stay flat whatever the load, so a leak check sees leaks and not the pool.
        for _ in range(self._size):
            self._idle.put(self._connect())

    def _connect(self) -> sqlite3.Connection:
        try:
            # check_same_thread=False: a connection is used by one thread at a time (the pool),
            # not always the same one. timeout= is SQLite's busy_timeout: a locked file waits
            # this long and then fails with "database is locked" rather than hanging.
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=self.timeout_s)
            if self.path == ":memory:":
                conn.execute("PRAGMA foreign_keys=ON")
            else:
                self._wal(conn)
        except sqlite3.Error as exc:
            raise StoreError(f"LLC_DB_URL: cannot open SQLite database {self.path!r} ({exc})") from None
        conn.row_factory = sqlite3.Row
        with self._guard:
            self._all.append(conn)
        return conn

    def _wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL, waiting out another process doing the same.

        Why a loop: SQLite does not call the busy handler for this switch, so two instances
        starting together on one new file failed at once with "database is locked" (24 of 40
        tries of two processes opening a new file at the same moment)."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if not self._slots.acquire(timeout=self.timeout_s):
            raise StoreError(f"all {self._size} SQLite connections stayed busy for {self.timeout_s:g} s (LLC_DB_TIMEOUT_S)")
        try:
            conn = self._idle.get_nowait()  # a slot guarantees an idle connection
            try:
                yield conn
            finally:
                self._idle.put(conn)
        finally:
            self._slots.release()

    def query(self, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._connection() as conn:
            if query.lstrip()[:6].upper() in ("SELECT", "PRAGMA"):
                return _rows(conn.execute(query, tuple(params)))
            # SQLite takes one writer at a time anyway; queueing writers here instead of in its
            # busy handler (which sleeps up to 100 ms between tries): in a burst of 500 writes
            # from 50 tasks the slowest took 0.2-0.35 s instead of 1 s.
            if not self._writer.acquire(timeout=self.timeout_s):
                raise StoreError(f"another SQLite write held {self.path} for {self.timeout_s:g} s (LLC_DB_TIMEOUT_S)")
            try:
                return _rows(conn.execute(query, tuple(params)))
            finally:
                self._writer.release()

    def columns(self, table: str) -> set[str]:
        return {r["name"] for r in self.query(f"PRAGMA table_info({table})")}

    def transaction(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        with self._connection() as conn:
            if not self._writer.acquire(timeout=self.timeout_s):
                raise StoreError(f"another SQLite write held {self.path} for {self.timeout_s:g} s (LLC_DB_TIMEOUT_S)")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for query, params in statements:
                        conn.execute(query, tuple(params))
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                self._writer.release()

    def close(self) -> None:
        with self._guard:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()


class PostgresBackend(Backend):
    dialect = "postgres"

    def __init__(self, url: str, timeout_s: float = 3.0, size: int = POOL_SIZE) -> None:
        try:
            import psycopg
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool, PoolTimeout
        except ImportError:
            raise StoreError("LLC_DB_URL is a PostgreSQL URL but psycopg or psycopg_pool is not installed: "
                             "pip install 'llc-phone[postgres]'") from None
        self._psycopg, self._pool_timeout = psycopg, PoolTimeout
        self.timeout_s = timeout_s
        self._host = urlsplit(url).hostname or "?"
        statement_ms = max(1, int(timeout_s * 1000))
        kwargs: dict[str, Any] = {
            "autocommit": True, "row_factory": dict_row,
            # libpq counts whole seconds and takes at least 2.
            "connect_timeout": max(2, math.ceil(timeout_s)),
            # A server that vanished without closing (power, network) is found by TCP keepalives.
            "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
        }

        def configure(conn: Any) -> None:
            # Set per connection, not in the URL's `options`, which may carry the user's own settings.
            conn.execute(f"SET statement_timeout = {statement_ms}")

        try:  # one connection now: a wrong URL or a server that is down fails at start-up with the reason
            psycopg.connect(url, **kwargs).close()
        except psycopg.Error as exc:
            raise StoreError(f"LLC_DB_URL: cannot connect to PostgreSQL on {self._host} ({str(exc).strip()})") from None
        self._size, self._check = size, ConnectionPool.check_connection
        # The pool's own warnings (each dropped connection, each failed reconnect) would reach
        # stderr as unstructured lines; ours above and the callers' StoreErrors say it once.
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
        # min_size = max_size: every connection kept open (replaced after a restart), so the
        # server's sockets stay flat under load and a leak check sees leaks, not the pool.
        self._pool = ConnectionPool(url, kwargs=kwargs, min_size=size, max_size=size, open=True,
                                    configure=configure, timeout=timeout_s, name="llc-store")

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        """A connection that answered a check just now.

        The check is ours, not the pool's ``check=``: the pool sleeps a growing backoff (1 s,
        2 s, ...) after each broken connection it finds, and after a restart every idle one
        is broken. Here a broken one goes back (the pool drops it and opens a replacement in
        the background) and the next is tried at once."""
        deadline = time.monotonic() + self.timeout_s
        for broken in range(self._size + 1):
            try:
                conn = self._pool.getconn(timeout=max(0.01, deadline - time.monotonic()))
            except self._pool_timeout:
                raise StoreError(f"no PostgreSQL connection to {self._host} within {self.timeout_s:g} s "
                                 "(server down or every connection busy); LLC_DB_TIMEOUT_S sets the bound") from None
            try:
                self._check(conn)
            except self._psycopg.Error as exc:
                if not broken:  # one line per query, however many dead connections it skips
                    log.warning("a PostgreSQL connection to %s was broken (%s): a restart, a failover or a cut "
                                "network; using the next, the pool reconnects. Nothing to do unless it repeats",
                                self._host, (str(exc).strip() or type(exc).__name__).splitlines()[0])
                self._pool.putconn(conn)
                continue
            try:
                yield conn
            finally:
                self._pool.putconn(conn)
            return
        raise StoreError(f"PostgreSQL on {self._host}: every pooled connection was broken; the pool is reconnecting")

    def query(self, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._connection() as conn, conn.cursor() as cur:
            cur.execute(query.replace("?", "%s"), tuple(params))
            return _rows(cur)

    def transaction(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            for query, params in statements:
                cur.execute(query.replace("?", "%s"), tuple(params))

    def columns(self, table: str) -> set[str]:
        rows = self.query("SELECT column_name FROM information_schema.columns "
                          "WHERE table_name = ? AND table_schema = current_schema()", [table])
        return {r["column_name"] for r in rows}

    def close(self) -> None:
        self._pool.close(timeout=1.0)


def open_backend(url: str, timeout_s: float = 3.0) -> Backend:
    """``postgresql://…`` / ``postgres://…``, ``sqlite:///path``, ``sqlite://:memory:``, or a plain file path."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresBackend(url, timeout_s)
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):]
        path = path.removeprefix("/")  # sqlite:///rel.db, sqlite:////abs/path.db
        return SqliteBackend(path or ":memory:", timeout_s)
    if "://" in url:
        raise StoreError(f"LLC_DB_URL={url!r}: use a file path, sqlite:///path.db or postgresql://user@host/db")
    return SqliteBackend(url, timeout_s)
