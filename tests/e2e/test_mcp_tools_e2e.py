"""An MCP server declared in the scenarios file, end to end: llc hands it to the (fake) service in
the GA session, the fake calls a real MCP server (the ``mcp`` package's MCPServer, formerly
FastMCP) on loopback as the live service would, and the call's record shows the MCP call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller
from llc.kit.sim.fake_openai_mcp import McpCallScript
from tests.e2e.test_turns_e2e import profile_with
from tests.helpers.stack import StackFactory


async def start_mcp_server(nursery: trio.Nursery, auth_seen: list[str]) -> str:
    server = MCPServer("crm")

    @server.tool()
    def get_order(order_id: str) -> dict[str, str]:
        """Look up an order by its number."""
        return {"order_id": order_id, "status": "shipped"}

    @server.tool()
    def broken(order_id: str) -> str:
        """Always fails."""
        raise ToolError("crm database down")  # the words a server means its caller to see

    app = server.streamable_http_app()

    async def recording(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            auth_seen.extend(v.decode() for k, v in scope["headers"] if k == b"authorization")
        await app(scope, receive, send)

    config = Config()
    config.bind, config.accesslog, config.errorlog = ["127.0.0.1:0"], None, None
    binds = await nursery.start(lambda task_status: serve(recording, config, task_status=task_status))  # type: ignore[arg-type]
    return f"{binds[0]}/mcp"


def scenarios_file(tmp_path: Path, url: str) -> str:
    path = tmp_path / "scenarios.toml"
    path.write_text(f"""
[scenario.default]
[scenario.default.tools]
lean = ["end_call", "crm", "down"]
full = ["end_call", "crm", "down"]

[tool.crm]
type = "mcp"
description = "Orders"
server_url = "{url}"
allowed_tools = ["get_order", "broken"]
require_approval = "never"
headers = {{ Authorization = "Bearer ${{MCP_TOKEN}}" }}

[tool.down]
type = "mcp"
server_url = "http://127.0.0.1:9/mcp"
""")
    return str(path)


async def test_the_service_calls_the_mcp_server_and_the_record_shows_it(
        start_stack: StackFactory, nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_TOKEN", "m-t0ken")
    auth_seen: list[str] = []
    url = await start_mcp_server(nursery, auth_seen)
    stack = await start_stack(
        settings={"scenarios_path": scenarios_file(tmp_path, url)}, profile=profile_with(tool_filler_after_ms=0),
        tool_calls={0: McpCallScript("crm", "get_order", {"order_id": "A17"}, reply_after="Order A17 has shipped."),
                    1: McpCallScript("crm", "broken", {"order_id": "A18"}, reply_after="I cannot check that now.")})
    await FakeCaller(stack.base_url, CallerScript(turns=[CallerTurn("Where is A17?"), CallerTurn("And A18?")],
                                                  max_call_s=20)).run()
    await stack.wait_records(1)
    record, session = stack.state.records[-1], stack.fake.sessions[-1]
    assert session.errors_sent == []  # the fake, as strict as the service, took the mcp tool entry
    assert session.session is not None
    entry, _ = [t for t in session.session["tools"] if t["type"] == "mcp"]
    assert entry["server_label"] == "crm" and entry["server_url"] == url and entry["require_approval"] == "never"
    assert set(auth_seen) == {"Bearer m-t0ken"}  # the service, not llc, called the server, with the headers
    # llc never ran it: no function_call_output went back.
    assert not [e for e in session.received if e["type"] == "conversation.item.create"
                and e["item"]["type"] == "function_call_output"]
    # The service listed each server's tools once, when the session first named it.
    listings = {c["server_label"]: c.get("tools") for c in session.mcp_calls if c["name"] == "mcp_list_tools"}
    assert listings == {"crm": ["get_order", "broken"], "down": None}
    [unlisted] = [c for c in record.tool_calls if c.name == "mcp_list_tools"]
    assert "could not list the MCP server's tools" in (unlisted.error or "")
    ok, failed = [c for c in record.tool_calls if c.name != "mcp_list_tools"]
    assert (ok.name, orjson.loads(ok.arguments), ok.error) == ("crm.get_order", {"order_id": "A17"}, None)
    assert orjson.loads(ok.output or "") == {"order_id": "A17", "status": "shipped"}
    assert ok.ms is not None and ok.ms > 0
    assert failed.name == "crm.broken" and "tool_execution_error" in (failed.error or "")
    assert "crm database down" in (failed.error or "")
    said = [t.text for t in record.transcript if t.role == "agent"]
    assert "Order A17 has shipped." in said and "I cannot check that now." in said
    assert record.end_reason == "caller_hangup"
