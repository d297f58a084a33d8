"""The store under database faults: a hung statement, a locked file, a PostgreSQL restart,
records a dead process left open. SQLite always; PostgreSQL on the session's throwaway server."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import trio

from llc.core.record import CallRecord, TranscriptLine, TurnLatency
from llc.modes.runtime import CALLER_LOOKUP_TIMEOUT_S, ScenarioRouter
from llc.modes.scenario import load_scenario_set
from llc.profile import load_profile
from llc.store import Store, StoreError, open_store
from llc.store.database import SERVER_DIED
from tests.helpers.pg import control, pg_url_or_skip


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "t.db") if request.param == "sqlite" else pg_url_or_skip(request)


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    return pg_url_or_skip(request)


def open_call(sid: str, started_at: float = 100.0) -> CallRecord:
    return CallRecord(call_sid=sid, scenario="csr", from_number="+15550100001", started_at=started_at,
                      transcript=[TranscriptLine("caller", "Hi", 0.5), TranscriptLine("agent", "Hello", 1.0)],
                      turns=[TurnLatency(0.6, 0.9)])


@pytest.fixture
def sqlite_locked(tmp_path: Path) -> Iterator[str]:
    """A SQLite file another process holds an exclusive lock on (a stuck writer, a backup tool)."""
    path = str(tmp_path / "locked.db")
    Store(path).open_sync().close()  # the schema exists; only the lock is in the way
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield path
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def bounded_save(store: Store, record: CallRecord, bound_s: float) -> float:
    t0 = time.monotonic()
    with trio.move_on_after(bound_s):
        await store.save_call(record)
    return time.monotonic() - t0


async def test_a_callers_bound_holds_when_sqlite_is_locked(sqlite_locked: str) -> None:
    """`move_on_after(0.5)` around a save returned after the database's own wait
    (5 s busy timeout on main); the thread is now abandoned at the caller's bound."""
    store = open_store(sqlite_locked)
    await store.open()
    took = await bounded_save(store, open_call("CA1"), 0.5)
    assert took < 0.8, f"a save bounded at 0.5 s took {took:.2f} s"
    store.close()


async def test_the_store_bound_holds_by_itself_when_sqlite_is_locked(sqlite_locked: str) -> None:
    store = open_store(sqlite_locked, timeout_s=0.5)
    await store.open()
    t0 = time.monotonic()
    with pytest.raises((StoreError, sqlite3.OperationalError)):
        await store.save_call(open_call("CA1"))
    assert time.monotonic() - t0 < 1.0
    store.close()


async def test_a_hung_postgres_statement_is_bounded_and_stalls_nothing_else(pg_url: str) -> None:
    """A row lock held by another session hangs the save; the caller's bound holds, the server's
    statement_timeout frees the connection, and lookups and other saves go on meanwhile."""
    store = open_store(pg_url, timeout_s=1.0)
    await store.open()
    await store.seed()
    await store.save_call(open_call("CAheld"))
    blocker = psycopg.connect(pg_url, autocommit=False)
    try:
        blocker.execute("SELECT * FROM calls WHERE call_sid = 'CAheld' FOR UPDATE")
        took = await bounded_save(store, open_call("CAheld"), 0.5)
        assert took < 0.8, f"a save bounded at 0.5 s took {took:.2f} s"
        # The store's own bound, without the caller's: StoreError at ~1 s (or the server's cancel).
        t0 = time.monotonic()
        with pytest.raises((StoreError, psycopg.errors.QueryCanceled)):
            await store.save_call(open_call("CAheld"))
        assert time.monotonic() - t0 < 1.6
        # Meanwhile: lookups and other records are not queued behind the stuck write.
        with trio.fail_after(1.0):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store.save_call, open_call("CAother"))
                nursery.start_soon(store.customer_by_phone, "+15550100001")
                nursery.start_soon(store.orders_for, "C001")
    finally:
        blocker.rollback()
        blocker.close()
    assert await store.get_call("CAother") is not None
    store.close()


async def test_a_pg_sleep_is_cut_at_the_bound(pg_url: str) -> None:
    store = open_store(pg_url, timeout_s=0.5)
    await store.open()
    t0 = time.monotonic()
    with pytest.raises((StoreError, psycopg.errors.QueryCanceled)):
        await store._call(lambda b: b.query("SELECT pg_sleep(10)"))
    assert time.monotonic() - t0 < 0.9
    # The server cancelled it (statement_timeout): the connection is back in the pool, usable.
    with trio.fail_after(2):
        await store.list_calls()
    store.close()


