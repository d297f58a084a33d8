"""Database unavailable: records wait in the pending file and are written when it is back."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import trio

from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller
from llc.store.pending import PendingRecords
from tests.helpers.pg import control, pg_url_or_skip
from tests.helpers.stack import StackFactory


async def test_pending_file_keeps_what_failed_and_replays_in_order(tmp_path: Path) -> None:
    pending = PendingRecords(tmp_path / "pending.jsonl")
    assert not pending.has_pending()
    for sid in ("CA1", "CA2", "CA3"):
        await pending.add({"call_sid": sid})
    saved: list[str] = []

    async def flaky(data: dict) -> None:
        if data["call_sid"] == "CA2":
            raise ConnectionError("database still down")
        saved.append(data["call_sid"])

    assert await pending.replay(flaky) == (2, 1)
    assert saved == ["CA1", "CA3"]
    assert [orjson.loads(x)["call_sid"] for x in pending.path.read_bytes().splitlines()] == ["CA2"]

    async def healthy(data: dict) -> None:
        saved.append(data["call_sid"])

    assert await pending.replay(healthy) == (1, 0)
    assert saved[-1] == "CA2" and not pending.has_pending()


async def test_call_during_database_outage_is_kept_then_written(start_stack: StackFactory, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "pending.jsonl"
    stack = await start_stack(settings={"pending_records_path": str(path)})
    store = stack.state.store
    real_save = store.save_call_data

    async def down(data: dict) -> None:
        raise ConnectionError("could not connect to server: Connection refused")

    monkeypatch.setattr(store, "save_call_data", down)
    first = FakeCaller(stack.base_url, CallerScript(turns=[CallerTurn("Hello?")], max_call_s=10))
    await first.run()
    await stack.wait_records(1)
    with trio.fail_after(5):
        while not stack.state.pending.has_pending():
            await trio.sleep(0.02)
    kept = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    assert [k["call_sid"] for k in kept] == [first.call_sid] and kept[0]["transcript"]

    monkeypatch.setattr(store, "save_call_data", real_save)  # the database is back
    second = FakeCaller(stack.base_url, CallerScript(turns=[CallerTurn("Hi again")], max_call_s=10))
    await second.run()
    with trio.fail_after(5):
        while stack.state.pending.has_pending() or await store.get_call(second.call_sid) is None:
            await trio.sleep(0.02)
    stored = await store.get_call(first.call_sid)
    assert stored is not None and stored["transcript"] == kept[0]["transcript"]


async def test_postgres_restarts_between_and_during_calls_and_no_record_is_lost(
        start_stack: StackFactory, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Through the server: after a PostgreSQL restart every save failed with
    `the connection is closed` until llc restarted. Now the next call's record is written
    straight away; one that ends while PostgreSQL is down waits in the pending file and is
    written after the next call once it is back."""
    url = pg_url_or_skip(request)
    ctl = control(url)
    if ctl is None:
        pytest.skip("LLC_TEST_PG_URL is a server of its own: this test restarts the throwaway one")
    path = tmp_path / "pending.jsonl"
    stack = await start_stack(settings={"db_url": url, "pending_records_path": str(path)})
    store = stack.state.store

    async def call(text: str) -> str:
        caller = FakeCaller(stack.base_url, CallerScript(turns=[CallerTurn(text)], max_call_s=10))
        await caller.run()
        return caller.call_sid

    async def stored(sid: str) -> bool:
        try:
            return await store.get_call(sid) is not None
        except Exception:  # noqa: BLE001  the database is down on purpose here: not stored yet
            return False

    first = await call("Hello?")
    with trio.fail_after(5):
        while not await stored(first):
            await trio.sleep(0.05)
    await trio.to_thread.run_sync(ctl.restart)
    second = await call("Hello after the restart")
    with trio.fail_after(5):
        while not await stored(second):
            await trio.sleep(0.05)
    assert not stack.state.pending.has_pending()  # written directly, not via the pending file

    await trio.to_thread.run_sync(ctl.stop)
    try:
        third = await call("Hello while it is down")
        with trio.fail_after(15):
            while not stack.state.pending.has_pending():
                await trio.sleep(0.05)
    finally:
        await trio.to_thread.run_sync(ctl.start)
    fourth = await call("Hello, it is back")
    with trio.fail_after(10):
        while stack.state.pending.has_pending() or not await stored(fourth):
            await trio.sleep(0.05)
    for sid in (first, second, third, fourth):
        record = await store.get_call(sid)
        assert record is not None and record["transcript"], sid
