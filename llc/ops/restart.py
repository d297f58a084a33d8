"""The seed's restart procedure as a tool: stop → kill orphaned listeners on PORT → start → /healthz.

"A bare restart can leave a stale listener holding the port": after the supervisor's stop,
whatever still LISTENS on PORT is an orphan. Only such listeners are signalled (SIGTERM,
then SIGKILL after a grace period), each one named before it is touched. If the port stays
taken the procedure stops there with a non-zero exit and says who holds it.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Callable

from llc.config import Settings
from llc.ops.health import wait_healthy
from llc.ops.ports import Listener, listener_pids, listeners, server_ports
from llc.ops.supervisor import Out, Supervisor, SupervisorError, wait_exit

Kill = Callable[[int, int], None]
ORPHAN_GRACE_S = 3.0


def kill_orphans(port: int, out: Out, kill: Kill = os.kill, grace_s: float = ORPHAN_GRACE_S) -> list[Listener]:
    """Signal every process still listening on ``port`` (never this one); returns what was found."""
    found = listeners(port)
    pids = sorted(listener_pids(found) - {os.getpid()})
    if not found:
        out(f"  nothing listens on port {port}")
    for entry in found:
        out(f"  orphan: {entry.describe()}")
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


def restart(
    settings: Settings,
    supervisor: Supervisor,
    out: Out = print,
    *,
    kill: Kill = os.kill,
    health_timeout_s: float = 20.0,
    port_free_timeout_s: float = 5.0,
    orphan_grace_s: float = ORPHAN_GRACE_S,
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
        kill_orphans(port, out, kill, orphan_grace_s)
        left = wait_port_free(port, port_free_timeout_s)
        if left:
            holders = "; ".join(entry.describe() for entry in left)
            out(f"FAILED: port {port} is still taken: {holders}.")
            out(f"  Free it (as its owner: `ss -ltnp 'sport = :{port}'` shows it) or set {name} to another port, "
                "then run `llc restart` again.")
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
        out(f"FAILED: the server did not come up: {health.detail}. Read its log (`llc doctor` says where).")
        return 1
    out(f"  {health.detail}")
    out("restarted")
    return 0
