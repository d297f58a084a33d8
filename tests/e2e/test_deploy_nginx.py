"""The deployment recipe, run: real nginx (ops/nginx.conf) terminating TLS with a test CA in
front of two `llc-phone serve` instances sharing one database, the simulators as Twilio and OpenAI.

Everything goes through the public ``https``/``wss`` URL, as Twilio would: a signed webhook
gets TwiML, the signed stream is admitted, an outbound call's stream reaches the instance
holding its warm session (the other instance could not admit it: tickets and warm sessions
live in the instance that dialled), /metrics and /debug are not reachable, and unsigned or
mis-signed requests are refused.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url
from twilio.request_validator import RequestValidator

from llc.kit.bench.server_proc import free_port
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller
from llc.kit.sim.fake_openai import FakeOpenAI, FakeOpenAIConfig
from llc.kit.sim.fake_twilio import Behaviour, FakeTwilio, FakeTwilioConfig
from tests.helpers.ops_procs import serve_env, start_serve, stop_pid

trustme = pytest.importorskip("trustme", reason="trustme (test extra) makes the test CA")

RECIPE = Path(__file__).resolve().parents[2] / "ops" / "nginx.conf"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
API_TOKEN = "deploy-api-token"
FROM = "+15550009999"

if NGINX is None and os.environ.get("CI"):
    raise RuntimeError("nginx is missing under CI: .ci/run installs Debian's nginx package")
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx; .ci/run does)")


def _render(tmp: Path, tls_port: int, ports: dict[str, int], cert: Path, key: Path) -> Path:
    """ops/nginx.conf with this run's ports and certificate, inside a minimal main config."""
    text = RECIPE.read_text()
    swaps = {"listen 443 ssl;": f"listen 127.0.0.1:{tls_port} ssl;",
             "/etc/ssl/certs/voice.example.com.pem": str(cert), "/etc/ssl/private/voice.example.com.key": str(key),
             "127.0.0.1:8080": f"127.0.0.1:{ports['a']}", "127.0.0.1:8090": f"127.0.0.1:{ports['b']}"}
    for old, new in swaps.items():
        assert old in text, f"ops/nginx.conf no longer has {old!r}: update the recipe test with the recipe"
        text = text.replace(old, new)
    (tmp / "llc.conf").write_text(text)
    temp = "\n".join(f"    {kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = tmp / "nginx.conf"
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\nworker_processes 1;\npid {tmp / 'nginx.pid'};\nerror_log {tmp / 'error.log'} warn;\n"
        + "events { worker_connections 256; }\n"
        + f"http {{\n    access_log off;\n{temp}\n    include {tmp / 'llc.conf'};\n}}\n")
    return main


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on {port} within {timeout_s:g} s:\n{log.read_text(errors='replace')[-2000:]}")


@pytest.fixture
def ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[trustme.CA]:
    """The test CA, trusted by this process's TLS clients (httpx, trio-websocket) through SSL_CERT_FILE."""
    authority = trustme.CA()
    pem = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    yield authority


def _start_nginx(tmp_path: Path, conf: Path) -> subprocess.Popen[bytes]:
    """nginx in the foreground of its own prefix; what it says on stderr goes to nginx.out."""
    with open(tmp_path / "nginx.out", "wb") as out:  # the child keeps its own copy of the file
        return subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
                                stdout=subprocess.DEVNULL, stderr=out, stdin=subprocess.DEVNULL)


