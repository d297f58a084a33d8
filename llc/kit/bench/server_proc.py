"""The server under test as its own process, and what /proc says about it.

CPU is attributed honestly only if the load generator is not in the same process: the bench
starts a real ``llc-phone serve`` with the environment pointing at the load generator's fake OpenAI,
and reads the child's CPU (utime + stime) from /proc/<pid>/stat and its RSS from
/proc/<pid>/status.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

# What `llc-phone bench` can put under test: extra settings for `llc-phone serve` by name. The product has
# one media path (the fast engine through PORT's front door); "recording" is that path with call
# audio on (LLC_RECORD_AUDIO, into a scratch folder removed when the server stops).
ENGINES: dict[str, dict[str, str]] = {"fast": {}, "recording": {"LLC_RECORD_AUDIO": "on"}}


# The relay public samples show (FastAPI + uvicorn[standard] + websockets), measured in the
# same run for comparison: llc/kit/bench/reference_relay.py, from the `compare` extra.
REFERENCE = "reference"


def reference_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("fastapi", "uvicorn", "uvloop"))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def sockets_of(pid: int) -> int:
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return n


def pin(pid: int, cpu: int) -> bool:
    """Pin ``pid`` to one CPU (what `taskset -c` does); False where that is not possible."""
    try:
        os.sched_setaffinity(pid, {cpu})
        return True
    except (AttributeError, OSError):
        return False


@dataclass
class ServerProcess:
    """A running ``llc-phone serve`` under test."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    admin_port: int = 0  # the admin listener (/metrics, /debug/tasks)
    scratch: str | None = None  # the recordings folder of a "recording" run

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def media_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/media"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


def start_server(engine: str, openai_url: str, *, extra_env: dict[str, str] | None = None,
                 timeout: float = 30.0, source: str | None = None) -> ServerProcess:
    """Start ``llc-phone serve`` on free ports with ``engine``'s settings; wait until it accepts.

    ``source``: run the ``llc`` package of that source tree instead (an older build, for a
    before/after in one run); it shares this environment's dependencies.
    """
    port, admin_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLC_", "OPENAI_", "TWILIO_"))}
    env.update(PORT=str(port), LLC_HOST="127.0.0.1", OPENAI_REALTIME_URL=openai_url, LLC_LOG_FORMAT="json",
               LLC_ENV_FILE=os.devnull, LLC_PUBLIC_URL="", LLC_DB_URL=":memory:",  # records: not kept
               LLC_LOCAL_ONLY="on",  # loopback only: no public URL, no Twilio token
               # The load generator opens media streams directly, without a webhook's token.
               LLC_STREAM_ADMISSION="off", LLC_ADMIN_PORT=str(admin_port))
    env.update(ENGINES.get(engine, {}))
    env.update(extra_env or {})
    scratch = tempfile.mkdtemp(prefix="llc-bench-rec-") if env.get("LLC_RECORD_AUDIO") else None
    if scratch:
        env["LLC_RECORDINGS_DIR"] = scratch
    if source is not None:  # `python -m` puts the working directory first on sys.path
        env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH", "")) if p)
    # The server's log, kept open for as long as the server runs (closed by stop()).
    log = tempfile.NamedTemporaryFile(prefix=f"llc-bench-{engine}-", suffix=".log", delete=False)  # noqa: SIM115
    module = "llc.kit.bench.reference_relay" if engine == REFERENCE else "llc.cli"
    proc = subprocess.Popen([sys.executable, "-m", module] + ([] if engine == REFERENCE else ["serve"]),
                            env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=source)
    server = ServerProcess(proc, port, Path(log.name), admin_port, scratch)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"llc-phone serve exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"llc-phone serve did not listen on {port} within {timeout:g} s:\n{server.log_tail()}")
            time.sleep(0.05)


def start_echo() -> tuple[subprocess.Popen[bytes], str]:
    """The echo floor server in its own process; returns it and its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "llc.kit.bench.echo"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    port = int(proc.stdout.readline().strip() or 0)
    if not port:
        proc.kill()
        raise RuntimeError("the echo server did not start")
    return proc, f"ws://127.0.0.1:{port}/echo"
