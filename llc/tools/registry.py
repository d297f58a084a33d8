"""Tools are plain ``async def`` functions registered with a JSON schema.

A tool receives a ``ToolContext`` (what it may do to the call) and the model's arguments as
keyword arguments; it returns anything JSON-serialisable, which goes back to the model as
the ``function_call_output``. Raising is fine: the runner turns it into an error output.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from llc.core.levers import Lever
from llc.modes.runtime import ModeCall


class ToolContext(Protocol):
    """What a tool may do to the call it runs in (implemented by the call shell)."""

    @property
    def call_sid(self) -> str: ...

    @property
    def params(self) -> dict[str, str]: ...

    @property
    def transfer_allow(self) -> tuple[str, ...]: ...

    @property
    def mode(self) -> ModeCall | None:
        """The call's scenario: its store, caller, customer and menu (None before the plan)."""

    def now(self) -> float: ...

    async def apply(self, levers: list[Lever]) -> None:
        """Carry out the mode's levers (e.g. a spoken menu choice that switches the scenario)."""

    async def hang_up_after_goodbye(self) -> None:
        """End the call once the agent's next reply has been played to the caller (by mark)."""

    async def redirect(self, twiml: str) -> None:
        """Replace the call's TwiML through the Twilio REST API (e.g. ``<Dial>`` to transfer)."""


ToolFn = Callable[..., Awaitable[Any]]


class ToolFailed(Exception):
    """An expected failure (a receiver down, a bad answer): its words go to the model, no traceback."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    fn: ToolFn
    source: str = "built-in"  # where it comes from, as `llc-phone tools` lists it: built-in, a module, http, mcp

    def schema(self) -> dict[str, Any]:
        return {"type": "function", "name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass
class ToolRegistry:
    tools: dict[str, Tool] = field(default_factory=dict)

    def add(self, name: str, description: str, parameters: dict[str, Any]) -> Callable[[ToolFn], ToolFn]:
        """Decorator: ``@registry.add("name", "what it does", {json schema})``."""

        def register(fn: ToolFn) -> ToolFn:
            if name in self.tools:
                raise ValueError(f"tool {name!r} is registered twice")
            self.tools[name] = Tool(name, description, parameters, fn)
            return fn

        return register

    def get(self, name: str) -> Tool | None:
        return self.tools.get(name)

    def schemas(self) -> dict[str, dict[str, Any]]:
        return {name: tool.schema() for name, tool in self.tools.items()}

    def unknown(self, names: tuple[str, ...]) -> list[str]:
        return [n for n in names if n not in self.tools]
