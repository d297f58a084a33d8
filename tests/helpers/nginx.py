"""Real nginx in front of real `llc-phone serve` processes, for the recipe tests
(tests/e2e/test_deploy_nginx*.py): a recipe from ops/nginx/ with this run's ports and a test
CA's certificate swapped in, nginx in the foreground under its own prefix, and the checks every
recipe must pass through its public https/wss URL."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url
from twilio.request_validator import RequestValidator

from llc.kit.sim.fake_caller import CallerScript, CallerTurn, CallResult, FakeCaller
from llc.kit.sim.fake_openai import FakeOpenAI, FakeOpenAIConfig
from llc.kit.sim.fake_twilio import Behaviour, FakeCall, FakeTwilio, FakeTwilioConfig
from tests.helpers.components import missing
from tests.helpers.ops_procs import serve_env, stop_pid

if TYPE_CHECKING:
    import trustme

RECIPES = Path(__file__).resolve().parents[2] / "ops" / "nginx"
API_TOKEN = "deploy-api-token"
FROM = "+15550009999"


def nginx_or_skip() -> str:
    """Debian's nginx; missing, a skip naming the install (a failure under CI, which installs it)."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if found is None:
        missing("nginx", "apt install nginx")
    return found


def trusted_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> trustme.CA:
    """A test CA, trusted by this process's TLS clients (httpx, trio-websocket) through SSL_CERT_FILE."""
    trustme_ = pytest.importorskip("trustme", reason="trustme (test extra) makes the test CA")
    authority = trustme_.CA()
    pem = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    return authority


def write_cert(ca: trustme.CA, host: str, cert: Path, key: Path) -> None:
    """A certificate for ``host`` from ``ca``: the chain in ``cert`` (like Let's Encrypt's fullchain.pem),
    the key in ``key``."""
    leaf = ca.issue_cert(host)
    cert.parent.mkdir(parents=True, exist_ok=True)
    cert.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))


def swap(text: str, swaps: dict[str, str], recipe: str) -> str:
    """``text`` with each old string replaced; one the recipe no longer has fails the test, naming it."""
    for old, new in swaps.items():
        assert old in text, f"{recipe} no longer has {old!r}: update its test with it"
        text = text.replace(old, new)
    return text


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def main_conf(prefix: Path, include: str) -> Path:
    """A minimal main config whose http block includes ``include`` (a file, or a glob as Debian's sites-enabled/*)."""
    temp = "\n".join(f"    {kind}_temp_path {prefix / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = prefix / "nginx.conf"
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'} warn;\n"
        + "events { worker_connections 256; }\n"
        + f"http {{\n    access_log off;\n{temp}\n    include {include};\n}}\n")
    return main


def _command(nginx: str, prefix: Path, conf: Path) -> list[str]:
    return [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]


def check_conf(nginx: str, prefix: Path, conf: Path) -> None:
    """`nginx -t`: the configuration parses, and the certificates and ports it names are there."""
    done = subprocess.run([*_command(nginx, prefix, conf), "-t"], capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0 and "test is successful" in done.stderr, done.stderr


def start_nginx(nginx: str, prefix: Path, conf: Path) -> subprocess.Popen[bytes]:
    """nginx in the foreground of its own prefix; what it says on stderr goes to nginx.out."""
    with open(prefix / "nginx.out", "wb") as out:  # the child keeps its own copy of the file
        return subprocess.Popen(_command(nginx, prefix, conf), stdout=subprocess.DEVNULL, stderr=out,
                                stdin=subprocess.DEVNULL)


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on {port} within {timeout_s:g} s:\n"
                         f"{log.read_text(errors='replace')[-2000:]}")


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM: llc drains (LLC_DRAIN_TIMEOUT_S=1), nginx shuts down fast; SIGKILL what lingers."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            stop_pid(proc.pid, 1)


