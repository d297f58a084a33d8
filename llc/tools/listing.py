"""What `llc-phone tools` and `llc-phone doctor` say about the tools: name, source, description."""

from __future__ import annotations

from typing import Any

from llc.tools.registry import ToolRegistry


def tool_rows(registry: ToolRegistry) -> list[dict[str, Any]]:
    return [{"name": t.name, "source": t.source, "description": t.description, "parameters": t.parameters}
            for t in registry.tools.values()]


def render_rows(rows: list[dict[str, Any]]) -> str:
    """One line each: name, source, the description's first line."""
    if not rows:
        return "no tools"
    name_w = max(len(r["name"]) for r in rows)
    source_w = max(len(r["source"]) for r in rows)
    lines = [f"{'TOOL':<{name_w}}  {'SOURCE':<{source_w}}  DESCRIPTION"]
    for r in rows:
        first = (r["description"].splitlines() or [""])[0]
        lines.append(f"{r['name']:<{name_w}}  {r['source']:<{source_w}}  {first}")
    return "\n".join(lines)


def summary(registry: ToolRegistry) -> str:
    """``end_call (built-in), check_availability (module my_tools), ...`` for doctor's line."""
    return ", ".join(f"{t.name} ({t.source})" for t in registry.tools.values())
