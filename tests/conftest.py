"""Fixture registration only; what the fixtures build lives in tests/helpers/."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trio

from tests.helpers.nginx import nginx_or_skip, trusted_ca
from tests.helpers.pg import throwaway_server
from tests.helpers.stack import StackFactory, stack_factory

if TYPE_CHECKING:
    import trustme


@pytest.fixture
async def start_stack(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[StackFactory]:
    """Start the fake OpenAI plus the server; keyword args go to FakeOpenAIConfig / Settings."""
    yield stack_factory(nursery, tmp_path)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[tuple[str | None, str]]:
    """A throwaway PostgreSQL for the session, started only when a PostgreSQL case asks for it."""
    with throwaway_server() as server:
        yield server


@pytest.fixture
def nginx() -> str:
    """Debian's nginx binary: missing, the test is skipped naming the install (fails under CI)."""
    return nginx_or_skip()


@pytest.fixture
def tls_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> trustme.CA:
    """A test certificate authority this process's TLS clients trust (SSL_CERT_FILE)."""
    return trusted_ca(tmp_path, monkeypatch)
