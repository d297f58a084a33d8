"""What every call of one server shares, built once by the server's assembly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from llc.call.recording import Recordings
from llc.core.dialect import Dialect
from llc.core.liveness import LivenessPolicy
from llc.ticker import Ticker
from llc.tools.registry import ToolRegistry
from llc.twilio.control import TwilioCallControl
from llc.ws.hub import Hub
from llc.ws.transport import Transport


@dataclass(frozen=True)
class CallDeps:
    dialect: Dialect
    connect: Callable[[], Awaitable[Transport]]  # opens a Realtime socket (OPENAI_* settings bound)
    tools: ToolRegistry
    call_control: TwilioCallControl
    max_frame_bytes: int
    max_call_s: float = 0.0  # 0: no limit
    apology_clip: str | None = None  # None: the bundled chime
    liveness: LivenessPolicy = field(default_factory=LivenessPolicy)
    openai_wait_s: float = 5.0  # the one wait for a usable OpenAI session at call start
    warm_wait_s: float = 1.0  # then a cold connect starts beside a warm session not yet usable
    fallback_number: str | None = None  # LLC_FALLBACK_NUMBER: OpenAI unreachable at start -> a person
    recordings: Recordings | None = None  # LLC_RECORD_AUDIO: None when off
    hub: Hub | None = None  # llc.ws.hub: reads the media sockets without a task wake-up per message
    ticker: Ticker | None = None  # llc.ticker: every call's watchdog ticks in one wake-up
