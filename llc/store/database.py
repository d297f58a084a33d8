"""The database the server uses: calls, messages, tickets, customers and orders.

``Store`` is the async interface the server uses; every database call runs in a worker
thread (``trio.to_thread.run_sync``), so a slow disk or a distant PostgreSQL never blocks the
Trio loop that relays audio. The schema is created on first use.

Every operation is bounded by ``timeout_s`` (LLC_DB_TIMEOUT_S), and a caller's own tighter
bound holds too: the thread is abandoned on cancel (it finishes in the background, cut short
by the database's own timeout), so a hung database costs the caller the bound, not the hang.
Two groups of slots: call records, and everything else (the caller lookup, the tools, the
CLI). A storm of hung lookups cannot hold up record writes, nor a stuck record write the
lookup a ringing call waits for.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import orjson
import trio

from llc.core.record import CallRecord, EndReason
from llc.store.backends import POOL_SIZE, Backend, StoreError, open_backend
from llc.store.outbox import event_statements
from llc.store.sql import (
    ADD_MESSAGE,
    ADD_TICKET,
    CALL_COLUMNS,
    CLOSE_CALL,
    CUSTOMER_BY_PHONE,
    GET_CALL,
    LIST_CALLS,
    LIST_MESSAGES,
    LIST_TICKETS,
    OPEN_CALLS,
    ORDERS_FOR,
    UPSERT_CALL,
)

T = TypeVar("T")
DEFAULT_DB = "llc.db"
DEFAULT_TIMEOUT_S = 3.0
SERVER_DIED = EndReason.SERVER_DIED.value


def default_instance() -> str:
    """One server per host unless LLC_INSTANCE says otherwise."""
    return socket.gethostname() or "llc"


class Store:
    def __init__(self, url: str, *, instance: str = "", timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url
        self.instance = instance or default_instance()
        self.timeout_s = timeout_s
        self.events_on = False  # LLC_EVENTS_URL: record writes bring their call events (llc.store.outbox)
        self.events_scenarios: frozenset[str] | None = None  # only these scenarios' calls (None: all)
        self._backend: Backend | None = None
        self._opening = threading.Lock()  # two first operations at once open one backend
        # Half the pool each: a group can always get a connection whatever the other one does.
        self._records = trio.CapacityLimiter(POOL_SIZE // 2)
        self._queries = trio.CapacityLimiter(POOL_SIZE // 2)

    @property
    def dialect(self) -> str:
        return self._backend.dialect if self._backend else ""

    @property
    def slots(self) -> int:
        """Database operations that can run at once."""
        return int(self._records.total_tokens + self._queries.total_tokens)

    def open_sync(self) -> Backend:
        """Open and create the schema (idempotent); raises StoreError naming the fix."""
        with self._opening:
            if self._backend is None:
                backend = open_backend(self.url, self.timeout_s)
                try:
                    backend.init_schema()
                except BaseException:
                    backend.close()
                    raise
                self._backend = backend
            return self._backend

    async def _call(self, fn: Callable[[Backend], T], *, records: bool = False, bound_s: float | None = None) -> T:
        def work() -> T:
            return fn(self.open_sync())

        bound = self.timeout_s if bound_s is None else bound_s
        with trio.move_on_after(bound):
            return await trio.to_thread.run_sync(work, limiter=self._records if records else self._queries,
                                                 abandon_on_cancel=True)
        raise StoreError(f"the database ({self.dialect or self.url}) did not answer within {bound:g} s; "
                         "check that it is up, or raise LLC_DB_TIMEOUT_S")

    async def open(self) -> None:
        # A first connect and the schema: more than one statement's bound.
        await self._call(lambda b: None, bound_s=max(2.0, self.timeout_s) + 4 * self.timeout_s)

    def close(self) -> None:
        # Not under _opening: a connect hanging in a worker thread must not block the loop here.
        backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()

    # ---- calls ------------------------------------------------------------------------

    async def save_call(self, record: CallRecord, seq: int | None = None) -> None:
        """Write the record, open (``ended_at`` None) or ended; call it as often as it changes.

        ``seq``: the write's place among the call's writes (``llc.call.record_writer``)."""
        await self.save_call_data({**record.as_dict(), "seq": seq})

    async def save_call_data(self, data: dict[str, Any]) -> None:
        """Store a record given as ``CallRecord.as_dict()`` (also how pending records replay).

        Which write wins is decided by the record, never by a clock: an ended record over an
        open one, then the higher ``seq`` in ``data`` (a write without one, from an older
        pending file, competes on the first rule only). So a write that outlived its timeout,
        or a replay, never takes a row back, and a wall clock stepped back (NTP, a resumed VM)
        cannot make the final record lose. ``updated_at`` (the pending file stamps it; absent,
        now) is only when the record was last true: the crash sweep ends a call there.
        """
        updated_at = float(data.get("updated_at") or time.time())
        seq = data.get("seq")
        body = {k: v for k, v in data.items() if k not in ("updated_at", "seq")}
        row = ([body[c] for c in CALL_COLUMNS]
               + [orjson.dumps(body).decode(), self.instance, updated_at, int(seq) if seq is not None else None])
        if not self.wants_events(body):
            await self._call(lambda b: b.query(UPSERT_CALL, row), records=True)
            return
        writes = [(UPSERT_CALL, row), *event_statements(body, time.time())]
        await self._call(lambda b: b.transaction(writes), records=True)

    def wants_events(self, record: dict[str, Any]) -> bool:
        return self.events_on and (self.events_scenarios is None or record.get("scenario") in self.events_scenarios)

    async def run(self, fn: Callable[[Backend], T], *, bound_s: float | None = None) -> T:
        """``fn`` on the backend in a worker thread, bounded like every store operation."""
        return await self._call(fn, bound_s=bound_s)

    async def close_orphans(self, instance: str | None = None) -> list[str]:
        """At start-up: close every record ``instance`` (default: this store's) left open.

        The process that owned them died (kill -9, OOM, power): each becomes ``server_died``,
        ended at its last saved update (the last moment it is known to have been alive), with
        the transcript and turns it had. Other instances' records are not touched. Returns
        the CallSids closed.
        """
        owner = instance or self.instance
        now = time.time()

        def sweep(b: Backend) -> list[str]:
            closed = []
            for row in b.query(OPEN_CALLS, [owner]):
                record = orjson.loads(row["record_json"])
                ended = row["updated_at"] or row["started_at"] or now
                detail = (f"the server ({owner}) stopped during the call; closed at its next start, "
                          f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(now))} UTC")
                record.update(ended_at=ended, end_reason=SERVER_DIED, end_detail=detail)
                writes = [(CLOSE_CALL, [ended, SERVER_DIED, detail, orjson.dumps(record).decode(), row["call_sid"]])]
                if self.wants_events(record):  # its call.ended goes out too: the call did end
                    writes += event_statements(record, now)
                b.transaction(writes)
                closed.append(row["call_sid"])
            return closed

        return await self._call(sweep, records=True, bound_s=4 * self.timeout_s)

    async def list_calls(self, limit: int = 50) -> list[dict[str, Any]]:
        return await self._call(lambda b: b.query(LIST_CALLS, [limit]))

    async def get_call(self, call_sid: str) -> dict[str, Any] | None:
        rows = await self._call(lambda b: b.query(GET_CALL, [call_sid]))
        return orjson.loads(rows[0]["record_json"]) if rows else None

    # ---- receptionist messages, CSR tickets -------------------------------------------

    async def add_message(self, *, call_sid: str, scenario: str, caller_id: str, name: str, number: str,
                          reason: str, callback_time: str) -> int:
        row = [time.time(), call_sid, scenario, caller_id, name, number, reason, callback_time]
        rows = await self._call(lambda b: b.query(ADD_MESSAGE, row))
        return int(rows[0]["id"])

    async def list_messages(self, limit: int = 50) -> list[dict[str, Any]]:
        return await self._call(lambda b: b.query(LIST_MESSAGES, [limit]))

    async def add_ticket(self, *, call_sid: str, customer_id: str, subject: str, details: str) -> int:
        row = [time.time(), call_sid, customer_id, subject, details, "open"]
        rows = await self._call(lambda b: b.query(ADD_TICKET, row))
        return int(rows[0]["id"])

    async def list_tickets(self, limit: int = 50) -> list[dict[str, Any]]:
        return await self._call(lambda b: b.query(LIST_TICKETS, [limit]))

    # ---- customers and orders ---------------------------------------------------------

    async def customer_by_phone(self, phone: str) -> dict[str, Any] | None:
        rows = await self._call(lambda b: b.query(CUSTOMER_BY_PHONE, [phone]))
        return rows[0] if rows else None

    async def orders_for(self, customer_id: str) -> list[dict[str, Any]]:
        return await self._call(lambda b: b.query(ORDERS_FOR, [customer_id]))

    async def seed(self) -> dict[str, int]:
        from llc.store.seed import seed_rows

        return await self._call(partial(seed_rows), bound_s=4 * self.timeout_s)


def open_store(url: str | None, *, instance: str = "", timeout_s: float = DEFAULT_TIMEOUT_S) -> Store:
    return Store(url or DEFAULT_DB, instance=instance, timeout_s=timeout_s)

