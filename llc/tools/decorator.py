"""``@tool``: make an ``async def`` in your own module a tool the agent can call.

The decorator only reads the function's signature into a JSON schema and marks the function;
it registers nothing. ``llc.tools.loader`` imports the modules named in ``LLC_TOOLS`` and
collects the marked functions it finds in them, so importing a module twice, or in a test,
never adds a tool behind anyone's back. The function itself is returned unchanged: it can be
called and tested like any other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from llc.tools.registry import Tool, ToolContext
from llc.tools.schema import FunctionSchema, function_schema, where

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
MARK = "__llc_tool__"


@dataclass(frozen=True)
class MarkedTool:
    """What ``@tool`` attaches to a function: its schema, read once at import."""

    fn: Callable[..., Awaitable[Any]]
    schema: FunctionSchema

    @property
    def place(self) -> str:
        return where(self.fn)

    def as_tool(self) -> Tool:
        s = self.schema
        fn, takes_context, converters = self.fn, s.takes_context, s.converters

        async def call(ctx: ToolContext, **arguments: Any) -> Any:
            for key, convert in converters.items():
                if key in arguments:
                    arguments[key] = convert(arguments[key])
            return await (fn(ctx, **arguments) if takes_context else fn(**arguments))

        return Tool(s.name, s.description, s.parameters, call, source=f"module {fn.__module__}")


@overload
def tool(fn: F, /) -> F: ...


@overload
def tool(*, name: str | None = None, description: str | None = None,
         schema: dict[str, Any] | None = None) -> Callable[[F], F]: ...


def tool(fn: F | None = None, /, *, name: str | None = None, description: str | None = None,
         schema: dict[str, Any] | None = None) -> F | Callable[[F], F]:
    """Mark an ``async def`` as a tool; its docstring is the description the model reads.

    ``@tool`` reads the name, description and JSON schema from the function;
    ``@tool(name=..., description=..., schema={...})`` overrides any of them. A bad signature
    raises ``ToolSchemaError`` here, naming the function and the parameter.
    """

    def mark(f: F) -> F:
        setattr(f, MARK, MarkedTool(f, function_schema(f, name=name, description=description, schema=schema)))
        return f

    return mark(fn) if fn is not None else mark


def marked(obj: object) -> MarkedTool | None:
    found = getattr(obj, MARK, None)
    return found if isinstance(found, MarkedTool) else None
