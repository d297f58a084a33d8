"""`llc-phone soak`: calls start and end continuously through a real server; resources must stay flat.

A real ``llc-phone serve`` runs as its own process against the full simulator (fake OpenAI with its
VAD and scripted replies, fake Twilio callers with real-time playout, some of which talk over
the agent). ``--calls`` calls are kept in flight: each has 1-3 turns of random length, and a
new one starts as one ends. The agent's second response in every call is a tool call
(``transfer_call`` to a number off the allow-list: the tool runs as a task in the call's
nursery, returns an error output, and the agent speaks after it). Every ``--sample-s`` the server's open FDs, sockets, RSS, Trio task
count and active calls are written to a CSV (and a PNG if matplotlib is installed).

It fails when, after the last call ended, FDs, sockets or tasks are above what they were
after the warm-up calls (also idle), when RSS grew more than 5 % from the first loaded sample
after the warm-up (the first fifth of the samples, see ``rss_baseline``) to the last, when any call did not end by the caller hanging up with agent audio
heard, when the server's call count does not match the calls made, when a call's record is
missing from the store or has no transcript, when no tool call was recorded, or when the
simulator sent any error event. ``--faults`` mixes network stalls into it
(``llc.kit.soak_faults``): each must reach its designed outcome within its bound, and after
the run no call may be left active (a zombie) and no record lost.
"""

from __future__ import annotations

import csv
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

from llc.core.record import KEPT_ENTRIES
from llc.kit.bench import server_proc as sp
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller, FakeCallerError
from llc.kit.sim.fake_openai import FakeOpenAI, FakeOpenAIConfig, ToolCallScript
from llc.kit.sim.stall_proxy import StallProxy
from llc.kit.sim.wall_clock import SteppedClock, find_libfaketime
from llc.kit.soak_faults import FLOOD_KEYS, Faulted, FaultReport, inject_faults
from llc.store import open_store

LINES = ["Hello?", "What time do you open?", "Can I book a table for two?", "Thanks, bye."]
IDLE_SAMPLES = 13  # half a second apart: a window longer than Hypercorn's 5 s keep-alive timeout
FIELDS = ["t_s", "active_calls", "calls_done", "fds", "sockets", "tasks", "rss_kib"]
WARMUP_CALLS = 3
# Not on the default profile's transfer allow-list: the tool answers with an error output.
TOOL_CALL = ToolCallScript("transfer_call", {"number": "+15550100999"},
                           reply_after="I can't transfer you there, but I can take a message.")


@dataclass
class SoakReport:
    samples: list[dict[str, float]] = field(default_factory=list)
    calls_done: int = 0
    failures: list[str] = field(default_factory=list)
    call_sids: list[str] = field(default_factory=list)
    records_checked: int = 0
    tool_calls: int = 0
    rss_note: str = ""
    idle_before: dict[str, float] = field(default_factory=dict)
    idle_after: dict[str, float] = field(default_factory=dict)
    idle_task_names: tuple[dict[str, int], dict[str, int]] = ({}, {})  # before, after: names a leak grew
    faults: FaultReport | None = None  # with --faults
    zombies: int = 0  # calls still active after every caller had hung up
    cancels_crossed: int = 0  # a barge-in's cancel crossed its response's done: the service's no is expected
    in_flight: int = 0  # calls the soak has open now


def _script(rng: random.Random, max_turns: int = 3) -> CallerScript:
    turns = []
    for _ in range(rng.randint(1, max_turns)):
        barge = rng.random() < 0.25  # a quarter of turns talk over the agent
        # Whole 100 ms steps: a caller's audio then comes from the synthesis cache, instead of
        # ~30 ms of synthesis on the soak's own loop (which every other call would wait for).
        turns.append(CallerTurn(rng.choice(LINES), speech_ms=rng.randint(4, 15) * 100,
                                barge_in_after_ms=rng.randint(200, 600) if barge else None))
    return CallerScript(turns=turns, max_call_s=40)


async def _sample(client: httpx.AsyncClient, server: sp.ServerProcess, t0: float, done: int) -> dict[str, float]:
    # FDs and sockets first: counted after the probes below, they would catch the probes' own
    # connections, which the server closes a moment after its answer.
    fds, sockets = sp.open_fds(server.pid), sp.sockets_of(server.pid)
    health = (await client.get(server.http_url + "/healthz")).json()
    tasks = (await client.get(server.admin_url + "/debug/tasks")).json()["tasks"]
    return {"t_s": round(time.monotonic() - t0, 1), "active_calls": health["active_calls"], "calls_done": done,
            "fds": fds, "sockets": sockets, "tasks": tasks, "rss_kib": sp.rss_kib(server.pid)}


