"""Where the server's log is, and the recent error lines in it (for `llc-phone doctor`).

By default `llc-phone serve` logs to stderr: journald under the systemd unit, pm2's error log under
pm2, ``llc-phone.out`` next to the pid file when `llc-phone restart` started it. LLC_LOG_FILE adds a
JSON-lines file that is always readable here. Lines are JSON objects with ``ts`` and
``level`` (llc.log.JsonFormatter); anything else is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from llc.config import Settings
from llc.ops.supervisor import CONSOLE_LOG, systemd_manages

TAIL_BYTES = 4 * 1024 * 1024  # read at most the last 4 MiB of a log file
ERROR_LEVELS = {"error", "critical"}


@dataclass
class LogScan:
    where: str  # a path or "journald (…)"
    errors: int = 0
    latest: list[str] = field(default_factory=list)  # newest last, a few
    read_with: str = ""  # the command a person runs to read them


def scan_lines(lines: list[bytes], since_ts: float, keep: int = 3) -> tuple[int, list[str]]:
    """Count JSON log lines at error level with ts >= since_ts; keep the last ``keep`` messages."""
    count, latest = 0, []
    for line in lines:
        line = line.strip()
        if not line.startswith(b"{"):
            continue
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(entry, dict) or entry.get("level") not in ERROR_LEVELS:
            continue
        ts = entry.get("ts")
        if isinstance(ts, (int, float)) and ts < since_ts:
            continue
        count += 1
        latest.append(" ".join(f"{entry.get('logger', '')}: {entry.get('msg', '')}".split()))  # whole, on one line
    return count, latest[-keep:]


def scan_file(path: Path, since_ts: float) -> LogScan:
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - TAIL_BYTES))
        lines = fh.read().splitlines()
    errors, latest = scan_lines(lines, since_ts)
    return LogScan(str(path), errors, latest, f"grep '\"level\":\"error\"' {path} | tail")


def _journald(unit: str, window_s: float) -> LogScan | None:
    if shutil.which("journalctl") is None:
        return None
    cmd = ["journalctl", "--user", "-u", unit, "-p", "err", "--since", f"-{int(window_s)}s", "-o", "cat", "-q", "--no-pager"]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    # journald's priority comes from the stream, not our JSON: count our own error lines instead.
    errors, latest = scan_lines(done.stdout.splitlines(), time.time() - window_s)
    return LogScan(f"journald ({unit})", errors, latest, f"journalctl --user -u {unit} --since -{int(window_s // 60)}min")


def log_sources(settings: Settings) -> list[Path]:
    """Log files doctor can read, most specific first."""
    out: list[Path] = []
    if settings.log_file:
        out.append(Path(settings.log_file))
    out.append(Path(settings.pid_file).with_name(CONSOLE_LOG))
    out.append(Path.home() / ".pm2" / "logs" / f"{settings.service_name}-error.log")
    return out


def recent_errors(settings: Settings, window_s: float) -> LogScan | None:
    """Scan the first log that exists (LLC_LOG_FILE, llc-phone.out, pm2's, then journald); None: none found."""
    since = time.time() - window_s
    for path in log_sources(settings):
        if path.is_file():
            return scan_file(path, since)
    if not systemd_manages(settings.service_name, subprocess.run):
        return None
    unit = settings.service_name if settings.service_name.endswith(".service") else f"{settings.service_name}.service"
    return _journald(unit, window_s)