async def test_several_operations_run_at_once(db_url: str) -> None:
    """Eight slots (four for records, four for lookups and tools): four lookups that each take
    0.4 s finish together, not one after the other."""
    store = open_store(db_url)
    await store.open()
    assert store.slots == 8
    sleep = "SELECT pg_sleep(0.4)" if store.dialect == "postgres" else None
    if sleep is None:  # SQLite has no sleep: a slow Python function plays the slow statement
        def slow(_: object) -> None:
            time.sleep(0.4)
    t0 = time.monotonic()
    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(store._call, (lambda b: b.query(sleep)) if sleep else slow)
    assert time.monotonic() - t0 < 1.0
    store.close()


async def test_the_next_save_after_a_postgres_restart_succeeds(pg_url: str) -> None:
    """Before: one connection for life, `the connection is closed` after a restart until
    llc restarts. The pool finds the dead connections and reconnects."""
    ctl = control(pg_url)
    if ctl is None:
        pytest.skip("LLC_TEST_PG_URL is a server of its own: this test restarts the throwaway one")
    store = open_store(pg_url)
    await store.open()
    await store.save_call(open_call("CAbefore"))
    await trio.to_thread.run_sync(ctl.restart)
    t0 = time.monotonic()
    await store.save_call(open_call("CAafter"))
    first_save = time.monotonic() - t0
    assert {r["call_sid"] for r in await store.list_calls()} == {"CAbefore", "CAafter"}
    assert first_save < 3.0
    print(f"first save after the restart: {first_save * 1000:.0f} ms")
    store.close()


async def test_saves_fail_fast_while_postgres_is_down_and_succeed_once_it_is_back(pg_url: str) -> None:
    ctl = control(pg_url)
    if ctl is None:
        pytest.skip("LLC_TEST_PG_URL is a server of its own: this test stops the throwaway one")
    store = open_store(pg_url, timeout_s=1.0)
    await store.open()
    await store.save_call(open_call("CA1"))
    await trio.to_thread.run_sync(ctl.stop)
    try:
        t0 = time.monotonic()
        with pytest.raises((StoreError, psycopg.OperationalError)):
            await store.save_call(open_call("CA2"))
        assert time.monotonic() - t0 < 1.5
    finally:
        await trio.to_thread.run_sync(ctl.start)
    with trio.fail_after(5):
        while True:  # the pool's reconnect is in the background: the first tries may still fail
            try:
                await store.save_call(open_call("CA2"))
                break
            except (StoreError, psycopg.OperationalError):
                await trio.sleep(0.1)
    assert await store.get_call("CA2") is not None
    store.close()


async def test_close_orphans_closes_this_instances_open_records_only(db_url: str) -> None:
    mine, theirs = open_store(db_url, instance="a"), open_store(db_url, instance="b")
    await mine.open()
    await theirs.open()
    await mine.save_call(open_call("CAopen"))
    ended = open_call("CAended")
    ended.ended_at, ended.end_reason = 130.0, "caller_hangup"
    await mine.save_call(ended)
    await theirs.save_call(open_call("CAtheirs"))
    saved = time.time()
    [row] = [r for r in await mine.list_calls() if r["call_sid"] == "CAopen"]
    assert (row["ended_at"], row["end_reason"], row["instance"]) == (None, "", "a")  # open until it ends

    assert await mine.close_orphans("a") == ["CAopen"]
    record = await mine.get_call("CAopen")
    assert record is not None and record["end_reason"] == SERVER_DIED
    # Ended at the last saved update, with what was saved: transcript and turns kept.
    assert saved - 5 < record["ended_at"] <= saved + 0.01
    assert [t["text"] for t in record["transcript"]] == ["Hi", "Hello"] and len(record["turns"]) == 1
    rows = {r["call_sid"]: r for r in await mine.list_calls()}
    assert rows["CAopen"]["end_reason"] == SERVER_DIED and rows["CAopen"]["ended_at"] == record["ended_at"]
    assert rows["CAended"]["end_reason"] == "caller_hangup"
    assert rows["CAtheirs"]["ended_at"] is None  # another instance's live call: untouched
    assert await mine.close_orphans("a") == []  # a second start finds nothing
    mine.close()
    theirs.close()


