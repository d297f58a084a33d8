"""Synthetic G.711 mu-law audio for the simulator: speech-like bursts, silence, an energy VAD.

The product never decodes audio (its mu-law payloads pass straight through); only the
simulator does, so that the fake OpenAI can hear when the fake caller talks. Pure Python, table
driven: ``audioop`` is deprecated and numpy is not worth a dependency for 8 kHz mono.
"""

from __future__ import annotations

import math
from functools import lru_cache

SAMPLE_RATE = 8000
BYTES_PER_MS = 8  # PCMU: one byte per sample at 8 kHz
FRAME_MS = 20  # Twilio sends and expects 20 ms frames
FRAME_BYTES = FRAME_MS * BYTES_PER_MS  # 160
SILENCE_BYTE = 0xFF  # mu-law encoding of linear 0

_BIAS = 0x84
_CLIP = 32635


def ulaw_encode(sample: int) -> int:
    """Encode one 16-bit linear sample as a mu-law byte (ITU-T G.711)."""
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, _CLIP) + _BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _ulaw_decode(byte: int) -> int:
    byte = ~byte & 0xFF
    sign = byte & 0x80
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    sample = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return -sample if sign else sample


ULAW_TO_LINEAR: tuple[int, ...] = tuple(_ulaw_decode(b) for b in range(256))
# Squared amplitude per byte: energy of a frame is a sum of table lookups, no decode pass.
_SQUARED: tuple[int, ...] = tuple(v * v for v in ULAW_TO_LINEAR)


def silence(ms: int) -> bytes:
    """``ms`` milliseconds of digital silence."""
    return bytes([SILENCE_BYTE]) * (ms * BYTES_PER_MS)


@lru_cache(maxsize=64)
def speech_like(ms: int, seed: int = 0) -> bytes:
    """``ms`` milliseconds of a voiced, syllable-modulated tone that an energy VAD calls speech.

    A 120-220 Hz fundamental with two harmonics, amplitude-modulated at ~4 Hz like syllables,
    never fully silent inside the burst so a VAD does not split one utterance in two.
    """
    f0 = 120 + (seed * 37) % 100
    n = ms * BYTES_PER_MS
    out = bytearray(n)
    for i in range(n):
        t = i / SAMPLE_RATE
        envelope = 0.7 + 0.3 * math.sin(2 * math.pi * 4.0 * t + seed)
        wave = (
            math.sin(2 * math.pi * f0 * t)
            + 0.5 * math.sin(2 * math.pi * 2 * f0 * t)
            + 0.25 * math.sin(2 * math.pi * 3 * f0 * t)
        )
        out[i] = ulaw_encode(int(6000 * envelope * wave))
    return bytes(out)


def rms(frame: bytes) -> float:
    """Root-mean-square amplitude of a mu-law frame, on the 16-bit linear scale."""
    if not frame:
        return 0.0
    total = 0
    for b in frame:
        total += _SQUARED[b]
    return math.sqrt(total / len(frame))


def is_speech(frame: bytes, threshold: float = 300.0) -> bool:
    """Energy VAD: a frame louder than ``threshold`` RMS counts as speech."""
    return rms(frame) >= threshold


def frames(audio: bytes, frame_bytes: int = FRAME_BYTES) -> list[bytes]:
    """Split audio into fixed-size frames; the last one is padded with silence."""
    out = []
    for start in range(0, len(audio), frame_bytes):
        chunk = audio[start : start + frame_bytes]
        if len(chunk) < frame_bytes:
            chunk = chunk + bytes([SILENCE_BYTE]) * (frame_bytes - len(chunk))
        out.append(chunk)
    return out


def speech_ms_for_text(text: str, ms_per_char: int = 55) -> int:
    """How long a scripted line takes to say: ~55 ms a character is an ordinary speaking rate."""
    return max(FRAME_MS, (len(text) * ms_per_char) // FRAME_MS * FRAME_MS)
