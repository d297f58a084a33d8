"""Call events: written with their record (SQLite and PostgreSQL), delivered signed to a real receiver
on loopback (verified with ``standardwebhooks``), retried, given up, claimed once across instances."""

from __future__ import annotations

import threading
import time
from itertools import pairwise
from pathlib import Path

import pytest
import trio

from llc.core.record import CallRecord, TranscriptLine
from llc.events.delivery import EventDelivery
from llc.events.signing import Signer, new_secret
from llc.metrics import REGISTRY
from llc.store import Store, open_store
from llc.store.durable import DurableRecords
from llc.store.outbox import claim
from llc.store.pending import PendingRecords
from tests.helpers.pg import pg_url_or_skip
from tests.helpers.receiver import Receiver

SECRET = new_secret()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "t.db") if request.param == "sqlite" else pg_url_or_skip(request)


@pytest.fixture
def receiver() -> object:
    r = Receiver(SECRET)
    r.start()
    yield r
    r.stop()


def record(sid: str, ended: bool) -> CallRecord:
    rec = CallRecord(call_sid=sid, scenario="csr", from_number="+15550100001", started_at=time.time() - 2,
                     transcript=[TranscriptLine("caller", "Hi", 0.5)])
    if ended:
        rec.ended_at, rec.end_reason = time.time(), "caller_hangup"
    return rec


async def events_store(url: str) -> Store:
    store = open_store(url)
    store.events_on = True
    await store.open()
    return store


async def rows(store: Store) -> list[dict]:
    return await store.run(lambda b: b.query("SELECT id, call_sid, type, status, attempts FROM events ORDER BY type"))


async def wait_for(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.05)


async def test_events_are_written_with_their_record_once_and_delivered_signed(
        db_url: str, receiver: Receiver, nursery: trio.Nursery) -> None:
    store = await events_store(db_url)
    open_rec = record("CA1", ended=False)
    await store.save_call(open_rec, 1)
    await store.save_call(open_rec, 2)  # a second write brings no second event
    assert [(r["type"], r["status"]) for r in await rows(store)] == [("call.started", "pending")]
    final = record("CA1", ended=True)
    await store.save_call(final, 3)
    await store.save_call(final, 3)  # a replayed final record: still one call.ended
    ids = {r["type"]: r["id"] for r in await rows(store)}
    assert sorted(ids) == ["call.ended", "call.started"]
    await nursery.start(EventDelivery(store, receiver.url, Signer(SECRET), poll_s=0.1).run)
    await wait_for(lambda: len(receiver.by_id()) == 2, 10)
    got = receiver.by_id()
    assert set(got) == set(ids.values()) and receiver.bad_signatures == 0
    ended = got[ids["call.ended"]]
    assert ended["type"] == "call.ended" and ended["data"] == await store.get_call("CA1")
    assert got[ids["call.started"]]["data"]["ended_at"] is None
    with trio.fail_after(5):
        while {r["status"] for r in await rows(store)} != {"delivered"}:
            await trio.sleep(0.05)
    store.close()


async def test_a_failing_then_slow_receiver_gets_every_event_once_after_retries(
        tmp_path: Path, receiver: Receiver, nursery: trio.Nursery) -> None:
    store = await events_store(str(tmp_path / "t.db"))
    counted = {r: REGISTRY.get_sample_value("llc_events_total", {"result": r}) or 0.0 for r in ("retried", "delivered")}
    receiver.mode = "fail"
    for i in range(5):
        await store.save_call(record(f"CA{i}", ended=True), 1)
    delivery = EventDelivery(store, receiver.url, Signer(SECRET), attempt_timeout_s=2.0, poll_s=0.1)
    await nursery.start(delivery.run)
    await wait_for(lambda: receiver.attempts >= 10, 5)
    assert receiver.by_id() == {}
    receiver.stop()  # then refused for a while
    await trio.sleep(1.5)
    receiver.start()
    receiver.mode, receiver.slow_s = "slow", 4.0  # answers after the attempt's bound: cut, tried again
    await trio.sleep(4.0)
    assert {r["status"] for r in await rows(store)} == {"pending"}
    receiver.mode = "ok"
    await wait_for(lambda: len(receiver.by_id()) == 10, 60)  # a loaded machine can cost an attempt: 20 s more
    assert receiver.events() == sorted((f"CA{i}", t) for i in range(5) for t in ("call.ended", "call.started"))
    assert receiver.bad_signatures == 0
    # A slow answer the receiver finished after llc cut the attempt is retried after its backoff.
    with trio.fail_after(60):
        while {r["status"] for r in await rows(store)} != {"delivered"}:
            await trio.sleep(0.05)
    grew = {r: (REGISTRY.get_sample_value("llc_events_total", {"result": r}) or 0.0) - n for r, n in counted.items()}
    assert grew["delivered"] >= 10 and grew["retried"] >= 10, grew
    store.close()


