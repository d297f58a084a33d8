"""Port owners from /proc: a real listener on loopback (the parsing as data: tests/unit/test_ports_parse.py)."""

from __future__ import annotations

import os
import socket

from llc.ops.ports import listeners


def test_finds_this_process_listening() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert listeners(port) == []  # bound, not listening yet
        sock.listen()
        found = listeners(port)
    assert [(entry.pid, entry.address) for entry in found] == [(os.getpid(), f"127.0.0.1:{port}")]
    assert "pytest" in found[0].cmdline or "python" in found[0].cmdline
