"""HTTP tools declared in the scenarios file, end to end: the fake OpenAI calls the tool, llc POSTs
to a real receiver on loopback that checks the Standard Webhooks signature, the answer reaches
the fake and the record; broken receivers give error outputs and the call goes on."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
from standardwebhooks import Webhook, WebhookVerificationError

from llc.events.signing import new_secret
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller
from llc.kit.sim.fake_openai import ToolCallScript
from tests.e2e.test_turns_e2e import profile_with
from tests.helpers.stack import StackFactory

SECRET = new_secret()


class Receiver(http.server.ThreadingHTTPServer):
    daemon_threads = True
    seen: list[dict[str, Any]]
    bad_signatures: int


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: llc's pooled client reuses the connection
    disable_nagle_algorithm = True  # else the body, a second write, waits out a delayed ACK
    server: Receiver

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        try:
            payload = Webhook(SECRET).verify(body, {k.lower(): v for k, v in self.headers.items()})
        except WebhookVerificationError:
            self.server.bad_signatures += 1
            return self._send(401, b'{"error": "bad signature"}')
        self.server.seen.append({"path": self.path, "payload": payload, "auth": self.headers.get("authorization"),
                                 "port": self.client_address[1]})
        if self.path == "/fail":
            return self._send(500, b'{"oops": true}')
        if self.path == "/slow":
            time.sleep(1.5)
        if self.path == "/text":
            return self._send(200, b"<html>not json</html>")
        if self.path == "/huge":
            return self._send(200, b'"' + b"x" * (10 * 1024 * 1024) + b'"')
        args = payload["arguments"]
        self._send(200, orjson.dumps({"order_id": args.get("order_id"), "status": "shipped"}))

    def _send(self, status: int, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # llc hung up on a too-big or too-slow answer, as it should


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), Handler)
    server.seen, server.bad_signatures = [], 0
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def scenarios_file(tmp_path: Path, port: int, tools: dict[str, str]) -> str:
    names = ", ".join(f'"{n}"' for n in ["end_call", *tools])
    text = f"""
[scenario.default]
[scenario.default.tools]
lean = [{names}]
full = [{names}]
"""
    for name, path in tools.items():
        text += f"""
