"""The CLI: config errors are one clear message and exit 2, never a traceback."""

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