async def test_two_instances_behind_nginx(nursery: trio.Nursery, tmp_path: Path, ca: trustme.CA) -> None:
    oai = FakeOpenAI(FakeOpenAIConfig(ttfb_ms=50, end_of_turn_silence_ms=200, replies=["Hi, it's Sam."]))
    await nursery.start(oai.serve)
    twilio = FakeTwilio(FakeTwilioConfig(ring_ms=0, default=Behaviour(answer_ms=300)))
    await nursery.start(twilio.serve)
    token = twilio.config.auth_token

    tls_port = free_port()
    public = f"https://127.0.0.1:{tls_port}"
    ports = {"a": free_port(), "b": free_port()}
    leaf = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    for extra in leaf.cert_chain_pems[1:]:
        extra.write_to_path(str(cert), append=True)
    leaf.private_key_pem.write_to_path(str(key))
    db = tmp_path / "shared.db"

    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name, port in ports.items():
            home = tmp_path / name
            home.mkdir()
            env = serve_env(home, port, oai.url, LLC_PUBLIC_URL=public, LLC_INSTANCE_URL=f"{public}/i/{name}",
                            LLC_TRUSTED_PROXIES="127.0.0.1", LLC_DB_URL=str(db),
                            LLC_PENDING_RECORDS=str(home / "pending.jsonl"), LLC_API_TOKEN=API_TOKEN,
                            TWILIO_ACCOUNT_SID=twilio.config.account_sid, TWILIO_AUTH_TOKEN=token,
                            TWILIO_API_URL=twilio.url, TWILIO_FROM_NUMBER=FROM, LLC_DRAIN_TIMEOUT_S="1")
            procs.append(start_serve(env, home / "serve.log"))
        conf = _render(tmp_path, tls_port, ports, cert, key)
        nginx = _start_nginx(tmp_path, conf)
        procs.append(nginx)
        _wait_port(tls_port, nginx, "nginx", tmp_path / "nginx.out")
        for (name, port), proc in zip(ports.items(), procs):
            _wait_port(port, proc, f"llc-phone serve {name}", tmp_path / name / "serve.log")

        async with httpx.AsyncClient(timeout=10) as client:
            # The admin surface is not reachable through the proxy, by any path.
            for path in ("/metrics", "/debug/tasks", "/i/a/metrics", "/i/b/debug/tasks"):
                assert (await client.get(public + path)).status_code == 404, path
            assert (await client.get(public + "/healthz")).json()["status"] == "ok"
            # Unsigned and mis-signed webhooks are refused.
            form = {"CallSid": "CAforged", "From": "+15550100001", "To": "+15550100002", "Direction": "inbound"}
            wrong = RequestValidator(token).compute_signature("https://elsewhere.example.com/twiml", form)
            for headers in ({}, {"X-Twilio-Signature": wrong}):
                assert (await client.post(public + "/twiml", data=form, headers=headers)).status_code == 403
            status = {"CallSid": "CAforged", "CallStatus": "completed"}
            assert (await client.post(public + "/i/a/twilio/status", data=status)).status_code == 403

        # An unsigned stream through wss is closed with 1008 before anything is started.
        with trio.fail_after(10):
            async with open_websocket_url(public.replace("https", "wss") + "/media",
                                          ssl_context=ssl.create_default_context()) as ws:
                with pytest.raises(ConnectionClosed) as closed:  # closed right after the upgrade: no frame needed
                    await ws.get_message()
        assert closed.value.reason.code == 1008

        # Inbound: the signed webhook through https gets TwiML naming an instance; the signed
        # wss stream is admitted and the agent answers.
        script = CallerScript(turns=[CallerTurn("Hello?")], max_call_s=15)
        inbound = await FakeCaller(public, script, auth_token=token).run()
        assert inbound.ended_by == "caller_hangup" and inbound.heard_audio_ms > 0, inbound.events
        assert inbound.stream_url in (f"wss://127.0.0.1:{tls_port}/i/a/media", f"wss://127.0.0.1:{tls_port}/i/b/media")

        # Outbound: two POST /calls through the balancer land on both instances; each call's
        # stream comes back through its instance's URL and claims that instance's warm session.
        async with httpx.AsyncClient(timeout=10) as client:
            placed = [await client.post(public + "/calls", json={"to": to},
                                        headers={"Authorization": f"Bearer {API_TOKEN}"})
                      for to in ("+15550100301", "+15550100302")]
        assert [p.status_code for p in placed] == [201, 201], [p.text for p in placed]
        sids = [p.json()["call_sid"] for p in placed]
        for sid in sids:
            with trio.fail_after(20):
                await twilio.calls[sid].done.wait()
        streams = {twilio.calls[sid].result.stream_url for sid in sids}  # type: ignore[union-attr]
        assert streams == {f"wss://127.0.0.1:{tls_port}/i/{n}/media" for n in ports}  # one per instance
        assert all(twilio.calls[sid].result.ended_by == "caller_hangup" for sid in sids)  # type: ignore[union-attr]
        callbacks = [cb["answer"] for sid in sids for cb in twilio.calls[sid].callbacks]
        assert callbacks and set(callbacks) == {204}  # every signed status callback accepted through https

        # One database: all three records, whichever instance wrote them; outbound ones prewarmed.
        with trio.fail_after(10):
            while True:
                with sqlite3.connect(db) as conn:
                    rows = dict(conn.execute("SELECT call_sid, path || ':' || end_reason FROM calls").fetchall())
                if len(rows) >= 3 and all(not v.endswith(":") for v in rows.values()):  # final, not in-progress saves
                    break
                await trio.sleep(0.1)
        assert rows == {inbound.call_sid: "pre-accept:caller_hangup",
                        sids[0]: "prewarm:caller_hangup", sids[1]: "prewarm:caller_hangup"}
    finally:
        for proc in procs:  # SIGTERM: llc drains (LLC_DRAIN_TIMEOUT_S=1), nginx shuts down fast
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                stop_pid(proc.pid, 1)
