"""What llc adds to an HTTP tool's round trip: ``python -m llc.kit.bench.http_tool [calls]``.

A receiver runs as its own process on loopback (``--receiver``: it prints its port, answers
every POST with a small JSON body over keep-alive, until stdin closes). The same number of
calls then go (1) through llc's tool path (``run_tool`` -> the HTTP tool: JSON body, Standard
Webhooks signature, the pooled client, the size-capped read, the output for the model) and
(2) as bare POSTs of the same body on a pooled httpx client, the floor, alternated call by call.
llc's overhead is the percentiles of the paired differences (each llc call minus the bare call
right after it): the tails of the two series alone are the machine's noise, not llc's.
"""

from __future__ import annotations

import http.server
import subprocess
import sys
import time
from typing import Any

import httpx
import orjson
import trio

from llc.core.actions import RunTool
from llc.core.levers import Lever
from llc.events.signing import new_secret
from llc.kit.bench.stats import percentile
from llc.modes.runtime import ModeCall
from llc.tools.http import HttpTool, HttpTools
from llc.tools.registry import Tool, ToolRegistry

ANSWER = orjson.dumps({"order_id": "A17", "status": "shipped", "eta": "2026-12-07"})


class _Answer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: with Nagle on, the body waits out the client's
    # delayed ACK (40 ms a call), which would be measured as llc's.
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)


def receiver() -> None:
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # until the bench closes our stdin
    server.shutdown()


class _Ctx:
    """The call a tool runs in, as the bench plays it (no Twilio, no OpenAI)."""

    call_sid, params, transfer_allow = "CAbench", {"direction": "inbound", "scenario": "default"}, ()
    mode: ModeCall | None = None

    def now(self) -> float:
        return trio.current_time()

    async def apply(self, levers: list[Lever]) -> None: ...

    async def hang_up_after_goodbye(self) -> None: ...

    async def redirect(self, twiml: str) -> None: ...


async def measure(port: int, calls: int) -> dict[str, dict[str, float]]:
    from llc.call.tools import run_tool

    url = f"http://127.0.0.1:{port}/tool"
    pool = HttpTools(new_secret())
    spec = HttpTool("check_order", url, 5.0, {})
    registry = ToolRegistry({"check_order": Tool("check_order", "", {"type": "object"}, pool.function(spec), "http")})
    action = RunTool("call_1", "check_order", '{"order_id": "A17"}')
    llc_ms: list[float] = []
    bare_ms: list[float] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        async with httpx.AsyncClient() as bare:
            body = orjson.dumps({"tool": "check_order", "arguments": {"order_id": "A17"}, "call": {}})
            for i in range(calls + 10):  # the first 10 warm both pools up and are not counted
                t = time.perf_counter()
                output, error = await run_tool(registry, _Ctx(), action, 5.0)
                took = (time.perf_counter() - t) * 1000
                assert error is None, output
                t = time.perf_counter()
                response = await bare.post(url, content=body, headers={"content-type": "application/json"})
                orjson.loads(response.content)
                if i >= 10:
                    llc_ms.append(took)
                    bare_ms.append((time.perf_counter() - t) * 1000)
        nursery.cancel_scope.cancel()
    out: dict[str, dict[str, float]] = {}
    for name, values in (("llc", llc_ms), ("bare", bare_ms)):
        out[name] = {"p50": percentile(values, 50), "p99": percentile(values, 99)}
    added = [a - b for a, b in zip(llc_ms, bare_ms, strict=True)]
    out["overhead"] = {"p50": percentile(added, 50), "p99": percentile(added, 99)}
    return out


def main() -> None:
    if sys.argv[1:] == ["--receiver"]:
        return receiver()
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    proc = subprocess.Popen([sys.executable, "-m", "llc.kit.bench.http_tool", "--receiver"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        result = trio.run(measure, port, calls)
    finally:
        proc.communicate(timeout=10)
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    print(f"{calls} calls: llc's tool path p50 {result['llc']['p50']:.2f} ms p99 {result['llc']['p99']:.2f} ms; "
          f"bare POST p50 {result['bare']['p50']:.2f} ms p99 {result['bare']['p99']:.2f} ms; "
          f"llc adds p50 {result['overhead']['p50']:.2f} ms p99 {result['overhead']['p99']:.2f} ms")


if __name__ == "__main__":
    main()
