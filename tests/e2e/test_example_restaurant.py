"""examples/restaurant, run as its README says: the restaurant's service (receiver.py) up, then
`llc-phone demo --scenario restaurant --script demo.toml` in that folder with the README's
settings. Its Python tools, its HTTP tool (signed, verified by the receiver with
standardwebhooks) and its call events all take part, against the simulator."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from llc.kit.bench.server_proc import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "restaurant"


def readme_settings() -> dict[str, str]:
    """The `export NAME=value` lines of the README's first sh block."""
    block = re.search(r"```sh\n(.*?)```", (EXAMPLE / "README.md").read_text(), re.DOTALL)
    assert block is not None
    return dict(re.findall(r"^export (\w+)=(\S+)$", block.group(1), re.MULTILINE))


def test_the_restaurant_example_runs_as_written(tmp_path: Path) -> None:
    port = free_port()
    settings = readme_settings()
    assert {"LLC_SCENARIOS", "LLC_TOOLS", "LLC_WEBHOOK_SECRET", "RESTAURANT_SERVICE"} <= set(settings), settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLC_", "OPENAI_", "TWILIO_"))}
    env.update(settings, RESTAURANT_SERVICE=f"http://127.0.0.1:{port}",
               RECEIVER_PORT=str(port), EVENTS_FILE=str(tmp_path / "events.jsonl"), LLC_ENV_FILE=os.devnull)
    if "LLC_EVENTS_URL" in settings:
        env["LLC_EVENTS_URL"] = f"http://127.0.0.1:{port}/events"
    receiver = subprocess.Popen([sys.executable, "receiver.py"], cwd=EXAMPLE, env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:  # until the service listens (bounded)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and receiver.poll() is None, "receiver.py did not start"
                time.sleep(0.05)
        demo = subprocess.run([sys.executable, "-m", "llc", "demo", "--scenario", "restaurant", "--script", "demo.toml",
                               "--db", str(tmp_path / "demo.db"), "--ttfb-ms", "50", "--silence-ms", "200"],
                              cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=120, check=False)
    finally:
        receiver.terminate()
        receiver.wait(timeout=5)
    out = demo.stdout + demo.stderr
    assert demo.returncode == 0 and "demo OK" in out and "Traceback" not in out, out
    tools = out[out.index("Tool calls"):out.index("Latency per turn")]
    assert '"free":["19:00","21:00"]' in tools and '"ok":true' in tools  # the Python tools
    assert 'opening_hours({"day":"Sunday"}) -> {"day":"sunday","opens":"12:00"' in tools  # the signed HTTP tool
    assert not (EXAMPLE / "llc-demo.db").exists()
