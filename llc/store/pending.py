"""Call records the database could not take wait in a local JSON-lines file, never dropped.

A record whose write fails or times out is appended here (one JSON object a line, flushed
and fsynced: the process may be restarting because the database is down). The next
successful write, and every server start, replays the file into the store; records that
still fail stay for the next attempt.

A process killed mid-append leaves a torn last line (no newline). Before every append and
replay that tail is moved to ``<file>.torn`` (kept for a person, never replayed) and cut
off, so the next record starts on a line of its own instead of being glued to the fragment
and lost with it. Lines that do not parse are quarantined the same way. The rewrite after a
replay is fsynced before ``os.replace`` and the folder after it, so a crash leaves the old
file or the new one, never an empty one. Each line carries ``updated_at`` (when the record
was true): the store ignores a replayed record older than what it holds, so replaying
twice, or after the call's later writes got through, changes nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import trio

from llc.log import get_logger
from llc.store.backends import StoreError

log = get_logger("records")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PendingRecords:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.torn_path = self.path.with_name(self.path.name + ".torn")
        self._lock = trio.Lock()  # one writer of the file at a time within this process

    def has_pending(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except OSError:
            return False

    def _quarantine(self, chunks: list[bytes]) -> None:
        with self.torn_path.open("ab") as f:
            for chunk in chunks:
                f.write(chunk.rstrip(b"\n") + b"\n")
            f.flush()
            os.fsync(f.fileno())
        log.warning("%d unreadable pending record line(s) moved to %s; they are not replayed. Read them, "
                    "and delete the file once nothing there is wanted", len(chunks), self.torn_path,
                    extra={"file": str(self.path)})

    def repair_sync(self) -> bool:
        """Cut a torn last line off the file (kept in ``<file>.torn``); True if there was one."""
        try:
            f = self.path.open("r+b")
        except FileNotFoundError:
            return False
        with f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return False
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return False
            # Find the last newline: everything after it is the fragment. Reading back in
            # blocks keeps this cheap for a long file with a short torn tail.
            end, keep = size, 0
            while end > 0 and not keep:
                start = max(0, end - 65536)
                f.seek(start)
                at = f.read(end - start).rfind(b"\n")
                if at >= 0:
                    keep = start + at + 1
                end = start
            f.seek(keep)
            fragment = f.read()
            self._quarantine([fragment])
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        return True

    async def add(self, data: dict[str, Any]) -> None:
        stamped = {**data, "updated_at": data.get("updated_at") or time.time()}
        line = orjson.dumps(stamped, default=str) + b"\n"

        def append() -> None:
            self.repair_sync()
            with self.path.open("ab") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())

        async with self._lock:
            await trio.to_thread.run_sync(append)

    def _rewrite_sync(self, lines: list[bytes]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("wb") as f:
            f.write(b"".join(x + b"\n" for x in lines))
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)  # and the new name is on disk too

    async def replay(self, save: Callable[[dict[str, Any]], Awaitable[None]]) -> tuple[int, int]:
        """Write every pending record with ``save``; returns (written, still pending).

        Unreadable lines are quarantined (``<file>.torn``), counted in neither."""
        async with self._lock:
            await trio.to_thread.run_sync(self.repair_sync)
            if not self.has_pending():
                return 0, 0
            lines = [x for x in (await trio.to_thread.run_sync(self.path.read_bytes)).splitlines() if x.strip()]
            left: list[bytes] = []
            unreadable: list[bytes] = []
            written, reachable = 0, True
            for raw in lines:
                try:
                    data = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    unreadable.append(raw)
                    continue
                if not reachable:  # each try would wait the whole bound again
                    left.append(raw)
                    continue
                try:
                    await save(data)
                    written += 1
                except StoreError:  # the database did not answer in time: it is still down
                    left.append(raw)
                    reachable = False
                except Exception:  # noqa: BLE001  this record failed; the next may not
                    left.append(raw)
            if unreadable:
                await trio.to_thread.run_sync(self._quarantine, unreadable)
            await trio.to_thread.run_sync(self._rewrite_sync, left)
            return written, len(left)
