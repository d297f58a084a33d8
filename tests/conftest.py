"""Shared fixtures: a fake OpenAI and a real llc server on loopback ports, in one Trio run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable

import pytest
import trio

from llc.config import Settings
from llc.profile import Profile, load_profile
from llc.tools.registry import ToolRegistry
from llc.sim.fake_openai import FakeOpenAI, FakeOpenAIConfig
from llc.web.app import serve
from llc.web.state import ServerState


@dataclass
class Stack:
    fake: FakeOpenAI
    state: ServerState
    base_url: str

    async def wait_records(self, n: int, timeout: float = 5.0) -> None:
        with trio.fail_after(timeout):
            while len(self.state.records) < n:
                await trio.sleep(0.01)


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def start_stack(nursery: trio.Nursery) -> AsyncIterator[StackFactory]:
    """Start the fake OpenAI plus the server; keyword args go to FakeOpenAIConfig / Settings."""

    async def start(
        shape: str = "ga", settings: dict | None = None, profile: Profile | None = None,
        tools: ToolRegistry | None = None, **fake_config: object,
    ) -> Stack:
        fake_config.setdefault("ttfb_ms", 50)
        fake_config.setdefault("end_of_turn_silence_ms", 200)
        fake = FakeOpenAI(FakeOpenAIConfig(shape=shape, **fake_config))  # type: ignore[arg-type]
        await nursery.start(fake.serve)
        opts: dict = {"port": 0, "openai_realtime_url": fake.url, "openai_api_shape": shape, **(settings or {})}
        state = ServerState(Settings(**opts), profile or load_profile(), **({"tools": tools} if tools else {}))
        binds = await nursery.start(serve, state)
        return Stack(fake, state, binds[0])

    yield start