async def test_a_final_record_replayed_after_the_crash_sweep_still_wins(db_url: str) -> None:
    """The call's final record waited in the pending file (the database was down when it ended);
    the next start's sweep closed the open row as server_died before the replay got through. The
    replay must still land: the sweep does not make the row look newer than it is."""
    store = open_store(db_url, instance="a")
    await store.open()
    rec = open_call("CAlate")
    await store.save_call(rec)  # the progress write: open
    rec.ended_at, rec.end_reason = time.time(), "caller_hangup"
    final = {**rec.as_dict(), "updated_at": time.time()}  # as the pending file stamps it
    assert await store.close_orphans() == ["CAlate"]
    await store.save_call_data(final)  # the replay, after the sweep
    got = await store.get_call("CAlate")
    assert got is not None and got["end_reason"] == "caller_hangup"
    store.close()


async def test_an_older_write_never_takes_a_record_back(db_url: str) -> None:
    """A replayed pending record, or a write that outlived its timeout, lands after a newer one:
    ignored. Replaying the same record twice leaves the same row."""
    store = open_store(db_url)
    await store.open()
    rec = open_call("CA1")
    old = {**rec.as_dict(), "updated_at": 1000.0}
    rec.ended_at, rec.end_reason = 150.0, "caller_hangup"
    new = {**rec.as_dict(), "updated_at": 2000.0}
    await store.save_call_data(new)
    await store.save_call_data(old)
    got = await store.get_call("CA1")
    assert got is not None and got["end_reason"] == "caller_hangup" and "updated_at" not in got
    await store.save_call_data(new)
    await store.save_call_data(new)
    assert [(r["call_sid"], r["end_reason"]) for r in await store.list_calls()] == [("CA1", "caller_hangup")]
    store.close()


