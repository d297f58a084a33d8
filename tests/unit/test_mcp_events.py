"""MCP calls the service makes itself, read from events built by the openai SDK's own models
(the oracle for their shape), and recorded like function calls."""

from __future__ import annotations

from openai.types.realtime.realtime_mcp_tool_call import RealtimeMcpToolCall
from openai.types.realtime.response_mcp_call_in_progress import ResponseMcpCallInProgress

from llc.core import openai_events as oa
from llc.core.journal import Journal
from llc.core.record import CallRecord
from llc.core.toolcalls import ToolCalls


def item_done(**item: object) -> dict:
    call = RealtimeMcpToolCall.model_validate({"id": "mcp_1", "type": "mcp_call", "server_label": "crm",
                                               "name": "get_order", "arguments": '{"order_id":"A1"}', **item})
    return {"type": "response.output_item.done", "event_id": "ev2", "response_id": "resp_1", "output_index": 0,
            "item": call.model_dump(exclude_none=True)}


def test_mcp_events_parse_from_the_sdks_shapes() -> None:
    started = ResponseMcpCallInProgress(event_id="ev1", item_id="mcp_1", output_index=0, type="response.mcp_call.in_progress")
    assert oa.from_json(started.model_dump()) == oa.McpCall("mcp_1")
    assert oa.from_json(item_done(output='{"status":"shipped"}')) == oa.McpCall(
        "mcp_1", True, "crm.get_order", '{"order_id":"A1"}', '{"status":"shipped"}', None)
    failed = oa.from_json(item_done(error={"type": "http_error", "code": 503, "message": "unavailable"}))
    assert isinstance(failed, oa.McpCall) and failed.error == "http_error 503 unavailable"
    # Other output items are read by their own events.
    message = {"type": "response.output_item.done", "item": {"type": "message", "id": "m"}}
    assert oa.from_json(message) == oa.Unknown("response.output_item.done")


def test_an_mcp_call_is_recorded_with_its_time_output_and_error() -> None:
    journal = Journal(CallRecord(), 0.0)
    tools = ToolCalls(journal)
    assert tools.mcp(oa.McpCall("mcp_1"), 1.0) is None
    rec = tools.mcp(oa.McpCall("mcp_1", True, "crm.get_order", "{}", '{"ok":true}'), 1.25)
    assert rec is not None and journal.record.tool_calls == [rec]
    assert (rec.name, rec.output, rec.error, rec.ms, rec.started_at) == ("crm.get_order", '{"ok":true}', None, 250.0, 1.0)
    # A result whose start was not seen is still recorded (0 ms), and nothing stays open.
    rec2 = tools.mcp(oa.McpCall("mcp_2", True, "crm.get_order", "{}", None, "tool_execution_error boom"), 2.0)
    assert rec2 is not None and rec2.error == "tool_execution_error boom" and rec2.ms == 0.0
    assert not tools


def test_a_failed_tool_listing_is_recorded_as_an_error() -> None:
    from openai.types.realtime.mcp_list_tools_failed import McpListToolsFailed

    event = McpListToolsFailed(event_id="ev", item_id="mcpl_1", type="mcp_list_tools.failed").model_dump()
    parsed = oa.from_json(event)
    assert isinstance(parsed, oa.McpCall) and parsed.done and parsed.name == "mcp_list_tools"
    assert "reachable from the internet" in (parsed.error or "")
