"""An opt-in recorder of every Realtime frame the fake OpenAI receives and sends, as wire text.

The wire-conformance test validates that traffic against the official SDK's models. The demo and
the mode runner build their own ``FakeOpenAIConfig``, so the recorder cannot be handed in there;
it is ambient instead: a context variable that every fake connection started inside
``recording()`` picks up (Trio tasks inherit the context of the task that starts them). Outside
``recording()`` nothing is kept, so benchmarks and the soak hold no frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from llc.core.dialect import Shape


@dataclass
class WireSession:
    """One fake connection: its shape and its text frames in order, as they crossed the socket."""

    shape: Shape
    received: list[str | bytes] = field(default_factory=list)  # client events, as the product sent them
    sent: list[str] = field(default_factory=list)  # server events, once the socket took them


@dataclass
class WireLog:
    sessions: list[WireSession] = field(default_factory=list)

    def open(self, shape: Shape) -> WireSession:
        session = WireSession(shape)
        self.sessions.append(session)
        return session


_CURRENT: ContextVar[WireLog | None] = ContextVar("llc_fake_openai_wire_log", default=None)


@contextmanager
def recording() -> Iterator[WireLog]:
    """Record the fake OpenAI connections opened inside this block (and tasks started from it)."""
    log = WireLog()
    token = _CURRENT.set(log)
    try:
        yield log
    finally:
        _CURRENT.reset(token)


def current() -> WireLog | None:
    """The recorder in effect for a connection being opened now, if any."""
    return _CURRENT.get()
