"""Operations settings: drain fallback validated with its fix; LLC_LOG_FILE gets JSON lines doctor can read."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest

from llc.config import ConfigError, load_settings
from llc.log import bind_call, get_logger, setup_logging


def test_bad_drain_settings_name_the_fix(tmp_path: Path) -> None:
    env = {"LLC_DRAIN_FALLBACK_NUMBER": "555-0100", "LLC_DRAIN_TIMEOUT_S": "-1"}
    with pytest.raises(ConfigError) as caught:
        load_settings(env, env_file=tmp_path / "none.env")
    text = str(caught.value)
    assert "E.164 number like +14155550100" in text and "LLC_DRAIN_TIMEOUT_S=-1 must be 0 or more" in text
    ok = load_settings({"LLC_DRAIN_FALLBACK_NUMBER": "+14155550100", "LLC_LOG_FILE": "x.jsonl"}, env_file=tmp_path / "none.env")
    assert ok.drain_fallback_number == "+14155550100" and ok.log_file == "x.jsonl" and ok.pid_file == "llc-phone.pid"


def test_log_file_is_json_with_call_fields(tmp_path: Path) -> None:
    path = tmp_path / "llc.jsonl"
    setup_logging("text", "INFO", log_file=str(path))
    try:
        bind_call(call_sid="CA1", stream_sid="MZ1", direction="outbound", scenario="receptionist")
        get_logger("test").error("something broke")
    finally:
        for handler in logging.getLogger("llc").handlers:
            handler.close()
        setup_logging("json", "INFO")
        bind_call()
    entry = orjson.loads(path.read_bytes().splitlines()[-1])
    assert entry["level"] == "error" and entry["msg"] == "something broke"
    assert (entry["call_sid"], entry["stream_sid"], entry["direction"], entry["scenario"]) == ("CA1", "MZ1", "outbound", "receptionist")


def test_reference_docs_exist_and_name_commands_that_exist() -> None:
    from llc.cli import build_parser

    docs = Path(__file__).resolve().parents[2] / "docs"
    names = ["01-overview", "02-session-config", "03-prewarm-outbound", "04-inbound-modes", "05-async-tools",
             "06-latency-tuning", "07-twilio-integration", "08-known-issues", "09-config-install", "SKILL", "operations"]
    for name in names:
        assert (docs / f"{name}.md").stat().st_size > 500, name
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    skill = (docs / "SKILL.md").read_text()
    for command in ("doctor", "restart", "snapshot"):
        assert f"llc-phone {command}" in skill and command in commands
