"""Call audio, opt-in (``LLC_RECORD_AUDIO``): both legs as the caller heard them, in a stereo WAV.

Left: the caller, frame by frame as Twilio sent it. Right: the agent *as the caller heard it*:
Twilio plays the agent's audio as it arrives or right after what it already holds, so each
chunk lands at the later of "now" on the caller's timeline and the end of the agent audio before
it; a ``clear`` (a barge-in) cuts everything queued past "now", as Twilio's buffer was cut.

Off the hot path: the relay only appends the frame texts it already has to a list (no parsing,
no decoding); every ``BATCH`` frames the list goes to one writer thread shared by all calls,
which finds each payload, decodes its base64 and appends it to one of two raw mu-law files.
When the call ends the writer joins them into ``<LLC_RECORDINGS_DIR>/<CallSid>.wav`` (16-bit PCM, 8 kHz, what browsers play)
and deletes recordings older than ``LLC_RECORDINGS_KEEP_DAYS``.
"""

from __future__ import annotations

import atexit
import binascii
import os
import queue
import threading
import time
import uuid
import wave
from collections.abc import Callable, Sequence
from pathlib import Path

from llc.log import get_logger

log = get_logger("recording")

BATCH = 200  # frames per hand-off to the writer: ~2 s of a call with both legs talking
SILENCE_BYTE = b"\xff"  # mu-law silence (0x00 is a loud negative sample: gaps must be filled with this)
CHUNK = 8000 * 30  # samples converted at a time when the WAV is written (30 s of audio)
SILENCE_CHUNK = 8000 * 10  # samples of agent silence written at a time (10 s)
PRUNE_EVERY_S = 3600.0
EXIT_WAIT_S = 10.0  # at interpreter exit, recordings in the writer's queue get this long to finish
CALLER, AGENT = 0, 1


