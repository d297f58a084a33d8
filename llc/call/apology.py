"""The apology clip: what the caller hears when OpenAI cannot be reached again mid-call.

Raw 8 kHz mu-law, sent as ordinary Twilio ``media`` frames (160 bytes = 20 ms each), so the
caller hears something deliberate instead of dead air before the hang-up. The bundled clip
is a short, soft two-note chime (this project ships no speech synthesiser); point
LLC_APOLOGY_CLIP at a recorded "Sorry, we have a technical problem, please call again"
(``ffmpeg -i sorry.wav -ar 8000 -ac 1 -f mulaw sorry.ulaw``) for a spoken one.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

FRAME_BYTES = 160
MAX_CLIP_BYTES = 8000 * 15  # 15 s: an apology, not a message


@lru_cache(maxsize=4)
def apology_payloads(path: str | None = None) -> tuple[str, ...]:
    """The clip as base64 media payloads, read once."""
    data = (Path(path).read_bytes() if path else files("llc.assets").joinpath("apology.ulaw").read_bytes())[:MAX_CLIP_BYTES]
    return tuple(base64.b64encode(data[i:i + FRAME_BYTES]).decode() for i in range(0, len(data), FRAME_BYTES))


def clip_seconds(path: str | None = None) -> float:
    return len(apology_payloads(path)) * FRAME_BYTES / 8000
