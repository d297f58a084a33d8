"""The pending file under a process killed mid-append, and replays that repeat."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
import trio

import llc.store.pending as pending_mod
from llc.core.record import CallRecord
from llc.store import StoreError, open_store
from llc.store.pending import PendingRecords


def sids(path: Path) -> list[str]:
    return [orjson.loads(x)["call_sid"] for x in path.read_bytes().splitlines()]


async def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path: Path) -> None:
    """A process killed mid-append leaves `{"call_sid`; the next record was
    glued to it (`{"call_sid{"call_sid":"CA2",…}`) and both were unreadable for ever."""
    path = tmp_path / "pending.jsonl"
    path.write_bytes(b'{"call_sid":"CA1","transcript":[]}\n{"call_sid')
    pending = PendingRecords(path)
    await pending.add({"call_sid": "CA2", "transcript": []})
    assert sids(path) == ["CA1", "CA2"]
    assert pending.torn_path.read_bytes() == b'{"call_sid\n'  # the fragment, kept for a person
    saved: list[str] = []

    async def save(data: dict) -> None:
        saved.append(data["call_sid"])

    assert await pending.replay(save) == (2, 0)
    assert saved == ["CA1", "CA2"] and not pending.has_pending()


async def test_a_file_that_is_only_a_fragment(tmp_path: Path) -> None:
    path = tmp_path / "pending.jsonl"
    path.write_bytes(b'{"call_sid')
    pending = PendingRecords(path)
    await pending.add({"call_sid": "CA2"})
    assert sids(path) == ["CA2"]


async def test_replay_repairs_a_torn_tail_left_at_start_up(tmp_path: Path) -> None:
    path = tmp_path / "pending.jsonl"
    path.write_bytes(b'{"call_sid":"CA1"}\n{"call_sid":"CA')
    pending = PendingRecords(path)
    saved: list[str] = []

    async def save(data: dict) -> None:
        saved.append(data["call_sid"])

    assert await pending.replay(save) == (1, 0)
    assert saved == ["CA1"] and pending.torn_path.exists() and not pending.has_pending()


async def test_an_unreadable_whole_line_is_quarantined_not_retried_for_ever(tmp_path: Path) -> None:
    path = tmp_path / "pending.jsonl"
    path.write_bytes(b'{"call_sid":"CA1"}\nnot json\n{"call_sid":"CA3"}\n')
    pending = PendingRecords(path)

    async def save(data: dict) -> None:
        pass

    assert await pending.replay(save) == (2, 0)
    assert pending.torn_path.read_bytes() == b"not json\n" and not pending.has_pending()


async def test_a_long_file_with_a_torn_tail_keeps_every_whole_line(tmp_path: Path) -> None:
    path = tmp_path / "pending.jsonl"
    whole = [orjson.dumps({"call_sid": f"CA{i}", "pad": "x" * 500}) for i in range(400)]  # > 64 KiB
    path.write_bytes(b"\n".join(whole) + b'\n{"call_sid":"CAtorn","pad":"xx')
    pending = PendingRecords(path)
    assert pending.repair_sync()
    assert len(sids(path)) == 400 and not pending.repair_sync()


async def test_replaying_twice_gives_the_same_rows(tmp_path: Path) -> None:
    """Upsert by CallSid, and a replayed record older than the row is ignored: a replay that is
    cut short and run again, or one that lands after the call's later write, changes nothing."""
    store = open_store(str(tmp_path / "t.db"))
    await store.open()
    pending = PendingRecords(tmp_path / "pending.jsonl")
    early = CallRecord(call_sid="CA1", started_at=10.0)
    await pending.add(early.as_dict())  # the write at the call's start failed
    await pending.add(CallRecord(call_sid="CA2", started_at=11.0, ended_at=12.0, end_reason="caller_hangup").as_dict())
    late = CallRecord(call_sid="CA1", started_at=10.0, ended_at=20.0, end_reason="caller_hangup")
    await store.save_call(late)  # the end of the call got through
    lines = pending.path.read_bytes()

    assert await pending.replay(store.save_call_data) == (2, 0)
    first = await store.list_calls()
    pending.path.write_bytes(lines)  # the same file again (a replay cut short before its rewrite)
    assert await pending.replay(store.save_call_data) == (2, 0)
    assert await store.list_calls() == first
    got = await store.get_call("CA1")
    assert got is not None and got["end_reason"] == "caller_hangup"  # not taken back to the open version
    store.close()


async def test_replay_stops_trying_once_the_database_does_not_answer(tmp_path: Path) -> None:
    pending = PendingRecords(tmp_path / "pending.jsonl")
    for sid in ("CA1", "CA2", "CA3"):
        await pending.add({"call_sid": sid})
    tried: list[str] = []

    async def down(data: dict) -> None:
        tried.append(data["call_sid"])
        raise StoreError("the database did not answer within 3 s")

    assert await pending.replay(down) == (0, 3)
    assert tried == ["CA1"]  # not the whole bound again for each record
    assert sids(pending.path) == ["CA1", "CA2", "CA3"]


async def test_the_rewrite_is_fsynced_before_and_after_the_rename(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pending = PendingRecords(tmp_path / "pending.jsonl")
    await pending.add({"call_sid": "CA1"})
    await pending.add({"call_sid": "CA2"})
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync-dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync-file")
        real_fsync(fd)

    def replace(a: object, b: object) -> None:
        events.append("replace")
        real_replace(a, b)  # type: ignore[arg-type]

    monkeypatch.setattr(pending_mod.os, "fsync", fsync)
    monkeypatch.setattr(pending_mod.os, "replace", replace)

    async def half(data: dict) -> None:
        if data["call_sid"] == "CA2":
            raise ConnectionError("still down")

    assert await pending.replay(half) == (1, 1)
    assert events[-3:] == ["fsync-file", "replace", "fsync-dir"]
    assert sids(pending.path) == ["CA2"]


async def test_a_replay_cut_short_keeps_its_progress_and_the_next_resumes(tmp_path: Path) -> None:
    """A long file (a day of calls kept while the database was down) takes longer than any one
    bound: a pass that is cut short keeps what it stored, batch by batch, and the next pass goes
    on from there instead of starting again at the first record."""
    pending = PendingRecords(tmp_path / "pending.jsonl")
    pending.path.write_bytes(b"".join(orjson.dumps({"call_sid": f"CA{i}"}) + b"\n" for i in range(3000)))
    first: list[str] = []
    with trio.CancelScope() as cut:
        async def until_cut(data: dict) -> None:
            first.append(data["call_sid"])
            if len(first) == 1234:
                cut.cancel()
            await trio.lowlevel.checkpoint()

        await pending.replay(until_cut, batch=500)
    assert cut.cancelled_caught and len(first) == 1234
    second: list[str] = []

    async def healthy(data: dict) -> None:
        second.append(data["call_sid"])

    await pending.add({"call_sid": "CAnew"})  # a call that ended meanwhile
    assert await pending.replay(healthy, batch=500) == (2001, 0)
    assert second[0] == "CA1000"  # resumed after the two batches the cut pass had finished
    assert set(first) | set(second) == {f"CA{i}" for i in range(3000)} | {"CAnew"}
    assert not pending.has_pending() and not pending.done_path.exists()
