"""`llc-phone demo --path sip`: a whole call over SIP, no keys, no network.

The simulator plays OpenAI's SIP side (``llc.kit.sim.fake_openai_sip``): it rings the server
with a signed ``realtime.call.incoming`` webhook, takes the accept, and plays the caller on
the sideband (speech events and transcripts, a tool call). The server is the real one: its
webhook check, scenario choice, accept, the call's nursery and its record, with ``path = sip``.
No audio passes through llc on this path, so there is no relay to time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from llc.app import build_server, serve
from llc.config import Settings
from llc.events.signing import new_secret
from llc.kit.sim.fake_openai_sip import FakeOpenAISip, SipScript
from llc.profile import load_profile

SCRIPT = SipScript([("say", "Hi, what time do you open tomorrow? That's all I need."), ("wait", 0.3),
                    ("tool", "end_call", '{"reason": "the caller is done"}')],
                   reply="We open at nine tomorrow morning.", after_tool="Goodbye, have a nice day!")


@dataclass
class SipDemo:
    record: dict[str, Any]
    webhook_to_accept_ms: float  # the webhook sent -> the accept received, on the simulator's clock
    accept: dict[str, Any]  # the session the server accepted the call with


async def run_sip_demo(db_url: str, script: SipScript = SCRIPT) -> SipDemo:
    secret = new_secret()
    fake = FakeOpenAISip(secret)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(fake.serve)
            settings = Settings(port=0, openai_realtime_url=fake.realtime_url, openai_api_url=fake.api_url,
                                openai_webhook_secret=secret, db_url=db_url, local_only=True)  # all on loopback
            server = build_server(settings, load_profile())
            binds = await nursery.start(serve, server)
            call = fake.add_call(script)
            rang = time.monotonic()
            await fake.ring(binds[0] + "/openai/webhook", call)
            while call.accept_body is None:
                await trio.sleep(0.001)
            accepted_ms = (time.monotonic() - rang) * 1000
            await call.closed.wait()
            while (record := await server.store.get_call(call.call_id)) is None or record.get("ended_at") is None:
                await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
    server.store.close()
    return SipDemo(record, round(accepted_ms, 1), call.accept_body)


def render_sip(demo: SipDemo, out: Callable[[str], None] = print) -> bool:
    rec = demo.record
    out(f"llc-phone demo --path sip: call {rec['call_sid']} from {rec['from_number']} to {rec['to_number']}")
    out(f"path: {rec['path']}   scenario: {rec['scenario']}   ended: {rec['end_reason']}")
    turn_detection = demo.accept.get("audio", {}).get("input", {}).get("turn_detection", {})
    out(f"webhook -> accept: {demo.webhook_to_accept_ms:g} ms; accepted with {len(demo.accept.get('tools', []))} tools "
        f"and {turn_detection.get('type')} (eagerness {turn_detection.get('eagerness')})")
    out("")
    out("Transcript (the audio went between the caller and OpenAI, never through llc)")
    for line in rec["transcript"]:
        out(f"  {line['at']:6.2f}s  {line['role']:<6}  {line['text']}")
    out("")
    for t in rec["tool_calls"]:
        out(f"tool call: {t['name']}({t['arguments']}) -> {t['error'] or t['output']}")
    ok = rec["path"] == "sip" and rec["end_reason"] == "agent_hangup" and any(
        line["role"] == "agent" for line in rec["transcript"])
    out("demo OK" if ok else "demo FAILED: the SIP call did not run to the agent's goodbye")
    return ok
