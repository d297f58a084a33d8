"""`llc-phone doctor` against the simulator: all PASS, then each fault injected makes its check FAIL with the fix."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
import trio

from llc.config import Settings
from llc.kit.sim.fake_twilio_numbers import FakeNumber, FakeTwilioNumbers
from llc.ops.doctor import Check, render, run_checks
from tests.helpers.stack import StackFactory

PUBLIC = "https://voice.example.test"  # the fake numbers' webhooks say this until doctor_settings aims them


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


@pytest.fixture
async def twilio(nursery: trio.Nursery) -> tuple[FakeTwilioNumbers, str]:
    fake = FakeTwilioNumbers(numbers=[FakeNumber("+14155550100", PUBLIC + "/twiml"),
                                      FakeNumber("+14155550101", PUBLIC + "/twiml?scenario=receptionist", sid="PN2")])
    binds = await nursery.start(fake.serve)
    return fake, binds[0]


def doctor_settings(port: int, fake_openai_url: str, twilio: tuple[FakeTwilioNumbers, str], tmp_path: Path,
                    **changes: object) -> Settings:
    """LLC_PUBLIC_URL is the server itself on loopback (as a tunnel to it would be), unless ``changes`` say
    otherwise; the fake numbers' webhooks are aimed at it."""
    fake, twilio_url = twilio
    public = str(changes.pop("public_url", f"http://127.0.0.1:{port}"))
    for number in fake.numbers:
        number.voice_url = number.voice_url.replace(PUBLIC, public)
    log = tmp_path / "llc.jsonl"
    if not log.exists():
        log.write_text(orjson.dumps({"ts": time.time(), "level": "info", "logger": "llc.web", "msg": "serving"}).decode() + "\n")
    base = Settings(port=port, public_url=public, openai_realtime_url=fake_openai_url, twilio_api_url=twilio_url,
                    twilio_account_sid="AC" + "0" * 32, twilio_auth_token="0f" * 16, log_file=str(log),
                    pid_file=str(tmp_path / "llc-phone.pid"))
    return base.with_overrides(**changes)


async def test_all_pass_against_the_simulator(start_stack: StackFactory, twilio, tmp_path: Path) -> None:
    fake_twilio, _ = twilio
    stack = await start_stack()
    settings = doctor_settings(urlsplit(stack.base_url).port, stack.fake.url, twilio, tmp_path)
    checks = await run_checks(settings, openai_timeout_s=5)
    assert [c.status for c in checks] == ["PASS"] * len(checks), render(checks)
    names = [c.name for c in checks]
    assert names == ["server up", "one listener on PORT", "public URL reaches this server", "profile", "tools", "twilio webhook +14155550100",
                     "twilio webhook +14155550101", "openai session", "recent log errors"]
    assert fake_twilio.requests == 1  # the webhook was asked from the (fake) Twilio API
    assert stack.fake.sessions[-1].session is not None  # a real test session was opened and accepted
    assert render(checks).endswith("all checks passed")


async def test_wrong_webhook_and_bad_credentials(start_stack: StackFactory, twilio, tmp_path: Path) -> None:
    fake_twilio, _ = twilio
    fake_twilio.numbers[0].voice_url = "https://old-host.example.test/twiml"
    fake_twilio.numbers[1].voice_method = "GET"
    stack = await start_stack()
    settings = doctor_settings(urlsplit(stack.base_url).port, stack.fake.url, twilio, tmp_path)
    checks = by_name(await run_checks(settings, openai_timeout_s=5))
    wrong = checks["twilio webhook +14155550100"]
    assert wrong.status == "FAIL" and "old-host" in wrong.detail and f"POST {settings.public_url}/twiml" in wrong.fix
    assert checks["twilio webhook +14155550101"].status == "FAIL" and "POST" in checks["twilio webhook +14155550101"].fix
    assert checks["server up"].status == checks["openai session"].status == "PASS"  # only the injected faults fail

    bad = settings.with_overrides(twilio_auth_token="wrong")
    result = by_name(await run_checks(bad, openai_timeout_s=5))["twilio webhook"]
    assert result.status == "FAIL" and "401" in result.detail and "TWILIO_AUTH_TOKEN" in result.fix


@pytest.mark.parametrize("server_shape, fake_shape", [("flat", "ga"), ("ga", "flat")])
async def test_wrong_shape(start_stack: StackFactory, twilio, tmp_path: Path, server_shape: str, fake_shape: str) -> None:
    stack = await start_stack(fake_shape)
    settings = doctor_settings(urlsplit(stack.base_url).port, stack.fake.url, twilio, tmp_path, openai_api_shape=server_shape)
    check = by_name(await run_checks(settings, openai_timeout_s=5))["openai session"]
    assert check.status == "FAIL" and "wrong session shape" in check.detail
    assert check.fix == f"set OPENAI_API_SHAPE={fake_shape}"


