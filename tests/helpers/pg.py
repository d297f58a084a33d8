"""PostgreSQL for the store tests: a throwaway server of the session's own, started with the
machine's ``initdb``/``pg_ctl`` on a free loopback port and removed afterwards.

``LLC_TEST_PG_URL`` points the tests at an existing server instead. ``control(url)`` stops,
starts or restarts a throwaway server (the fault tests: PostgreSQL restarted under the store). Where neither can be had
the PostgreSQL cases skip with the reason, except under CI (``CI`` set), where a missing
PostgreSQL is a failure: .ci/run installs it, so a skip there would hide a broken step.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from llc.kit.bench.server_proc import free_port

START_TIMEOUT_S = 30


@dataclass
class PgControl:
    """Stop and start one throwaway server, on the same port and data."""

    pg_ctl: list[str]
    options: str
    log: Path

    def stop(self, mode: str = "fast") -> None:
        """``fast``: a clean shutdown that closes every client's connection (a restart, a failover)."""
        subprocess.run([*self.pg_ctl, "-m", mode, "-w", "-t", "10", "stop"], check=True, capture_output=True, timeout=20)

    def start(self) -> None:
        subprocess.run([*self.pg_ctl, "-o", self.options, "-l", str(self.log), "-w", "-t", str(START_TIMEOUT_S), "start"],
                       check=True, capture_output=True, timeout=START_TIMEOUT_S + 5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def pids(self) -> list[int]:
        """The postmaster and its children (the backends serving each connection)."""
        data = Path(self.pg_ctl[self.pg_ctl.index("-D") + 1])
        main = int((data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(main)], capture_output=True, text=True, timeout=5, check=False).stdout.split()
        return [main, *map(int, children)]

    def freeze(self) -> list[int]:
        """SIGSTOP every process of the server: connections stay open, nothing answers (a hung
        host, a VM paused). Returns what ``thaw`` continues."""
        pids = self.pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    def thaw(self, pids: list[int]) -> None:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


_CONTROLS: dict[str, PgControl] = {}


def control(url: str) -> PgControl | None:
    """The control of the throwaway server behind ``url`` (with or without its query); None for others."""
    return _CONTROLS.get(url.split("?", 1)[0])


def _bindir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, else Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _run_as() -> tuple[list[str], str | None]:
    """initdb refuses to run as root: as root, run the server as the ``postgres`` (else ``nobody``) user."""
    if os.geteuid() != 0:
        return [], None
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"], user
    return [], None


@contextmanager
def throwaway_server() -> Iterator[tuple[str | None, str]]:
    """(URL, "") of a fresh server for this session, or (None, why not); stopped and removed after."""
    bindir = _bindir()
    if bindir is None:
        yield None, "no initdb/pg_ctl on this machine (Debian: apt-get install postgresql)"
        return
    base = Path(tempfile.mkdtemp(prefix="llc-pg-"))
    prefix, user = _run_as()
    if user is not None:
        shutil.chown(base, user)
    data, port = base / "data", free_port()
    # Loopback only, the socket directory in our own folder, no fsync: a test server.
    ctl = PgControl([*prefix, str(bindir / "pg_ctl"), "-D", str(data)], f"-h 127.0.0.1 -p {port} -k {base} -F",
                    base / "log")
    started = False
    try:
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=START_TIMEOUT_S)
        ctl.start()
        started = True
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        yield None, f"could not start a throwaway PostgreSQL: {exc} {detail.decode(errors='replace').strip()}"
        return
    finally:
        if not started:
            shutil.rmtree(base, ignore_errors=True)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    _CONTROLS[url] = ctl
    try:
        yield url, ""
    finally:
        del _CONTROLS[url]
        subprocess.run([*ctl.pg_ctl, "-m", "immediate", "-w", "-t", "10", "stop"], capture_output=True, timeout=20, check=False)
        shutil.rmtree(base, ignore_errors=True)


def pg_url_or_skip(request: pytest.FixtureRequest) -> str:
    """A database URL with a search_path of its own (a fresh schema per test), or skip (fail under CI)."""
    url, why = os.environ.get("LLC_TEST_PG_URL"), ""
    if not url:
        url, why = request.getfixturevalue("pg_server")
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed (pip install -e '.[test]')")
    if url is None:
        _unavailable(why)
    try:
        with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
            schema = "llc_test_" + uuid.uuid4().hex[:10]
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.Error as exc:
        _unavailable(f"no PostgreSQL reachable at {url}: {str(exc).splitlines()[0]}")
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL tests must run in CI: {why}")
    pytest.skip(f"PostgreSQL tests skipped: {why}")
