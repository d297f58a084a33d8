"""Every path `llc-phone serve` will write, checked before it starts.

Why before: each of these otherwise fails late and loudly — a log file when logging starts (a
traceback), the pid file once the port is taken (an exception group, after "serving"), the
recordings folder at each call's end (errors per call, and a record naming a WAV that does
not exist). Checked here, each is one line naming the variable and the fix, and nothing starts.
"""

from __future__ import annotations

import os
from pathlib import Path

from llc.config import Settings
from llc.store.database import DEFAULT_DB


def sqlite_file(db_url: str) -> str | None:
    """The file a SQLite ``LLC_DB_URL`` names; None for PostgreSQL or an in-memory database."""
    if db_url.startswith(("postgresql://", "postgres://")) or ("://" in db_url and not db_url.startswith("sqlite://")):
        return None
    path = db_url.removeprefix("sqlite://").removeprefix("/") if db_url.startswith("sqlite://") else db_url
    return None if path in ("", ":memory:") else path


def _writable_folder(folder: Path) -> str:
    """"" when files can be created in ``folder``, else why not."""
    if not folder.exists():
        return f"the folder {folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is not writable by this user"
    return ""


def why_not_writable(path: str, folder: bool = False) -> str:
    """"" when ``path`` (a file, or with ``folder`` a folder that may still be created) can be written."""
    p = Path(path).expanduser()
    if folder:
        if p.exists():
            return _writable_folder(p)
        parent = next((a for a in p.absolute().parents if a.exists()), Path("/"))
        return _writable_folder(parent)  # created at the first recording, under its nearest existing folder
    if p.is_dir():
        return f"{p} is a folder, not a file"
    if p.exists():
        return "" if os.access(p, os.W_OK) else f"{p} is not writable by this user"
    return _writable_folder(p.parent if str(p.parent) else Path("."))


def unwritable_paths(settings: Settings) -> list[str]:
    """One problem line per path the server would fail to write."""
    checks: list[tuple[str, str, bool]] = [("LLC_PID_FILE", settings.pid_file, False),
                                           ("LLC_PENDING_RECORDS", settings.pending_records_path, False)]
    if settings.log_file:
        checks.append(("LLC_LOG_FILE", settings.log_file, False))
    if settings.record_audio:
        checks.append(("LLC_RECORDINGS_DIR", settings.recordings_dir, True))
    db = sqlite_file(settings.db_url or DEFAULT_DB)
    if db is not None:
        checks.append(("LLC_DB_URL", db, False))
    problems = []
    for name, path, folder in checks:
        if why := why_not_writable(path, folder):
            problems.append(f"{name}={path}: {why}; set {name} to a path in a folder this user can write "
                            "(or create the folder)")
    return problems
