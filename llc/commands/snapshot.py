"""`llc-phone snapshot save|list|diff|restore`: known-good copies of the tuned profile."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from llc.config import Settings, load_settings

if TYPE_CHECKING:
    from llc.ops.snapshots import Live

# Without LLC_PROFILE the live profile is ./profile.toml of the server's working directory.
UNSET_NOTE = ("note: LLC_PROFILE is not set, so `llc-phone serve` reads {path} from the folder it starts in "
              "(a service's WorkingDirectory); set LLC_PROFILE={absolute} to pin it.")


def _where(live: Live) -> str:
    return str(live.path) if live.exists else f"the bundled default (no {live.path}, LLC_PROFILE unset)"


def _save(settings: Settings, args: argparse.Namespace) -> int:
    from llc.ops.snapshots import save

    target, live = save(settings)
    print(f"saved {live.path} -> {target}")
    if not live.exists:
        print(f"created {live.path} from the bundled default so there is a file to tune; it is now the live profile.")
    if not settings.profile_path:
        print(UNSET_NOTE.format(path=live.path, absolute=live.path.resolve()))
    return 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    from llc.ops.snapshots import list_snapshots, live_profile

    directory = Path(settings.snapshot_dir)
    found = list_snapshots(directory)
    if not found:
        print(f"no snapshots in {directory}/; make one with `llc-phone snapshot save`")
        return 0
    live = live_profile(settings)
    print(f"live profile: {_where(live)}")
    for path in found:
        same = "  <- live (same text)" if path.read_text(encoding="utf-8") == live.text else ""
        print(f"{path.name:<36} {path.stat().st_size:>6} bytes{same}")
    return 0


def _diff(settings: Settings, args: argparse.Namespace) -> int:
    from llc.ops.snapshots import diff

    snap, text = diff(settings, args.name)
    if not text:
        print(f"the live profile is the same as {snap.name}")
        return 0
    print(text, end="")
    return 1  # like diff(1): 1 means "they differ"


def _restore(settings: Settings, args: argparse.Namespace) -> int:
    from llc.ops.snapshots import restore

    done = restore(settings, args.name)
    print(f"validated {done.snapshot.name}")
    if done.backup:
        print(f"kept the replaced profile as {done.backup}")
    print(f"restored {done.snapshot} -> {done.target}")
    if not settings.profile_path:
        print(UNSET_NOTE.format(path=done.target, absolute=done.target.resolve()))
    if not args.restart:
        print("a running server read its profile at start-up: run `llc-phone restart` (or pass --restart) for it "
              "to load this one; check with `llc-phone doctor` (profile line)")
        return 0
    from llc.ops.restart import restart
    from llc.ops.supervisor import detect

    return restart(settings, detect(settings, args.supervisor), lambda line: print(line, flush=True))


def run(args: argparse.Namespace) -> int:
    return int(args.action(load_settings(), args))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("snapshot", help="save, list, diff and restore known-good copies of the tuned profile")
    actions = p.add_subparsers(dest="snapshot_command", required=True)
    s = actions.add_parser("save", help="copy the live profile to snapshots/profile-TUNED-<date>.toml (never overwrites)")
    s.set_defaults(action=_save)
    s = actions.add_parser("list", help="the snapshots, oldest first, marking the one equal to the live profile")
    s.set_defaults(action=_list)
    s = actions.add_parser("diff", help="what changed from a snapshot (default: the newest) to the live profile")
    s.add_argument("name", nargs="?", help="snapshot file name, name without .toml, or date")
    s.set_defaults(action=_diff)
    s = actions.add_parser("restore", help="validate a snapshot, back up the live profile, replace it")
    s.add_argument("name", help="snapshot file name, name without .toml, or date")
    s.add_argument("--restart", action="store_true", help="then run the restart procedure (llc-phone restart)")
    s.add_argument("--supervisor", choices=["auto", "systemd", "pm2", "pidfile"], default="auto",
                   help="how to restart the server after restoring (default auto: whichever runs it)")
    s.set_defaults(action=_restore)
    p.set_defaults(func=run)
