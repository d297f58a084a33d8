"""A fake OpenAI and a real llc server on loopback ports, in one Trio run (the ``start_stack`` fixture)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio

from llc.app import Server, build_server, serve
from llc.config import Settings
from llc.kit.sim.fake_openai import FakeOpenAI, FakeOpenAIConfig
from llc.kit.sim.stall_proxy import StallProxy
from llc.profile import Profile, load_profile
from llc.tools.registry import ToolRegistry


@dataclass
class Stack:
    fake: FakeOpenAI
    state: Server
    base_url: str
    openai_proxy: StallProxy | None = None  # between llc and the fake OpenAI, when asked for

    @property
    def media_url(self) -> str:
        """Where Twilio's media socket goes: PORT's /media (the one-port front door)."""
        return self.base_url.replace("http", "ws", 1) + "/media"

    @property
    def admin_url(self) -> str:
        """The admin listener (/metrics, /debug): its own port, never PORT."""
        assert self.state.admin_url is not None
        return self.state.admin_url

    def stream_token(self, call_sid: str = "CAraw") -> str:
        """The ticket /twiml would have issued for ``call_sid`` (raw-socket tests)."""
        return self.state.tickets.issue(trio.current_time(), call_sid)

    def warm_named(self, ticket: str) -> bool:
        """Whether a ticket the server issued names a warm session (pre-accept / prewarm)."""
        return self.state.tickets.warm_of(ticket) is not None

    async def wait_records(self, n: int, timeout: float = 5.0) -> None:
        with trio.fail_after(timeout):
            while len(self.state.records) < n:
                await trio.sleep(0.01)

    async def wait_stored(self, call_sid: str, timeout: float = 5.0) -> dict[str, Any]:
        """Until the call's final record is in the store (it is written just after it is in memory)."""
        with trio.fail_after(timeout):
            while True:
                row = await self.state.store.get_call(call_sid)
                if row is not None and row.get("ended_at") is not None:
                    return row
                await trio.sleep(0.01)


StackFactory = Callable[..., Awaitable[Stack]]


def stack_factory(nursery: trio.Nursery, tmp_path: Path) -> StackFactory:
    """Start the fake OpenAI plus the server; keyword args go to FakeOpenAIConfig / Settings."""

    async def start(
        shape: str = "ga", settings: dict | None = None, profile: Profile | None = None,
        tools: ToolRegistry | None = None, openai_proxy: bool = False, **fake_config: object,
    ) -> Stack:
        fake_config.setdefault("ttfb_ms", 50)
        fake_config.setdefault("end_of_turn_silence_ms", 200)
        fake = FakeOpenAI(FakeOpenAIConfig(shape=shape, **fake_config))  # type: ignore[arg-type]
        await nursery.start(fake.serve)
        proxy, openai_url = None, fake.url
        if openai_proxy:  # a relay that can freeze the OpenAI leg (a network stall)
            fake_port = urlsplit(fake.url).port
            assert fake_port is not None
            proxy = StallProxy("127.0.0.1", fake_port)
            openai_url = fake.url.replace(f":{fake_port}", f":{await nursery.start(proxy.serve)}")
        opts: dict = {"port": 0, "openai_realtime_url": openai_url, "openai_api_shape": shape, "db_url": str(tmp_path / "llc.db"),
                      "pending_records_path": str(tmp_path / "pending.jsonl"),
                      **(settings or {})}
        state = build_server(Settings(**opts), profile or load_profile(), **({"tools": tools} if tools else {}))
        binds = await nursery.start(serve, state)
        return Stack(fake, state, binds[0], proxy)

    return start
