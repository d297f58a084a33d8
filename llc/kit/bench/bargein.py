"""`llc-phone bench bargein`: how fast the caller's interruption silences the agent.

A real `llc-phone serve` runs as its own process; the fake OpenAI and the fake callers run here,
on one clock. Each call is a chain of barge-ins: the caller lets the agent talk for
``--after-ms``, then talks over it. Per barge-in it reports:

- speech_started → clear: the fake model announces speech; the server turns it into a Twilio
  ``clear`` that reaches the caller (both legs and the core's decision: what llc adds);
- onset → clear: the caller's first speech frame to the clear at the caller (adds the
  simulator's VAD, which needs ``speech_start_frames`` x 20 ms of audio);
- agent audio heard after onset: talked-over ms that still played at the caller;
- truncate accuracy: the truncate's ``audio_end_ms`` minus what the caller had heard of the
  item when the clear reached it, by the caller's playout clock (negative: the model is told
  less was heard than was).

Calls start staggered so the fake's sessions map to calls by order (checked, not assumed).
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio

from llc.kit.bench.server_proc import ENGINES, start_server
from llc.kit.bench.stats import percentile
from llc.kit.sim import fake_openai_shapes as shapes
from llc.kit.sim.audio import BYTES_PER_MS
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, CallResult, FakeCaller
from llc.kit.sim.fake_openai import FakeOpenAI, FakeOpenAIConfig, SessionLog

LONG_REPLY = (
    "Thanks for asking. We are open from nine in the morning until five in the evening on weekdays, "
    "from ten until two on Saturdays, and we are closed on Sundays and public holidays."
)
STAGGER_S = 0.15


class _ClockedCaller(FakeCaller):
    """A fake caller that notes, at each clear, how many ms of the interrupted reply it heard.

    The reply's audio starts at its anchor (the caller's speech end: nothing is buffered then,
    the previous reply was cleared or played out), so heard = played since the anchor.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heard_at_clear_ms: list[float] = []

    def _handle(self, raw: str | bytes) -> list[str]:
        if (b'"event":"clear"' in raw) if isinstance(raw, bytes) else ('"event":"clear"' in raw):
            reply = self._reply
            played = self._playout.played_bytes - (reply.anchor_played if reply is not None else 0)
            self.heard_at_clear_ms.append(played / BYTES_PER_MS)
        return super()._handle(raw)


@dataclass
class BargeInSample:
    server_ms: float | None
    onset_ms: float | None
    heard_after_onset_ms: int


def _samples(result: CallResult, session: SessionLog) -> list[BargeInSample]:
    out = []
    for k, clear_at in enumerate(result.clears):
        started = [t for t in session.speech_started_at if t <= clear_at]
        onset = result.barge_in_starts[k] if k < len(result.barge_in_starts) else None
        heard = result.audio_after_each_barge_in_ms[k] if k < len(result.audio_after_each_barge_in_ms) else 0
        out.append(BargeInSample(
            server_ms=round((clear_at - started[-1]) * 1000, 2) if started else None,
            onset_ms=round((clear_at - onset) * 1000, 2) if onset is not None else None,
            heard_after_onset_ms=heard,
        ))
    return out


async def _loop_lag(samples: list[float], period: float = 0.01) -> None:
    """How late this process's own event loop wakes up: when the load generator is saturated,
    its timestamps are late too, and the tails below measure it rather than the server."""
    while True:
        due = trio.current_time() + period
        await trio.sleep_until(due)
        samples.append((trio.current_time() - due) * 1000)


