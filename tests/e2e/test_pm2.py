"""`llc-phone restart` against a real pm2 (its own PM2_HOME, so no user's daemon is touched), and the
systemd unit checked by systemd's own verifier. The pid-file path is tests/e2e/test_restart.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llc.config import load_settings
from llc.kit.bench.server_proc import free_port
from llc.ops.restart import restart
from llc.ops.supervisor import Pm2, detect
from tests.helpers.components import missing
from tests.helpers.ops_procs import serve_env, stop_pid, wait_healthz

ROOT = Path(__file__).resolve().parents[2]
APP = "llc-phone"  # the app name in ops/ecosystem.config.js (LLC_SERVICE_NAME's default)


def _pm2_or_skip() -> str:
    if shutil.which("node") is None:
        missing("Node.js (pm2 runs on it)", "apt-get install nodejs npm && npm install -g pm2")
    pm2 = shutil.which("pm2")
    if pm2 is None:
        missing("pm2", "npm install -g pm2")
    return pm2


@pytest.fixture
def pm2_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A private pm2 daemon (PM2_HOME under tmp), killed at the end with every app it ran."""
    pm2 = _pm2_or_skip()
    home = tmp_path / "pm2"
    monkeypatch.setenv("PM2_HOME", str(home))
    yield pm2, home
    subprocess.run([pm2, "kill"], capture_output=True, timeout=60, env={**os.environ, "PM2_HOME": str(home)}, check=False)


def _apps(pm2: str) -> dict[str, dict]:
    done = subprocess.run([pm2, "jlist"], capture_output=True, text=True, timeout=30, check=False)
    return {app["name"]: app for app in json.loads(done.stdout or "[]")}


def test_restart_under_a_real_pm2(pm2_home: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pm2, home = pm2_home
    # The recipe as shipped: ops/ecosystem.config.js runs <checkout>/.venv/bin/llc-phone serve from the
    # checkout. Here the "checkout" is tmp, its .venv the environment running these tests.
    (tmp_path / "ops").mkdir()
    shutil.copy(ROOT / "ops" / "ecosystem.config.js", tmp_path / "ops")
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    assert (tmp_path / ".venv" / "bin" / "llc-phone").exists(), "the test environment has no `llc-phone` console script"
    port = free_port()
    env = serve_env(tmp_path, port, LLC_DRAIN_TIMEOUT_S="2", LLC_SERVICE_NAME=APP, PM2_HOME=str(home))
    for name, value in env.items():  # pm2 hands the starting shell's environment to the app
        monkeypatch.setenv(name, value)
    for name in [n for n in os.environ if n.startswith(("LLC_", "OPENAI_", "TWILIO_")) and n not in env]:
        monkeypatch.delenv(name)
    started = subprocess.run([pm2, "start", str(tmp_path / "ops" / "ecosystem.config.js")],
                             capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert started.returncode == 0, started.stderr
    first = wait_healthz(port, 20)
    assert _apps(pm2)[APP]["pid"] == first["pid"]

    settings = load_settings(env, env_file=tmp_path / "none.env")
    supervisor = detect(settings)  # auto: finds the pm2 app by name, as `llc-phone restart` does
    assert isinstance(supervisor, Pm2), supervisor.describe()
    lines: list[str] = []
    try:
        assert restart(settings, supervisor, lines.append, health_timeout_s=20) == 0, "\n".join(lines)
        second = wait_healthz(port, 5)
        assert second["pid"] != first["pid"]
        app = _apps(pm2)[APP]
        assert app["pid"] == second["pid"] and app["pm2_env"]["status"] == "online"
        assert any("pm2 stop llc-phone" in line for line in lines) and any("nothing listens" in line for line in lines)
        # pm2 stopped the old server with SIGINT: it drained and exited on its own (no orphan to kill).
        assert not any("orphan:" in line for line in lines), "\n".join(lines)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{first['pid']}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{first['pid']}").exists()
    finally:
        subprocess.run([pm2, "delete", APP], capture_output=True, timeout=60, check=False)
        stop_pid(wait_healthz_or_none(port), 2)


def wait_healthz_or_none(port: int) -> int | None:
    try:
        return int(wait_healthz(port, 0.5)["pid"])
    except AssertionError:
        return None


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    verify = shutil.which("systemd-analyze")
    if verify is None:
        missing("systemd-analyze (systemd's own unit verifier)", "apt-get install systemd")
    # The unit as shipped, with the checkout path it assumes (~/llc-phone) pointed at this one.
    unit = (ROOT / "ops" / "llc-phone.service").read_text().replace("%h/llc-phone/.venv", sys.prefix)
    unit = unit.replace("%h/llc-phone", str(ROOT))
    path = tmp_path / "llc-phone.service"
    path.write_text(unit)
    done = subprocess.run([verify, "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=60, check=False)
    problems = [line for line in (done.stdout + done.stderr).splitlines() if "llc-phone.service" in line]
    assert done.returncode == 0 and not problems, done.stdout + done.stderr
