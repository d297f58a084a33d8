"""`llc restart`: stop → kill orphaned listeners on PORT → start → wait for /healthz."""

from __future__ import annotations

import argparse

from llc.config import load_settings


def run(args: argparse.Namespace) -> int:
    from llc.ops.restart import restart
    from llc.ops.supervisor import detect

    settings = load_settings()
    if args.port is not None:
        settings = settings.with_overrides(port=args.port)
    supervisor = detect(settings, args.supervisor)
    return restart(settings, supervisor, lambda line: print(line, flush=True), health_timeout_s=args.timeout)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("restart", help="stop the server, kill orphaned listeners on PORT, start it, wait for /healthz")
    p.add_argument("--supervisor", choices=["auto", "systemd", "pm2", "pidfile"], default="auto",
                   help="who runs the server (auto: a systemd user unit or pm2 app named LLC_SERVICE_NAME, else the pid file)")
    p.add_argument("--port", type=int, help="override PORT")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for /healthz after the start (default 20)")
    p.set_defaults(func=run)
