"""The store against SQLite (always) and PostgreSQL (when one is reachable)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.lowlevel

from llc.core.record import CallRecord, ToolCallRecord, TranscriptLine
from llc.store import Store, StoreError, open_store
from llc.store.backends import open_backend
from tests.helpers.pg import pg_url_or_skip


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "t.db") if request.param == "sqlite" else pg_url_or_skip(request)


async def test_records_messages_tickets_round_trip(db_url: str) -> None:
    store = open_store(db_url)
    await store.open()
    rec = CallRecord(call_sid="CA1", scenario="csr", from_number="+15550100001", started_at=1.0, ended_at=3.5,
                     transcript=[TranscriptLine("caller", "Hi", 0.5)],
                     tool_calls=[ToolCallRecord("c1", "get_orders", "{}", 0.7, output='{"ok":true}', ms=2.0)])
    await store.save_call(rec)
    rec.end_reason = "caller_hangup"
    await store.save_call(rec)  # upsert: the latest version wins
    [row] = await store.list_calls()
    assert (row["call_sid"], row["end_reason"], row["from_number"]) == ("CA1", "caller_hangup", "+15550100001")
    full = await store.get_call("CA1")
    assert full is not None and full["transcript"][0]["text"] == "Hi" and full["tool_calls"][0]["name"] == "get_orders"
    assert await store.get_call("CAnone") is None
    assert await store.seed() == {"customers": 3, "orders": 4}
    await store.seed()  # idempotent
    ann = await store.customer_by_phone("+15550100001")
    assert ann is not None and ann["name"] == "Ann Lee"
    assert [o["id"] for o in await store.orders_for("C001")] == ["A1002", "A1001"]
    mid = await store.add_message(call_sid="CA1", scenario="receptionist", caller_id="+1", name="Dana", number="+2",
                                  reason="quote", callback_time="9am")
    tid = await store.add_ticket(call_sid="CA1", customer_id="C001", subject="broken", details="d")
    assert [m["id"] for m in await store.list_messages()] == [mid]
    assert [(t["id"], t["status"]) for t in await store.list_tickets()] == [(tid, "open")]
    store.close()


async def test_database_calls_run_off_the_trio_loop(tmp_path: Path) -> None:
    """While a query runs, the loop keeps ticking (the thread does the blocking)."""
    store = open_store(str(tmp_path / "t.db"))
    await store.open()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await trio.lowlevel.checkpoint()
            ticks += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        for _ in range(20):
            await store.list_calls()
        nursery.cancel_scope.cancel()
    assert ticks >= 20


def test_bad_urls_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_backend(str(tmp_path / "missing" / "x.db"))
    with pytest.raises(StoreError, match="sqlite:///"):
        open_backend("mysql://x")
    assert isinstance(open_store(None), Store) and open_store(None).url == "llc.db"


def _open_at_once(path: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        backend = open_backend(path, 3.0)
        backend.init_schema()
        backend.close()
        results.put("ok")
    except StoreError as exc:
        results.put(str(exc))


def test_two_instances_opening_one_new_sqlite_file_at_once_both_start(tmp_path: Path) -> None:
    """Two servers started together on one new SQLite file: SQLite does not wait for the other's
    switch to WAL, and one of them used to exit with "database is locked" (24 of 40 tries)."""
    fork = multiprocessing.get_context("fork")
    for n in range(10):
        barrier, results = fork.Barrier(2), fork.Queue()
        procs = [fork.Process(target=_open_at_once, args=(str(tmp_path / f"shared{n}.db"), barrier, results))
                 for _ in range(2)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=20)
        assert [results.get(timeout=5) for _ in procs] == ["ok", "ok"]
