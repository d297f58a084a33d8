"""`llc-phone restart` against real processes: stop → kill orphaned listeners on PORT → start → /healthz."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llc.config import load_settings
from llc.kit.bench.server_proc import free_port
from llc.ops.restart import dry_run, is_llc_server, restart
from llc.ops.supervisor import PidFile
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


def test_stray_non_llc_listener_is_killed_only_with_force(deploy) -> None:
    tmp_path, port, env, settings, started = deploy
    stray = stray_listener(port)
    started.append(stray)
    lines: list[str] = []
    assert dry_run(settings, PidFile(settings, env=env), lines.append) == 0
    shown = "\n".join(lines)
    # Named whole (a long virtual-environment path must not cut the script off), and not touched.
    assert f"would leave alone (not llc-phone; pass --force to kill it): pid {stray.pid}" in shown
    assert "time.sleep(120)" in shown and stray.poll() is None

    lines.clear()
    assert restart(settings, PidFile(settings, env=env), lines.append, port_free_timeout_s=0.3) == 1
    out = "\n".join(lines)
    assert f"not llc-phone, left alone: pid {stray.pid}" in out and "llc-phone restart --force" in out
    assert stray.poll() is None and not (tmp_path / "llc-phone.pid").exists()  # nothing killed, nothing started

    lines.clear()
    assert restart(settings, PidFile(settings, env=env), lines.append, force=True) == 0, "\n".join(lines)
    named = next(i for i, line in enumerate(lines) if f"not llc-phone, killing it (--force): pid {stray.pid}" in line)
    assert "time.sleep(120)" in lines[named]
    assert named < next(i for i, line in enumerate(lines) if f"SIGTERM pid {stray.pid}" in line)  # named first
    assert stray.wait(5) != 0  # killed by the signal
    assert wait_healthz(port)["status"] == "ok"


def test_full_command_line_is_shown(tmp_path: Path) -> None:
    """It was cut (120, then 160 characters): from a long venv path the script part was lost."""
    from llc.ops.ports import cmdline

    argv = ["/home/someone/projects/" + "deep/" * 30 + ".venv/bin/python3", "-c", "import time; time.sleep(120)"]
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    shown = cmdline(4242, proc=tmp_path)
    assert len(shown) > 160 and shown.endswith("time.sleep(120)")


@pytest.mark.parametrize("command, llc", [("/srv/.venv/bin/python3 /srv/.venv/bin/llc-phone serve --port 9000", True),
                                          (f"{sys.executable} -m llc.cli serve", True), ("llc-phone serve", True),
                                          ("python3 -m llc serve", True), ("/srv/.venv/bin/llc serve", True),  # a server of a release before the rename
                                          ("python3 -m http.server 8080", False), ("/usr/bin/llc-other serve", False)])
def test_which_listeners_are_llc(command: str, llc: bool) -> None:
    from llc.ops.ports import Listener

    assert is_llc_server(Listener(1, "127.0.0.1:8080", command)) is llc
    assert not is_llc_server(Listener(None, "127.0.0.1:8080"))  # an owner we cannot see is never "ours"


def test_port_that_stays_taken_fails_clearly(deploy) -> None:
    tmp_path, port, env, settings, started = deploy
    stray = stray_listener(port)
    started.append(stray)
    lines: list[str] = []
    ignore = lambda pid, sig: None
    rc = restart(settings, PidFile(settings, env=env), lines.append, kill=ignore, port_free_timeout_s=0.3, orphan_grace_s=0.3,
                 force=True)
    out = "\n".join(lines)
    assert rc == 1
    assert f"port {port} is still taken" in out and f"pid {stray.pid}" in out and "PORT" in out
    assert not (tmp_path / "llc-phone.pid").exists()  # nothing was started
    assert stray.poll() is None


def test_llc_restart_command_registered() -> None:
    from llc.cli import build_parser

    args = build_parser().parse_args(["restart", "--supervisor", "pidfile", "--timeout", "3", "--dry-run", "--force"])
    assert args.supervisor == "pidfile" and args.timeout == 3 and args.dry_run and args.force
    assert os.access(Path(__file__).resolve().parents[2] / "ops" / "restart", os.X_OK)


def test_serve_on_a_taken_port_names_the_holder_and_the_dry_run(deploy) -> None:
    """It pointed straight at `llc-phone restart`, which would have killed whatever held the port."""
    _tmp_path, port, env, _settings, started = deploy
    stray = stray_listener(port)
    started.append(stray)
    done = subprocess.run([sys.executable, "-m", "llc.cli", "serve"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"pid {stray.pid}" in done.stderr and "time.sleep(120)" in done.stderr
    assert "llc-phone restart --dry-run" in done.stderr and stray.poll() is None