async def simulators(nursery: trio.Nursery) -> tuple[FakeOpenAI, FakeTwilio]:
    """The fake OpenAI (one short reply) and the fake Twilio (calls answered after 300 ms), serving."""
    oai = FakeOpenAI(FakeOpenAIConfig(ttfb_ms=50, end_of_turn_silence_ms=200, replies=["Hi, it's Sam."]))
    await nursery.start(oai.serve)
    twilio = FakeTwilio(FakeTwilioConfig(ring_ms=0, default=Behaviour(answer_ms=300)))
    await nursery.start(twilio.serve)
    return oai, twilio


def proxied_env(home: Path, port: int, openai_url: str, twilio: FakeTwilio, public: str, db: Path,
                **extra: str) -> dict[str, str]:
    """`llc-phone serve`'s environment behind the proxy: its public URL, nginx trusted, the simulators."""
    home.mkdir(exist_ok=True)
    return serve_env(home, port, openai_url, LLC_PUBLIC_URL=public, LLC_TRUSTED_PROXIES="127.0.0.1",
                     LLC_DB_URL=str(db), LLC_PENDING_RECORDS=str(home / "pending.jsonl"), LLC_API_TOKEN=API_TOKEN,
                     TWILIO_ACCOUNT_SID=twilio.config.account_sid, TWILIO_AUTH_TOKEN=twilio.config.auth_token,
                     TWILIO_API_URL=twilio.url, TWILIO_FROM_NUMBER=FROM, LLC_DRAIN_TIMEOUT_S="1", **extra)


async def check_public_surface(public: str, token: str, admin_paths: tuple[str, ...]) -> None:
    """Through the proxy: no admin path answers, /healthz does, unsigned or mis-signed webhooks get
    403 and an unsigned media stream is closed with 1008 before anything is started."""
    async with httpx.AsyncClient(timeout=10) as client:
        for path in admin_paths:
            assert (await client.get(public + path)).status_code == 404, path
        assert (await client.get(public + "/healthz")).json()["status"] == "ok"
        form = {"CallSid": "CAforged", "From": "+15550100001", "To": "+15550100002", "Direction": "inbound"}
        wrong = RequestValidator(token).compute_signature("https://elsewhere.example.com/twiml", form)
        for headers in ({}, {"X-Twilio-Signature": wrong}):
            assert (await client.post(public + "/twiml", data=form, headers=headers)).status_code == 403
    with trio.fail_after(10):
        async with open_websocket_url(public.replace("https", "wss") + "/media",
                                      ssl_context=ssl.create_default_context()) as ws:
            with pytest.raises(ConnectionClosed) as closed:  # closed right after the upgrade: no frame needed
                await ws.get_message()
    assert closed.value.reason.code == 1008


async def call_in(public: str, token: str) -> CallResult:
    """An inbound call as Twilio makes it: the signed webhook through https, the signed stream through
    wss; the agent is heard and the caller hangs up."""
    script = CallerScript(turns=[CallerTurn("Hello?")], max_call_s=15)
    inbound = await FakeCaller(public, script, auth_token=token).run()
    assert inbound.ended_by == "caller_hangup" and inbound.heard_audio_ms > 0, inbound.events
    return inbound


async def dial(public: str, twilio: FakeTwilio, *numbers: str) -> list[FakeCall]:
    """POST /calls through the proxy, one call a number; the calls as FakeTwilio saw them, once ended."""
    async with httpx.AsyncClient(timeout=10) as client:
        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        placed = [await client.post(public + "/calls", json={"to": to}, headers=auth) for to in numbers]
    assert [p.status_code for p in placed] == [201] * len(numbers), [p.text for p in placed]
    calls = [twilio.calls[p.json()["call_sid"]] for p in placed]
    for call in calls:
        with trio.fail_after(20):
            await call.done.wait()
    callbacks = [cb["answer"] for call in calls for cb in call.callbacks]
    assert callbacks and set(callbacks) == {204}  # every signed status callback accepted through https
    return calls
