"""`GET /debug/tasks`: the server's live Trio task count, for `llc-phone soak` to watch for leaks.

Served on the admin listener only (llc/web/admin.py guards it): an operator's probe, not a public API.
"""

from __future__ import annotations

from collections import Counter

import trio
from quart import Quart


def task_names() -> Counter[str]:
    """How many live tasks carry each name: a leak shows up as the name that grew."""
    names: Counter[str] = Counter()

    def walk(task: trio.lowlevel.Task) -> None:
        names[task.name] += 1
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child)

    root = trio.lowlevel.current_root_task()
    if root is not None:
        walk(root)
    return names


def register(app: Quart) -> None:
    @app.get("/debug/tasks")
    async def tasks() -> dict[str, object]:
        names = task_names()
        return {"tasks": sum(names.values()), "names": dict(names)}
