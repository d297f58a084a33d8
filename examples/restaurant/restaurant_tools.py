"""The restaurant's own tools, in Python: tables and bookings.

`LLC_TOOLS=restaurant_tools` loads this module when `llc-phone` starts in this folder; every
`@tool` function here becomes a tool the scenario names in scenarios.toml. A real line would
read and write its booking system here (in a thread, if its client blocks).
"""

from __future__ import annotations

from typing import Annotated

from llc import ToolContext, tool

# The evening's free tables, by day; a real line asks its booking system.
FREE = {"friday": ["19:00", "21:00"], "saturday": ["18:30"], "sunday": ["12:30", "19:30"]}
BOOKED: list[dict[str, str | int]] = []


@tool
async def check_availability(ctx: ToolContext, day: Annotated[str, "the day the caller wants, e.g. Friday"],
                             party_size: int = 2) -> dict[str, object]:
    """Free tables on a day for a party. Call it before offering a time."""
    times = FREE.get(day.strip().lower(), [])
    return {"day": day, "party_size": party_size, "free": times if party_size <= 8 else []}


@tool
async def book_table(ctx: ToolContext, day: str, time: str, name: str, party_size: int = 2) -> dict[str, object]:
    """Book a table once the caller has chosen a day and a time and given a name."""
    if time not in FREE.get(day.strip().lower(), []):
        return {"ok": False, "error": f"{time} on {day} is not free; offer one of the free times"}
    booking = {"day": day, "time": time, "name": name, "party_size": party_size, "call": ctx.call_sid}
    BOOKED.append(booking)
    return {"ok": True, "booking": booking}
