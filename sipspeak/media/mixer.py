"""Two sides of a call mixed into one, sans-IO: G.711 payloads in, 20 ms frames of their sum
out (:class:`Mixer`).  A side with nothing queued counts as silence; a side that runs ahead
keeps at most ``MAX_QUEUED`` frames, the oldest dropped, so what is mixed never lags more than
that.  :mod:`sipspeak.media.listen` paces its frames out to a listener."""

from __future__ import annotations

from collections import deque

import numpy as np

from sipspeak.media.g711 import Pcm, decode
from sipspeak.media.rtp import Codec

__all__ = ["FRAME", "MAX_QUEUED", "SIDES", "Mixer"]

FRAME = 160
"""Samples in 20 ms at 8 kHz."""
MAX_QUEUED = 10
"""Frames a side may run ahead of the other (200 ms) before its oldest are dropped."""
SIDES = ("customer", "operator")


class Mixer:
    """Each side's audio in, their sum out, 20 ms at a time."""

    def __init__(self) -> None:
        self._frames: dict[str, deque[Pcm]] = {side: deque(maxlen=MAX_QUEUED) for side in SIDES}
        self._rest: dict[str, Pcm] = {side: np.zeros(0, dtype=np.int16) for side in SIDES}

    def feed(self, side: str, codec: Codec, payload: bytes) -> None:
        """One RTP payload of ``side`` (any length: cut into 20 ms frames)."""
        pcm = np.concatenate((self._rest[side], decode(codec, payload)))
        whole = len(pcm) // FRAME * FRAME
        for start in range(0, whole, FRAME):
            self._frames[side].append(pcm[start:start + FRAME])
        self._rest[side] = pcm[whole:]

    def next_frame(self) -> Pcm:
        """The next 20 ms of both sides together (clipped to 16 bits)."""
        total = np.zeros(FRAME, dtype=np.int32)
        for side in SIDES:
            if self._frames[side]:
                total += self._frames[side].popleft()
        out: Pcm = np.clip(total, -32768, 32767).astype(np.int16)
        return out
