"""Call audio and "what the caller heard" through the real server and the simulator.

The simulator sends replies 20x faster than real time, like the real service: the reply's
transcript reaches llc *before* the caller talks over it, which is the order the record used to
get wrong. The recording's right channel must then hold what the caller heard, not what was sent.
"""

from __future__ import annotations

import array
import sys
import wave
from pathlib import Path

import trio

from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller
from tests.helpers.stack import StackFactory

LONG = "Our opening hours are nine to five on weekdays, ten to two on Saturdays, and we are closed on Sundays and bank holidays."


def channels(path: Path) -> tuple[array.array, array.array, int]:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        samples = array.array("h", wav.readframes(wav.getnframes()))
    return samples[0::2], samples[1::2], len(samples) // 2


def voiced_ms(channel: array.array) -> int:
    """ms of audio that is not the silence the recorder fills gaps with (exact zeros)."""
    return sum(1 for s in channel if s) // 8


async def test_barge_in_after_the_transcript_is_recorded_as_heard_and_the_wav_is_cut_there(
        start_stack: StackFactory, tmp_path: Path) -> None:
    rec_dir = tmp_path / "rec"
    stack = await start_stack(replies=[LONG, "Sure, go ahead."], user_transcripts=["Hours?", "Wait, sorry"],
                              realtime_factor=20.0, settings={"record_audio": True, "recordings_dir": str(rec_dir)})
    script = CallerScript(turns=[CallerTurn("Hours?"), CallerTurn("Wait, sorry", barge_in_after_ms=1000)], max_call_s=20)
    result = await FakeCaller(stack.base_url, script).run()
    await stack.wait_records(1)
    record = stack.state.records[-1]

    # The reply's transcript came before the barge-in, yet the line says it was cut, and where.
    [barge] = record.barge_ins
    line = next(t for t in record.transcript if t.role == "agent" and t.text == LONG)
    assert line.at < barge.at  # the order this test is about
    assert line.interrupted and line.heard_ms == barge.heard_ms and 800 <= barge.heard_ms <= 1300
    assert line.generated_ms is not None and line.generated_ms > 3 * barge.heard_ms
    assert line.heard_text and len(line.heard_text) < len(LONG) / 2 and line.text == LONG
    turns = record.turns
    assert turns and all(t.relay_ms is not None and t.relay_ms < 50 for t in turns if t.ms is not None)
    assert all(t.vad_wait_ms is not None for t in turns)

    # The recording: caller left, the agent right as heard, the talked-over rest never in it.
    assert record.audio_path == str(rec_dir / f"{record.call_sid}.wav")
    assert stack.state.deps.recordings is not None and stack.state.deps.recordings.drain(10)
    left, right, n = channels(Path(record.audio_path))
    generated = sum(t.generated_ms or 0 for t in record.transcript if t.role == "agent")
    heard = voiced_ms(right)
    assert abs(heard - result.heard_audio_ms) <= 0.1 * result.heard_audio_ms + 100, (heard, result.heard_audio_ms)
    assert heard < generated - 2000  # the cut-off part of the long reply is not in the file
    assert voiced_ms(left) > 500 and n >= 8 * max(heard, voiced_ms(left))
    assert not list(rec_dir.glob(".rec-*"))  # the raw per-leg files are gone

    # `llc-phone calls audio SID` exports it from the stored record.
    assert (await stack.wait_stored(record.call_sid))["audio_path"] == record.audio_path
    out = tmp_path / "call.wav"
    with trio.fail_after(60):
        done = await trio.run_process([sys.executable, "-m", "llc.cli", "calls", "audio", record.call_sid, "--out",
                                       str(out), "--db", stack.state.settings.db_url],
                                      capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr).decode()
    assert out.read_bytes() == Path(record.audio_path).read_bytes()
    assert str(out) in done.stdout.decode()


async def test_recording_is_off_by_default(start_stack: StackFactory) -> None:
    stack = await start_stack(replies=["Hello there."], user_transcripts=["Hi"])
    await FakeCaller(stack.base_url, CallerScript(turns=[CallerTurn("Hi")], max_call_s=10)).run()
    await stack.wait_records(1)
    assert stack.state.deps.recordings is None and stack.state.records[-1].audio_path == ""
