"""`llc-phone bench relay`: what the relay adds per frame and costs per call, through a real server.

Method (docs/performance.md): a real ``llc-phone serve`` runs as its own process; this process runs
N fake Twilio callers and the fake OpenAI it points at (llc/kit/bench/loadgen.py), 20 ms frames
both ways. Every payload carries its send time, so each direction's through-server time is
measured on one clock. The same loop also times a loopback WebSocket echo (its own process)
during the run: a relay that cost nothing would still show the echo's time, so "added" is the
through-server time minus the echo floor. Server CPU comes from /proc/<pid>/stat over the
measured window, RSS from /proc/<pid>/status.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from dataclasses import dataclass, field

from llc.kit.bench import server_proc as sp
from llc.kit.bench.loadgen import LoadGen
from llc.kit.bench.stats import percentile

ECHO_PROBES = 2
BASELINE = "baseline"  # `llc-phone serve` from another source tree (--baseline)
WARMUP_S = 2.0
DRAIN_S = 1.0


@dataclass
class Dist:
    """p50 / p99 / max of a latency sample in ms."""

    p50: float
    p99: float
    max: float
    n: int

    @classmethod
    def of(cls, us: list[float]) -> Dist:
        return cls(percentile(us, 50) / 1000, percentile(us, 99) / 1000, (max(us) if us else float("nan")) / 1000, len(us))

    def minus(self, floor: Dist) -> Dist:
        return Dist(self.p50 - floor.p50, self.p99 - floor.p99, self.max - floor.max, self.n)


@dataclass
class RelayResult:
    engine: str
    calls: int
    seconds: float
    to_openai: Dist
    to_twilio: Dist
    echo: Dist
    cpu_ms_per_call_s: float
    rss_base_kib: int
    rss_kib: int
    lost_to_openai: int
    lost_to_twilio: int
    out_of_order: int
    loadgen_cpu_share: float
    late_ticks: int
    marks_echoed: int = 0
    bargein: Dist | None = None  # speech_started sent by the fake OpenAI -> clear at the caller (--barge-every)
    barges: tuple[int, int] = (0, 0)  # barge-ins sent, clears received
    errors: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.lost_to_openai + self.lost_to_twilio

    @property
    def kib_per_call(self) -> float:
        return (self.rss_kib - self.rss_base_kib) / max(self.calls, 1)

    @property
    def worst_added_p99(self) -> float:
        return max(self.to_openai.minus(self.echo).p99, self.to_twilio.minus(self.echo).p99)

    @property
    def ok(self) -> bool:
        """No frame lost or reordered, and no error of the server under test.

        The reference relay's own faults (it leaks its sockets at hang-up) are reported in the
        output, not held against the run.
        """
        return self.lost == 0 and self.out_of_order == 0 and (not self.errors or self.engine == sp.REFERENCE)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(engine: str, calls: int, seconds: float, *, echo_url: str, pin: bool = True,
            warmup_s: float = WARMUP_S, source: str | None = None, barge_every_s: float = 0.0) -> RelayResult:
    """One run: start a server on ``engine``, hold ``calls`` calls for ``seconds``, tear down."""
    lg = LoadGen(barge_every_s=barge_every_s)
    server = sp.start_server(engine, lg.openai_url, source=source)
    try:
        if pin and (os.cpu_count() or 1) >= 2:
            # Server on CPU 0, load generator on CPU 1: neither steals the other's core.
            sp.pin(server.pid, 0)
            sp.pin(0, 1)
        time.sleep(0.3)
        rss_base = sp.rss_kib(server.pid)
        lg.open_echo(ECHO_PROBES, echo_url)
        lg.open_calls(calls, server.media_url)
        lg.sending = True
        lg.run_for(warmup_s)
        lg.late_ticks = 0
        cpu0, own0, t0 = sp.cpu_seconds(server.pid), _own_cpu(), time.perf_counter()
        lg.start_window()
        lg.run_for(seconds)
        cpu1, own1, t1 = sp.cpu_seconds(server.pid), _own_cpu(), time.perf_counter()
        rss = sp.rss_kib(server.pid)
        lg.sending = False
        lg.run_for(DRAIN_S)
        lost_in, lost_out = lg.lost()
        window = t1 - t0
        result = RelayResult(
            engine=engine, calls=calls, seconds=window,
            to_openai=Dist.of(lg.samples.to_openai), to_twilio=Dist.of(lg.samples.to_twilio),
            echo=Dist.of(lg.samples.echo_rtt),
            cpu_ms_per_call_s=(cpu1 - cpu0) * 1000 / (calls * window),
            rss_base_kib=rss_base, rss_kib=rss, lost_to_openai=lost_in, lost_to_twilio=lost_out,
            out_of_order=lg.out_of_order(), loadgen_cpu_share=(own1 - own0) / window,
            late_ticks=lg.late_ticks, marks_echoed=lg.marks_echoed, errors=list(lg.errors),
            bargein=Dist.of(lg.samples.bargein) if barge_every_s else None, barges=(lg.barges_sent, lg.barges_cleared),
        )
        lg.hang_up_all()
        result.errors = list(lg.errors)
        return result
    finally:
        lg.close()
        server.stop()
        if pin:
            try:
                os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
            except (AttributeError, OSError):
                pass


def render(results: list[RelayResult]) -> str:
    lines = []
    for r in results:
        a_in, a_out = r.to_openai.minus(r.echo), r.to_twilio.minus(r.echo)
        lines += [
            f"engine {r.engine}: {r.calls} calls, {r.seconds:.1f} s measured, 20 ms frames both ways",
            f"  {'':24}{'p50':>9}{'p99':>9}{'max':>9}   (ms)",
            f"  {'Twilio -> OpenAI':24}{r.to_openai.p50:9.3f}{r.to_openai.p99:9.3f}{r.to_openai.max:9.3f}   {r.to_openai.n} frames",
            f"  {'OpenAI -> Twilio':24}{r.to_twilio.p50:9.3f}{r.to_twilio.p99:9.3f}{r.to_twilio.max:9.3f}   {r.to_twilio.n} frames",
            f"  {'loopback echo (floor)':24}{r.echo.p50:9.3f}{r.echo.p99:9.3f}{r.echo.max:9.3f}   {r.echo.n} round trips",
            f"  {'added -> OpenAI':24}{a_in.p50:9.3f}{a_in.p99:9.3f}{'':9}   through-server minus echo",
            f"  {'added -> Twilio':24}{a_out.p50:9.3f}{a_out.p99:9.3f}",
            *([(f"  {'barge-in -> clear':24}{r.bargein.p50:9.3f}{r.bargein.p99:9.3f}{r.bargein.max:9.3f}   "
                 f"{r.barges[1]} of {r.barges[0]} barge-ins cleared (speech_started sent -> clear at the caller)")]
              if r.bargein is not None else []),
            (f"  server CPU {r.cpu_ms_per_call_s:.2f} ms per call-second; RSS {r.rss_kib / 1024:.1f} MiB "
             f"({r.rss_base_kib / 1024:.1f} idle, {r.kib_per_call:.0f} KiB per call)"),
            (f"  frames lost: {r.lost_to_openai} to OpenAI, {r.lost_to_twilio} to Twilio; out of order: {r.out_of_order}; "
             f"marks echoed {r.marks_echoed / max(r.calls * r.seconds, 1e-9):.1f} per call-second"),
            f"  load generator: {r.loadgen_cpu_share * 100:.0f}% of a core, {r.late_ticks} late ticks"
            + ("  (saturated: numbers measure the generator too)" if r.loadgen_cpu_share > 0.9 or r.late_ticks > 50 else ""),
        ]
        if r.engine == sp.REFERENCE and r.errors:
            lines.append("  (the reference's own faults, reported, not failing the run: the sample shape never closes "
                         "the OpenAI socket when Twilio hangs up)")
        lines += [f"  ERROR {e}" for e in r.errors[:10]]
        lines.append("")
    if len(results) > 1:
        base = next((r for r in results if r.engine == sp.REFERENCE), results[-1])
        lines.append("ratios in this run (CPU per call-second, p50 -> OpenAI, p50 -> Twilio), vs " + base.engine)
        for r in results:
            lines.append(f"  {r.engine:12} CPU x{r.cpu_ms_per_call_s / base.cpu_ms_per_call_s:.2f}   "
                         f"p50 x{r.to_openai.p50 / base.to_openai.p50:.2f} / x{r.to_twilio.p50 / base.to_twilio.p50:.2f}")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calls", type=int, default=100, help="concurrent simulated calls (default 100)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured window per engine (default 10)")
    p.add_argument("--engine", action="append", choices=list(sp.ENGINES) + [sp.REFERENCE],
                   help="engine(s) to measure, repeatable (default: all, and the FastAPI/uvicorn reference "
                        "relay when the `compare` extra is installed, for ratios in one run)")
    p.add_argument("--repeat", type=int, default=1,
                   help="runs per engine, alternated; the median run (by CPU) is shown (default 1)")
    p.add_argument("--baseline", metavar="TREE",
                   help="also run `llc-phone serve` from this source tree (e.g. `git worktree add /tmp/base main`) as "
                        "engine 'baseline', alternated with the others: before and after in one run")
    p.add_argument("--no-pin", action="store_true", help="do not pin server and load generator to separate CPUs")
    p.add_argument("--barge-every", type=float, default=0.0, metavar="SECONDS",
                   help="each call's fake OpenAI reports the caller talking over the agent this often; the "
                        "time to the clear at the caller is shown (default 0: none; the reference relay ignores them)")


def median_run(runs: list[RelayResult]) -> RelayResult:
    return sorted(runs, key=lambda r: r.cpu_ms_per_call_s)[(len(runs) - 1) // 2]


def run(args: argparse.Namespace) -> int:
    if args.calls < 1 or args.seconds <= 0 or args.repeat < 1:
        print("llc-phone bench relay: --calls and --repeat must be at least 1 and --seconds above 0")
        return 2
    engines = args.engine or list(sp.ENGINES) + ([sp.REFERENCE] if sp.reference_available() else [])
    if sp.REFERENCE in engines and not sp.reference_available():
        print("llc-phone bench relay: the reference relay needs FastAPI and uvicorn[standard]: pip install -e '.[compare]'")
        return 2
    if args.baseline:
        if not os.path.isfile(os.path.join(args.baseline, "llc", "cli.py")):
            print(f"llc-phone bench relay: --baseline {args.baseline} is not a source tree of llc (no llc/cli.py in it)")
            return 2
        engines = [BASELINE] + engines
    echo, echo_url = sp.start_echo()
    runs: dict[str, list[RelayResult]] = {e: [] for e in engines}
    try:
        # Engines alternate run by run, so a slow minute of a shared machine hits all of them.
        for i in range(args.repeat):
            for engine in engines:
                print(f"measuring {engine}: {args.calls} calls (run {i + 1} of {args.repeat}) ...", flush=True)
                r = measure(engine, args.calls, args.seconds, echo_url=echo_url, pin=not args.no_pin,
                            source=args.baseline if engine == BASELINE else None, barge_every_s=args.barge_every)
                print(f"  {r.cpu_ms_per_call_s:.2f} ms CPU per call-second", flush=True)
                runs[engine].append(r)
    finally:
        echo.kill()
        echo.wait()
    results = [median_run(rs) for rs in runs.values()]
    print()
    print(render(results))
    if args.repeat > 1:
        for engine, rs in runs.items():
            cpu = ", ".join(f"{r.cpu_ms_per_call_s:.2f}" for r in rs)
            print(f"  {engine:12} CPU per call-second over {len(rs)} runs: {cpu}")
    return 0 if all(r.ok for e, rs in runs.items() if e != sp.REFERENCE for r in rs) else 1
