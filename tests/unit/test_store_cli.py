"""`llc-phone db`, `llc-phone calls`, `llc-phone messages` against a database file."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from llc.cli import main
from llc.core.record import CallRecord, TranscriptLine
from llc.store import open_store


def test_db_seed_calls_and_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cli.db")
    assert main(["db", "seed", "--db", db]) == 0
    assert "3 customers" in capsys.readouterr().out

    async def fill() -> None:
        store = open_store(db)
        await store.save_call(CallRecord(call_sid="CAcli", scenario="receptionist", started_at=1.0, ended_at=2.0,
                                         end_reason="caller_hangup", transcript=[TranscriptLine("caller", "Hi there", 0.4)]))
        await store.add_message(call_sid="CAcli", scenario="receptionist", caller_id="+1", name="Dana", number="+15550107777",
                                reason="a quote", callback_time="")
        store.close()

    trio.run(fill)
    assert main(["calls", "--db", db]) == 0
    assert "CAcli" in capsys.readouterr().out
    assert main(["calls", "show", "CAcli", "--db", db]) == 0
    assert "Hi there" in capsys.readouterr().out
    assert main(["calls", "show", "CAnope", "--db", db]) == 1
    assert main(["messages", "--db", db]) == 0
    assert "Dana (+15550107777), call back any time: a quote" in capsys.readouterr().out
    assert main(["calls", "--db", str(tmp_path / "no" / "x.db")]) == 2
    assert "does not exist" in capsys.readouterr().err
