"""An outbound stack on loopback: fake OpenAI, fake Twilio REST, the real server, and a helper to dial."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import trio

from llc.app import Server, build_server, serve
from llc.config import Settings
from llc.kit.sim.fake_openai import FakeOpenAI, FakeOpenAIConfig
from llc.kit.sim.fake_twilio import FakeCall, FakeTwilio, FakeTwilioConfig
from llc.profile import load_profile

API_TOKEN = "test-api-token"
FROM = "+15550009999"


@dataclass
class OutboundStack:
    openai: FakeOpenAI
    twilio: FakeTwilio
    state: Server
    base_url: str

    async def dial(self, to: str = "+15550100002", token: str | None = API_TOKEN, **body: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(self.base_url + "/calls", json={"to": to, **body}, headers=headers)

    async def finished(self, call_sid: str, timeout: float = 15.0) -> FakeCall:
        call = self.twilio.calls[call_sid]
        with trio.fail_after(timeout):
            await call.done.wait()
        return call

    async def warm_ready(self, n: int = 1, timeout: float = 5.0) -> None:
        with trio.fail_after(timeout):
            while self.state.warm.stats["ready"] < n:
                await trio.sleep(0.01)

    async def no_warm_left(self, timeout: float = 3.0) -> None:
        """Every warm entry gone and every fake OpenAI socket closed."""
        with trio.fail_after(timeout):
            while self.state.warm.live or self.openai.open_sessions:
                await trio.sleep(0.01)


async def start_outbound(nursery: trio.Nursery, *, twilio: FakeTwilioConfig | None = None,
                         settings: dict[str, Any] | None = None, server_nursery: trio.Nursery | None = None,
                         **fake_openai: Any) -> OutboundStack:
    fake_openai.setdefault("ttfb_ms", 50)
    fake_openai.setdefault("end_of_turn_silence_ms", 200)
    fake_openai.setdefault("replies", ["Hi, it's Sam."])  # short: each reply plays out in real time
    oai = FakeOpenAI(FakeOpenAIConfig(**fake_openai))
    await nursery.start(oai.serve)
    tw = FakeTwilio(twilio or FakeTwilioConfig())
    await nursery.start(tw.serve)
    opts: dict[str, Any] = {
        "port": 0, "openai_realtime_url": oai.url, "twilio_api_url": tw.url,
        "twilio_account_sid": tw.config.account_sid, "twilio_auth_token": tw.config.auth_token,
        "twilio_from_number": FROM, "api_token": API_TOKEN, "db_url": ":memory:", **(settings or {}),
    }
    state = build_server(Settings(**opts), load_profile())
    binds = await (server_nursery or nursery).start(serve, state)
    return OutboundStack(oai, tw, state, binds[0])