async def test_an_event_past_its_day_is_failed_and_retry_sends_it(tmp_path: Path, receiver: Receiver,
                                                                     nursery: trio.Nursery) -> None:
    from llc.commands.events import retry_failed

    store = await events_store(str(tmp_path / "t.db"))
    await store.save_call(record("CAold", ended=False), 1)
    await store.run(lambda b: b.query("UPDATE events SET give_up_at = ?", [time.time()]))
    receiver.mode = "fail"
    await nursery.start(EventDelivery(store, receiver.url, Signer(SECRET), poll_s=0.1).run)
    with trio.fail_after(5):
        while [r["status"] for r in await rows(store)] != ["failed"]:
            await trio.sleep(0.05)
    receiver.mode = "ok"
    assert await retry_failed(store) == 1
    await wait_for(lambda: len(receiver.by_id()) == 1, 5)
    store.close()


async def test_a_final_record_kept_in_the_pending_file_brings_its_events(tmp_path: Path) -> None:
    pending = PendingRecords(tmp_path / "pending.jsonl")
    down = open_store(str(tmp_path / "missing-folder" / "t.db"))
    down.events_on = True
    await DurableRecords(down, pending, write_timeout_s=1).save_final(record("CApend", ended=True), 2)
    assert pending.has_pending()
    store = await events_store(str(tmp_path / "t.db"))
    await DurableRecords(store, pending).replay_pending()
    assert [r["type"] for r in await rows(store)] == ["call.ended", "call.started"]
    assert not pending.has_pending()
    store.close()


async def test_two_instances_claim_each_event_once(request: pytest.FixtureRequest) -> None:
    url = pg_url_or_skip(request)
    first, second = await events_store(url), await events_store(url)
    for i in range(60):
        await first.save_call(record(f"CA{i:03}", ended=True), 1)
    claimed: dict[str, list[str]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def worker(name: str, store: Store) -> None:
        backend = store.open_sync()
        start.wait(timeout=10)
        for _ in range(40):  # bounded: 120 events, batches of 5
            got = claim(backend, time.time(), 60.0, 5)
            claimed[name] += [r["id"] for r in got]
            if not got:
                break

    threads = [threading.Thread(target=worker, args=(n, s)) for n, s in (("a", first), ("b", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    all_ids = claimed["a"] + claimed["b"]
    assert len(all_ids) == 120 and len(set(all_ids)) == 120, "an event was claimed twice, or not at all"
    assert claimed["a"] and claimed["b"], "both instances took part"
    first.close()
    second.close()


async def test_the_events_command_lists_waiting_and_failed_and_retries(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = str(tmp_path / "t.db")
    store = await events_store(db)
    await store.save_call(record("CAwait", ended=False), 1)
    await store.save_call(record("CAgone", ended=True), 1)
    await store.run(lambda b: b.query("UPDATE events SET status = 'failed', last_error = 'the receiver answered 500' "
                                      "WHERE call_sid = 'CAgone'"))
    store.close()

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "llc.cli", "events", *args, "--db", db], capture_output=True,
                              text=True, timeout=30, check=False)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        return done.stdout

    listed = cli()
    assert listed.startswith("1 pending, 2 failed, 0 delivered"), listed
    assert "CAwait" in listed and "the receiver answered 500" in listed
    assert "CAwait" not in cli("failed")
    assert "2 failed event(s) will be sent again" in cli("retry")
    assert cli("failed").startswith("no call events waiting or failed")


async def test_two_instances_delivering_from_one_postgres_send_each_event_once(
        request: pytest.FixtureRequest, receiver: Receiver, nursery: trio.Nursery) -> None:
    url = pg_url_or_skip(request)
    first, second = await events_store(url), await events_store(url)
    for i in range(40):
        await (first if i % 2 else second).save_call(record(f"CA{i:03}", ended=True), 1)
    for store in (first, second):
        await nursery.start(EventDelivery(store, receiver.url, Signer(SECRET), poll_s=0.05).run)
    await wait_for(lambda: len(receiver.by_id()) == 80, 30)
    await trio.sleep(0.5)
    assert receiver.duplicates() == 0 and len(receiver.deliveries) == 80, "an event was sent by both instances"
    first.close()
    second.close()


def test_retries_start_within_5_s_grow_and_stop_at_an_hour() -> None:
    from llc.events.delivery import backoff

    waits = [backoff(n) for n in range(1, 15)]
    assert waits[0] <= 5 and all(a < b for a, b in pairwise(waits[:9])) and max(waits) == 3600
    assert sum(waits[:9]) < 24 * 3600  # many attempts fit in the day before an event is given up
