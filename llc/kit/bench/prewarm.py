"""`llc-phone bench prewarm`: answer → first agent audio at the callee, prewarmed vs cold, offline.

Each simulated call goes the whole outbound way: POST /calls → official twilio client → fake
Twilio REST (rings, answers) → fake callee on the media stream saying "Hello?" → fake OpenAI
answers. Prewarm and cold calls run side by side in every batch, so machine load hits both
the same. The fake OpenAI's connect and session-setup delays stand in for the real service.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, field

import httpx
import trio

from llc.app import Server, build_server, serve
from llc.config import Settings
from llc.kit.bench.stats import percentile
from llc.kit.sim.fake_caller import CallerScript, CallerTurn
from llc.kit.sim.fake_openai import FakeOpenAI, FakeOpenAIConfig
from llc.kit.sim.fake_twilio import Behaviour, FakeTwilio, FakeTwilioConfig
from llc.log import setup_logging
from llc.profile import load_profile

TOKEN = "bench-token"
MODES = ("prewarm", "cold")


@dataclass
class Samples:
    first_audio_ms: list[float] = field(default_factory=list)  # answer -> first agent audio at the callee
    paths: list[str] = field(default_factory=list)
    failed: int = 0


async def _one(client: httpx.AsyncClient, base: str, twilio: FakeTwilio, state: Server,
               mode: str, out: Samples) -> None:
    resp = await client.post(base + "/calls", json={"to": "+15550100002", "prewarm": mode == "prewarm"},
                             headers={"Authorization": f"Bearer {TOKEN}"})
    if resp.status_code != 201:
        out.failed += 1
        return
    call = twilio.calls[resp.json()["call_sid"]]
    with trio.move_on_after(30):
        await call.done.wait()
    answered, result = call.at("in-progress"), call.result
    record = state.find_record(call.sid)
    first = result.turns[0].first_audio if result and result.turns else None
    if answered is None or first is None or record is None:
        out.failed += 1
        return
    out.first_audio_ms.append((first - answered) * 1000)
    out.paths.append(record.path)


async def run_bench(args: argparse.Namespace) -> dict[str, Samples]:
    fake = FakeOpenAI(FakeOpenAIConfig(ttfb_ms=args.ttfb_ms, end_of_turn_silence_ms=args.silence_ms,
                                       connect_delay_ms=args.connect_ms, session_updated_delay_ms=args.setup_ms,
                                       replies=["Hi, this is Sam from the clinic."], user_transcripts=["Hello?"]))
    script = lambda: CallerScript(turns=[CallerTurn("Hello?")], max_call_s=20)
    twilio = FakeTwilio(FakeTwilioConfig(ring_ms=100, default=Behaviour(answer_ms=args.answer_ms), script=script))
    samples = {mode: Samples() for mode in MODES}
    with trio.fail_after(args.calls * 20 + 60):
        async with trio.open_nursery() as nursery:
            await nursery.start(fake.serve)
            await nursery.start(twilio.serve)
            settings = Settings(port=0, openai_realtime_url=fake.url, twilio_api_url=twilio.url,
                                twilio_account_sid=twilio.config.account_sid,
                                twilio_auth_token=twilio.config.auth_token, twilio_from_number="+15550009999",
                                api_token=TOKEN, log_level="WARNING", db_url=":memory:")
            state = build_server(settings, load_profile())
            base = (await nursery.start(serve, state))[0]
            async with httpx.AsyncClient(timeout=30) as client:
                done = 0
                while done < args.calls:
                    n = min(args.batch, args.calls - done)
                    async with trio.open_nursery() as batch:
                        for mode in MODES:
                            for _ in range(n):
                                batch.start_soon(_one, client, base, twilio, state, mode, samples[mode])
                    done += n
                    print(f"  {done}/{args.calls} calls per mode", flush=True)
            nursery.cancel_scope.cancel()
    return samples


def render(args: argparse.Namespace, samples: dict[str, Samples]) -> None:
    print()
    print(f"simulated: OpenAI connect {args.connect_ms} ms, session.update->session.updated {args.setup_ms} ms, "
          f"model TTFB {args.ttfb_ms} ms, end-of-turn silence {args.silence_ms} ms; callee answers after "
          f"{args.answer_ms} ms of ringing and says \"Hello?\" ~300 ms later")
    print(f"{'path':<9}{'calls':>6}{'p50 answer->first audio':>26}{'p90':>9}  paths seen")
    for mode in MODES:
        s = samples[mode]
        print(f"{mode:<9}{len(s.first_audio_ms):>6}{percentile(s.first_audio_ms, 50):>23.0f} ms{percentile(s.first_audio_ms, 90):>6.0f} ms"
              f"  {sorted(set(s.paths))} failed={s.failed}")
    warm, cold = samples["prewarm"].first_audio_ms, samples["cold"].first_audio_ms
    if warm and cold:
        print(f"prewarm saves {statistics.median(cold) - statistics.median(warm):.0f} ms at p50 "
              "(answer -> first agent audio at the callee)")


def run(args: argparse.Namespace) -> int:
    setup_logging("text", "WARNING")
    if args.calls < 1 or args.batch < 1:
        print("llc-phone bench prewarm: --calls and --batch must be at least 1")
        return 2
    samples = trio.run(run_bench, args)
    render(args, samples)
    return 0 if all(s.failed == 0 for s in samples.values()) else 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calls", type=int, default=50, help="calls per path (default 50)")
    p.add_argument("--batch", type=int, default=5, help="calls per path placed at once (default 5)")
    p.add_argument("--connect-ms", type=int, default=400, help="simulated WebSocket connect to OpenAI (default 400)")
    p.add_argument("--setup-ms", type=int, default=150, help="simulated session.update -> session.updated (default 150)")
    p.add_argument("--ttfb-ms", type=int, default=500, help="simulated model time to first audio byte (default 500)")
    p.add_argument("--silence-ms", type=int, default=400, help="simulated end-of-turn silence (default 400)")
    p.add_argument("--answer-ms", type=int, default=1500, help="ringing before the callee answers (default 1500)")