async def run_bench(calls: int, barge_ins: int, after_ms: int, ttfb_ms: int, engine: str = "fast",
                    source: str | None = None) -> dict[str, object]:
    config = FakeOpenAIConfig(ttfb_ms=ttfb_ms, end_of_turn_silence_ms=300, replies=[LONG_REPLY])
    # The voices synthesised up front (a session's n-th reply uses voice n): one takes ~0.2 s
    # of this process's CPU, and a stall mid-call lets a caller's playout clock catch up in a
    # burst, which reads as a bad truncate.
    for seed in range(min(shapes.VOICES, barge_ins + 1)):
        shapes.speech_chunks(LONG_REPLY, seed, config.chunk_ms)
    fake = FakeOpenAI(config)
    results: list[CallResult | None] = [None] * calls
    callers: list[_ClockedCaller | None] = [None] * calls
    lag: list[float] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_loop_lag, lag)
        await nursery.start(fake.serve)
        # A real `llc-phone serve` process (blocking start: in a thread, so the fake keeps serving).
        server = await trio.to_thread.run_sync(partial(start_server, engine, fake.url, source=source))
        base = server.http_url

        async def one(i: int) -> None:
            turns = [CallerTurn("What are your hours?")] + [CallerTurn("Sorry, one more thing", barge_in_after_ms=after_ms)] * barge_ins
            script = CallerScript(turns=turns, agent_done_silence_ms=500, max_call_s=15 + barge_ins * 6)
            caller = callers[i] = _ClockedCaller(base, script)
            results[i] = await caller.run()

        async with trio.open_nursery() as calls_nursery:
            for i in range(calls):
                calls_nursery.start_soon(one, i)
                await trio.sleep(STAGGER_S)
        await trio.to_thread.run_sync(server.stop)
        nursery.cancel_scope.cancel()

    samples: list[BargeInSample] = []
    mismatched = 0
    accuracy: list[float] = []
    for result, caller, session in zip(results, callers, fake.sessions):
        assert result is not None and caller is not None
        if len(session.speech_started_at) < len(result.clears):
            mismatched += 1  # session order did not follow call order: do not guess
            continue
        samples.extend(_samples(result, session))
        # Every barge-in here cuts a reply heard for --after-ms: a truncate, never a delete.
        if len(session.truncates) == len(caller.heard_at_clear_ms):
            accuracy += [t["audio_end_ms"] - heard for t, heard in zip(session.truncates, caller.heard_at_clear_ms)]
        else:
            mismatched += 1
    server_ms = [s.server_ms for s in samples if s.server_ms is not None]
    onset = [s.onset_ms for s in samples if s.onset_ms is not None]
    heard = [float(s.heard_after_onset_ms) for s in samples]
    return {
        "barge_ins": len(samples),
        "expected": calls * barge_ins,
        "calls_unmatched": mismatched,
        "openai_errors": sum(len(s.errors_sent) for s in fake.sessions),
        "truncates_accepted": sum(len(s.truncates) for s in fake.sessions),
        "deletes_accepted": sum(len(s.deletes) for s in fake.sessions),
        "server_ms": _summary(server_ms),
        "onset_ms": _summary(onset),
        "heard_after_onset_ms": _summary(heard),
        "truncate_minus_heard_ms": _summary(accuracy),
        "truncate_abs_error_ms": _summary([abs(a) for a in accuracy]),
        "loadgen_lag_ms": _summary(lag),
    }


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"p50": round(statistics.median(values), 2), "p99": round(percentile(values, 99), 2), "max": round(max(values), 2)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calls", type=int, default=10, help="concurrent simulated calls (20 saturates one load-generator process on 2 cores)")
    p.add_argument("--barge-ins", type=int, default=20, help="barge-ins per call (total = calls x this)")
    p.add_argument("--after-ms", type=int, default=800, help="agent audio the caller hears before talking over it")
    p.add_argument("--ttfb-ms", type=int, default=300, help="simulated model time to first audio byte")
    p.add_argument("--engine", choices=sorted(ENGINES), default="fast", help="server WebSocket engine setup")
    p.add_argument("--baseline", metavar="TREE", help="run `llc-phone serve` from this source tree instead (an older build)")


def render(r: dict[str, object]) -> str:
    def row(name: str, key: str) -> str:
        s = r[key] or {}
        assert isinstance(s, dict)
        return f"  {name:<38}{s.get('p50', '-'):>9}{s.get('p99', '-'):>9}{s.get('max', '-'):>9}"

    return "\n".join([
        (f"llc-phone bench bargein: {r['barge_ins']} barge-ins measured (of {r['expected']}), "
         f"OpenAI errors {r['openai_errors']}, truncates accepted {r['truncates_accepted']}, deletes {r['deletes_accepted']}"),
        f"  {'':<38}{'p50':>9}{'p99':>9}{'max':>9}",
        row("speech_started -> clear at caller (ms)", "server_ms"),
        row("caller onset -> clear at caller (ms)", "onset_ms"),
        row("agent audio heard after onset (ms)", "heard_after_onset_ms"),
        row("truncate minus heard at clear (ms)", "truncate_minus_heard_ms"),
        row("|truncate - heard at clear| (ms)", "truncate_abs_error_ms"),
        row("load generator's own loop lag (ms)", "loadgen_lag_ms"),
        "  (a loop lag p99 near the tails above means the load generator, not the server, set them)",
    ])


def run(args: argparse.Namespace) -> int:
    result = trio.run(run_bench, args.calls, args.barge_ins, args.after_ms, args.ttfb_ms, args.engine, args.baseline)
    print(render(result))
    ok = result["barge_ins"] and not result["openai_errors"]
    return 0 if ok else 1