async def soak(calls: int, seconds: float, sample_s: float, csv_path: Path, *, seed: int = 1,
               rss_growth: float = 0.05, faults_every_s: float = 0.0) -> SoakReport:
    """``faults_every_s`` > 0: one network fault that often (see ``llc.kit.soak_faults``)."""
    report = SoakReport()
    rng = random.Random(seed)
    fake = FakeOpenAI(FakeOpenAIConfig(ttfb_ms=150, end_of_turn_silence_ms=300, tool_calls={1: TOOL_CALL}))
    scratch = Path(tempfile.mkdtemp(prefix="llc-soak-"))
    db, env, clock = scratch / "soak.db", {"LLC_DB_URL": str(scratch / "soak.db")}, None
    library = find_libfaketime()
    if faults_every_s > 0 and library is not None:  # the server's wall clock can be stepped
        clock = SteppedClock(scratch, library)
        env.update(clock.env())
    async with trio.open_nursery() as nursery:
        fake_port = await nursery.start(fake.serve)
        openai_url, proxy = fake.url, None
        if faults_every_s > 0:  # the server reaches the fake through a relay that can freeze
            proxy = StallProxy("127.0.0.1", fake_port)
            openai_url = fake.url.replace(f":{fake_port}", f":{await nursery.start(proxy.serve)}")
            report.faults = FaultReport()
        server = sp.start_server("fast", openai_url, extra_env=env)
        try:
            # Every probe says Connection: close: an idle keep-alive connection of the soak's own
            # (which the server drops after its keep-alive timeout, whenever that falls) would
            # otherwise count as one of the server's tasks in the idle comparison.
            async with httpx.AsyncClient(timeout=5, headers={"Connection": "close"}) as client, \
                    trio.open_nursery() as run:
                if proxy is not None and report.faults is not None:
                    target = Faulted(server.http_url, proxy, clock, lambda: report.in_flight)
                    run.start_soon(inject_faults, report.faults, target, faults_every_s, trio.current_time() + seconds)
                await _run(report, nursery, server, client, rng, calls, seconds, sample_s, csv_path)
        finally:
            server.stop()
            nursery.cancel_scope.cancel()
    await _check_records(report, str(db))
    if report.faults is not None:
        await _check_fault_records(report, report.faults, str(db))
    errors = expected_errors_removed([e for s in fake.sessions for e in s.errors_sent], report.cancels_crossed)
    if errors:
        report.failures.append(f"the simulator sent {len(errors)} error events, e.g. {errors[0]}")
    _check(report, rss_growth)
    return report


async def _run(report: SoakReport, nursery: trio.Nursery, server: sp.ServerProcess, client: httpx.AsyncClient,
               rng: random.Random, calls: int, seconds: float, sample_s: float, csv_path: Path) -> None:
    async def one_call() -> None:
        report.in_flight += 1
        try:
            result = await FakeCaller(server.http_url, _script(rng)).run()
        except (FakeCallerError, httpx.HTTPError, OSError) as exc:  # e.g. answered busy: a failure, not a crash
            report.calls_done += 1
            report.failures.append(f"a call could not be made: {exc}"[:300])
            return
        finally:
            report.in_flight -= 1
        report.calls_done += 1
        report.call_sids.append(result.call_sid)
        if result.ended_by != "caller_hangup" or not result.received_audio:
            report.failures.append(f"call {result.call_sid} ended by {result.ended_by} with "
                                   f"{len(result.received_audio)} bytes of agent audio; events {result.events[:3]}")

    async with trio.open_nursery() as warm:  # warm-up: imports, caches, first-call allocations
        for _ in range(WARMUP_CALLS):
            warm.start_soon(one_call)
    t0 = time.monotonic()
    report.idle_before = await _idle(client, server, t0, report.calls_done)
    names_before = await _task_names(client, server)
    started = report.calls_done
    limiter = trio.Semaphore(calls)
    end = t0 + seconds

    async def keep_calling() -> None:
        nonlocal started
        async with trio.open_nursery() as calls_nursery:
            while time.monotonic() < end:
                await limiter.acquire()
                started += 1

                async def call_and_release() -> None:
                    try:
                        await one_call()
                    finally:
                        limiter.release()

                calls_nursery.start_soon(call_and_release)
                await trio.sleep(rng.uniform(0.05, 0.3))  # arrivals spread out, not a thundering herd

    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        async with trio.open_nursery() as run:
            run.start_soon(keep_calling)
            while time.monotonic() < end:
                await trio.sleep(min(sample_s, max(0.0, end - time.monotonic())))
                try:
                    row = await _sample(client, server, t0, report.calls_done)
                except httpx.HTTPError as exc:  # a stalled server is a finding, not a crash of the soak
                    report.failures.append(f"the server did not answer its health/task endpoints: {exc!r}")
                    continue
                report.samples.append(row)
                writer.writerow(row)
                f.flush()
                print(f"  {row['t_s']:7.1f}s  calls {row['active_calls']:3} active {row['calls_done']:5} done  "
                      f"fds {row['fds']}  sockets {row['sockets']}  tasks {row['tasks']}  RSS {row['rss_kib'] / 1024:.1f} MiB",
                      flush=True)
        with trio.move_on_after(10):
            while (await client.get(server.http_url + "/healthz")).json()["active_calls"]:
                await trio.sleep(0.1)
        report.zombies = (await client.get(server.http_url + "/healthz")).json()["active_calls"]
        if report.zombies:
            report.failures.append(f"{report.zombies} calls still active 10 s after every caller hung up (zombies)")
        report.idle_after = await _idle(client, server, t0, report.calls_done)
        report.idle_task_names = (names_before, await _task_names(client, server))
        writer.writerow(report.idle_after)
    health = (await client.get(server.http_url + "/healthz")).json()
    if report.faults is not None:  # fault streams are media streams too
        started += sum(report.faults.injected[k] for k in ("twilio_silent", "no_start", "key_flood"))
    if health["calls_total"] != started:
        report.failures.append(f"the server counted {health['calls_total']} media streams, the soak opened {started}")


