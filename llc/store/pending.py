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
file or the new one, never an empty one. The store decides which write of a call wins by the
record (ended over open, then its ``seq``), so replaying twice, or after the call's later
writes got through, changes nothing. Replays go in batches that each keep their progress
(see "a replay in batches" below).
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

REPLAY_BATCH = 500  # records written between two marks of progress


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
        self.done_path = self.path.with_name(self.path.name + ".done")  # how far a replay has stored
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

    # ---- a replay in batches --------------------------------------------------------------
    #
    # Why batches with a marker: a long file (a day of calls kept while the database was down)
    # takes longer to replay than any one bound, and a pass that only rewrote the file once it
    # was through would start again from the first record each time it was cut short, forever.
    # So after each batch the byte offset of what is stored goes to ``<file>.done`` (fsynced):
    # a cancelled or crashed pass keeps its progress, and the next one resumes there (at worst
    # one batch is written twice, which the store ignores). A record that failed in a batch is
    # appended at the end, past the marker, for the next pass. The file is rewritten once, when
    # a pass has reached the end it started with; records added meanwhile are kept.

    def _read_marker_sync(self) -> int:
        try:
            offset = int(self.done_path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0
        size = self.path.stat().st_size if self.path.exists() else 0
        return offset if 0 <= offset <= size else 0  # a marker from another file: start over

    def _batch_sync(self, start: int, end: int, n: int) -> tuple[list[bytes], int]:
        lines: list[bytes] = []
        with self.path.open("rb") as f:
            f.seek(start)
            while len(lines) < n and f.tell() < end:
                if line := f.readline().strip():  # a blank line is no record
                    lines.append(line)
            return lines, f.tell()

    def _commit_sync(self, failed: list[bytes], offset: int) -> None:
        if failed:
            with self.path.open("ab") as f:
                f.write(b"".join(x + b"\n" for x in failed))
                f.flush()
                os.fsync(f.fileno())
        tmp = self.done_path.with_name(self.done_path.name + ".tmp")
        with tmp.open("w") as f:
            f.write(str(offset))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.done_path)

    def _finish_sync(self, end: int) -> int:
        """The pass reached ``end``: keep only what came after it; returns how many lines that is."""
        with self.path.open("rb") as f:
            f.seek(end)
            rest = [x for x in f.read().splitlines() if x.strip()]
        self.done_path.unlink(missing_ok=True)  # first: a crash before the rewrite replays from the start
        self._rewrite_sync(rest)
        return len(rest)

    def _count_after_marker_sync(self) -> int:
        with self.path.open("rb") as f:
            f.seek(self._read_marker_sync())
            return sum(1 for line in f if line.strip())

    async def replay(self, save: Callable[[dict[str, Any]], Awaitable[None]],
                     batch: int = REPLAY_BATCH) -> tuple[int, int]:
        """Write pending records with ``save``, ``batch`` at a time, each batch's progress kept;
        returns (written, still pending). Unreadable lines are quarantined (``<file>.torn``),
        counted in neither. The lock is taken per batch: a call's final record waits for one
        batch at most to be appended."""
        async with self._lock:
            await trio.to_thread.run_sync(self.repair_sync)
            if not self.has_pending():
                return 0, 0
            start = await trio.to_thread.run_sync(self._read_marker_sync)
            end = self.path.stat().st_size
        written, reachable = 0, True
        while reachable and start < end:
            async with self._lock:
                lines, after = await trio.to_thread.run_sync(self._batch_sync, start, end, batch)
                failed, unreadable, stored = [], [], 0
                for raw in lines:
                    try:
                        data = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        unreadable.append(raw)
                        continue
                    if not reachable:  # each try would wait the whole bound again
                        failed.append(raw)
                        continue
                    try:
                        await save(data)
                        stored += 1
                    except StoreError:  # the database did not answer in time: it is still down
                        failed.append(raw)
                        reachable = False
                    except Exception:  # noqa: BLE001  this record failed; the next may not
                        failed.append(raw)
                if unreadable:
                    await trio.to_thread.run_sync(self._quarantine, unreadable)
                if not stored and not unreadable:
                    break  # nothing moved: the file stays as it was
                await trio.to_thread.run_sync(self._commit_sync, failed, after)
                written += stored
                start = after
        async with self._lock:
            if start >= end:
                return written, await trio.to_thread.run_sync(self._finish_sync, end)
            return written, await trio.to_thread.run_sync(self._count_after_marker_sync)
