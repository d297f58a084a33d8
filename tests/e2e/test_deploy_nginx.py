"""The several-instances recipe, run: real nginx (ops/nginx/two-instances.conf) terminating TLS
with a test CA in front of two `llc-phone serve` instances sharing one database, the simulators as
Twilio and OpenAI. The one-instance recipe of docs/going-live.md: test_deploy_nginx_single.py.

Everything goes through the public ``https``/``wss`` URL, as Twilio would: a signed webhook
gets TwiML, the signed stream is admitted, an outbound call's stream reaches the instance
holding its warm session (the other instance could not admit it: tickets and warm sessions
live in the instance that dialled), /metrics and /debug are not reachable, and unsigned or
mis-signed requests are refused.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import trio

from llc.kit.bench.server_proc import free_port
from tests.helpers import nginx as ngx
from tests.helpers.ops_procs import start_serve

if TYPE_CHECKING:
    import trustme

RECIPE = ngx.RECIPES / "two-instances.conf"


def _render(tmp: Path, tls_port: int, ports: dict[str, int], cert: Path, key: Path) -> Path:
    """The recipe with this run's ports and certificate, inside a minimal main config."""
    swaps = {"listen 443 ssl;": f"listen 127.0.0.1:{tls_port} ssl;",
             "/etc/ssl/certs/voice.example.com.pem": str(cert), "/etc/ssl/private/voice.example.com.key": str(key),
             "127.0.0.1:8080": f"127.0.0.1:{ports['a']}", "127.0.0.1:8090": f"127.0.0.1:{ports['b']}"}
    (tmp / "llc.conf").write_text(ngx.swap(RECIPE.read_text(), swaps, "ops/nginx/two-instances.conf"))
    return ngx.main_conf(tmp, str(tmp / "llc.conf"))


async def test_two_instances_behind_nginx(nursery: trio.Nursery, tmp_path: Path, nginx: str,
                                         tls_ca: trustme.CA) -> None:
    oai, twilio = await ngx.simulators(nursery)
    token = twilio.config.auth_token

    tls_port = free_port()
    public = f"https://127.0.0.1:{tls_port}"
    ports = {"a": free_port(), "b": free_port()}
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    ngx.write_cert(tls_ca, "127.0.0.1", cert, key)
    db = tmp_path / "shared.db"

    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name, port in ports.items():
            env = ngx.proxied_env(tmp_path / name, port, oai.url, twilio, public, db,
                                  LLC_INSTANCE_URL=f"{public}/i/{name}")
            procs.append(start_serve(env, tmp_path / name / "serve.log"))
        conf = _render(tmp_path, tls_port, ports, cert, key)
        ngx.check_conf(nginx, tmp_path, conf)
        proxy = ngx.start_nginx(nginx, tmp_path, conf)
        procs.append(proxy)
        ngx.wait_port(tls_port, proxy, "nginx", tmp_path / "nginx.out")
        for (name, port), proc in zip(ports.items(), procs):
            ngx.wait_port(port, proc, f"llc-phone serve {name}", tmp_path / name / "serve.log")

        # The admin surface is not reachable through the proxy, by any path; forgeries are refused.
        await ngx.check_public_surface(public, token, ("/metrics", "/debug/tasks", "/i/a/metrics", "/i/b/debug/tasks"))
        async with httpx.AsyncClient(timeout=10) as client:
            status = {"CallSid": "CAforged", "CallStatus": "completed"}
            assert (await client.post(public + "/i/a/twilio/status", data=status)).status_code == 403

        # Inbound: the signed webhook through https gets TwiML naming an instance; the signed
        # wss stream is admitted and the agent answers.
        inbound = await ngx.call_in(public, token)
        assert inbound.stream_url in (f"wss://127.0.0.1:{tls_port}/i/a/media", f"wss://127.0.0.1:{tls_port}/i/b/media")

        # Outbound: two POST /calls through the balancer land on both instances; each call's
        # stream comes back through its instance's URL and claims that instance's warm session.
        calls = await ngx.dial(public, twilio, "+15550100301", "+15550100302")
        results = [call.result for call in calls]
        assert all(r is not None and r.ended_by == "caller_hangup" for r in results)
        assert {r.stream_url for r in results if r} == {f"wss://127.0.0.1:{tls_port}/i/{n}/media" for n in ports}

        # One database: all three records, whichever instance wrote them; outbound ones prewarmed.
        with trio.fail_after(10):
            while True:
                with sqlite3.connect(db) as conn:
                    rows = dict(conn.execute("SELECT call_sid, path || ':' || end_reason FROM calls").fetchall())
                if len(rows) >= 3 and all(not v.endswith(":") for v in rows.values()):  # final, not in-progress saves
                    break
                await trio.sleep(0.1)
        assert rows == {inbound.call_sid: "pre-accept:caller_hangup",
                        calls[0].sid: "prewarm:caller_hangup", calls[1].sid: "prewarm:caller_hangup"}
    finally:
        ngx.stop_all(procs)
