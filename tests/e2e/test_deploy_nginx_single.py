"""The one-instance recipe, run as docs/going-live.md tells a user: its nginx steps, read from the
page and carried out in order on ops/nginx/single.conf, then real nginx in front of one
`llc-phone serve` and a signed Twilio call through https/wss, the simulators as Twilio and OpenAI.

What differs from a server, and nothing else: /etc is a folder under tmp (Debian's layout: a main
config including sites-enabled/*), the certificate certbot would fetch comes from a test CA and is
written where certbot writes it, nginx listens on free loopback ports (443 and 80 swapped, [::]
on [::1] where the machine has it), and llc on a free port instead of 8080.
"""

from __future__ import annotations

import re
import shlex
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

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "going-live.md"
HOST = "127.0.0.1"  # the host name the test puts in, as a user puts theirs: the certificate is for it


def guide_steps() -> list[str]:
    """The commands of going-live.md's "nginx in front" section, as typed (comments and sudo dropped)."""
    section = GUIDE.read_text(encoding="utf-8").split("## 3a.", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    lines = (re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines())
    return [re.sub(r"\bsudo ", "", line) for line in lines if line]


def follow_the_guide(etc: Path, ca: trustme.CA) -> Path:
    """Every step before `nginx -t`, carried out under ``etc``; the site file sites-enabled points to."""
    for folder in ("sites-available", "sites-enabled"):  # as Debian's nginx package leaves them
        (etc / "nginx" / folder).mkdir(parents=True)
    steps = guide_steps()
    assert steps[-1] == "nginx -t && systemctl reload nginx", "the guide no longer ends by checking and reloading"
    host = None
    for step in steps[:-1]:
        words = shlex.split(step)
        if words[:2] == ["apt", "install"]:
            assert {"nginx", "certbot", "python3-certbot-nginx"} <= set(words)  # nginx: the test's fixture
        elif step.startswith("HOST="):
            host = HOST
        elif words[0] in ("cp", "sed", "ln"):  # run as written, with /etc under tmp
            assert host, "HOST is used before the guide sets it"
            done = subprocess.run(["bash", "-euc", step.replace(" /etc/", f" {etc}/")], cwd=REPO, capture_output=True,
                                  text=True, env={"PATH": "/usr/bin:/bin", "HOST": host}, check=False)
            assert done.returncode == 0, f"{step}\n{done.stderr}"
        elif words[0] == "certbot":  # what certbot certonly leaves: the chain and key under live/<host>/
            assert words == ["certbot", "certonly", "--nginx", "-d", "$HOST"], step
            live = etc / "letsencrypt" / "live" / HOST
            ngx.write_cert(ca, HOST, live / "fullchain.pem", live / "privkey.pem")
        else:
            raise AssertionError(f"docs/going-live.md has a step this test does not carry out: {step}")
    site = etc / "nginx" / "sites-enabled" / "llc-phone"
    assert site.is_symlink() and site.resolve() == etc / "nginx" / "sites-available" / "llc-phone"
    return site


def _localise(site: Path, etc: Path, tls_port: int, http_port: int, llc_port: int) -> None:
    """The enabled site on this run's loopback ports and /etc; the host name is the guide's doing."""
    v6 = ngx.ipv6_loopback()
    swaps = {"listen 443 ssl;": f"listen 127.0.0.1:{tls_port} ssl;",
             "listen [::]:443 ssl;": f"listen [::1]:{tls_port} ssl;" if v6 else "",
             "listen 80;": f"listen 127.0.0.1:{http_port};",
             "listen [::]:80;": f"listen [::1]:{http_port};" if v6 else "",
             f"/etc/letsencrypt/live/{HOST}/": f"{etc}/letsencrypt/live/{HOST}/",
             "proxy_pass http://127.0.0.1:8080;": f"proxy_pass http://127.0.0.1:{llc_port};"}
    text = site.read_text()
    assert "voice.example.com" not in text, "the guide's sed left the example host name in the site file"
    site.write_text(ngx.swap(text, swaps, "ops/nginx/single.conf (after the guide's steps)"))


async def test_one_instance_behind_nginx_as_going_live_says(nursery: trio.Nursery, tmp_path: Path, nginx: str,
                                                             tls_ca: trustme.CA) -> None:
    oai, twilio = await ngx.simulators(nursery)

    etc = tmp_path / "etc"
    site = follow_the_guide(etc, tls_ca)
    tls_port, http_port, llc_port = free_port(), free_port(), free_port()
    _localise(site, etc, tls_port, http_port, llc_port)
    conf = ngx.main_conf(tmp_path, f"{etc}/nginx/sites-enabled/*")
    ngx.check_conf(nginx, tmp_path, conf)  # the guide's `nginx -t`

    public = f"https://{HOST}:{tls_port}"
    env = ngx.proxied_env(tmp_path / "llc", llc_port, oai.url, twilio, public, tmp_path / "llc.db")
    procs = [start_serve(env, tmp_path / "llc" / "serve.log")]
    try:
        procs.append(ngx.start_nginx(nginx, tmp_path, conf))  # the guide's reload: nginx with the site enabled
        ngx.wait_port(tls_port, procs[1], "nginx", tmp_path / "nginx.out")
        ngx.wait_port(llc_port, procs[0], "llc-phone serve", tmp_path / "llc" / "serve.log")

        # Port 80 sends everything to https.
        async with httpx.AsyncClient(timeout=10) as client:
            moved = await client.get(f"http://{HOST}:{http_port}/twiml?scenario=x")
        assert moved.status_code == 301 and moved.headers["location"] == f"https://{HOST}/twiml?scenario=x"

        await ngx.check_public_surface(public, twilio.config.auth_token, ("/metrics", "/debug/tasks", "/console/"))

        # Inbound: the signed webhook through https, the signed stream through wss, the agent heard.
        inbound = await ngx.call_in(public, twilio.config.auth_token)
        assert inbound.stream_url == f"wss://{HOST}:{tls_port}/media"

        # Outbound: POST /calls through https; the stream comes back through wss, the status callbacks through https.
        [call] = await ngx.dial(public, twilio, "+15550100301")
        assert call.result and call.result.ended_by == "caller_hangup" and call.result.heard_audio_ms > 0
        assert call.result.stream_url == f"wss://{HOST}:{tls_port}/media"
    finally:
        ngx.stop_all(procs)
