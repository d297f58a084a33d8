"""Call events end to end: a call through the server stack, then a real `llc-phone serve` killed
with SIGKILL while its receiver is down; every event arrives, verified, none lost."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from llc.events.signing import new_secret
from llc.kit.bench.server_proc import free_port
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller
from llc.kit.sim.fake_openai import FakeOpenAI, FakeOpenAIConfig
from llc.store import open_store
from tests.helpers.ops_procs import serve_env, start_serve, stop_pid, wait_healthz
from tests.helpers.pg import pg_url_or_skip
from tests.helpers.receiver import Receiver
from tests.helpers.stack import StackFactory

SECRET = new_secret()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(SECRET)
    r.start()
    yield r
    r.stop()


async def test_a_call_sends_started_and_ended_signed_with_its_record(start_stack: StackFactory,
                                                                      receiver: Receiver) -> None:
    stack = await start_stack(settings={"events_url": receiver.url, "webhook_secret": SECRET},
                              user_transcripts=["Hello?"])
    caller = FakeCaller(stack.base_url, CallerScript(turns=[CallerTurn("Hello?")], max_call_s=10))
    await caller.run()
    stored = await stack.wait_stored(caller.call_sid)
    with trio.fail_after(10):
        while len(receiver.by_id()) < 2:
            await trio.sleep(0.05)
    by_type = {p["type"]: p for p in receiver.by_id().values()}
    assert sorted(by_type) == ["call.ended", "call.started"] and receiver.bad_signatures == 0
    assert by_type["call.ended"]["data"] == stored  # the whole record, as `calls show --json` gives it
    assert by_type["call.started"]["data"]["call_sid"] == caller.call_sid
    assert by_type["call.started"]["data"]["ended_at"] is None
    async with httpx.AsyncClient(timeout=5) as client:
        metrics = (await client.get(f"{stack.admin_url}/metrics")).text
    assert 'llc_events_total{result="delivered"}' in metrics and "llc_events_oldest_pending_seconds" in metrics


async def one_call(base: str, results: list[str]) -> None:
    caller = FakeCaller(base, CallerScript(turns=[CallerTurn("Hello?")], max_call_s=10))
    try:
        await caller.run()
    finally:
        results.append(caller.call_sid)


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_receiver_down_and_serve_killed_every_event_arrives_once(
        nursery: trio.Nursery, tmp_path: Path, receiver: Receiver, db: str, request: pytest.FixtureRequest) -> None:
    """N calls; the receiver goes away for ~10 s, and while events wait `llc-phone serve` gets SIGKILL
    (one call in flight). After the restart all events arrive: delivered == generated, 0 duplicates."""
    fake = FakeOpenAI(FakeOpenAIConfig(ttfb_ms=50, end_of_turn_silence_ms=200, user_transcripts=["Hello?"]))
    await nursery.start(fake.serve)
    port = free_port()
    db = str(tmp_path / "llc.db") if db == "sqlite" else pg_url_or_skip(request)
    env = serve_env(tmp_path, port, fake.url, LLC_DB_URL=db, LLC_PENDING_RECORDS_PATH=str(tmp_path / "pending.jsonl"),
                    LLC_EVENTS_URL=receiver.url, LLC_WEBHOOK_SECRET=SECRET)
    log = tmp_path / "serve.log"
    proc = start_serve(env, log)
    base = f"http://127.0.0.1:{port}"
    sids: list[str] = []
    try:
        await trio.to_thread.run_sync(wait_healthz, port)
        async with trio.open_nursery() as calls:
            for _ in range(4):
                calls.start_soon(one_call, base, sids)
        with trio.fail_after(15):
            while len(receiver.by_id()) < 8:
                await trio.sleep(0.05)
        down_at = time.monotonic()
        receiver.stop()
        async with trio.open_nursery() as calls:
            for _ in range(4):
                calls.start_soon(one_call, base, sids)
        # One more call, killed with the server in the middle of it: its end comes from the restart.
        in_flight = FakeCaller(base, CallerScript(turns=[CallerTurn("Hello?"), CallerTurn("Still there?")],
                                                  max_call_s=20, reply_timeout_s=8))
        nursery.start_soon(in_flight.run)
        store = open_store(db)
        await store.open()
        with trio.fail_after(15):
            while await store.get_call(in_flight.call_sid or "-") is None:
                await trio.sleep(0.1)
        proc.kill()  # events of 5 calls wait in the database
        await trio.to_thread.run_sync(proc.wait)
        pending = await store.run(lambda b: b.query("SELECT COUNT(*) AS n FROM events WHERE status = 'pending'"))
        assert pending[0]["n"] >= 9, pending
        proc = start_serve(env, log)
        await trio.to_thread.run_sync(wait_healthz, port)
        await trio.sleep(max(0.0, 10 - (time.monotonic() - down_at)))
        receiver.start()
        with trio.fail_after(60):
            while len(receiver.by_id()) < 2 * 9:
                await trio.sleep(0.1)
        await trio.sleep(1)  # anything sent twice would show by now
        generated = (await store.run(lambda b: b.query("SELECT COUNT(*) AS n FROM events")))[0]["n"]
        store.close()
        delivered = len(receiver.by_id())
        print(f"\nevents: generated {generated}, delivered {delivered} (unique by webhook-id), "
              f"deliveries {len(receiver.deliveries)}, duplicates after dedupe 0, raw repeats {receiver.duplicates()}, "
              f"attempts {receiver.attempts}, bad signatures {receiver.bad_signatures}")
        assert generated == delivered == 18 and receiver.bad_signatures == 0
        expected = sorted((sid, t) for sid in [*sids, in_flight.call_sid] for t in ("call.ended", "call.started"))
        assert receiver.events() == expected  # each call's two events, nothing else
        ends = {p["data"]["call_sid"]: p["data"]["end_reason"] for p in receiver.by_id().values() if p["type"] == "call.ended"}
        assert ends[in_flight.call_sid] == "server_died"
    finally:
        stop_pid(proc.pid, 10)


async def test_a_scenarios_own_events_url_gets_its_calls_events(start_stack: StackFactory, receiver: Receiver,
                                                                 tmp_path: Path) -> None:
    other = Receiver(SECRET)
    other.start()
    try:
        scenarios = tmp_path / "scenarios.toml"
        scenarios.write_text(f'[scenario.default]\nevents_url = "{other.url}"\n', encoding="utf-8")
        stack = await start_stack(settings={"events_url": receiver.url, "webhook_secret": SECRET,
                                            "scenarios_path": str(scenarios)}, user_transcripts=["Hello?"])
        caller = FakeCaller(stack.base_url, CallerScript(turns=[CallerTurn("Hello?")], max_call_s=10))
        await caller.run()
        with trio.fail_after(10):
            while len(other.by_id()) < 2:
                await trio.sleep(0.05)
        assert other.events() == [(caller.call_sid, "call.ended"), (caller.call_sid, "call.started")]
        assert receiver.attempts == 0
    finally:
        other.stop()


def test_a_scenario_events_url_is_refused_without_the_secret_or_in_the_clear(tmp_path: Path) -> None:
    from llc.app.assembly import build_server
    from llc.config import Settings
    from llc.profile import ProfileError, load_profile

    scenarios = tmp_path / "scenarios.toml"
    for url, settings, expected in (
            ("https://hooks.example.com/a", {}, "events_url is set but LLC_WEBHOOK_SECRET is not"),
            ("http://hooks.example.com/a", {"webhook_secret": SECRET}, "is not https"),
            ("hooks.example.com/a", {"webhook_secret": SECRET}, "is not an http(s) URL: it has no scheme")):
        scenarios.write_text(f'[scenario.default]\nevents_url = "{url}"\n', encoding="utf-8")
        with pytest.raises(ProfileError, match=r"\[scenario.default\].*" + re.escape(expected)):
            build_server(Settings(scenarios_path=str(scenarios), **settings), load_profile())
    scenarios.write_text('[scenario.default]\nevents_url = "http://hooks.lan/a"\n', encoding="utf-8")
    build_server(Settings(scenarios_path=str(scenarios), webhook_secret=SECRET, local_only=True), load_profile())
