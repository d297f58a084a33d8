"""``@tool``'s JSON schema, read from signatures, as data; the official openai SDK's Realtime
session model and a JSON Schema validator are the oracles that the result is what the service takes."""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal, Optional

import jsonschema
import pytest
from openai.types.realtime import RealtimeFunctionTool, RealtimeSessionCreateRequest

from llc import ToolContext, ToolSchemaError, tool
from llc.tools.decorator import marked
from llc.tools.schema import function_schema


class Area(enum.Enum):
    INSIDE = "inside"
    TERRACE = "terrace"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@tool
async def check_availability(ctx: ToolContext, day: Annotated[str, "the day, as the caller said it"], party_size: int = 2,
                             area: Area = Area.INSIDE, kind: Literal["lunch", "dinner"] = "dinner",
                             seats: list[int] | None = None, vip: bool = False, budget: float = 30.5) -> dict[str, Any]:
    """Free tables for a day."""
    return {}


@tool
async def no_context(level: Level, tags: list[Area]) -> list[str]:
    """No context parameter at all."""
    return [level.name, *(t.value for t in tags)]


EXPECTED = {
    "type": "object",
    "properties": {
        "day": {"type": "string", "description": "the day, as the caller said it"},
        "party_size": {"type": "integer", "default": 2},
        "area": {"type": "string", "enum": ["inside", "terrace"], "default": "inside"},
        "kind": {"type": "string", "enum": ["lunch", "dinner"], "default": "dinner"},
        "seats": {"type": "array", "items": {"type": "integer"}},
        "vip": {"type": "boolean", "default": False},
        "budget": {"type": "number", "default": 30.5},
    },
    "required": ["day"],
}


def spec(fn: object):  # type: ignore[no-untyped-def]
    found = marked(fn)
    assert found is not None
    return found


def test_the_signature_is_the_schema() -> None:
    s = spec(check_availability).schema
    assert (s.name, s.description, s.takes_context) == ("check_availability", "Free tables for a day.", True)
    assert s.parameters == EXPECTED
    other = spec(no_context).schema
    assert other.takes_context is False
    assert other.parameters == {"type": "object", "properties": {
        "level": {"type": "integer", "enum": [1, 2]},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["inside", "terrace"]}}},
        "required": ["level", "tags"]}


@pytest.mark.parametrize("fn", [check_availability, no_context])
def test_the_official_sdk_and_json_schema_accept_it(fn: object) -> None:
    tool_json = spec(fn).as_tool().schema()
    session = RealtimeSessionCreateRequest.model_validate({"type": "realtime", "tools": [tool_json]})
    [parsed] = session.tools or []
    assert isinstance(parsed, RealtimeFunctionTool) and parsed.name == tool_json["name"]
    assert parsed.model_dump(exclude_none=True) == tool_json  # nothing dropped or renamed
    jsonschema.Draft202012Validator.check_schema(tool_json["parameters"])


def test_the_schema_validates_the_arguments_the_model_would_send() -> None:
    validator = jsonschema.Draft202012Validator(EXPECTED)
    assert validator.is_valid({"day": "friday", "party_size": 4, "area": "terrace", "seats": [1, 2]})
    assert not validator.is_valid({"party_size": 4})  # day is required
    assert not validator.is_valid({"day": "friday", "area": "garden"})
    assert not validator.is_valid({"day": "friday", "party_size": "four"})


async def test_enum_arguments_arrive_as_members_and_the_context_only_when_asked() -> None:
    assert await no_context(Level.LOW, []) == ["LOW"]  # the decorated function is unchanged
    call = spec(no_context).as_tool()
    assert call.source == f"module {__name__}"
    assert await call.fn(object(), level=2, tags=["terrace"]) == ["HIGH", "terrace"]


def test_overrides() -> None:
    @tool(name="lookup", description="Looks it up.", schema={"type": "object", "properties": {"q": {"type": "string"}}})
    async def anything(ctx: ToolContext, **kwargs: Any) -> None:  # a given schema: the signature is not read
        pass

    s = spec(anything).schema
    assert (s.name, s.description, s.parameters["properties"]) == ("lookup", "Looks it up.", {"q": {"type": "string"}})
    assert function_schema(no_context, description="Other.").description == "Other."


async def _undocumented(day: str) -> None:
    pass


async def _dict_param(ctx: ToolContext, filters: dict[str, str]) -> None:
    """Filters."""


async def _union(x: int | str) -> None:
    """Union."""


async def _bare_list(x: list) -> None:  # type: ignore[type-arg]
    """Bare list."""


async def _mixed(x: Literal["a", 1]) -> None:
    """Mixed."""


async def _unannotated(x) -> None:  # type: ignore[no-untyped-def]
    """No annotation."""


async def _star(*names: str) -> None:
    """Star."""


async def _late_ctx(day: str, ctx: ToolContext) -> None:
    """Context second."""


def _sync(day: str) -> None:
    """Sync."""


async def _optional_dict(x: Optional[dict[str, int]] = None) -> None:  # noqa: UP045  the old spelling is read too
    """Optional dict."""


@pytest.mark.parametrize("fn, says", [
    (_undocumented, "no description; write a docstring"),
    (_dict_param, "parameter 'filters': dict[str, str] cannot be expressed"),
    (_union, "parameter 'x': int | str: a union of several types"),
    (_bare_list, "parameter 'x': list: say what the list holds"),
    (_mixed, "parameter 'x': Literal['a', 1]: choices must all be"),
    (_unannotated, "parameter 'x' has no annotation"),
    (_star, "parameter 'names': *args"),
    (_late_ctx, "parameter 'ctx': the ToolContext must be the first"),
    (_sync, "a tool must be `async def`"),
    (_optional_dict, "parameter 'x': dict[str, int] cannot be expressed"),
])
def test_what_cannot_be_expressed_names_the_function_and_the_parameter(fn: Any, says: str) -> None:
    with pytest.raises(ToolSchemaError) as err:
        tool(fn)
    assert f"@tool {__name__}:{fn.__name__}: " in str(err.value) and says in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


def test_names_and_schemas_the_service_would_refuse() -> None:
    with pytest.raises(ToolSchemaError, match="must be 1-64 letters"):
        tool(name="check availability")(no_context)
    with pytest.raises(ToolSchemaError, match='"type": "object"'):
        tool(schema={"type": "string"})(no_context)