async def _idle(client: httpx.AsyncClient, server: sp.ServerProcess, t0: float, done: int) -> dict[str, float]:
    """The idle state: the least FDs, sockets and tasks seen over a window longer than Hypercorn's
    keep-alive timeout, sampled every half second.

    Why the least and not one sample: after a client closes an HTTP connection, Hypercorn keeps
    its socket and handler task until its keep-alive timer (5 s by default) fires, and a call's
    last sockets close a moment after its caller hangs up. Any one sample, or any few seconds of
    samples, can count such a passer-by, and the before/after comparison would read it as a
    leak. A leak is there in every sample, so it survives the minimum over the window; a
    connection Hypercorn is about to drop does not.
    """
    samples = []
    for _ in range(IDLE_SAMPLES):
        await trio.sleep(0.5)
        samples.append(await _sample(client, server, t0, done))
    idle = dict(samples[-1])
    for key in ("fds", "sockets", "tasks"):
        idle[key] = min(sample[key] for sample in samples)
    return idle


def expected_errors_removed(errors: list[dict[str, Any]], cancels_crossed: int) -> list[dict[str, Any]]:
    """The simulator's error events less those the server recorded as a cancel that crossed its
    response's done (as many response_cancel_not_active as it counted): those are the race's
    expected answer, the real service gives the same. Any beyond that count is still a finding."""
    kept, excused = [], cancels_crossed
    for error in errors:
        if error.get("code") == "response_cancel_not_active" and excused > 0:
            excused -= 1
            continue
        kept.append(error)
    return kept


async def _task_names(client: httpx.AsyncClient, server: sp.ServerProcess) -> dict[str, int]:
    names: dict[str, int] = (await client.get(server.admin_url + "/debug/tasks")).json()["names"]
    return names


async def _stored(db_url: str, sids: list[str]) -> dict[str, dict[str, Any] | None]:
    """The stored record of each call (None when it has none), read once."""
    store = open_store(db_url)
    try:
        await store.open()
        return {sid: await store.get_call(sid) for sid in sids}
    finally:
        store.close()


async def _check_records(report: SoakReport, db_url: str) -> None:
    """Every call made has its final record in the store (ended as the caller hung up), with a
    transcript; tool calls were recorded."""
    for sid, record in (await _stored(db_url, report.call_sids)).items():
        if record is None:
            report.failures.append(f"call {sid} has no record in the store")
        elif record.get("end_reason") != "caller_hangup":  # an open record, or closed by the crash sweep
            report.failures.append(f"call {sid}'s final record is missing: it says {record.get('end_reason')!r}")
        elif not record.get("transcript"):
            report.failures.append(f"call {sid}'s record has no transcript")
        else:
            report.records_checked += 1
            report.tool_calls += len(record.get("tool_calls") or [])
            report.cancels_crossed += int(record.get("cancels_crossed") or 0)
    if report.call_sids and report.tool_calls == 0:
        report.failures.append("no tool call was recorded: the soak did not exercise the tool loop")


