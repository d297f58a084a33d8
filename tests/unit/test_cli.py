"""The CLI: config errors are one clear message and exit 2, never a traceback."""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from llc.cli import build_parser, main


def test_every_command_registers() -> None:
    choices = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"serve", "demo"} <= set(choices)


def test_serve_without_key_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_REALTIME_URL", raising=False)
    monkeypatch.setenv("PORT", "abc")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "PORT='abc' is not a whole number" in err and "OPENAI_API_KEY is not set" in err
    assert "Traceback" not in err


def test_call_and_bench_register_and_call_validates_offline(capsys: pytest.CaptureFixture[str]) -> None:
    choices = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"call", "bench"} <= set(choices)
    assert main(["call", "5551234"]) == 2
    err = capsys.readouterr().err
    assert "E.164" in err and "Traceback" not in err


def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> None:
    """No setting leaks in from the machine running the tests; ``env`` is the whole configuration."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("LLC_", "OPENAI_", "TWILIO_")) or name == "PORT":
            monkeypatch.delenv(name)
    monkeypatch.setenv("LLC_ENV_FILE", str(tmp_path / "none.env"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)


SIM = {"OPENAI_REALTIME_URL": "ws://127.0.0.1:9/v1/realtime"}


@pytest.mark.parametrize("env, expected", [
    ({}, "LLC_PUBLIC_URL is not set"),
    ({"LLC_PUBLIC_URL": "http://voice.example.com", "TWILIO_AUTH_TOKEN": "0" * 32}, "is not https"),
    ({"LLC_PUBLIC_URL": "https://voice.example.com"}, "TWILIO_AUTH_TOKEN is not set"),
    ({"LLC_LOCAL_ONLY": "on", "LLC_HOST": "0.0.0.0"}, "LLC_LOCAL_ONLY=on but LLC_HOST=0.0.0.0 is not loopback"),
])
def test_serve_refuses_an_unreachable_or_unsafe_public_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str], env: dict[str, str],
                                                             expected: str) -> None:
    """The recommended set-up (loopback behind a proxy) used to start with none of these said.

    A process with a deadline: were the check gone, the server would start and serve forever."""
    _clean(monkeypatch, tmp_path, **SIM, **env)
    done = subprocess.run([sys.executable, "-m", "llc.cli", "serve"], env={**os.environ, "PORT": "0"}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2, done.stderr
    err = done.stderr
    assert expected in err and "Traceback" not in err
    if "LOCAL_ONLY" not in env:
        assert "LLC_LOCAL_ONLY=on" in err  # the one switch for experiments is named


def test_serve_accepts_loopback_http_and_the_local_switch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from llc.config import load_settings

    _clean(monkeypatch, tmp_path, **SIM, LLC_PUBLIC_URL="http://127.0.0.1:8080", TWILIO_AUTH_TOKEN="0" * 32)
    assert load_settings(require_keys=True).stream_url == "ws://127.0.0.1:8080/media"
    _clean(monkeypatch, tmp_path, **SIM, LLC_LOCAL_ONLY="on")
    assert load_settings(require_keys=True).local_only
    monkeypatch.setenv("LLC_TWILIO_SIGNATURES", "off")  # no token, signatures off on purpose: allowed (warned)
    monkeypatch.setenv("LLC_LOCAL_ONLY", "off")
    monkeypatch.setenv("LLC_PUBLIC_URL", "https://voice.example.com")
    settings = load_settings(require_keys=True)
    assert settings.public_url == "https://voice.example.com" and settings.host == "127.0.0.1"
    from llc.web.security import posture_warnings

    # Behind a proxy the host is loopback: the missing token is still said out loud.
    assert any("TWILIO_AUTH_TOKEN is not set" in w for w in posture_warnings(settings))
    assert not posture_warnings(settings.with_overrides(local_only=True, twilio_signatures=True))


@pytest.mark.parametrize("db_url, expected", [("postgresql://nope@127.0.0.1:1/x", "cannot connect to PostgreSQL"),
                                              ("{tmp}/missing-folder/llc.db", "does not exist")])
def test_serve_with_an_unreachable_database_says_so_in_one_line(tmp_path: Path, db_url: str, expected: str) -> None:
    """It was a 60-line ExceptionGroup traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLC_", "OPENAI_", "TWILIO_", "PORT"))}
    env.update(SIM, PORT="0", LLC_LOCAL_ONLY="on", LLC_DB_URL=db_url.format(tmp=tmp_path), LLC_LOG_FORMAT="json",
               LLC_ENV_FILE=str(tmp_path / "none.env"), LLC_PID_FILE=str(tmp_path / "llc.pid"))
    done = subprocess.run([sys.executable, "-m", "llc.cli", "serve"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "ExceptionGroup" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.lstrip(" -").startswith(("llc-phone: LLC_DB_URL", "LLC_DB_URL")) and expected in last
    # LLC_ENV_FILE names a file that is not there: said, not silently ignored.
    assert f"LLC_ENV_FILE={tmp_path / 'none.env'} does not exist" in done.stderr


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"llc-phone {version('llc-phone')}"


def test_help_texts_name_current_settings() -> None:
    from llc.config_vars import REMOVED, RENAMED

    parser = build_parser()
    texts = [parser.format_help()]
    for sub in parser._subparsers._group_actions[0].choices.values():  # type: ignore[union-attr]
        texts.append(sub.format_help())
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                texts += [p.format_help() for p in action.choices.values()]
    joined = "\n".join(texts)
    for old in (*RENAMED, *REMOVED):
        assert not re.search(rf"\b{old}\b", joined), f"a help text names the old {old}"


def test_every_command_and_option_says_what_it_does() -> None:
    """`-h` on any command opens with what it does, and every option and argument has a help line."""
    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        if not (parser.description or "").strip():
            missing.append(f"{path}: no description")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction) and not (action.help or "").strip():
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}: no help")

    walk(build_parser(), "llc")
    assert missing == []


def test_the_command_is_llc_phone_and_never_shadows_llvm_llc() -> None:
    """`llc` is LLVM's static compiler on Debian and Ubuntu: the package installs `llc-phone` only."""
    from importlib.metadata import distribution

    scripts = {ep.name for ep in distribution("llc-phone").entry_points if ep.group == "console_scripts"}
    assert scripts == {"llc-phone"}
    assert build_parser().prog == "llc-phone"
    done = subprocess.run([sys.executable, "-m", "llc", "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.startswith("llc-phone ")


def test_serve_refuses_paths_it_could_not_write_in_one_line_each(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A log file, pid file, recordings folder or SQLite file it could not write failed late (a
    traceback, an exception group after "serving", errors at every call): now one line each,
    naming the variable and the fix, before anything starts."""
    afile = tmp_path / "a-file"
    afile.write_text("x")
    _clean(monkeypatch, tmp_path, **SIM, LLC_LOCAL_ONLY="on", LLC_LOG_FILE=str(tmp_path / "no-such-dir" / "llc.log"),
           LLC_PID_FILE=str(afile / "llc.pid"), LLC_RECORD_AUDIO="on", LLC_RECORDINGS_DIR=str(afile / "rec"),
           LLC_DB_URL=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "llc", "serve"], env={**os.environ, "PORT": "0"}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    for name, why in (("LLC_LOG_FILE", "does not exist"), ("LLC_PID_FILE", "is not a folder"),
                      ("LLC_RECORDINGS_DIR", "is not a folder"), ("LLC_DB_URL", "is a folder, not a file")):
        [line] = [x for x in lines if f"{name}=" in x]
        assert why in line and f"set {name} to a path" in line, line
    assert not (tmp_path / "no-such-dir").exists()
