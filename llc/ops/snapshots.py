"""Snapshots of the tuned profile: save, list, diff against the live profile, restore.

A known-good copy of the file most affected by tuning is kept, so a tuning that went wrong is
undone by restoring it rather than by piling patches. Here that file is the profile TOML. The
*live profile* is the file `llc-phone serve` reads, by the one rule in
``llc.profile.live_profile_path``: LLC_PROFILE when set, else ``./profile.toml`` when it
exists, else the bundled default (saving then creates ``profile.toml`` from that default, so
there is a file to tune, and from then on `llc-phone serve` started in this folder uses it).

Snapshots are ``<LLC_SNAPSHOT_DIR>/profile-TUNED-<YYYY-MM-DD>.toml``, never overwritten (a
second save that day gets ``-2``, then ``-3``). A restore validates through ``parse_profile``
first and refuses a broken snapshot before touching anything, then keeps a copy of what it
replaces in ``<LLC_SNAPSHOT_DIR>/backups/``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from llc.config import Settings
from llc.profile import DEFAULT_LIVE, ProfileError, live_profile_path, load_profile, parse_profile

PREFIX = "profile-TUNED-"
_NAME = re.compile(r"profile-TUNED-(\d{4}-\d{2}-\d{2})(?:-(\d+))?\.toml")


@dataclass(frozen=True)
class Live:
    path: Path
    text: str
    exists: bool  # False: the server runs the bundled default (LLC_PROFILE unset, no profile.toml)


def bundled_default_text() -> str:
    return resources.files("llc.profiles").joinpath("default.toml").read_text(encoding="utf-8")


def live_profile(settings: Settings) -> Live:
    """The profile `llc-phone serve` would run now (``live_profile_path``), and where a save would write it."""
    live = live_profile_path(settings.profile_path)
    if live is None:
        return Live(Path(DEFAULT_LIVE), bundled_default_text(), False)
    path = Path(live)
    if not path.is_file():
        load_profile(live)  # raises the usual "LLC_PROFILE: no such file" error
    return Live(path, path.read_text(encoding="utf-8"), True)


def _sort_key(path: Path) -> tuple[str, int]:
    m = _NAME.fullmatch(path.name)
    return (m.group(1), int(m.group(2) or 1)) if m else (path.name, 0)


def list_snapshots(directory: Path) -> list[Path]:
    """Snapshots oldest first (by date in the name, then suffix)."""
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir() if _NAME.fullmatch(p.name)), key=_sort_key)


def next_name(directory: Path, day: dt.date) -> Path:
    base = directory / f"{PREFIX}{day.isoformat()}.toml"
    n = 2
    candidate = base
    while candidate.exists():
        candidate = directory / f"{PREFIX}{day.isoformat()}-{n}.toml"
        n += 1
    return candidate


def resolve(directory: Path, name: str | None) -> Path:
    """A snapshot by file name, name without .toml, date, or path; None means the newest."""
    if name is None:
        found = list_snapshots(directory)
        if not found:
            raise ProfileError(f"no snapshots in {directory}/; make one with `llc-phone snapshot save`")
        return found[-1]
    candidates = [Path(name), directory / name, directory / f"{name}.toml", directory / f"{PREFIX}{name}.toml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    known = ", ".join(p.name for p in list_snapshots(directory)) or "none"
    raise ProfileError(f"no snapshot {name!r} in {directory}/ (have: {known}); see `llc-phone snapshot list`")


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save(settings: Settings, day: dt.date | None = None) -> tuple[Path, Live]:
    """Snapshot the live profile (it must parse: a snapshot is a known-good state)."""
    live = live_profile(settings)
    parse_profile(live.text, str(live.path) if live.exists else "the bundled default profile")
    if not live.exists:
        _write_atomic(live.path, live.text)
    directory = Path(settings.snapshot_dir)
    directory.mkdir(parents=True, exist_ok=True)
    target = next_name(directory, day or dt.date.today())
    with open(target, "x", encoding="utf-8") as fh:  # "x": never overwrite, even in a race
        fh.write(live.text)
    return target, live


def diff(settings: Settings, name: str | None = None) -> tuple[Path, str]:
    """Unified diff from the snapshot to the live profile ('' when they are the same)."""
    snap = resolve(Path(settings.snapshot_dir), name)
    live = live_profile(settings)
    lines = difflib.unified_diff(
        snap.read_text(encoding="utf-8").splitlines(keepends=True), live.text.splitlines(keepends=True),
        fromfile=str(snap), tofile=str(live.path) + ("" if live.exists else " (bundled default)"),
    )
    return snap, "".join(lines)


@dataclass(frozen=True)
class Restored:
    snapshot: Path
    target: Path
    backup: Path | None


def restore(settings: Settings, name: str, now: dt.datetime | None = None) -> Restored:
    """Validate ``name``, back up the live profile, then replace it. A ProfileError touches nothing."""
    directory = Path(settings.snapshot_dir)
    snap = resolve(directory, name)
    text = snap.read_text(encoding="utf-8")
    try:
        parse_profile(text, str(snap))
    except ProfileError as exc:
        raise ProfileError(f"refusing to restore {snap.name}: {exc}; the live profile was not changed") from None
    target = Path(settings.profile_path or DEFAULT_LIVE)
    backup: Path | None = None
    if target.is_file():
        stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
        backup = directory / "backups" / f"profile-BACKUP-{stamp}.toml"
        n = 2
        while backup.exists():
            backup = directory / "backups" / f"profile-BACKUP-{stamp}-{n}.toml"
            n += 1
        backup.parent.mkdir(parents=True, exist_ok=True)
        backup.write_bytes(target.read_bytes())
    _write_atomic(target, text)
    return Restored(snap, target, backup)
