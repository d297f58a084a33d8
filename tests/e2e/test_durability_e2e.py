"""Records survive the process: `kill -9` of `llc-phone serve` mid-call, then a restart.

Before, a call's record was written only when the call ended, so SIGKILL, the OOM killer or a
supervisor's kill lost every call in flight. Now the record is written when the stream is
admitted and as each turn ends; at start-up, records a dead process left open are closed as
``server_died`` with what was saved.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from llc.kit.bench.server_proc import free_port
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller
from llc.kit.sim.fake_openai import FakeOpenAI, FakeOpenAIConfig
from llc.store import open_store
from tests.helpers.ops_procs import serve_env, start_serve, stop_pid, wait_healthz

LINES = ["Are you open on Sunday?", "And on Monday?", "Thanks, bye."]
REPLIES = ["Yes, from ten to four.", "Monday we open at nine.", "Goodbye."]


async def saved_agent_lines(db: str, call_sid: str) -> int:
    store = open_store(db)
    try:
        record = await store.get_call(call_sid)
    finally:
        store.close()
    return sum(line["role"] == "agent" for line in (record or {}).get("transcript", []))


async def test_kill_9_mid_call_then_restart_lists_the_call_with_its_turns(nursery: trio.Nursery, tmp_path: Path) -> None:
    fake = FakeOpenAI(FakeOpenAIConfig(ttfb_ms=50, end_of_turn_silence_ms=200, replies=REPLIES, user_transcripts=LINES))
    await nursery.start(fake.serve)
    port, db = free_port(), str(tmp_path / "llc.db")
    env = serve_env(tmp_path, port, fake.url, LLC_DB_URL=db, LLC_PENDING_RECORDS_PATH=str(tmp_path / "pending.jsonl"))
    proc = start_serve(env, tmp_path / "serve.log")
    try:
        await trio.to_thread.run_sync(wait_healthz, port)
        caller = FakeCaller(f"http://127.0.0.1:{port}",
                            CallerScript(turns=[CallerTurn(t) for t in LINES], max_call_s=30, reply_timeout_s=8))
        nursery.start_soon(caller.run)
        with trio.fail_after(15):  # the first turn is in the store while the call goes on
            while await saved_agent_lines(db, caller.call_sid) < 1:
                await trio.sleep(0.1)
        proc.kill()  # SIGKILL: no drain, no finally, nothing written on the way out
        await trio.to_thread.run_sync(proc.wait)
        proc = start_serve(env, tmp_path / "serve.log")
        await trio.to_thread.run_sync(wait_healthz, port)
        with trio.fail_after(30):
            done = await trio.run_process([sys.executable, "-m", "llc.cli", "calls"], env=env, capture_stdout=True,
                                          capture_stderr=True, check=False)
        listed, errors = done.stdout.decode(), done.stderr.decode()
        assert caller.call_sid in listed and "server_died" in listed, listed + errors
        store = open_store(db)
        try:
            record = await store.get_call(caller.call_sid)
        finally:
            store.close()
        assert record is not None and record["end_reason"] == "server_died" and record["ended_at"]
        assert any(line["role"] == "agent" and line["text"] == REPLIES[0] for line in record["transcript"])
    finally:
        stop_pid(proc.pid)
