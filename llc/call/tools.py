"""Running a tool inside a call: as a task in the call's nursery, bounded, never fatal.

Audio keeps flowing while a tool runs (it is just another task); hangup cancels it with the
rest of the call. A tool that raises, times out or gets bad arguments produces an error
output for the model and a log line; the call goes on.
"""

from __future__ import annotations

from typing import Any

import orjson
import trio

from llc.core.actions import RunTool
from llc.log import get_logger
from llc.tools.registry import ToolContext, ToolFailed, ToolRegistry

log = get_logger("tools")


async def run_tool(registry: ToolRegistry, ctx: ToolContext, action: RunTool, timeout_s: float) -> tuple[str, str | None]:
    """Run ``action``'s tool; returns (output JSON for the model, error or None)."""
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
    except ToolFailed as exc:  # the tool logged it already
        error = str(exc)
    except Exception as exc:  # a tool's bug is reported to the model, never fatal to the call
        error = f"{type(exc).__name__}: {exc}"
        log.warning("tool %s raised", action.name, exc_info=True, extra={"tool": action.name})
    return orjson.dumps({"error": error} if error else result, default=str).decode(), error
