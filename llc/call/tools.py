"""Running a tool inside a call: as a task in the call's nursery, bounded, never fatal.

Audio keeps flowing while a tool runs (it is just another task); hangup cancels it with the
rest of the call. A tool that raises, times out or gets bad arguments produces an error
output for the model and a log line; the call goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import trio

from llc.core.actions import RunTool
from llc.core.levers import Lever
from llc.log import get_logger
from llc.tools.registry import ToolRegistry

if TYPE_CHECKING:
    from llc.call.bridge import CallBridge

log = get_logger("tools")


class CallToolContext:
    """What a tool may do to the call it runs in (see ``llc.tools.registry.ToolContext``)."""

    def __init__(self, bridge: "CallBridge", transfer_allow: tuple[str, ...]) -> None:
        self._bridge = bridge
        self._transfer_allow = transfer_allow

    @property
    def transfer_allow(self) -> tuple[str, ...]:
        """The allow-list of the call's current scenario (an IVR may switch it mid-call)."""
        mode = self._bridge.mode
        return mode.transfer_allow if mode is not None else self._transfer_allow

    @property
    def mode(self) -> Any:
        """The scenario's per-call state (store, caller, customer), or None outside a scenario."""
        return self._bridge.mode

    async def apply(self, levers: list[Lever]) -> None:
        """The mode's levers (a spoken menu choice), carried out by the call."""
        await self._bridge.execute(self._bridge.core.on_levers(levers, trio.current_time()))

    def now(self) -> float:
        return trio.current_time()

    @property
    def call_sid(self) -> str:
        return self._bridge.record.call_sid

    @property
    def params(self) -> dict[str, str]:
        return self._bridge.core.params

    async def hang_up_after_goodbye(self) -> None:
        await self._bridge.execute(self._bridge.core.request_hangup())

    async def redirect(self, twiml: str) -> None:
        await self._bridge.call_control.redirect(self.call_sid, twiml)


async def run_tool(bridge: "CallBridge", registry: ToolRegistry, ctx: CallToolContext, action: RunTool, timeout_s: float) -> None:
    result: Any = None
    error: str | None = None
    tool = registry.get(action.name)
    try:
        args = orjson.loads(action.arguments or "{}")
        if tool is None:
            error = f"no tool named {action.name!r}"
        elif not isinstance(args, dict):
            error = "arguments must be a JSON object"
        else:
            with trio.move_on_after(timeout_s) as scope:
                result = await tool.fn(ctx, **args)
            if scope.cancelled_caught:
                error = f"the tool took longer than {timeout_s:g} s and was stopped"
    except orjson.JSONDecodeError:
        error = "arguments are not valid JSON"
    except Exception as exc:  # a tool's bug is reported to the model, never fatal to the call
        error = f"{type(exc).__name__}: {exc}"
        log.warning("tool %s raised", action.name, exc_info=True, extra={"tool": action.name})
    output = orjson.dumps({"error": error} if error else result, default=str).decode()
    await bridge.execute(bridge.core.on_tool_result(action.call_id, output, trio.current_time(), error))
