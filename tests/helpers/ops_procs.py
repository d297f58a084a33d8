"""Helpers for tests that run a real `llc-phone serve` process (restart, drain): env, start, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from llc.kit.bench.server_proc import free_port
from llc.ops.pidfile import pid_alive, read_pid


def serve_env(tmp_path: Path, port: int, openai_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TWILIO_", "LLC_", "PORT", "LOG_"))}
    env.update(PORT=str(port), LLC_HOST="127.0.0.1", LLC_PID_FILE=str(tmp_path / "llc-phone.pid"),
               LLC_ENV_FILE=str(tmp_path / "none.env"), LLC_LOG_FORMAT="json", LLC_LOCAL_ONLY="on",
               OPENAI_REALTIME_URL=openai_url or f"ws://127.0.0.1:{port}/v1/realtime",
               LLC_ADMIN_PORT=str(free_port()))  # PORT + 1 may be another test's free port
    env.update(extra)
    return env


def start_serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as sink:
        return subprocess.Popen([sys.executable, "-m", "llc.cli", "serve"], env=env, stdout=sink, stderr=sink,
                                stdin=subprocess.DEVNULL)


def healthz(port: int) -> dict | None:
    try:
        resp = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0)
        return resp.json() if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def wait_healthz(port: int, timeout_s: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = healthz(port)
        if body:
            return body
        time.sleep(0.1)
    raise AssertionError(f"no /healthz on port {port} within {timeout_s} s")


def stop_pid(pid: int | None, timeout_s: float = 10.0) -> None:
    """SIGTERM a process the test started (directly or through restart), SIGKILL if it lingers."""
    if pid is None or not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def stop_pidfile(tmp_path: Path) -> None:
    stop_pid(read_pid(tmp_path / "llc-phone.pid"))
