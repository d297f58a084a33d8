"""The recorder's placement of the agent's audio: as the caller heard it, cut where the clear cut it."""

from __future__ import annotations

import array
import base64
import wave
from pathlib import Path

from llc.call.recording import Recordings, stereo_pcm16
from llc.core import twilio_frames as tw


def caller_frame(byte: int) -> str:
    payload = base64.b64encode(bytes([byte]) * 160).decode()
    return f'{{"event":"media","sequenceNumber":"3","media":{{"track":"inbound","chunk":"2","timestamp":"40","payload":"{payload}"}}}}'


def agent_frame(byte: int, n: int) -> str:
    return tw.media("MZ1", base64.b64encode(bytes([byte]) * n).decode())


def read(path: str) -> tuple[bytes, bytes]:
    with wave.open(path, "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        samples = array.array("h", wav.readframes(wav.getnframes()))
    return samples[0::2].tobytes(), samples[1::2].tobytes()


def test_agent_audio_queues_behind_now_and_a_clear_cuts_what_was_not_played(tmp_path: Path) -> None:
    recordings = Recordings(tmp_path, keep_days=0)
    rec = recordings.start()
    for _ in range(5):  # 100 ms of caller audio: "now" is sample 800
        rec.caller(caller_frame(0x10))
    # A reply arrives all at once (faster than real time): 300 ms queued from "now" on.
    rec.agent([agent_frame(0x20, 2400), tw.mark("MZ1", "m1")])
    for _ in range(5):  # another 100 ms: the caller heard 100 ms of the reply
        rec.caller(caller_frame(0x10))
    rec.agent([tw.clear("MZ1")])  # barge-in: the 200 ms still queued at Twilio are gone
    rec.caller(caller_frame(0x10))
    rec.agent([agent_frame(0x30, 160)])  # the next reply starts at "now"
    path = rec.close("CA1")
    assert path == str(tmp_path / "CA1.wav") and recordings.drain(5)
    left, right = read(path)
    one = lambda byte: stereo_pcm16(bytes([byte]), bytes([byte]))[:2]
    silence, caller, reply, next_reply = one(0xFF), one(0x10), one(0x20), one(0x30)
    assert left == caller * 1760 + silence * 160  # 11 frames of 160 samples, padded to the agent's end
    # Heard: 100 ms of the first reply from where it arrived; the cut 200 ms are not in the file.
    assert right == silence * 800 + reply * 800 + silence * 160 + next_reply * 160
    assert not list(tmp_path.glob(".rec-*"))  # the raw files are removed


def test_nothing_recorded_writes_nothing_and_a_call_without_sid_is_discarded(tmp_path: Path) -> None:
    recordings = Recordings(tmp_path, keep_days=0)
    assert recordings.start().close("CA2") == ""
    rec = recordings.start()
    rec.caller(caller_frame(0x10))
    assert rec.close("") == ""
    assert recordings.drain(5)
    assert list(tmp_path.iterdir()) == []


def test_mu_law_tables_decode_the_g711_extremes() -> None:
    pcm = array.array("h", stereo_pcm16(bytes([0x00, 0x80, 0xFF, 0x7F]), bytes(4)))
    assert list(pcm[0::2]) == [-32124, 32124, 0, 0]


def _peak_for_gap(tmp_path: Path, minutes: int) -> tuple[int, str]:
    """Peak memory of recording ``minutes`` of the caller alone, then one agent frame; the WAV's path."""
    import tracemalloc

    recordings = Recordings(tmp_path / str(minutes), keep_days=0)
    rec = recordings.start()
    frame = caller_frame(0x10)
    tracemalloc.start()
    try:
        for _ in range(minutes * 60 * 50):  # 20 ms frames, as Twilio sends them
            rec.caller(frame)
        rec.agent([agent_frame(0x20, 160)])
        rec.caller(caller_frame(0x10))
        path = rec.close("CA1")
        assert recordings.drain(30)
        return tracemalloc.get_traced_memory()[1], path
    finally:
        tracemalloc.stop()


def test_a_long_silence_of_the_agent_is_written_as_it_passes_not_held(tmp_path: Path) -> None:
    """The caller alone for minutes, then one agent frame: the gap goes to the file as the
    caller's clock advances, so the reply costs its own bytes, not the whole gap in memory."""
    short, _ = _peak_for_gap(tmp_path, 2)
    long, path = _peak_for_gap(tmp_path, 10)  # 3.8 MB more of silence than the short one
    assert long < short + 1024 * 1024, f"peak {short / 1e6:.1f} MB after 2 min, {long / 1e6:.1f} MB after 10"
    with wave.open(path, "rb") as wav:
        assert wav.getnframes() == 600 * 8000 + 160
        wav.setpos(600 * 8000 - 160)
        samples = array.array("h", wav.readframes(320))
    one = lambda byte: stereo_pcm16(bytes([byte]), bytes([byte]))[:2]
    assert samples[1::2].tobytes() == one(0xFF) * 160 + one(0x20) * 160  # silence, then the reply at "now"
