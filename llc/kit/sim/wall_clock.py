"""A server process's wall clock that a test can step, as NTP or a resumed VM would.

The server runs with libfaketime preloaded (Debian's ``faketime`` package): its ``time.time()``,
``datetime.now()`` and SQLite's clock read a file that holds an offset in seconds, re-read at
most once a second. Its monotonic clock is left alone, as a real step leaves it: Trio's timers,
deadlines and liveness checks must not move, only the wall clock the records are stamped with.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

INSTALL = "apt install faketime"
# The multi-threaded build: the store writes from worker threads.
_PATTERNS = ("/usr/lib/*/faketime/libfaketimeMT.so.1", "/usr/local/lib/faketime/libfaketimeMT.so.1",
             "/usr/lib/faketime/libfaketimeMT.so.1")


def find_libfaketime() -> str | None:
    for pattern in _PATTERNS:
        for path in sorted(glob.glob(pattern)):
            if os.access(path, os.R_OK):
                return path
    return None


class SteppedClock:
    """The offset file and the environment that makes a process read it."""

    def __init__(self, directory: Path, library: str) -> None:
        self.path = directory / "wall-clock-offset"
        self.library = library
        self.offset_s = 0.0
        self.step(0.0)

    def env(self) -> dict[str, str]:
        return {"LD_PRELOAD": self.library, "FAKETIME_TIMESTAMP_FILE": str(self.path),
                "FAKETIME_CACHE_DURATION": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                "DONT_FAKE_MONOTONIC": "1"}  # the older spelling of the same switch

    def step(self, offset_s: float) -> None:
        """From now on (within a second) the process's wall clock reads true time + ``offset_s``."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{offset_s:+.0f}\n")
        tmp.replace(self.path)  # atomic: the library never reads half a file
        self.offset_s = offset_s
