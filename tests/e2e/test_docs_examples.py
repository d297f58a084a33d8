"""Every `llc` command shown in README.md and docs/*.md runs in a test against the simulator.

The commands are read from the docs themselves (fenced blocks and inline code), so an example
that is added, renamed or broken fails here: each must parse with today's CLI, and its command
(``llc-phone snapshot restore``, ``llc-phone demo``…) must be in ``RUNS_IN``, which names the test that runs
it. Commands that are quick run here, as written (fast simulator timings added to the demo);
the long ones (bench relay, bargein, soak, snapshot, restart, serve) run in their own test files.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio

from llc.app import build_server, serve
from llc.cli import build_parser
from llc.config import Settings
from llc.kit.sim.fake_openai import FakeOpenAI, FakeOpenAIConfig
from llc.kit.sim.fake_twilio import FakeTwilio
from llc.kit.sim.fake_twilio_numbers import FakeNumber, FakeTwilioNumbers
from llc.profile import load_profile

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PUBLIC = "https://voice.example.test"
API_TOKEN = "docs-example-token"

# Command -> the test that runs it. Keep in sync with the docs: the tests below fail both ways.
RUNS_IN = {
    "llc-phone --version": "tests/unit/test_cli.py::test_version",
    "llc-phone serve": "tests/unit/test_cli.py::test_serve_refuses_an_unreachable_or_unsafe_public_setup",
    "llc-phone demo": "tests/e2e/test_docs_examples.py::test_demo_examples_run",
    "llc-phone call": "tests/e2e/test_docs_examples.py::test_outbound_and_record_examples_run",
    "llc-phone calls": "tests/e2e/test_docs_examples.py::test_outbound_and_record_examples_run",
    "llc-phone calls show": "tests/e2e/test_docs_examples.py::test_outbound_and_record_examples_run",
    "llc-phone calls audio": "tests/e2e/test_call_audio.py::test_barge_in_after_the_transcript_is_recorded_as_heard_and_the_wav_is_cut_there",
    "llc-phone events": "tests/e2e/test_events_outbox.py::test_the_events_command_lists_waiting_and_failed_and_retries",
    "llc-phone messages": "tests/e2e/test_docs_examples.py::test_outbound_and_record_examples_run",
    "llc-phone db init": "tests/e2e/test_docs_examples.py::test_outbound_and_record_examples_run",
    "llc-phone db seed": "tests/e2e/test_docs_examples.py::test_outbound_and_record_examples_run",
    "llc-phone doctor": "tests/e2e/test_docs_examples.py::test_doctor_examples_run",
    "llc-phone tools": "tests/unit/test_tool_loader.py::test_the_command_lists_tools_and_refuses_a_bad_module_in_one_line",
    "llc-phone restart": "tests/e2e/test_restart.py::test_orphaned_server_is_killed_and_a_new_one_answers",
    "llc-phone snapshot save": "tests/unit/test_snapshots.py::test_round_trip",
    "llc-phone snapshot list": "tests/unit/test_snapshots.py::test_round_trip",
    "llc-phone snapshot diff": "tests/unit/test_snapshots.py::test_round_trip",
    "llc-phone snapshot restore": "tests/unit/test_snapshots.py::test_round_trip",
    "llc-phone bench relay": "tests/e2e/test_bench.py::test_relay_short_run_through_a_real_server_loses_nothing",
    "llc-phone bench capacity": "tests/e2e/test_docs_examples.py::test_capacity_and_prewarm_benches_run",
    "llc-phone bench prewarm": "tests/e2e/test_docs_examples.py::test_capacity_and_prewarm_benches_run",
    "llc-phone bench bargein": "tests/e2e/test_bench_bargein.py::test_bargein_bench_short",
    "llc-phone bench core": "tests/e2e/test_bench.py::test_core_bench_prints_the_cost_per_frame_both_ways",
    "llc-phone bench paths": "tests/e2e/test_bench_paths.py::test_the_command_prints_both_records_and_the_model",
    "llc-phone soak": "tests/e2e/test_soak.py::test_short_soak_is_flat_and_clean",
}
_GROUPS = {"snapshot", "bench", "db"}  # subcommands whose second word is the command
# Placeholders the docs use, and what the tests put in their place.
_PLACEHOLDERS = {"+1…": "+15551234567", "<NAME>": "2026-11-25", "NAME": "2026-11-25", "<CallSid>": "CA0123",
                 "SID": "CA0123", "CA0123...": "CA0123", "S": "survey", "k=v": "name=Ann", "N": "9000"}
_INLINE = re.compile(r"`(llc-phone [^`]+)`")


@dataclass(frozen=True)
class Documented:
    text: str  # as written (placeholders and alternatives resolved)
    where: str  # file:line
    # A mention in prose (`llc-phone snapshot restore`, `llc-phone bench`) or a list of alternatives names
    # real commands and options but may leave out required arguments; a fenced example may not.
    overview: bool = False


def _key(args: list[str]) -> str:
    words = ["llc-phone", args[0]]
    if len(args) > 1 and (args[0] in _GROUPS or (args[0] == "calls" and args[1] in ("show", "audio"))):
        words.append(args[1])
    return " ".join(words)


def _expand(raw: str, where: str, mention: bool = False) -> list[Documented]:
    """One documented command -> the concrete commands it stands for."""
    text = raw.replace("\\|", "|").split("  #")[0].strip()
    text = re.sub(r"\[([^\]]*)\]", r"\1", text)  # optional parts are part of what must parse
    words = [_PLACEHOLDERS.get(w, w) for w in text.split()]
    variants: list[list[str]] = [[]]
    overview = mention
    for word in words:
        choices = word.split("|") if "|" in word and not word.startswith(("-", "'", '"')) else [word]
        overview = overview or len(choices) > 1
        variants = [v + [c] for v in variants for c in choices]
    return [Documented(" ".join(v), where, overview) for v in variants]


def documented_commands() -> list[Documented]:
    found: list[Documented] = []
    for doc in DOCS:
        in_block = False
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{doc.relative_to(REPO)}:{number}"
            if line.strip().startswith("```"):
                in_block = not in_block
                continue
            if in_block:
                for part in re.split(r"&&|;", line.strip().removeprefix("$ ")):
                    part = re.sub(r"^\s*\S*/llc-phone ", "llc-phone ", part)  # .venv/bin/llc-phone demo
                    if part.strip().startswith("llc-phone "):
                        found += _expand(part, where)
            else:
                for match in _INLINE.finditer(line):
                    found += _expand(match.group(1), where, mention=True)
    return found


def test_the_docs_show_commands() -> None:
    keys = {_key(shlex.split(c.text)[1:]) for c in documented_commands()}
    assert {"llc-phone demo", "llc-phone serve", "llc-phone doctor", "llc-phone call"} <= keys  # the extraction works


def test_every_documented_command_parses() -> None:
    parser = build_parser()
    broken = []
    for command in documented_commands():
        args = shlex.split(command.text)[1:]
        try:
            parser.parse_args(args)
        except SystemExit:
            if command.overview:  # `llc-phone snapshot restore` in prose: the command exists, NAME left out
                try:
                    parser.parse_args(args + ["--help"])
                except SystemExit as done:
                    if done.code == 0:
                        continue
            broken.append(f"{command.where}: {command.text}")
    assert not broken, "documented commands today's CLI refuses:\n" + "\n".join(broken)


def test_every_documented_command_runs_in_a_test() -> None:
    documented = {_key(shlex.split(c.text)[1:]): c.where for c in documented_commands()}
    for group in _GROUPS:  # `llc-phone bench` in prose names the group; its commands are the ones run
        documented.pop(f"llc-phone {group}", None)
    missing = {key: where for key, where in documented.items() if key not in RUNS_IN}
    assert not missing, f"documented commands no test runs (add them to RUNS_IN): {missing}"
    stale = sorted(set(RUNS_IN) - set(documented))
    assert not stale, f"RUNS_IN lists commands the docs no longer show: {stale}"
    for key, node in RUNS_IN.items():
        path, _, name = node.partition("::")
        assert f"def {name}(" in (REPO / path).read_text(), f"{key}: {node} does not exist"


def _complete(text: str) -> bool:
    try:
        build_parser().parse_args(shlex.split(text)[1:])
    except SystemExit:
        return False
    return True


def _examples(key: str) -> list[str]:
    """The documented commands for ``key`` that are complete enough to run as written."""
    return sorted({c.text for c in documented_commands() if _key(shlex.split(c.text)[1:]) == key and _complete(c.text)})


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLC_", "OPENAI_", "TWILIO_", "PORT"))}
    env.update(LLC_ENV_FILE=str(tmp_path / "none.env"), LLC_PID_FILE=str(tmp_path / "llc.pid"), **settings)
    return env


def _run(command: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    args = shlex.split(command)
    return subprocess.run([sys.executable, "-m", "llc.cli", *args[1:]], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False)


def _ok(done: subprocess.CompletedProcess[str], command: str) -> str:
    assert done.returncode == 0, f"{command} -> exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout


# ---- the simulator, in a thread (the CLI runs as its own process, like a user's) ---------------

@dataclass
class Sim:
    port: int = 0
    openai_url: str = ""
    twilio: FakeTwilio | None = None
    numbers_url: str = ""
    numbers: FakeTwilioNumbers | None = None
    token: Any = None
    cancel: trio.CancelScope | None = None
    ready: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    """Fake OpenAI, fake Twilio (calls and numbers) and the real server, on loopback ports."""
    state = Sim()

    async def main() -> None:
        with trio.CancelScope() as scope:
            state.cancel, state.token = scope, trio.lowlevel.current_trio_token()
            async with trio.open_nursery() as nursery:
                fake = FakeOpenAI(FakeOpenAIConfig(ttfb_ms=50, end_of_turn_silence_ms=200, replies=["Hi, it's Sam."]))
                await nursery.start(fake.serve)
                twilio = FakeTwilio()
                await nursery.start(twilio.serve)
                numbers = FakeTwilioNumbers(numbers=[FakeNumber("+14155550100", PUBLIC + "/twiml")])
                state.numbers, state.numbers_url = numbers, (await nursery.start(numbers.serve))[0]
                settings = Settings(port=0, openai_realtime_url=fake.url, twilio_api_url=twilio.url,
                                    twilio_account_sid=twilio.config.account_sid,
                                    twilio_auth_token=twilio.config.auth_token, twilio_from_number="+15550009999",
                                    api_token=API_TOKEN, db_url=str(tmp_path / "llc.db"),
                                    pending_records_path=str(tmp_path / "pending.jsonl"))
                binds = await nursery.start(serve, build_server(settings, load_profile()))
                state.port, state.openai_url, state.twilio = int(binds[0].rsplit(":", 1)[1]), fake.url, twilio
                state.ready.set()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    assert state.ready.wait(30), "the simulator did not start"
    yield state
    trio.from_thread.run_sync(state.cancel.cancel, trio_token=state.token)  # type: ignore[union-attr]
    thread.join(15)


def test_outbound_and_record_examples_run(sim: Sim, tmp_path: Path) -> None:
    env = _env(tmp_path, PORT=str(sim.port), LLC_API_TOKEN=API_TOKEN, LLC_DB_URL=str(tmp_path / "llc.db"))
    calls = _examples("llc-phone call")
    assert any("--scenario reminder" in c for c in calls)
    sids = []
    for command in calls:
        sids.append(json.loads(_ok(_run(command, env, tmp_path), command))["call_sid"])
    assert sim.twilio is not None and set(sids) <= set(sim.twilio.calls)  # each reached (fake) Twilio

    # The reminder needs {when} too: the CLI says which --var is missing, not the JSON field.
    done = _run("llc-phone call +15551234567 --scenario reminder --var name=Ann", env, tmp_path)
    assert done.returncode == 2 and "--var when=VALUE" in done.stderr and '"variables"' not in done.stderr

    deadline = time.monotonic() + 30  # the calls end (callee hangs up) and their records are written
    while time.monotonic() < deadline and not all(sid in _run("llc-phone calls", env, tmp_path).stdout for sid in sids):
        time.sleep(0.5)
    for command in _examples("llc-phone calls") + _examples("llc-phone messages") + _examples("llc-phone db init") + _examples("llc-phone db seed"):
        _ok(_run(command, env, tmp_path), command)
    assert sids[0] in _run("llc-phone calls", env, tmp_path).stdout
    for command in _examples("llc-phone calls show"):
        shown = _run(command.replace("CA0123", sids[0]), env, tmp_path)
        assert sids[0] in _ok(shown, command)


def test_doctor_examples_run(sim: Sim, tmp_path: Path) -> None:
    log = tmp_path / "llc.jsonl"
    log.write_text(orjson.dumps({"ts": time.time(), "level": "info", "logger": "llc.web", "msg": "serving"}).decode() + "\n")
    numbers = sim.numbers
    assert numbers is not None
    public = f"http://127.0.0.1:{sim.port}"  # the server itself, as a tunnel to it would be: doctor asks it
    numbers.numbers[0].voice_url = public + "/twiml"
    env = _env(tmp_path, PORT=str(sim.port), LLC_PUBLIC_URL=public, OPENAI_REALTIME_URL=sim.openai_url,
               TWILIO_API_URL=sim.numbers_url, TWILIO_ACCOUNT_SID=numbers.account_sid,
               TWILIO_AUTH_TOKEN=numbers.auth_token, LLC_LOG_FILE=str(log))
    examples = _examples("llc-phone doctor")
    assert "llc-phone doctor" in examples and "llc-phone doctor --json" in examples
    for command in examples:
        out = _ok(_run(command, env, tmp_path), command)
        if "--json" in command:
            assert {c["status"] for c in json.loads(out)} == {"PASS"}
        else:
            assert out.strip().endswith("all checks passed")


def test_demo_examples_run(tmp_path: Path) -> None:
    """Each documented demo, with fast simulator timings added, side by side (each is mostly waiting)."""
    examples = _examples("llc-phone demo")
    assert {"llc-phone demo", "llc-phone demo --shape flat", "llc-phone demo --scenario ivr"} <= set(examples)
    env = _env(tmp_path)
    procs = {}
    for c in examples:  # each in its own folder: each demo keeps its record in ./llc-demo.db
        (where := tmp_path / c.replace(" ", "_")).mkdir()
        procs[c] = subprocess.Popen([sys.executable, "-m", "llc.cli", *shlex.split(c)[1:], "--ttfb-ms", "50",
                                     "--silence-ms", "200"], env=env, cwd=where, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
    for command, proc in procs.items():
        if "--console" in command:  # stays up with the console until Ctrl-C: look at it, then stop it
            _console_demo_answers(proc, command)
            continue
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "demo OK" in out and "Traceback" not in err, f"{command}\n{out}\n{err}"
        # Demo data (calls, a scenario's customers and messages) never goes where a server would look.
        where = tmp_path / command.replace(" ", "_")
        assert (where / "llc-demo.db").is_file() and not (where / "llc.db").exists(), command
        assert f"--db {'llc-demo.db'}" in out and "never the one a server uses" in out, out


def _console_demo_answers(proc: subprocess.Popen[str], command: str) -> None:
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(line.startswith("Call console:") for line in seen):
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
    console = next((line for line in seen if line.startswith("Call console:")), None)
    assert console is not None and "demo OK" in "".join(seen), f"{command}\n{''.join(seen)}"
    call_url = console.split("this call: ", 1)[1].rstrip(")\n ")
    page = httpx.get(call_url, timeout=10)
    assert page.status_code == 200 and call_url.rsplit("/", 1)[1] in page.text
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "Traceback" not in err, err


def test_capacity_and_prewarm_benches_run(tmp_path: Path) -> None:
    """As documented, scaled down to a few calls (the documented sizes take minutes)."""
    assert _examples("llc-phone bench capacity") and _examples("llc-phone bench prewarm")
    env = _env(tmp_path)
    runs = {"capacity": "llc-phone bench capacity --start 2 --step 2 --max-calls 2 --seconds 1",
            "prewarm": "llc-phone bench prewarm --calls 2 --batch 2 --connect-ms 50 --setup-ms 20 --ttfb-ms 50 "
                       "--silence-ms 100 --answer-ms 100"}
    procs = {name: subprocess.Popen([sys.executable, "-m", "llc.cli", *shlex.split(c)[1:]], env=env, cwd=tmp_path,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name, c in runs.items()}
    outs = {name: proc.communicate(timeout=180) for name, proc in procs.items()}
    for name, (out, err) in outs.items():
        assert "Traceback" not in err, f"{name}\n{err}"
    assert procs["prewarm"].returncode == 0 and "prewarm saves" in outs["prewarm"][0]
    # capacity exits 1 when the p99 target is missed, which a shared 2-core box may do: it must still report.
    assert procs["capacity"].returncode in (0, 1) and "memory per call" in outs["capacity"][0]


def _env_blocks(doc: Path) -> list[str]:
    """The ```sh blocks of ``doc`` that are .env files (they set OPENAI_API_KEY)."""
    blocks = re.findall(r"```sh\n(.*?)```", doc.read_text(encoding="utf-8"), re.DOTALL)
    return [textwrap.dedent(b) for b in blocks if "OPENAI_API_KEY=" in b]


# What a user puts in place of the docs' example credentials: real in shape, not in value.
REAL = {"OPENAI_API_KEY": "sk-proj-0123456789", "TWILIO_ACCOUNT_SID": "AC" + "0123456789abcdef" * 2,
        "TWILIO_AUTH_TOKEN": "fedcba9876543210" * 2, "LLC_API_TOKEN": "k3Jd8s-random-token"}


def test_going_live_is_linked_and_its_env_files_start_a_server(tmp_path: Path) -> None:
    """The .env the docs show names every setting inbound and outbound calls need, and `llc-phone serve`
    accepts it as written (before: the README's lacked LLC_API_TOKEN and TWILIO_FROM_NUMBER)."""
    from llc.config import ENV, ConfigError, load_settings

    readme, going_live = REPO / "README.md", REPO / "docs" / "going-live.md"
    assert "(docs/going-live.md)" in readme.read_text()
    text = going_live.read_text()
    for needed in ("../ops/nginx/single.conf", "cloudflared tunnel", "IncomingPhoneNumbers", "VoiceUrl=", "llc-phone doctor",
                   "LLC_LOCAL_ONLY", "LLC_ENV_FILE"):
        assert needed in text, f"docs/going-live.md lacks {needed}"
    for doc in (readme, going_live):
        [block] = _env_blocks(doc)
        names = re.findall(r"^\s*([A-Z_]+)=", block, re.MULTILINE)
        assert {"LLC_PUBLIC_URL", "OPENAI_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER",
                "LLC_API_TOKEN"} <= set(names), doc
        assert set(names) <= set(ENV), f"{doc.name} shows variables llc does not read: {set(names) - set(ENV)}"
        env_file = tmp_path / f"{doc.stem}.env"
        env_file.write_text(block)
        # Copied as is, its example credentials are refused, each by name; with real ones filled in, it starts.
        with pytest.raises(ConfigError) as refused:
            load_settings({}, env_file, require_keys=True)
        named = {p.split("=", 1)[0] for p in refused.value.problems if "is still the example value" in p}
        assert named == set(REAL) and len(refused.value.problems) == len(REAL), refused.value.problems
        settings = load_settings(REAL, env_file, require_keys=True)  # raises ConfigError naming any problem
        assert settings.public_url and settings.public_url.startswith("https://") and settings.api_token


def test_nginx_excerpts_in_the_docs_are_lines_of_the_site_file() -> None:
    """An nginx block in the docs quotes ops/nginx/single.conf (the file the going-live steps install
    and tests/e2e/test_deploy_nginx_single.py runs): each of its lines is one of the file's, comments aside."""
    def lines(text: str) -> list[str]:
        return [" ".join(line.split("#")[0].split()) for line in text.splitlines() if line.split("#")[0].strip()]

    site = set(lines((REPO / "ops" / "nginx" / "single.conf").read_text()))
    blocks = [(doc.name, block) for doc in DOCS
              for block in re.findall(r"```nginx\n(.*?)```", doc.read_text(), re.DOTALL)]
    quoted = {(name, line) for name, block in blocks for line in lines(block)}
    assert quoted, "no nginx block found in the docs"
    stray = sorted(f"{name}: {line}" for name, line in quoted if line not in site)
    assert not stray, "nginx lines in the docs that ops/nginx/single.conf does not have:\n" + "\n".join(stray)
