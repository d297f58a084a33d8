"""`GET /debug/tasks`: the server's live Trio task count, for `llc soak` to watch for leaks.

Answered only to loopback clients: it is an operator's probe, not a public API.
"""

from __future__ import annotations

import trio
from quart import Quart, Response, request

from llc.config import LOOPBACK_HOSTS


def task_count() -> int:
    def walk(task: trio.lowlevel.Task) -> int:
        return 1 + sum(walk(child) for nursery in task.child_nurseries for child in nursery.child_tasks)

    return walk(trio.lowlevel.current_root_task())


def register(app: Quart) -> None:
    @app.get("/debug/tasks")
    async def tasks() -> Response | dict[str, int]:
        if (request.remote_addr or "") not in LOOPBACK_HOSTS:
            return Response("loopback only\n", status=403)
        return {"tasks": task_count()}