[tool.{name}]
type = "http"
description = "Look up an order by its number"
url = "http://127.0.0.1:{port}{path}"
timeout_ms = 600
headers = {{ Authorization = "Bearer ${{CRM_TOKEN}}" }}
parameters = {{ type = "object", properties = {{ order_id = {{ type = "string" }} }}, required = ["order_id"] }}
"""
    path = tmp_path / "scenarios.toml"
    path.write_text(text)
    return str(path)


async def test_http_tool_posts_signed_and_its_answer_reaches_the_model_and_record(
        start_stack: StackFactory, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_TOKEN", "t0ken")
    port = receiver.server_address[1]
    stack = await start_stack(
        settings={"scenarios_path": scenarios_file(tmp_path, port, {"check_order": "/orders"}), "webhook_secret": SECRET},
        profile=profile_with(tool_filler_after_ms=0),
        tool_calls={0: ToolCallScript("check_order", {"order_id": "A17"}, reply_after="Order A17 has shipped."),
                    1: ToolCallScript("check_order", {"order_id": "A18"}, reply_after="Order A18 has shipped.")})
    assert stack.state.tools.tools["check_order"].source == "http"
    session_tools = {t["name"]: t for t in stack.state.router.tool_schemas.values() if t.get("type") == "function"}
    assert session_tools["check_order"]["parameters"]["required"] == ["order_id"]
    turns = [CallerTurn("Where is A17?"), CallerTurn("And A18?")]
    await FakeCaller(stack.base_url, CallerScript(turns=turns, max_call_s=20)).run()
    await stack.wait_records(1)
    record = stack.state.records[-1]
    assert receiver.bad_signatures == 0
    seen, again = receiver.seen
    assert seen["port"] == again["port"]  # one pooled connection, kept alive between calls
    assert seen["auth"] == "Bearer t0ken"
    assert seen["payload"]["tool"] == "check_order" and seen["payload"]["arguments"] == {"order_id": "A17"}
    call = seen["payload"]["call"]
    assert call["call_sid"] == record.call_sid and call["scenario"] == "default" and call["direction"] == "inbound"
    assert set(call) == {"call_sid", "scenario", "direction", "caller", "called"}
    tool_call, _ = record.tool_calls
    assert tool_call.name == "check_order" and tool_call.error is None
    assert orjson.loads(tool_call.output or "") == {"order_id": "A17", "status": "shipped"}
    outputs = [e["item"] for e in stack.fake.sessions[-1].received
               if e["type"] == "conversation.item.create" and e["item"]["type"] == "function_call_output"]
    assert [orjson.loads(o["output"]) for o in outputs] == [{"order_id": "A17", "status": "shipped"},
                                                            {"order_id": "A18", "status": "shipped"}]
    said = [t.text for t in record.transcript if t.role == "agent"]
    assert "Order A17 has shipped." in said and "Order A18 has shipped." in said


async def test_broken_receivers_give_error_outputs_and_the_call_goes_on(
        start_stack: StackFactory, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_TOKEN", "t0ken")
    port = receiver.server_address[1]
    broken = {"fails": "/fail", "slow": "/slow", "text": "/text", "huge": "/huge"}
    stack = await start_stack(
        settings={"scenarios_path": scenarios_file(tmp_path, port, broken), "webhook_secret": SECRET},
        profile=profile_with(tool_filler_after_ms=0),
        tool_calls={i: ToolCallScript(name, {"order_id": "A1"}, reply_after=f"Sorry {i}.")
                    for i, name in enumerate(broken)})
    turns = [CallerTurn(f"Question {i}") for i in range(len(broken))]
    await FakeCaller(stack.base_url, CallerScript(turns=turns, max_call_s=40)).run()
    await stack.wait_records(1)
    record = stack.state.records[-1]
    errors = {c.name: c.error for c in record.tool_calls}
    assert errors == {"fails": "the tool's server answered HTTP 500",
                      "slow": "the tool's server did not answer within 600 ms",
                      "text": "the tool's server answered something that is not JSON",
                      "huge": f"the tool's answer is {10 * 1024 * 1024 + 2} bytes, over the 65536 limit"}
    assert all(orjson.loads(c.output or "") == {"error": c.error} for c in record.tool_calls)
    # Every turn was answered after its failed tool: the call went on to the caller's hang-up.
    said = [t.text for t in record.transcript if t.role == "agent"]
    assert all(f"Sorry {i}." in said for i in range(len(broken)))
    assert record.end_reason == "caller_hangup"


async def test_the_pooled_client_lives_in_its_nursery_and_is_closed_with_it(receiver: Receiver) -> None:
    from llc.call.tools import run_tool
    from llc.core.actions import RunTool
    from llc.kit.bench.http_tool import _Ctx
    from llc.tools.http import HttpTool, HttpTools
    from llc.tools.registry import Tool, ToolRegistry

    pool = HttpTools(SECRET)
    spec = HttpTool("check_order", f"http://127.0.0.1:{receiver.server_address[1]}/orders", 2.0, {})
    registry = ToolRegistry({"check_order": Tool("check_order", "", {"type": "object"}, pool.function(spec), "http")})
    action = RunTool("c1", "check_order", '{"order_id": "A1"}')
    assert await run_tool(registry, _Ctx(), action, 5.0) == (
        '{"error":"HTTP tools are not running (the server is starting or stopping)"}',
        "HTTP tools are not running (the server is starting or stopping)")
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        client = pool._client
        assert client is not None
        for _ in range(3):
            output, error = await run_tool(registry, _Ctx(), action, 5.0)
            assert error is None and orjson.loads(output)["status"] == "shipped"
        nursery.cancel_scope.cancel()
    assert client.is_closed and pool._client is None
    assert len({s["port"] for s in receiver.seen}) == 1
