"""PostgreSQL restarted under a running `llc-phone serve` (its own process): both calls' records stored."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from llc.kit.bench.server_proc import free_port
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller
from llc.kit.sim.fake_openai import FakeOpenAI, FakeOpenAIConfig
from llc.store import open_store
from tests.helpers.ops_procs import serve_env, start_serve, stop_pid, wait_healthz
from tests.helpers.pg import control, pg_url_or_skip


async def test_llc_serve_keeps_storing_records_across_a_postgres_restart(
        nursery: trio.Nursery, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = pg_url_or_skip(request)
    ctl = control(url)
    if ctl is None:
        pytest.skip("LLC_TEST_PG_URL is a server of its own: this test restarts the throwaway one")
    fake = FakeOpenAI(FakeOpenAIConfig(ttfb_ms=50, end_of_turn_silence_ms=200, user_transcripts=["Hello?"]))
    await nursery.start(fake.serve)
    port = free_port()
    pending = tmp_path / "pending.jsonl"
    log = tmp_path / "serve.log"
    proc = start_serve(serve_env(tmp_path, port, fake.url, LLC_DB_URL=url, LLC_PENDING_RECORDS=str(pending)), log)
    store = open_store(url)
    try:
        await trio.to_thread.run_sync(wait_healthz, port)
        base = f"http://127.0.0.1:{port}"

        async def call_stored() -> str:
            caller = FakeCaller(base, CallerScript(turns=[CallerTurn("Hello?")], max_call_s=10))
            await caller.run()
            with trio.fail_after(8):
                while await store.get_call(caller.call_sid) is None:
                    await trio.sleep(0.05)
            return caller.call_sid

        await store.open()
        first = await call_stored()
        await trio.to_thread.run_sync(ctl.restart)
        store.close()  # our own view of the database reconnects too
        second = await call_stored()
        assert first != second
        assert not pending.exists() or pending.stat().st_size == 0, "the second record went through the pending file"
        assert b"the connection is closed" not in log.read_bytes()
    finally:
        store.close()
        stop_pid(proc.pid, 10)
