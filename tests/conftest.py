"""Fixture registration only; what the fixtures build lives in tests/helpers/."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio

from tests.helpers.pg import throwaway_server
from tests.helpers.stack import StackFactory, stack_factory


@pytest.fixture
async def start_stack(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[StackFactory]:
    """Start the fake OpenAI plus the server; keyword args go to FakeOpenAIConfig / Settings."""
    yield stack_factory(nursery, tmp_path)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[tuple[str | None, str]]:
    """A throwaway PostgreSQL for the session, started only when a PostgreSQL case asks for it."""
    with throwaway_server() as server:
        yield server
