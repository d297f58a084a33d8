"""`llc-phone bench capacity`: how many calls one core holds before frames get late or lost.

Raises the number of concurrent calls step by step through a real ``llc-phone serve`` pinned to one
CPU (the load generator on another), each step measured like `llc-phone bench relay`. It stops at
the first step where p99 added latency passes ``--p99-ms``, a frame is lost or reordered, or
the server's core is full; memory per call is the slope of RSS against calls over the steps.
On a 2-core machine the load generator needs its own core too: when it saturates first, the
report says so instead of blaming the server.
"""

from __future__ import annotations

import argparse

from llc.kit.bench import relay
from llc.kit.bench import server_proc as sp

CORE_FULL = 0.95  # server CPU share of its core beyond which a step counts as saturated


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 when there are fewer than two points)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start", type=int, default=50, help="calls in the first step (default 50)")
    p.add_argument("--step", type=int, default=50, help="calls added per step (default 50)")
    p.add_argument("--max-calls", type=int, default=1000, help="stop here even if nothing failed")
    p.add_argument("--seconds", type=float, default=5.0, help="measured window per step (default 5)")
    p.add_argument("--p99-ms", type=float, default=5.0, help="p99 added latency that ends the climb (default 5)")
    p.add_argument("--engine", choices=list(sp.ENGINES) + [sp.REFERENCE], default="fast",
                   help="engine under test (default: the default, one port; reference: the FastAPI/uvicorn sample shape)")


def run(args: argparse.Namespace) -> int:
    if args.start < 1 or args.step < 1 or args.seconds <= 0:
        print("llc-phone bench capacity: --start and --step must be at least 1, --seconds above 0")
        return 2
    echo, echo_url = sp.start_echo()
    steps: list[relay.RelayResult] = []
    held, reason = 0, f"reached --max-calls {args.max_calls}"
    try:
        calls = args.start
        while calls <= args.max_calls:
            r = relay.measure(args.engine, calls, args.seconds, echo_url=echo_url, warmup_s=1.0)
            steps.append(r)
            core = r.cpu_ms_per_call_s * calls / 1000
            print(f"{calls:5d} calls: added p99 {r.worst_added_p99:7.3f} ms, server core {core * 100:5.1f}%, "
                  f"lost {r.lost}, RSS {r.rss_kib / 1024:.1f} MiB, load generator {r.loadgen_cpu_share * 100:.0f}%",
                  flush=True)
            if not r.ok:
                reason = (f"frames lost or reordered, or errors, at {calls} calls ({r.lost} lost, "
                          f"{r.out_of_order} out of order{'; ' + r.errors[0] if r.errors else ''})")
                break
            if r.worst_added_p99 > args.p99_ms:
                reason = f"p99 added latency {r.worst_added_p99:.2f} ms > {args.p99_ms:g} ms at {calls} calls"
                break
            if core > CORE_FULL:
                reason = f"the server's core was {core * 100:.0f}% busy at {calls} calls"
                break
            held = calls
            if r.loadgen_cpu_share > 0.9:
                reason = (f"the load generator saturated its core at {calls} calls: the server was not the limit "
                          "(a machine with more cores measures further)")
                break
            calls += args.step
    finally:
        echo.kill()
        echo.wait()
    per_call = slope([s.calls for s in steps], [s.rss_kib for s in steps])
    print()
    print(f"engine {args.engine}: held {held} concurrent calls on one core with p99 added < {args.p99_ms:g} ms, "
          f"no frame lost")
    print(f"  stopped: {reason}")
    if steps:
        last_ok = next((s for s in reversed(steps) if s.calls == held), steps[-1])
        print(f"  at {last_ok.calls} calls: {last_ok.cpu_ms_per_call_s:.2f} ms CPU per call-second, "
              f"so one core would hold about {1000 / last_ok.cpu_ms_per_call_s:.0f} calls by CPU alone")
    print(f"  memory per call (RSS slope over {len(steps)} steps): {per_call:.0f} KiB")
    return 0 if held > 0 else 1