def _ulaw_tables() -> tuple[bytes, bytes]:
    """G.711 mu-law -> 16-bit PCM as two 256-byte tables (low and high byte): ``bytes.translate``
    then converts a whole buffer at C speed, no per-sample Python and no audioop."""
    lo, hi = bytearray(256), bytearray(256)
    for code in range(256):
        u = ~code & 0xFF
        sample = ((((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)) - 0x84
        value = (-sample if u & 0x80 else sample) & 0xFFFF
        lo[code], hi[code] = value & 0xFF, value >> 8
    return bytes(lo), bytes(hi)


ULAW_LO, ULAW_HI = _ulaw_tables()


def stereo_pcm16(left: bytes, right: bytes) -> bytes:
    """Two mu-law channels of equal length -> interleaved little-endian 16-bit stereo frames."""
    out = bytearray(4 * len(left))
    out[0::4], out[1::4] = left.translate(ULAW_LO), left.translate(ULAW_HI)
    out[2::4], out[3::4] = right.translate(ULAW_LO), right.translate(ULAW_HI)
    return bytes(out)


PAYLOAD_KEY = '"payload":"'


def _payload(text: str | bytes) -> bytes | None:
    """The audio of a media frame (either direction); None for any other frame.

    Found by its key rather than by parsing the JSON: Twilio's and llc's media frames both carry
    exactly one ``"payload":"<base64>"``, and base64 holds no quote to be escaped.
    """
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    i = text.find(PAYLOAD_KEY)
    if i < 0 or '"media"' not in text:
        return None
    i += len(PAYLOAD_KEY)
    j = text.find('"', i)
    try:
        return binascii.a2b_base64(text[i:j]) if j > i else None
    except (binascii.Error, ValueError):
        return None  # a bad frame: the relay already logged it; the recording skips it


class _Tracks:
    """One call's two raw mu-law files and the caller's timeline (touched by the writer thread only).

    The agent's audio queued past "now" may still be cut by a clear, so it stays in memory
    (``pending``, from sample ``flushed`` on); what is behind "now" can no longer change and is
    appended to the file after each batch, silence where the agent said nothing, so ``flushed``
    keeps up with "now". Both files are only ever appended to.
    """

    def __init__(self, directory: Path) -> None:
        stem = directory / f".rec-{uuid.uuid4().hex}"
        self.left_path, self.right_path = stem.with_suffix(".left"), stem.with_suffix(".right")
        # Open for the call's whole life (closed in write_wav / discard), so not a with-block.
        self.left = open(self.left_path, "wb")  # noqa: SIM115
        self.right = open(self.right_path, "wb")  # noqa: SIM115
        self.now = 0  # samples of caller audio so far: the caller's "now"
        self.agent_end = 0  # where the agent's queued audio ends
        self.flushed = 0  # right-channel samples already in the file
        self.pending = bytearray()  # right-channel samples from ``flushed`` on

    def agent(self, text: str | bytes) -> None:
        if '"clear"' in (text if isinstance(text, str) else text.decode("latin-1")):
            if self.agent_end > self.now:  # what Twilio held past "now" was never played
                del self.pending[self.now - self.flushed:]
            self.agent_end = min(self.agent_end, self.now)
            return
        audio = _payload(text)
        if not audio:
            return  # a mark
        start = max(self.agent_end, self.now) - self.flushed
        if start > len(self.pending):
            self.pending.extend(SILENCE_BYTE * (start - len(self.pending)))
        self.pending[start:start + len(audio)] = audio
        self.agent_end = self.flushed + start + len(audio)

    def feed(self, batch: list[tuple[int, str | bytes]]) -> None:
        left = []
        for leg, text in batch:
            if leg == CALLER:
                audio = _payload(text)
                if audio:
                    left.append(audio)
                    self.now += len(audio)
            else:
                self.agent(text)
        self.left.write(b"".join(left))
        settled = min(self.now - self.flushed, len(self.pending))
        if settled > 0:
            self.right.write(self.pending[:settled])
            del self.pending[:settled]
            self.flushed += settled
        if self.now > self.flushed:  # the agent was silent: the file follows the caller's clock
            self._silence(self.now - self.flushed)

    def _silence(self, n: int) -> None:
        """``n`` samples of agent silence to the file, SILENCE_CHUNK at a time: an hour of a
        caller alone costs a bounded buffer, not the whole gap in memory at the next reply."""
        chunk = SILENCE_BYTE * min(n, SILENCE_CHUNK)
        self.flushed += n
        while n > 0:
            self.right.write(chunk[:n])
            n -= len(chunk)

    def write_wav(self, path: Path) -> None:
        self.right.write(self.pending)
        right_len = self.flushed + len(self.pending)
        self.left.close()
        self.right.close()
        n = max(self.now, right_len)
        tmp = path.with_name(f".{path.name}.part")
        with open(self.left_path, "rb") as left, open(self.right_path, "rb") as right, wave.open(str(tmp), "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(8000)
            for offset in range(0, n, CHUNK):
                size = min(CHUNK, n - offset)
                lbuf, rbuf = left.read(size), right.read(size)
                wav.writeframesraw(stereo_pcm16(lbuf + SILENCE_BYTE * (size - len(lbuf)),
                                                rbuf + SILENCE_BYTE * (size - len(rbuf))))
        os.replace(tmp, path)

    def discard(self) -> None:
        for f in (self.left, self.right):
            f.close()
        for p in (self.left_path, self.right_path):
            p.unlink(missing_ok=True)


class CallRecorder:
    """What the relay holds for one call: a list of frame texts, handed off in batches."""

    def __init__(self, recordings: Recordings) -> None:
        self._recordings = recordings
        self._tracks: _Tracks | None = None  # created by the writer on the first batch
        self._batch: list[tuple[int, str | bytes]] = []
        self._handed_off = False  # read on the relay's side: the writer owns ``_tracks``

    def caller(self, text: str | bytes) -> None:
        """A frame from Twilio, as received (only its media frames are recorded)."""
        self._batch.append((CALLER, text))
        if len(self._batch) >= BATCH:
            self._hand_off()

    def agent(self, texts: Sequence[str | bytes]) -> None:
        """Frames on their way to the caller: media, marks, clear."""
        self._batch.extend((AGENT, t) for t in texts)
        if len(self._batch) >= BATCH:
            self._hand_off()

    def _hand_off(self) -> None:
        batch, self._batch = self._batch, []
        self._handed_off = True
        self._recordings.submit(lambda: self._tracks_now().feed(batch))

    def _tracks_now(self) -> _Tracks:
        if self._tracks is None:
            self._tracks = _Tracks(self._recordings.directory)
        return self._tracks

    def close(self, call_sid: str) -> str:
        """The call ended: the WAV is written in the background; returns its path ("" when nothing
        was recorded or the call has no SID to file it under)."""
        batch, self._batch = self._batch, []
        if not call_sid or ("/" in call_sid) or (not self._handed_off and not batch):
            self._recordings.submit(lambda: self._tracks.discard() if self._tracks else None)
            return ""
        path = self._recordings.directory / f"{call_sid}.wav"

        def finish() -> None:
            tracks = self._tracks_now()
            tracks.feed(batch)
            try:
                tracks.write_wav(path)
            finally:
                tracks.discard()
            self._recordings.prune()

        self._recordings.submit(finish)
        return str(path)


class Recordings:
    """The recordings folder and its one writer thread (shared by every call of the server)."""

    def __init__(self, directory: str | Path, keep_days: float = 30.0) -> None:
        # Absolute: the record names the file, and `llc-phone calls audio` may run from another folder.
        self.directory = Path(directory).resolve()
        self.keep_days = keep_days
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pruned_at = 0.0

    def start(self) -> CallRecorder:
        """A recorder for one call; the writer thread starts with the first."""
        with self._lock:
            if self._thread is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._thread = threading.Thread(target=self._run, name="llc-recordings", daemon=True)
                self._thread.start()
                atexit.register(self.drain, EXIT_WAIT_S)
        return CallRecorder(self)

    def submit(self, job: Callable[[], None]) -> None:
        self._queue.put(job)

    def drain(self, timeout: float = EXIT_WAIT_S) -> bool:
        """Wait until everything submitted so far is written; False if that took over ``timeout``."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._queue.put(done.set)
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                job()
            except OSError as exc:  # a full disk or a removed folder: this recording is lost, say why
                log.error("could not write a call recording (%s); check LLC_RECORDINGS_DIR=%s", exc, self.directory)
            except Exception:
                log.exception("a call recording failed; calls are not affected")

    def prune(self) -> None:
        """Delete recordings older than LLC_RECORDINGS_KEEP_DAYS (at most once an hour)."""
        now = time.time()
        if self.keep_days <= 0 or now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        cutoff = now - self.keep_days * 86400
        removed = 0
        for path in self.directory.glob("*.wav"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError:
                continue  # removed meanwhile, or not ours to remove
        if removed:
            log.info("deleted %d call recordings older than LLC_RECORDINGS_KEEP_DAYS=%g", removed, self.keep_days)


def recordings_from(record_audio: bool, directory: str, keep_days: float) -> Recordings | None:
    """The server's recordings, or None when LLC_RECORD_AUDIO is off (the default)."""
    return Recordings(directory, keep_days) if record_audio else None
