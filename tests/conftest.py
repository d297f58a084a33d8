"""Fixture registration only; what the fixtures build lives in tests/helpers/."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest
import trio

from tests.helpers.stack import StackFactory, stack_factory


@pytest.fixture
async def start_stack(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[StackFactory]:
    """Start the fake OpenAI plus the server; keyword args go to FakeOpenAIConfig / Settings."""
    yield stack_factory(nursery, tmp_path)
