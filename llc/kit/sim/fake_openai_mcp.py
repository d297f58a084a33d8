"""The fake OpenAI's part for MCP servers: it calls the server itself, as the live service does.

A scripted ``McpCallScript`` makes a response call a tool of an MCP server named in the session
(``type = "mcp"``): the fake connects with the ``mcp`` package's client over streamable HTTP,
calls the tool and reports it the service's way (``response.mcp_call_arguments.*``,
``response.mcp_call.in_progress`` then ``completed`` or ``failed``, and the ``mcp_call`` output
item with its output or error). Then the service goes on by itself: a follow-up response speaks
``reply_after``; the client sends nothing in between. A server new to the session has its tools
listed first (``mcp_list_tools.in_progress``, then ``completed`` with an ``mcp_list_tools`` item, or
``failed`` when it cannot be reached).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import trio

from llc.kit.sim.fake_openai_shapes import new_id

if TYPE_CHECKING:
    from mcp.client.session import ClientSession

MCP_CALL_TIMEOUT_S = 10.0


class Connection(Protocol):
    """What of the fake's connection an MCP call uses (its emitter and conversation)."""

    session: dict[str, Any]

    @property
    def log(self) -> Any: ...

    def open_item(self, resp: Any, item: dict[str, Any]) -> dict[str, Any]: ...

    def ids_of(self, resp: Any, **extra: Any) -> dict[str, Any]: ...

    def emit(self, type_: str, **fields: Any) -> None: ...

    def add_item(self, item: dict[str, Any], done: bool = True) -> None: ...


@dataclass
class McpCallScript:
    """Makes one response call ``name`` on the session's MCP server ``server_label``."""

    server_label: str
    name: str
    arguments: dict[str, Any]
    reply_after: str | None = None  # spoken by the follow-up response


def mcp_call_item(script: McpCallScript) -> dict[str, Any]:
    return {"id": new_id("mcp"), "object": "realtime.item", "type": "mcp_call", "server_label": script.server_label,
            "name": script.name, "arguments": ""}


def new_servers(update: dict[str, Any], listed: set[str]) -> list[dict[str, Any]]:
    """The MCP servers of a ``session.update`` whose tools the session has not listed yet."""
    fresh = [t for t in update.get("tools") or [] if t.get("type") == "mcp" and t["server_label"] not in listed]
    listed.update(t["server_label"] for t in fresh)
    return fresh


@asynccontextmanager
async def mcp_session(entry: dict[str, Any]) -> AsyncIterator[ClientSession]:
    """An initialised MCP client session to the server a session's ``mcp`` tool entry names,
    with its headers, as the service opens one.

    The mcp package is imported here, not with the module: every `llc-phone` command loads the
    simulator's modules, and mcp costs half a second and ~37 MB that only an MCP call needs.
    """
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async with (create_mcp_http_client(headers=entry.get("headers") or None) as http,
                streamable_http_client(entry["server_url"], http_client=http) as (read, write),
                ClientSession(read, write) as session):
        await session.initialize()
        yield session


async def list_tools(conn: Connection, entry: dict[str, Any]) -> None:
    item_id = new_id("mcpl")
    conn.emit("mcp_list_tools.in_progress", item_id=item_id)
    try:
        with trio.fail_after(MCP_CALL_TIMEOUT_S):
            async with mcp_session(entry) as session:
                listed = await session.list_tools()
    except Exception:  # noqa: BLE001  unreachable, refused, not MCP: the service says only that it failed
        conn.log.mcp_calls.append({"name": "mcp_list_tools", "server_label": entry["server_label"], "error": True})
        conn.emit("mcp_list_tools.failed", item_id=item_id)
        return
    tools = [{"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in listed.tools]
    conn.log.mcp_calls.append({"name": "mcp_list_tools", "server_label": entry["server_label"],
                               "tools": [t["name"] for t in tools]})
    conn.add_item({"id": item_id, "object": "realtime.item", "type": "mcp_list_tools",
                    "server_label": entry["server_label"], "tools": tools})
    conn.emit("mcp_list_tools.completed", item_id=item_id)


async def call_server(tools: list[Any], script: McpCallScript) -> dict[str, Any]:
    """What the service would put in the ``mcp_call`` item: ``{"output": text}`` or ``{"error": {...}}``."""
    entry = next((t for t in tools if isinstance(t, dict) and t.get("type") == "mcp"
                  and t.get("server_label") == script.server_label), None)
    if entry is None or "server_url" not in entry:
        return {"error": {"type": "protocol_error", "code": -32602,
                          "message": f"no MCP server labelled {script.server_label!r} in the session"}}
    allowed = entry.get("allowed_tools")
    if isinstance(allowed, list) and script.name not in allowed:
        return {"error": {"type": "protocol_error", "code": -32602, "message": f"tool {script.name!r} is not allowed"}}
    try:
        with trio.fail_after(MCP_CALL_TIMEOUT_S):
            async with mcp_session(entry) as session:
                result = await session.call_tool(script.name, script.arguments)
    except trio.TooSlowError:
        return {"error": {"type": "http_error", "code": 504, "message": "the MCP server did not answer in time"}}
    except Exception as exc:  # noqa: BLE001  whatever broke, the service reports it in the item, never fails the session
        return {"error": {"type": "http_error", "code": 502, "message": f"the MCP server failed: {type(exc).__name__}"}}
    text = "".join(getattr(part, "text", "") for part in result.content)
    if result.is_error:
        return {"error": {"type": "tool_execution_error", "message": text}}
    return {"output": text}


async def run_mcp_call(conn: Connection, resp: Any, script: McpCallScript) -> None:
    """The response's part: the call item, its events, and the call itself (bounded)."""
    item = conn.open_item(resp, mcp_call_item(script))
    ids = conn.ids_of(resp)
    args = orjson.dumps(script.arguments).decode()
    conn.emit("response.mcp_call_arguments.delta", **ids, delta=args)
    conn.emit("response.mcp_call_arguments.done", **ids, arguments=args)
    item["arguments"] = args
    conn.emit("response.mcp_call.in_progress", item_id=item["id"], output_index=0)
    result = await call_server(conn.session.get("tools", []), script)
    item.update(result)
    conn.log.mcp_calls.append({"name": script.name, "arguments": script.arguments, **result})
    done = "response.mcp_call.failed" if "error" in result else "response.mcp_call.completed"
    conn.emit(done, item_id=item["id"], output_index=0)
