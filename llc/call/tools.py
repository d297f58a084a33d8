"""Running a tool inside a call: as a task in the call's nursery, bounded, never fatal.

Audio keeps flowing while a tool runs (it is just another task); hangup cancels it with the
rest of the call. A tool that raises, times out, gets bad arguments, returns something that is
not JSON or an output over ``MAX_OUTPUT_BYTES`` produces an ``{"error": ...}`` output for the
model and a log line; the record's tool call carries the same error. The call goes on.
"""

from __future__ import annotations

from typing import Any

import orjson
import trio

from llc.core.actions import RunTool
from llc.log import get_logger
from llc.tools.registry import ToolContext, ToolFailed, ToolRegistry

log = get_logger("tools")
# The output goes into the model's context and the call record: a runaway result (a whole table,
# a file) would cost tokens and latency on every later turn.
MAX_OUTPUT_BYTES = 64 * 1024


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
    if error is None:
        output, error = _encode(result)
        if error is not None:
            log.warning("tool %s: %s", action.name, error, extra={"tool": action.name})
    if error is not None:
        output = orjson.dumps({"error": error}).decode()
    return output, error


def _encode(result: Any) -> tuple[str, str | None]:
    """The result as JSON text, or the error saying why it cannot be sent."""
    try:
        data = orjson.dumps(result)
    except TypeError as exc:  # orjson.JSONEncodeError: a set, an object, a bytes value, a non-str key...
        return "", f"the tool returned something that is not JSON ({exc}); return dicts, lists, str, numbers, bools"
    if len(data) > MAX_OUTPUT_BYTES:
        return "", (f"the tool's output is {len(data) / 1024:.0f} KiB, over the {MAX_OUTPUT_BYTES // 1024} KiB "
                    "limit; return less (a summary, the first results)")
    return data.decode(), None
