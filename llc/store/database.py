"""The database the server uses: calls, messages, tickets, customers and orders.

``Store`` is the async interface the server uses; every database call runs in a worker
thread (``trio.to_thread.run_sync``), so a slow disk or a distant PostgreSQL never blocks the
Trio loop that relays audio. The schema is created on first use.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any, Callable, TypeVar

import orjson
import trio

from llc.core.record import CallRecord
import llc.store.sql as sql
from llc.store.backends import Backend, open_backend

T = TypeVar("T")
DEFAULT_DB = "llc.db"


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self._backend: Backend | None = None
        self._limiter = trio.CapacityLimiter(1)  # one connection: statements run one at a time anyway

    @property
    def dialect(self) -> str:
        return self._backend.dialect if self._backend else ""

    def open_sync(self) -> Backend:
        """Open and create the schema (idempotent); raises StoreError naming the fix."""
        if self._backend is None:
            backend = open_backend(self.url)
            backend.init_schema()
            self._backend = backend
        return self._backend

    async def _call(self, fn: Callable[[Backend], T]) -> T:
        def work() -> T:
            return fn(self.open_sync())

        return await trio.to_thread.run_sync(work, limiter=self._limiter)

    async def open(self) -> None:
        await self._call(lambda b: None)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    # ---- calls ------------------------------------------------------------------------

    async def save_call(self, record: CallRecord) -> None:
        await self.save_call_data(record.as_dict())

    async def save_call_data(self, data: dict[str, Any]) -> None:
        """Store a record given as ``CallRecord.as_dict()`` (also how pending records replay)."""
        row = [data[c] for c in sql.CALL_COLUMNS] + [orjson.dumps(data).decode()]
        await self._call(lambda b: b.query(sql.UPSERT_CALL, row))

    async def list_calls(self, limit: int = 50) -> list[dict[str, Any]]:
        return await self._call(lambda b: b.query(sql.LIST_CALLS, [limit]))

    async def get_call(self, call_sid: str) -> dict[str, Any] | None:
        rows = await self._call(lambda b: b.query(sql.GET_CALL, [call_sid]))
        return orjson.loads(rows[0]["record_json"]) if rows else None

    # ---- receptionist messages, CSR tickets -------------------------------------------

    async def add_message(self, *, call_sid: str, scenario: str, caller_id: str, name: str, number: str,
                          reason: str, callback_time: str) -> int:
        row = [time.time(), call_sid, scenario, caller_id, name, number, reason, callback_time]
        rows = await self._call(lambda b: b.query(sql.ADD_MESSAGE, row))
        return int(rows[0]["id"])

    async def list_messages(self, limit: int = 50) -> list[dict[str, Any]]:
        return await self._call(lambda b: b.query(sql.LIST_MESSAGES, [limit]))

    async def add_ticket(self, *, call_sid: str, customer_id: str, subject: str, details: str) -> int:
        row = [time.time(), call_sid, customer_id, subject, details, "open"]
        rows = await self._call(lambda b: b.query(sql.ADD_TICKET, row))
        return int(rows[0]["id"])

    async def list_tickets(self, limit: int = 50) -> list[dict[str, Any]]:
        return await self._call(lambda b: b.query(sql.LIST_TICKETS, [limit]))

    # ---- customers and orders ---------------------------------------------------------

    async def customer_by_phone(self, phone: str) -> dict[str, Any] | None:
        rows = await self._call(lambda b: b.query(sql.CUSTOMER_BY_PHONE, [phone]))
        return rows[0] if rows else None

    async def orders_for(self, customer_id: str) -> list[dict[str, Any]]:
        return await self._call(lambda b: b.query(sql.ORDERS_FOR, [customer_id]))

    async def seed(self) -> dict[str, int]:
        from llc.store.seed import seed_rows

        return await self._call(partial(seed_rows))


def open_store(url: str | None) -> Store:
    return Store(url or DEFAULT_DB)