async def test_a_wall_clock_stepped_back_never_loses_the_final_record(db_url: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The call's writes go through the durable sink as a call makes them; between its last
    progress write and its end the wall clock steps back an hour (NTP, a resumed VM). The final
    record is stored all the same, and a progress write that lands late never reopens it."""
    from llc.call.record_writer import RecordWriter
    from llc.store.durable import DurableRecords
    from llc.store.pending import PendingRecords

    store = open_store(db_url, instance="a")
    await store.open()
    pending = PendingRecords(tmp_path / "pending.jsonl")
    writer = RecordWriter(DurableRecords(store, pending))
    rec = open_call("CAclock")
    clock = [2_000_003_600.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    async with trio.open_nursery() as nursery:
        writer.admit(rec, nursery)  # progress write 1, an hour "ahead"
    late_progress = {**rec.as_dict(), "seq": 1}
    clock[0] -= 3600  # the step back
    rec.transcript.append(TranscriptLine("agent", "Goodbye!", 2.0))
    rec.ended_at, rec.end_reason = clock[0], "caller_hangup"
    await writer.final(rec)
    got = await store.get_call("CAclock")
    assert got is not None and got["end_reason"] == "caller_hangup" and got["transcript"][-1]["text"] == "Goodbye!"
    await store.save_call_data(late_progress)  # a progress write that outlived its timeout lands last
    got = await store.get_call("CAclock")
    assert got is not None and got["end_reason"] == "caller_hangup"
    assert not pending.has_pending()  # stored, not parked
    store.close()


def test_a_database_made_before_the_instance_column_is_migrated(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE calls (call_sid TEXT PRIMARY KEY, stream_sid TEXT, direction TEXT, scenario TEXT, "
                 "path TEXT, from_number TEXT, to_number TEXT, answered_by TEXT, started_at DOUBLE PRECISION, "
                 "ended_at DOUBLE PRECISION, end_reason TEXT, end_detail TEXT, record_json TEXT NOT NULL)")
    conn.execute("INSERT INTO calls VALUES ('CAold', '', 'inbound', 'default', 'cold', '', '', '', 1.0, 2.0, "
                 "'caller_hangup', '', '{}')")
    conn.commit()
    conn.close()

    async def main() -> None:
        store = open_store(path, instance="a")
        await store.open()
        await store.save_call(open_call("CAnew"))
        rows = {r["call_sid"]: r for r in await store.list_calls()}
        assert rows["CAold"]["instance"] == "" and rows["CAnew"]["instance"] == "a"
        assert await store.close_orphans() == ["CAnew"]
        store.close()

    trio.run(main)


async def test_postgres_database_made_before_the_instance_column_is_migrated(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE calls (call_sid TEXT PRIMARY KEY, stream_sid TEXT, direction TEXT, "
                     "scenario TEXT, path TEXT, from_number TEXT, to_number TEXT, answered_by TEXT, "
                     "started_at DOUBLE PRECISION, ended_at DOUBLE PRECISION, end_reason TEXT, end_detail TEXT, "
                     "record_json TEXT NOT NULL)")
        conn.execute("INSERT INTO calls VALUES ('CAold', '', 'inbound', 'default', 'cold', '', '', '', 1.0, NULL, "
                     "'', '', '{}')")
    store = open_store(pg_url, instance="a")
    await store.open()
    await store.save_call(open_call("CAnew"))
    rows = {r["call_sid"]: r for r in await store.list_calls()}
    assert rows["CAold"]["instance"] == "" and rows["CAnew"]["instance"] == "a"
    assert await store.close_orphans() == ["CAnew"]  # an old open row has no owner: not ours to close
    store.close()


async def test_two_first_operations_at_once_open_one_backend(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "t.db"))
    opened: list[object] = []
    real = store.open_sync

    def counting() -> object:
        backend = real()
        opened.append(backend)
        return backend

    store.open_sync = counting  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(store.list_calls)
    assert len(opened) == 4 and len({id(b) for b in opened}) == 1
    store.close()


async def test_the_twiml_caller_lookup_is_bounded_and_the_call_goes_on(pg_url: str,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    """The CSR caller lookup on /twiml had no bound (Twilio's webhook gave up
    first). Now: about 1.5 s, then the caller is unknown and the call is answered."""
    store = open_store(pg_url, timeout_s=10.0)  # the store's own bound alone would be too late
    await store.open()
    await store.seed()
    router = ScenarioRouter(load_profile(), load_scenario_set(), store, "alloy", {})
    blocker = psycopg.connect(pg_url, autocommit=False)
    try:
        blocker.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")  # a migration, a stuck vacuum full
        t0 = time.monotonic()
        plan = await router.plan_inbound("CAslow", "+15550100001", "+15550100022")
        took = time.monotonic() - t0
    finally:
        blocker.rollback()
        blocker.close()
    assert plan.scenario.name == "csr" and plan.customer is None
    assert CALLER_LOOKUP_TIMEOUT_S <= took < CALLER_LOOKUP_TIMEOUT_S + 0.5
    assert any(r.levelname == "WARNING" and getattr(r, "call_sid", "") == "CAslow" for r in caplog.records)
    known = await router.plan_inbound("CAfast", "+15550100001", "+15550100022")  # the lock gone: found again
    assert known.customer is not None and known.customer["id"] == "C001"
    store.close()


async def test_a_frozen_postgres_costs_each_caller_the_bound_and_nothing_more(pg_url: str) -> None:
    """PostgreSQL stops answering without closing anything (SIGSTOP: a hung host, a paused VM):
    no server-side timeout can fire. Each save still fails within the store's bound (and so
    goes to the pending file), lookups too, and everything works again once it answers."""
    ctl = control(pg_url)
    if ctl is None:
        pytest.skip("LLC_TEST_PG_URL is a server of its own: this test freezes the throwaway one")
    store = open_store(pg_url, timeout_s=0.5)
    await store.open()
    await store.seed()
    pids = ctl.freeze()
    try:
        took = []
        for sid in ("CA1", "CA2", "CA3", "CA4", "CA5", "CA6"):  # more than the record slots
            t0 = time.monotonic()
            with pytest.raises(StoreError):
                await store.save_call(open_call(sid))
            took.append(time.monotonic() - t0)
        t0 = time.monotonic()
        with pytest.raises(StoreError):
            await store.customer_by_phone("+15550100001")
        took.append(time.monotonic() - t0)
        assert max(took) < 0.8, took
    finally:
        ctl.thaw(pids)
    with trio.fail_after(5):
        while True:  # the abandoned statements finish and give their slots back
            try:
                await store.save_call(open_call("CAafter"))
                break
            except StoreError:
                await trio.sleep(0.1)
    assert await store.get_call("CAafter") is not None
    store.close()
