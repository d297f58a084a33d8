"""Who listens on a TCP port: what `lsof -i :PORT` tells, without needing lsof.

Linux: listening sockets come from /proc/net/tcp and /proc/net/tcp6 (state 0A), and their
owners from the socket inodes in /proc/<pid>/fd. Only processes of this user are visible
that way; a listener whose owner cannot be seen is still reported (pid None), so "the port
is taken" is never missed. Elsewhere, ``lsof`` is used when present.

The parsing is pure (text in, tuples out) and tested with plain data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llc.config import Settings

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

TCP_LISTEN = "0A"
PROC = Path("/proc")


@dataclass(frozen=True)
class Listener:
    pid: int | None  # None: the socket is there but its owner is not visible (another user)
    address: str
    cmdline: str = ""

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid is not None else "a process this user cannot see"
        cmd = f" ({self.cmdline})" if self.cmdline else ""
        return f"{who}{cmd} listening on {self.address}"


def _hex_ipv4(word: str) -> str:
    raw = bytes.fromhex(word)[::-1]
    return ".".join(str(b) for b in raw)


def _hex_ipv6(text: str) -> str:
    import ipaddress

    raw = b"".join(bytes.fromhex(text[i : i + 8])[::-1] for i in range(0, 32, 8))
    return str(ipaddress.IPv6Address(raw))


def parse_proc_net_tcp(text: str, port: int | None) -> list[tuple[int, str]]:
    """(inode, "addr:port") of each socket LISTENING on ``port`` (None: on any port) in a /proc/net/tcp{,6} table."""
    found: list[tuple[int, str]] = []
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 10 or cols[3] != TCP_LISTEN:
            continue
        addr_hex, _, port_hex = cols[1].partition(":")
        try:
            if port is not None and int(port_hex, 16) != port:
                continue
            port_here = int(port_hex, 16)
            addr = _hex_ipv4(addr_hex) if len(addr_hex) == 8 else _hex_ipv6(addr_hex)
            found.append((int(cols[9]), f"[{addr}]:{port_here}" if ":" in addr else f"{addr}:{port_here}"))
        except ValueError:
            continue
    return found


def socket_owners(inodes: set[int], proc: Path = PROC) -> dict[int, set[int]]:
    """inode -> pids holding it, from the fd links of every process we may read."""
    owners: dict[int, set[int]] = {}
    wanted = {f"socket:[{i}]": i for i in inodes}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue  # another user's process, or gone
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target in wanted:
                owners.setdefault(wanted[target], set()).add(int(entry.name))
    return owners


def cmdline(pid: int, proc: Path = PROC) -> str:
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    text = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    # Whole: a virtual environment's long interpreter path must not hide the script that follows.
    return " ".join(text.split())


def _listen_sockets(port: int | None, proc: Path) -> list[tuple[int, str]]:
    sockets: list[tuple[int, str]] = []
    for table in ("tcp", "tcp6"):
        try:
            sockets += parse_proc_net_tcp((proc / "net" / table).read_text(), port)
        except OSError:
            continue
    return sockets


def listening_ports(pid: int, proc: Path = PROC) -> list[int]:
    """The TCP ports ``pid`` listens on (Linux /proc; [] elsewhere or when it cannot be seen)."""
    sockets = _listen_sockets(None, proc)
    owners = socket_owners({inode for inode, _ in sockets}, proc)
    return sorted({int(address.rsplit(":", 1)[1]) for inode, address in sockets if pid in owners.get(inode, ())})


def _listeners_proc(port: int, proc: Path) -> list[Listener]:
    sockets = _listen_sockets(port, proc)
    owners = socket_owners({inode for inode, _ in sockets}, proc)
    out: list[Listener] = []
    for inode, address in sockets:
        pids = owners.get(inode)
        if not pids:
            out.append(Listener(None, address))
        out.extend(Listener(pid, address, cmdline(pid, proc)) for pid in sorted(pids or ()))
    return out


def _listeners_lsof(port: int) -> list[Listener]:
    lsof = shutil.which("lsof")
    if lsof is None:
        raise RuntimeError("cannot list port owners here: no /proc/net/tcp and no lsof; install lsof")
    done = subprocess.run([lsof, "-nP", f"-iTCP:{port}", "-sTCP:LISTEN", "-t"], capture_output=True, text=True, timeout=10,
                          check=False)  # lsof exits 1 when nothing listens: that is an answer, not an error
    pids = sorted({int(p) for p in done.stdout.split() if p.isdigit()})
    return [Listener(pid, f"*:{port}") for pid in pids]


def listeners(port: int, proc: Path = PROC) -> list[Listener]:
    """Every process listening on TCP ``port`` (one entry per pid and socket)."""
    if (proc / "net" / "tcp").exists():
        return _listeners_proc(port, proc)
    return _listeners_lsof(port)


def listener_pids(found: list[Listener]) -> set[int]:
    return {entry.pid for entry in found if entry.pid is not None}


def server_ports(settings: Settings) -> list[tuple[str, int]]:
    """The ports `llc-phone serve` listens on, by setting: PORT (HTTP and the media stream share it)."""
    return [("PORT", settings.port)]