async def test_server_down(twilio, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = doctor_settings(port, f"ws://127.0.0.1:{port}/v1/realtime", twilio, tmp_path)
    checks = by_name(await run_checks(settings, openai_timeout_s=2))
    assert checks["server up"].status == "FAIL" and "llc-phone restart" in checks["server up"].fix
    assert checks["one listener on PORT"].status == "FAIL" and "nothing listens" in checks["one listener on PORT"].detail
    assert checks["openai session"].status == "FAIL" and "OPENAI_REALTIME_URL" in checks["openai session"].fix


async def test_port_taken_by_a_stray(twilio, tmp_path: Path) -> None:
    with socket.socket() as stray:  # holds the port, never answers HTTP
        stray.bind(("127.0.0.1", 0))
        stray.listen()
        port = stray.getsockname()[1]
        settings = doctor_settings(port, f"ws://127.0.0.1:{port}/v1/realtime", twilio, tmp_path)
        checks = by_name(await run_checks(settings, health_timeout_s=0.5, openai_timeout_s=1))
    assert checks["server up"].status == "FAIL"
    port_check = checks["one listener on PORT"]
    assert port_check.status == "FAIL" and "held by pid" in port_check.detail and "stray" in port_check.fix


async def test_recent_errors_in_the_log(start_stack: StackFactory, twilio, tmp_path: Path) -> None:
    stack = await start_stack()
    log = tmp_path / "llc.jsonl"
    old = {"ts": time.time() - 3600, "level": "error", "logger": "llc.call", "msg": "an hour ago"}
    new = {"ts": time.time() - 5, "level": "error", "logger": "llc.call", "msg": "could not open the OpenAI session"}
    log.write_text("\n".join(orjson.dumps(e).decode() for e in (old, new)) + "\nnot json\n")
    settings = doctor_settings(urlsplit(stack.base_url).port, stack.fake.url, twilio, tmp_path)
    check = by_name(await run_checks(settings, openai_timeout_s=5, log_window_s=900))["recent log errors"]
    assert check.status == "FAIL" and check.detail.startswith("1 error lines") and "could not open" in check.detail
    assert str(log) in check.fix



async def test_server_started_with_another_port_is_found_by_its_pid_file(start_stack: StackFactory, twilio,
                                                                          tmp_path: Path) -> None:
    """`llc-phone serve --port N` leaves PORT stale; the pid file still names the server."""
    stack = await start_stack()
    real_port = urlsplit(stack.base_url).port
    with socket.socket() as probe:  # the configured PORT: nothing listens there
        probe.bind(("127.0.0.1", 0))
        stale = probe.getsockname()[1]
    settings = doctor_settings(stale, stack.fake.url, twilio, tmp_path)
    (tmp_path / "llc-phone.pid").write_text(f"{os.getpid()}\n")  # the server runs in this process
    checks = by_name(await run_checks(settings, openai_timeout_s=5))
    up = checks["server up"]
    assert up.status == "PASS" and f":{real_port}/healthz" in up.detail and "pid file" in up.detail, render(list(checks.values()))
    assert checks["one listener on PORT"].status == "PASS"


async def test_profile_typo_is_reported(start_stack: StackFactory, twilio, tmp_path: Path) -> None:
    stack = await start_stack()
    typo = tmp_path / "profile.toml"
    typo.write_text('vocie = "marin"\n')
    settings = doctor_settings(urlsplit(stack.base_url).port, stack.fake.url, twilio, tmp_path, profile_path=str(typo))
    check = by_name(await run_checks(settings, openai_timeout_s=5))["profile"]
    assert check.status == "FAIL" and "unknown key(s) 'vocie'" in check.detail and "known keys are" in check.detail


def test_doctor_checks_the_one_port() -> None:
    from llc.config import Settings
    from llc.ops.doctor import check_ports

    assert [c.name for c in check_ports(Settings(port=1), None)] == ["one listener on PORT"]


async def test_public_url_that_reaches_another_server_or_nothing(start_stack: StackFactory, twilio, tmp_path: Path) -> None:
    """A tunnel left pointing at an older server, or at nothing: /healthz through LLC_PUBLIC_URL must carry
    this server's nonce."""
    stack, other = await start_stack(), await start_stack()
    port = urlsplit(stack.base_url).port
    assert stack.state.nonce != other.state.nonce
    elsewhere = doctor_settings(port, stack.fake.url, twilio, tmp_path, public_url=other.base_url)
    check = by_name(await run_checks(elsewhere, openai_timeout_s=5))["public URL reaches this server"]
    assert check.status == "FAIL" and "reaches another llc-phone server" in check.detail, check
    assert check.fix == f"point your tunnel or proxy (nginx) at 127.0.0.1:{port}, where this server listens"

    with socket.socket() as probe:  # a port nothing listens on: the tunnel is down
        probe.bind(("127.0.0.1", 0))
        down = probe.getsockname()[1]
    nothing = doctor_settings(port, stack.fake.url, twilio, tmp_path, public_url=f"http://127.0.0.1:{down}")
    check = by_name(await run_checks(nothing, openai_timeout_s=5, public_timeout_s=2))["public URL reaches this server"]
    assert check.status == "FAIL" and "LLC_PUBLIC_URL does not answer" in check.detail and "Connection refused" in check.detail
    assert check.fix.startswith("start the tunnel or the proxy")


async def test_an_unreachable_twilio_api_is_said_whole_and_wrapped_between_words(twilio, tmp_path: Path) -> None:
    """The requests error was cut at 300 characters, mid-word, before its cause."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = doctor_settings(port, f"ws://127.0.0.1:{port}/v1/realtime", twilio, tmp_path,
                               twilio_api_url=f"http://127.0.0.1:{port}")
    checks = await run_checks(settings, openai_timeout_s=1, public_timeout_s=1)
    check = by_name(checks)["twilio webhook"]
    assert check.detail == f"cannot reach http://127.0.0.1:{port}: ConnectionRefusedError: [Errno 111] Connection refused"
    text = render(checks)
    assert all(len(line) <= 110 or " " not in line.strip() for line in text.splitlines()), text
    assert " ".join(text.split()).count("ConnectionRefusedError: [Errno 111] Connection refused") >= 1
