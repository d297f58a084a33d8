"""Call records the database could not take wait in a local JSON-lines file, never dropped.

A record whose write fails or times out is appended here (one JSON object a line, flushed
and fsynced: the process may be restarting because the database is down). The next
successful write, and every server start, replays the file into the store; records that
still fail stay for the next attempt.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Awaitable, Callable

import orjson
import trio


class PendingRecords:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = trio.Lock()  # one writer of the file at a time within this process

    def has_pending(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except OSError:
            return False

    async def add(self, data: dict[str, Any]) -> None:
        line = orjson.dumps(data, default=str) + b"\n"

        def append() -> None:
            with self.path.open("ab") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())

        async with self._lock:
            await trio.to_thread.run_sync(append)

    async def replay(self, save: Callable[[dict[str, Any]], Awaitable[None]]) -> tuple[int, int]:
        """Write every pending record with ``save``; returns (written, still pending)."""
        async with self._lock:
            if not self.has_pending():
                return 0, 0
            lines = (await trio.to_thread.run_sync(self.path.read_bytes)).splitlines()
            left: list[bytes] = []
            for raw in lines:
                if not raw.strip():
                    continue
                try:
                    await save(orjson.loads(raw))
                except orjson.JSONDecodeError:
                    left.append(raw)  # keep what cannot be read: a person may still want it
                except Exception:
                    left.append(raw)
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            await trio.to_thread.run_sync(tmp.write_bytes, b"".join(x + b"\n" for x in left))
            await trio.to_thread.run_sync(os.replace, tmp, self.path)
            return len(lines) - len(left), len(left)
