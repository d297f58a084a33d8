"""`llc-phone demo`: a whole simulated call on loopback, no keys, no network, shown as it happens.

The call's record (and a scenario's customers, orders and messages) goes to the demo's own
database, ``llc-demo.db`` in the current folder (``--db`` to choose another), never the one a
server uses (LLC_DB_URL): a user looks at it afterwards with ``llc-phone calls --db llc-demo.db``,
and ``--console`` keeps a server up on it with the call console's URL printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import trio

from llc.log import setup_logging

CONSOLE_WAIT_NOTE = "Ctrl-C stops it."


DEMO_DB = "llc-demo.db"


def _db_url(args: argparse.Namespace) -> str:
    return str(args.db or DEMO_DB)


# What a team adds to llc that its own scenario needs in the demo too; the rest stays the demo's.
USER_SETTINGS = ("scenarios_path", "tool_modules", "webhook_secret")


def _scenario_script(args: argparse.Namespace) -> tuple[Any, dict[str, Any]] | int:
    """The caller script for ``--scenario`` (built in, or ``--script FILE``) and the user's own
    settings it runs with (LLC_SCENARIOS, LLC_TOOLS, ...); an exit code after one line on a mistake."""
    from llc.config import ConfigError, load_settings
    from llc.kit.sim.demo_script import ScriptError, load_script
    from llc.kit.sim.modes import SCRIPTS

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"llc-phone demo: {exc}")
        return 2
    mine = {key: getattr(settings, key) for key in USER_SETTINGS if getattr(settings, key)}
    if args.script is None:
        if args.scenario not in SCRIPTS:
            print(f"llc-phone demo --scenario {args.scenario}: not a built-in demo ({', '.join(SCRIPTS)}); give the "
                  "caller's script with --script FILE (see examples/restaurant/demo.toml)")
            return 2
        return SCRIPTS[args.scenario], mine
    try:
        return load_script(Path(args.script), args.scenario), mine
    except ScriptError as exc:
        print(f"llc-phone demo: {exc}")
        return 2


def _where(db_url: str) -> str:
    return str(Path(db_url).resolve()) if "://" not in db_url and db_url != ":memory:" else db_url


def run(args: argparse.Namespace) -> int:
    from llc.kit.demo import LiveView, render, render_mode, run_demo

    setup_logging("text", "INFO" if args.verbose else "WARNING")
    db_url = _db_url(args)
    tty = sys.stdout.isatty()
    def progress(text: str) -> None:  # a line rewritten in place, on a terminal
        sys.stdout.write(text)
        sys.stdout.flush()

    view = LiveView(print, tty=tty, progress=progress)
    if args.path == "sip":
        from llc.kit.sip_demo import render_sip, run_sip_demo

        sip = trio.run(lambda: run_sip_demo(db_url))
        ok, sid = render_sip(sip), sip.record["call_sid"]
    elif args.scenario:
        from llc.kit.sim.modes import run_mode

        played = _scenario_script(args)
        if isinstance(played, int):
            return played
        script, settings = played
        run = trio.run(lambda: run_mode(args.scenario, ttfb_ms=args.ttfb_ms, silence_ms=args.silence_ms, script=script,
                                        settings=settings, db_url=db_url, watch=view.watch))
        view.finish()
        print()
        ok = render_mode(run.record, run.twilio_call.dialed, run.messages, run.tickets, run.openai_errors, live=True)
        sid = run.record["call_sid"]
    else:
        demo = trio.run(lambda: run_demo(args.shape, args.ttfb_ms, args.silence_ms, db_url=db_url, watch=view.watch))
        view.finish()
        print()
        render(demo, args.shape, args.ttfb_ms, args.silence_ms, live=True)
        ok, sid = demo.ok, demo.record.call_sid
    print()
    print(f"The call's record is stored in the demo's own database, {_where(db_url)} (never the one a server "
          f"uses): `llc-phone calls show {sid} --db {args.db or DEMO_DB}` prints it.")
    if args.console:
        return _serve_console(db_url, args.console_port, sid) or (0 if ok else 1)
    print("`llc-phone demo --console` also opens the call console on it.")
    return 0 if ok else 1


def _serve_console(db_url: str, port: int, sid: str) -> int:
    """Keep a server up on the demo's database, for its console, until Ctrl-C."""
    from llc.app import build_server, serve
    from llc.config import Settings
    from llc.kit.sim.fake_openai import FakeOpenAI
    from llc.profile import load_profile

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            # The simulator stands in for OpenAI, so a call from the console's try page is a demo.
            fake = FakeOpenAI()
            await nursery.start(fake.serve)
            # The console lives on the admin listener: --console-port is its port; the public one is free.
            settings = Settings(port=0, admin_port=port, db_url=db_url, openai_realtime_url=fake.url)
            state = build_server(settings, load_profile())
            async def serve_then_stop(task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
                # Ctrl-C drains and stops the server (nothing is in flight): a clean exit, no traceback.
                await serve(state, handle_signals=True, task_status=task_status)
                nursery.cancel_scope.cancel()  # and the simulator with it

            await nursery.start(serve_then_stop)
            base = state.admin_url  # the admin listener (loopback): the console is never on the public port
            print(f"Call console: {base}/console/  (this call: {base}/console/calls/{sid})")
            print(f"Try a call from this browser (the simulator answers): {base}/console/try/")
            print(CONSOLE_WAIT_NOTE, flush=True)

    try:
        trio.run(main)
    except KeyboardInterrupt:
        print()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="a whole simulated call on loopback: no keys, no network")
    p.add_argument("--shape", choices=["ga", "flat"], default="ga", help="OpenAI session shape to speak (default ga)")
    p.add_argument("--ttfb-ms", type=int, default=300, help="simulated model time to first audio byte")
    p.add_argument("--silence-ms", type=int, default=400, help="simulated end-of-turn silence the VAD waits for")
    p.add_argument("--path", choices=["media", "sip"], default="media",
                   help="media: Twilio Media Streams through llc (default); sip: OpenAI Realtime over SIP, no relay")
    p.add_argument("--script", help="the caller's script for your own --scenario (TOML: see examples/restaurant)")
    p.add_argument("--scenario", help="a scenario end to end instead: ivr, receptionist, csr (built in), or your "
                                      "own from LLC_SCENARIOS with --script (scripted caller, DTMF, tools)")
    p.add_argument("--db", help="the demo's own database (default llc-demo.db here; never LLC_DB_URL, the server's)")
    p.add_argument("--console", action="store_true",
                   help="afterwards keep a server up with the call console on the demo's database")
    p.add_argument("--console-port", type=int, default=0, help="the console server's port (default: a free one)")
    p.add_argument("-v", "--verbose", action="store_true", help="show the server's log lines")
    p.set_defaults(func=run)
