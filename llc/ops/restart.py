"""The safe restart as a tool: stop → kill orphaned listeners on PORT → start → /healthz.

A bare restart can leave a stale listener holding the port: after the supervisor's stop,
whatever still LISTENS on PORT is an orphan. Orphaned llc servers are signalled (SIGTERM,
then SIGKILL after a grace period), each one named before it is touched; a process that is
not llc-phone (someone's `python3 -m http.server`) is named and left alone unless ``--force`` says
to kill it too. ``--dry-run`` shows all of that without touching anything. If the port stays
taken the procedure stops there with a non-zero exit and says who holds it.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable

from llc.config import Settings
from llc.ops.health import wait_healthy
from llc.ops.pidfile import pid_alive, read_pid
from llc.ops.ports import Listener, cmdline, listeners, server_ports
from llc.ops.supervisor import Out, PidFile, Supervisor, SupervisorError, wait_exit

Kill = Callable[[int, int], None]
ORPHAN_GRACE_S = 3.0
# `llc-phone serve`, `/venv/bin/llc-phone serve --port 9000`, `python -m llc serve`, `python -m llc.cli serve`.
_LLC_SERVE = re.compile(r"(?:^|[\s/])llc(?:-phone|\.cli)?\s+serve\b")


def is_llc_server(entry: Listener) -> bool:
    """Whether the listener is an `llc-phone serve` process (by its command line)."""
    return entry.pid is not None and _LLC_SERVE.search(entry.cmdline) is not None


def _targets(found: list[Listener], force: bool) -> list[int]:
    """The pids the sweep may signal: llc servers, and with ``force`` anything else we can see."""
    return sorted({e.pid for e in found if e.pid is not None and (force or is_llc_server(e))} - {os.getpid()})


def kill_orphans(port: int, out: Out, kill: Kill = os.kill, grace_s: float = ORPHAN_GRACE_S,
                 force: bool = False) -> list[Listener]:
    """Signal every llc server still listening on ``port`` (never this one), and with ``force``
    every other listener too; returns what was found."""
    found = listeners(port)
    pids = _targets(found, force)
    if not found:
        out(f"  nothing listens on port {port}")
    for entry in found:
        if is_llc_server(entry):
            out(f"  orphan: {entry.describe()}")
        elif force:
            out(f"  not llc-phone, killing it (--force): {entry.describe()}")
        else:
            out(f"  not llc-phone, left alone: {entry.describe()}")
    for pid in pids:
        out(f"  SIGTERM pid {pid}")
        try:
            kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    for pid in pids:
        if not wait_exit(pid, grace_s):
            out(f"  pid {pid} ignored SIGTERM for {grace_s:g} s: SIGKILL")
            try:
                kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return found


def wait_port_free(port: int, timeout_s: float) -> list[Listener]:
    """The listeners left on ``port`` after waiting up to ``timeout_s`` for them to go."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = listeners(port)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def dry_run(settings: Settings, supervisor: Supervisor, out: Out = print, force: bool = False) -> int:
    """What ``restart`` would stop, signal and start, touching nothing."""
    out("dry run: nothing is stopped, signalled or started")
    out(f"1/4 would stop ({supervisor.describe()})")
    if isinstance(supervisor, PidFile):
        pid = read_pid(supervisor.path)
        if pid is None or not pid_alive(pid):
            out(f"  {supervisor.path} names no running process: nothing to stop this way")
        else:
            out(f"  would SIGTERM pid {pid} ({cmdline(pid) or 'command line not visible'}) and wait for its drain")
    for name, port in server_ports(settings):
        out(f"2/4 listeners on port {port} ({name})")
        found = listeners(port)
        if not found:
            out("  nothing listens there")
        for entry in found:
            if is_llc_server(entry):
                out(f"  would SIGTERM (an llc server): {entry.describe()}")
            elif force and entry.pid is not None:
                out(f"  would kill (not llc-phone; --force): {entry.describe()}")
            else:
                out(f"  would leave alone (not llc-phone; pass --force to kill it): {entry.describe()}")
    out(f"3/4 would start ({supervisor.describe()}) and 4/4 wait for /healthz")
    return 0


def restart(
    settings: Settings,
    supervisor: Supervisor,
    out: Out = print,
    *,
    kill: Kill = os.kill,
    health_timeout_s: float = 20.0,
    port_free_timeout_s: float = 5.0,
    orphan_grace_s: float = ORPHAN_GRACE_S,
    force: bool = False,
) -> int:
    """Run the procedure; 0 when /healthz answers at the end, 1 (with the reason printed) otherwise."""
    ports = server_ports(settings)
    out(f"1/4 stop ({supervisor.describe()})")
    try:
        supervisor.stop(out)
    except SupervisorError as exc:
        out(f"  {exc}; carrying on: the orphan sweep frees the port")
    for name, port in ports:
        out(f"2/4 kill orphaned listeners on port {port} ({name})")
        if listeners(port):
            wait_port_free(port, 1.0)  # a stopping server may need a moment to close its socket
        kill_orphans(port, out, kill, orphan_grace_s, force)
        left = wait_port_free(port, port_free_timeout_s if _targets(listeners(port), force) else 0.2)
        if left:
            holders = "; ".join(entry.describe() for entry in left)
            out(f"FAILED: port {port} is still taken: {holders}.")
            if not force and not all(is_llc_server(entry) for entry in left):
                out("  It is not llc-phone, so it was left alone: stop it yourself, or run `llc-phone restart --force` "
                    f"to kill it (`llc-phone restart --dry-run` shows what that would do), or set {name} to another port.")
            else:
                out(f"  Free it (as its owner: `ss -ltnp 'sport = :{port}'` shows it) or set {name} to another port, "
                    "then run `llc-phone restart` again.")
            return 1
    out(f"3/4 start ({supervisor.describe()})")
    try:
        supervisor.start(out)
    except SupervisorError as exc:
        out(f"FAILED: {exc}")
        return 1
    out(f"4/4 wait for /healthz (up to {health_timeout_s:g} s)")
    health = wait_healthy(settings, health_timeout_s)
    if not health.ok:
        out(f"FAILED: the server did not come up: {health.detail}. Read its log (`llc-phone doctor` says where).")
        return 1
    out(f"  {health.detail}")
    out("restarted")
    return 0
