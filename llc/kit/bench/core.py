"""`llc-phone bench core`: the call core's own cost per media frame, in-process (µs per frame).

No sockets and no event loop: one live ``CallCore`` is fed the frames a call carries (Twilio
``media`` frames in, OpenAI audio deltas in, as the engine hands them over: bytes) and the
time per frame is the best of ``--repeat`` rounds of ``--frames`` frames each way, in this
process's CPU time (a shared machine takes the core away often: wall time counts that too), so
a busy machine slows a round, not the figure. Only the core's public entry points are used, so the
same file times an older build too: ``PYTHONPATH=<old tree> python llc/kit/bench/core.py``.
"""

from __future__ import annotations

import argparse
import base64
import os
import time

from llc.core import openai_events as oa
from llc.core.call import CallCore

PAYLOAD = base64.b64encode(os.urandom(160))  # 20 ms of mu-law, as both sides send it
# Twilio's and the service's shapes, as the relay bench's load generator sends them.
TWILIO_MEDIA = (b'{"event":"media","sequenceNumber":"%d","streamSid":"MZbench000001","media":'
                b'{"track":"inbound","chunk":"%d","timestamp":"%d","payload":"%s"}}')
OPENAI_DELTA = (b'{"type":"response.output_audio.delta","event_id":"ev","response_id":"resp",'
                b'"item_id":"item","output_index":0,"content_index":0,"delta":"%s"}')


def _live_core() -> CallCore:
    from llc.core import twilio_frames as tw
    from llc.core.dialect import GA
    from llc.core.session import SessionSpec

    core = CallCore(GA, SessionSpec())
    core.on_twilio(tw.Start("MZbench000001", "CAbench"), 0.0)
    core.on_openai_open()
    core.on_openai(oa.SessionUpdated(), 0.0)
    return core


def time_frames(frames: int, repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` µs per frame: Twilio media in, OpenAI delta in."""
    core = _live_core()
    twilio = [TWILIO_MEDIA % (i + 2, i + 1, i * 20, PAYLOAD) for i in range(frames)]
    delta = OPENAI_DELTA % PAYLOAD
    on_twilio, on_openai = core.on_twilio_text, core.on_openai_text
    best = {"twilio_media_us": float("inf"), "openai_delta_us": float("inf")}
    for _ in range(repeat):
        t0 = time.process_time()
        for text in twilio:
            on_twilio(text, 1.0)
        t1 = time.process_time()
        for _ in range(frames):
            on_openai(delta, 1.0)
        t2 = time.process_time()
        best["twilio_media_us"] = min(best["twilio_media_us"], (t1 - t0) / frames * 1e6)
        best["openai_delta_us"] = min(best["openai_delta_us"], (t2 - t1) / frames * 1e6)
    return best


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, default=20000, help="frames each way per round (default 20000)")
    p.add_argument("--repeat", type=int, default=7, help="rounds; the fastest counts (default 7)")


def run(args: argparse.Namespace) -> int:
    if args.frames < 1 or args.repeat < 1:
        print("llc-phone bench core: --frames and --repeat must be at least 1")
        return 2
    r = time_frames(args.frames, args.repeat)
    print(f"call core, best of {args.repeat} x {args.frames} frames each way (µs per frame):")
    print(f"  Twilio media frame -> input_audio_buffer.append   {r['twilio_media_us']:.2f}")
    print(f"  OpenAI audio delta -> Twilio media (+ marks)      {r['openai_delta_us']:.2f}")
    return 0


if __name__ == "__main__":  # an older build: PYTHONPATH=<tree> python llc/kit/bench/core.py
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_arguments(parser)
    raise SystemExit(run(parser.parse_args()))
