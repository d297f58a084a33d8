"""`GET /debug/tasks`: the server's live Trio task count, for `llc soak` to watch for leaks.

Served on the admin listener only (llc/web/admin.py guards it): an operator's probe, not a public API.
"""

from __future__ import annotations

import trio
from quart import Quart


def task_count() -> int:
    def walk(task: trio.lowlevel.Task) -> int:
        return 1 + sum(walk(child) for nursery in task.child_nurseries for child in nursery.child_tasks)

    root = trio.lowlevel.current_root_task()
    return walk(root) if root is not None else 0


def register(app: Quart) -> None:
    @app.get("/debug/tasks")
    async def tasks() -> dict[str, int]:
        return {"tasks": task_count()}
