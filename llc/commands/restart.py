"""`llc-phone restart`: stop → kill orphaned llc listeners on PORT → start → wait for /healthz (`--dry-run`, `--force`)."""

from __future__ import annotations

import argparse

from llc.config import load_settings


def run(args: argparse.Namespace) -> int:
    from llc.ops.restart import dry_run, restart
    from llc.ops.supervisor import detect

    settings = load_settings()
    if args.port is not None:
        settings = settings.with_overrides(port=args.port)
    supervisor = detect(settings, args.supervisor)
    out = lambda line: print(line, flush=True)
    if args.dry_run:
        return dry_run(settings, supervisor, out, force=args.force)
    return restart(settings, supervisor, out, health_timeout_s=args.timeout, force=args.force)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("restart", help="stop the server, kill orphaned llc listeners on PORT (others only with --force), "
                       "start it, wait for /healthz; --dry-run shows what it would do")
    p.add_argument("--supervisor", choices=["auto", "systemd", "pm2", "pidfile"], default="auto",
                   help="who runs the server (auto: a systemd user unit or pm2 app named LLC_SERVICE_NAME, else the pid file)")
    p.add_argument("--port", type=int, help="override PORT")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for /healthz after the start (default 20)")
    p.add_argument("--dry-run", action="store_true", help="show what would be stopped, killed and started; touch nothing")
    p.add_argument("--force", action="store_true",
                   help="also kill listeners on PORT that are not llc-phone (named first); without it they are left alone")
    p.set_defaults(func=run)
