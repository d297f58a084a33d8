"""The pid file `llc-phone serve` writes (LLC_PID_FILE), so `llc-phone restart` can stop a server no supervisor owns."""

from __future__ import annotations

import os
from pathlib import Path


def write_pid(path: str | os.PathLike[str], pid: int | None = None) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(f"{pid or os.getpid()}\n", encoding="ascii")
    os.replace(tmp, p)


def read_pid(path: str | os.PathLike[str]) -> int | None:
    """The pid in the file, or None when the file is missing or holds no number."""
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def remove_pid(path: str | os.PathLike[str], pid: int | None = None) -> None:
    """Remove the file only if it still names ``pid`` (a newer server may have replaced it)."""
    if read_pid(path) == (pid or os.getpid()):
        Path(path).unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) holds no port and will never exit by itself.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
