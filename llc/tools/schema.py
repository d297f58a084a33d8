"""A tool's JSON schema, read from its Python signature (what ``@tool`` uses).

Supported annotations: ``str``, ``int``, ``float``, ``bool``, ``Literal[...]``, an ``enum.Enum``,
``list[X]`` of those, ``X | None``, and ``Annotated[X, "description"]``. A parameter with a
default is optional (not in ``required``). A first parameter annotated ``ToolContext`` is the
call's context, passed by llc and left out of the schema. Anything else is a
``ToolSchemaError`` naming the function and the parameter, raised when the module is imported.
"""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

from llc.tools.registry import ToolContext

Convert = Callable[[Any], Any]
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what the Realtime API accepts as a function name
SUPPORTED = "str, int, float, bool, Literal[...], an Enum, list[...] of those, X | None, Annotated[X, 'description']"
_SCALARS: dict[type, str] = {bool: "boolean", int: "integer", float: "number", str: "string"}


class ToolSchemaError(TypeError):
    """A ``@tool`` function that cannot be offered to the model; the message says which and why."""


@dataclass(frozen=True)
class FunctionSchema:
    name: str
    description: str
    parameters: dict[str, Any]
    takes_context: bool
    # Arguments that arrive as JSON values but the function wants as Python objects (an Enum member).
    converters: dict[str, Convert] = field(default_factory=dict)


def where(fn: Callable[..., Any]) -> str:
    """``module:function``, how errors and listings name a tool's place."""
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


def function_schema(fn: Callable[..., Any], *, name: str | None = None, description: str | None = None,
                    schema: dict[str, Any] | None = None) -> FunctionSchema:
    """The tool ``fn`` offers the model; ``name``/``description``/``schema`` override what is read."""
    place = where(fn)
    if not inspect.iscoroutinefunction(fn):
        raise ToolSchemaError(f"@tool {place}: a tool must be `async def` (blocking work goes in "
                              "`await trio.to_thread.run_sync(...)`)")
    tool_name = name or fn.__name__
    if not NAME.match(tool_name):
        raise ToolSchemaError(f"@tool {place}: the name {tool_name!r} must be 1-64 letters, digits, _ or -")
    text = description if description is not None else inspect.getdoc(fn)
    if not text or not text.strip():
        raise ToolSchemaError(f"@tool {place}: no description; write a docstring (the model reads it) "
                              "or pass @tool(description=...)")
    params = list(inspect.signature(fn).parameters.values())
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # noqa: BLE001  a forward reference the module never defines, a bad string
        raise ToolSchemaError(f"@tool {place}: its annotations cannot be resolved: {type(exc).__name__}: {exc}") from None
    takes_context = bool(params) and hints.get(params[0].name) is ToolContext
    if takes_context:
        params = params[1:]
    for p in params:
        if p.kind == p.VAR_KEYWORD and schema is not None:
            continue  # the given schema says what arrives in it
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            raise ToolSchemaError(f"@tool {place}: parameter {p.name!r}: *args, **kwargs and positional-only "
                                  "parameters cannot be filled from the model's JSON arguments")
        if hints.get(p.name) is ToolContext:
            raise ToolSchemaError(f"@tool {place}: parameter {p.name!r}: the ToolContext must be the first parameter")
    if schema is not None:
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise ToolSchemaError(f"@tool {place}: schema= must be a JSON schema dict with \"type\": \"object\"")
        return FunctionSchema(tool_name, text.strip(), schema, takes_context)
    properties: dict[str, Any] = {}
    required: list[str] = []
    converters: dict[str, Convert] = {}
    for p in params:
        if p.name not in hints:
            hint = "`ctx: ToolContext` for the call's context, else " if p.name == "ctx" else ""
            raise ToolSchemaError(f"@tool {place}: parameter {p.name!r} has no annotation; annotate it ({hint}{SUPPORTED})")
        try:
            prop, convert = json_schema_of(hints[p.name])
        except ToolSchemaError as exc:
            raise ToolSchemaError(f"@tool {place}: parameter {p.name!r}: {exc}") from None
        if p.default is p.empty:
            required.append(p.name)
        elif (default := _json_default(p.default)) is not None:
            prop["default"] = default
        properties[p.name] = prop
        if convert is not None:
            converters[p.name] = convert
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    return FunctionSchema(tool_name, text.strip(), parameters, takes_context, converters)


def json_schema_of(tp: Any) -> tuple[dict[str, Any], Convert | None]:
    """The JSON schema of one annotation, and how to turn its JSON value into what the function wants."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        prop, convert = json_schema_of(args[0])
        notes = [m for m in tp.__metadata__ if isinstance(m, str)]
        if notes:
            prop["description"] = notes[0]
        return prop, convert
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise ToolSchemaError(f"{_show(tp)}: a union of several types cannot be expressed; use one type ({SUPPORTED})")
        prop, inner = json_schema_of(rest[0])
        if inner is None:
            return prop, None
        return prop, lambda v: None if v is None else inner(v)
    if origin is Literal:
        return {"type": _enum_type(tp, args), "enum": list(args)}, None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = [m.value for m in tp]
        return {"type": _enum_type(tp, values), "enum": values}, tp
    if origin is list:
        if not args:
            raise ToolSchemaError(f"{_show(tp)}: say what the list holds, e.g. list[str]")
        items, each = json_schema_of(args[0])
        if each is None:
            return {"type": "array", "items": items}, None
        return {"type": "array", "items": items}, lambda v: [each(x) for x in v]
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}, None
    if tp is list:
        raise ToolSchemaError(f"{_show(tp)}: say what the list holds, e.g. list[str]")
    raise ToolSchemaError(f"{_show(tp)} cannot be expressed in the tool's JSON schema; use {SUPPORTED}, "
                          "or give the whole schema with @tool(schema={...})")


def _enum_type(tp: Any, values: typing.Sequence[Any]) -> str:
    kinds = {type(v) for v in values}
    if len(kinds) == 1 and (kind := kinds.pop()) in _SCALARS:
        return _SCALARS[kind]
    raise ToolSchemaError(f"{_show(tp)}: choices must all be str, all int, all float or all bool")


def _json_default(value: Any) -> Any:
    """A default the schema can show (None when it cannot, or is None)."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool | int | float | str):
        return value
    return None


def _show(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) and not typing.get_args(tp) else repr(tp).replace("typing.", "")
