"""Who starts and stops `llc-phone serve`: a systemd user unit, pm2, or (neither) the pid file.

``detect`` picks the one that manages LLC_SERVICE_NAME (default ``llc-phone``): a systemd
user unit of that name, else a pm2 app of that name, else the pid file `llc-phone serve` writes.
Every stop sends SIGTERM (pm2: SIGINT), which the server answers with a graceful drain.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from llc.config import Settings
from llc.ops.pidfile import pid_alive, read_pid
from llc.ops.ports import cmdline

Out = Callable[[str], None]
Runner = Callable[..., "subprocess.CompletedProcess[str]"]
CONSOLE_LOG = "llc-phone.out"  # where a pid-file start sends stdout/stderr (next to the pid file)


class SupervisorError(Exception):
    """The supervisor refused; the message says what it answered."""


class Supervisor(Protocol):
    name: str

    def describe(self) -> str: ...
    def stop(self, out: Out) -> None: ...
    def start(self, out: Out) -> None: ...


def _run(cmd: list[str], runner: Runner, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    done = runner(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SupervisorError(f"`{' '.join(cmd)}` failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()}")
    return done


class Systemd:
    name = "systemd"

    def __init__(self, service: str, runner: Runner = subprocess.run) -> None:
        self.unit = service if service.endswith(".service") else f"{service}.service"
        self.runner = runner

    def describe(self) -> str:
        return f"systemd user unit {self.unit}"

    def stop(self, out: Out) -> None:
        out(f"  systemctl --user stop {self.unit}  (SIGTERM: the server drains, TimeoutStopSec bounds it)")
        _run(["systemctl", "--user", "stop", self.unit], self.runner, timeout=300)

    def start(self, out: Out) -> None:
        out(f"  systemctl --user start {self.unit}")
        _run(["systemctl", "--user", "start", self.unit], self.runner)


class Pm2:
    name = "pm2"

    def __init__(self, service: str, runner: Runner = subprocess.run) -> None:
        self.app = service
        self.runner = runner

    def describe(self) -> str:
        return f"pm2 app {self.app}"

    def stop(self, out: Out) -> None:
        out(f"  pm2 stop {self.app}  (SIGINT: the server drains, kill_timeout bounds it)")
        _run(["pm2", "stop", self.app], self.runner, timeout=300)

    def start(self, out: Out) -> None:
        out(f"  pm2 start {self.app}")
        _run(["pm2", "start", self.app], self.runner)


class PidFile:
    """No supervisor: stop the pid in LLC_PID_FILE, start `llc-phone serve` detached in the background."""

    name = "pidfile"

    def __init__(self, settings: Settings, stop_timeout_s: float | None = None, env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.path = Path(settings.pid_file)
        self.stop_timeout_s = stop_timeout_s if stop_timeout_s is not None else settings.drain_timeout_s + 5
        self.env = env

    def describe(self) -> str:
        return f"pid file {self.path}"

    def stop(self, out: Out) -> None:
        pid = read_pid(self.path)
        if pid is None:
            out(f"  no pid in {self.path}: nothing to stop this way")
            return
        if not pid_alive(pid):
            out(f"  {self.path} names pid {pid}, which is not running (stale file)")
            return
        command = cmdline(pid)
        if command and "llc" not in command:
            out(f"  {self.path} names pid {pid} ({command}), which is not llc-phone serve: stale file, not touching it")
            return
        out(f"  SIGTERM pid {pid} ({command or 'llc-phone serve'}); waiting up to {self.stop_timeout_s:g} s for its drain")
        os.kill(pid, signal.SIGTERM)
        if not wait_exit(pid, self.stop_timeout_s):
            out(f"  pid {pid} still running after {self.stop_timeout_s:g} s: SIGKILL")
            os.kill(pid, signal.SIGKILL)
            wait_exit(pid, 5)

    def start(self, out: Out) -> None:
        console = self.path.with_name(CONSOLE_LOG)
        env = dict(os.environ if self.env is None else self.env)
        env["PORT"] = str(self.settings.port)
        env["LLC_PID_FILE"] = str(self.path)
        out(f"  starting `llc-phone serve` in the background (pid file {self.path}, console output {console})")
        with open(console, "ab") as sink:
            subprocess.Popen(
                [sys.executable, "-m", "llc.cli", "serve"], stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
                env=env, start_new_session=True,  # survives this command and its terminal
            )


def wait_exit(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def systemd_manages(service: str, runner: Runner) -> bool:
    if shutil.which("systemctl") is None:
        return False
    unit = service if service.endswith(".service") else f"{service}.service"
    try:
        done = runner(["systemctl", "--user", "cat", unit], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _pm2_manages(service: str, runner: Runner) -> bool:
    if shutil.which("pm2") is None:
        return False
    try:
        done = runner(["pm2", "jlist"], capture_output=True, text=True, timeout=20)
        apps = json.loads(done.stdout or "[]")
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return False
    return any(isinstance(app, dict) and app.get("name") == service for app in apps)


def detect(settings: Settings, choice: str = "auto", runner: Runner = subprocess.run) -> Supervisor:
    """The supervisor named by ``choice``, or for ``auto`` the first that manages the service."""
    service = settings.service_name
    if choice == "systemd" or (choice == "auto" and systemd_manages(service, runner)):
        return Systemd(service, runner)
    if choice == "pm2" or (choice == "auto" and _pm2_manages(service, runner)):
        return Pm2(service, runner)
    return PidFile(settings)