async def _check_fault_records(report: SoakReport, faults: FaultReport, db_url: str) -> None:
    """Faulted calls are recorded with their designed outcome; stalled OpenAI legs were replaced."""
    for sid, record in (await _stored(db_url, faults.silent_call_sids)).items():
        if record is None:
            report.failures.append(f"fault twilio_silent: call {sid} has no record")
        elif record.get("end_reason") != "twilio_silent":
            report.failures.append(f"fault twilio_silent: call {sid} ended {record.get('end_reason')!r}")
    for sid, record in (await _stored(db_url, faults.flood_call_sids)).items():
        if record is None or record.get("dtmf_total") != FLOOD_KEYS or len(record.get("dtmf", [])) > KEPT_ENTRIES:
            report.failures.append(f"fault key_flood: call {sid} recorded {record and record.get('dtmf_total')} of "
                                   f"{FLOOD_KEYS} keys, {record and len(record.get('dtmf', []))} kept")
    reconnected = sum(bool(r and r.get("reconnects")) for r in (await _stored(db_url, report.call_sids)).values())
    # A frozen leg whose caller hung up before the pong deadline needs no reconnect; the callers'
    # own checks (every turn answered, hung up normally, record stored) catch a call left stuck.
    faults.reconnected = reconnected
    if faults.injected["openai_stall"] >= 3 and reconnected == 0:
        report.failures.append(f"fault openai_stall: {faults.injected['openai_stall']} OpenAI legs frozen, no call reconnected")
    report.failures.extend(faults.failures)


def rss_baseline(loaded: list[dict[str, float]]) -> dict[str, float]:
    """The loaded sample RSS growth is measured from: the first one after the warm-up.

    Why not the very first: the server's bounded windows fill during the first minutes of
    load (the last 200 call records kept in memory, SQLite's page cache, allocator arenas),
    which is growth that stops. Warm-up = the first fifth of the loaded samples, at least one.
    """
    return loaded[max(1, len(loaded) // 5)] if len(loaded) >= 3 else loaded[0]


def _grown_names(before: dict[str, int], after: dict[str, int]) -> str:
    grown = {name: n - before.get(name, 0) for name, n in after.items() if n > before.get(name, 0)}
    return f" (grew: {grown})" if grown else ""


def _check(report: SoakReport, rss_growth: float) -> None:
    before, after = report.idle_before, report.idle_after
    for key in ("fds", "sockets", "tasks"):
        if before and after and after[key] > before[key]:
            report.failures.append(f"{key} grew while idle: {before[key]} before the soak, {after[key]} after"
                                   + (_grown_names(*report.idle_task_names) if key == "tasks" else ""))
    loaded = [s for s in report.samples if s["active_calls"] > 0]
    if len(loaded) >= 2:
        base, last = rss_baseline(loaded), loaded[-1]
        report.rss_note = (f"RSS {loaded[0]['rss_kib'] / 1024:.1f} MiB at {loaded[0]['t_s']:g} s (first loaded sample), "
                           f"{base['rss_kib'] / 1024:.1f} MiB at {base['t_s']:g} s (after warm-up), "
                           f"{last['rss_kib'] / 1024:.1f} MiB at {last['t_s']:g} s: "
                           f"{last['rss_kib'] / base['rss_kib'] * 100 - 100:+.1f}% after warm-up")
        if last["rss_kib"] > base["rss_kib"] * (1 + rss_growth):
            report.failures.append(f"RSS grew {last['rss_kib'] / base['rss_kib'] * 100 - 100:.1f}% after warm-up "
                                   f"(tolerance {rss_growth * 100:g}%)")


def plot(csv_path: Path) -> Path | None:
    """A PNG of the series next to the CSV, if matplotlib is installed (pip install 'llc-phone[plot]')."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = list(csv.DictReader(csv_path.open()))
    t = [float(r["t_s"]) for r in rows]
    fig, axes = plt.subplots(5, 1, sharex=True, figsize=(8, 10))
    for ax, key in zip(axes, ["active_calls", "fds", "sockets", "tasks", "rss_kib"]):
        ax.plot(t, [float(r[key]) for r in rows])
        ax.set_ylabel(key)
    axes[-1].set_xlabel("seconds")
    png = csv_path.with_suffix(".png")
    fig.savefig(png)
    plt.close(fig)
    return png
