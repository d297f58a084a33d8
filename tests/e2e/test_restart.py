"""`llc restart` against real processes: stop → kill orphaned listeners on PORT → start → /healthz."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llc.config import load_settings
from llc.ops.restart import restart
from llc.ops.supervisor import PidFile
from llc.kit.bench.server_proc import free_port
from tests.helpers.ops_procs import serve_env, start_serve, stop_pid, stop_pidfile, wait_healthz

STRAY = "import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', {port}))\ns.listen()\nprint('ready', flush=True)\ntime.sleep(120)\n"


@pytest.fixture
def deploy(tmp_path: Path):
    port = free_port()
    env = serve_env(tmp_path, port)
    settings = load_settings(env, env_file=tmp_path / "none.env")
    started: list[subprocess.Popen[bytes]] = []
    yield tmp_path, port, env, settings, started
    stop_pidfile(tmp_path)  # the server restart started, detached
    for proc in started:
        stop_pid(proc.pid, 2)
        proc.wait(5)


def stray_listener(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", STRAY.format(port=port)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    return proc


def test_orphaned_server_is_killed_and_a_new_one_answers(deploy) -> None:
    tmp_path, port, env, settings, started = deploy
    old = start_serve(env, tmp_path / "old.log")
    started.append(old)
    assert wait_healthz(port)["pid"] == old.pid
    (tmp_path / "llc-phone.pid").unlink()  # the supervisor lost track: a stale listener holds the port

    lines: list[str] = []
    assert restart(settings, PidFile(settings, env=env), lines.append) == 0, "\n".join(lines)
    out = "\n".join(lines)
    assert f"orphan: pid {old.pid}" in out and f"SIGTERM pid {old.pid}" in out  # shows what it kills
    assert old.wait(5) == 0  # the orphan drained and exited cleanly on SIGTERM
    new = wait_healthz(port)
    assert new["pid"] != old.pid and new["status"] == "ok"
    assert int((tmp_path / "llc-phone.pid").read_text()) == new["pid"]

    # Again, now that the pid file names the running server: stop through it, no orphans.
    lines.clear()
    assert restart(settings, PidFile(settings, env=env), lines.append) == 0, "\n".join(lines)
    assert f"SIGTERM pid {new['pid']}" in lines[1] and any("nothing listens" in line for line in lines)
    assert wait_healthz(port)["pid"] not in (old.pid, new["pid"])


def test_stray_non_llc_listener_is_killed(deploy) -> None:
    tmp_path, port, env, settings, started = deploy
    stray = stray_listener(port)
    started.append(stray)
    lines: list[str] = []
    assert restart(settings, PidFile(settings, env=env), lines.append) == 0, "\n".join(lines)
    assert any(f"orphan: pid {stray.pid}" in line and "time.sleep" in line for line in lines)
    assert stray.wait(5) != 0  # killed by the signal
    assert wait_healthz(port)["status"] == "ok"


def test_port_that_stays_taken_fails_clearly(deploy) -> None:
    tmp_path, port, env, settings, started = deploy
    stray = stray_listener(port)
    started.append(stray)
    lines: list[str] = []
    ignore = lambda pid, sig: None  # noqa: E731 - a listener the signals cannot remove (another user's)
    rc = restart(settings, PidFile(settings, env=env), lines.append, kill=ignore, port_free_timeout_s=0.3, orphan_grace_s=0.3)
    out = "\n".join(lines)
    assert rc == 1
    assert f"port {port} is still taken" in out and f"pid {stray.pid}" in out and "PORT" in out
    assert not (tmp_path / "llc-phone.pid").exists()  # nothing was started
    assert stray.poll() is None


def test_llc_restart_command_registered() -> None:
    from llc.cli import build_parser

    args = build_parser().parse_args(["restart", "--supervisor", "pidfile", "--timeout", "3"])
    assert args.supervisor == "pidfile" and args.timeout == 3
    assert os.access(Path(__file__).resolve().parents[2] / "ops" / "restart", os.X_OK)
