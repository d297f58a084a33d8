"""The call's tool calls in flight, asked for by the model or run by the call itself. Pure.

A key press on an IVR menu runs ``transfer_call`` as a *local* tool: recorded like any other,
but its output is not the model's business. Every tool call is in the record from its start,
so a call that ends mid-tool still says which tool was running and why it has no result.
"""

from __future__ import annotations

from llc.core.journal import Journal
from llc.core.openai_events import McpCall
from llc.core.record import ToolCallRecord

MAX_MCP_OPEN = 100  # MCP calls started and not yet done that are timed (a stuck service cannot grow this)


class ToolCalls:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._running: dict[str, ToolCallRecord] = {}
        self._started: dict[str, float] = {}  # unrounded: the record's ms start would make a fast tool's time negative
        self._local: set[str] = set()
        self._mcp_started: dict[str, float] = {}  # MCP calls the service is making, by item

    def mcp(self, call: McpCall, at: float) -> ToolCallRecord | None:
        """An MCP call the service makes itself: timed from its start, recorded with its result."""
        if not call.done:
            if len(self._mcp_started) < MAX_MCP_OPEN:
                self._mcp_started.setdefault(call.item_id, at)
            return None
        started = self._mcp_started.pop(call.item_id, at)
        self.start(call.item_id, call.name, call.arguments, started)
        finished = self.finish(call.item_id, call.output or "", call.error, at)
        return finished[0] if finished else None

    def __contains__(self, call_id: str) -> bool:
        return call_id in self._running

    def __bool__(self) -> bool:
        return bool(self._running)

    def start(self, call_id: str, name: str, arguments: str, at: float, *, local: bool = False) -> ToolCallRecord:
        rec = ToolCallRecord(call_id=call_id, name=name, arguments=arguments, started_at=round(at, 3))
        self._running[call_id] = rec
        self._started[call_id] = at
        if local:
            self._local.add(call_id)
        self.journal.tool_call(rec)
        return rec

    def next_local_id(self) -> str:
        return f"local_{len(self.journal.record.tool_calls) + 1}"

    def finish(self, call_id: str, output: str, error: str | None, at: float) -> tuple[ToolCallRecord, bool] | None:
        """The finished call's record and whether it was local; None when it is not running."""
        rec = self._running.pop(call_id, None)
        if rec is None:
            return None
        started = self._started.pop(call_id, rec.started_at)
        self.journal.tool_finished(rec, output, error, round((at - started) * 1000, 1))
        local = call_id in self._local
        self._local.discard(call_id)
        return rec, local

    def abandon(self, reason: str, *, forget: bool) -> None:
        """Record why the running tools have no result; ``forget``: their results are ignored too."""
        for rec in self._running.values():
            self.journal.tool_abandoned(rec, reason)
        if forget:
            self._running.clear()
            self._local.clear()
            self._started.clear()
