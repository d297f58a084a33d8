"""llc-phone: OpenAI Realtime voice agents on Twilio phone calls.

The public API for your own tools (docs/05-async-tools.md, "Your own tools in Python")::

    from llc import tool, ToolContext

    @tool
    async def check_availability(ctx: ToolContext, day: str, party_size: int = 2) -> dict:
        \"\"\"Free tables for a day.\"\"\"

They are imported on first use, so ``import llc.config`` and the command's start stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llc.tools.decorator import tool
    from llc.tools.registry import ToolContext
    from llc.tools.schema import ToolSchemaError

__all__ = ["ToolContext", "ToolSchemaError", "tool"]


def __getattr__(name: str) -> Any:
    if name == "tool":
        from llc.tools.decorator import tool

        return tool
    if name == "ToolContext":
        from llc.tools.registry import ToolContext

        return ToolContext
    if name == "ToolSchemaError":
        from llc.tools.schema import ToolSchemaError

        return ToolSchemaError
    raise AttributeError(f"module 'llc' has no attribute {name!r}")
