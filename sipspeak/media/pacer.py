"""Drift-free frame pacing: frame ``n`` is due at ``start + n * ptime``.

Sans-IO.  The deadline of every frame is computed from the start time, never
from the previous wake-up, so scheduling delays do not accumulate (a bare
``sleep(0.02)`` loop drifts by the loop's overhead on every frame).  When the
caller wakes up late it sends the frames that became due at once; beyond
``max_burst`` frames it skips ahead instead of flooding the far end's jitter
buffer (the skipped frames are counted).
"""

from __future__ import annotations

__all__ = ["FramePacer"]


class FramePacer:
    """Tells a sender how many frames are due at ``now``."""

    def __init__(
        self, *, start: float, ptime: float = 0.02, max_burst: int = 5
    ) -> None:
        if ptime <= 0 or max_burst < 1:
            raise ValueError("ptime must be positive and max_burst at least 1")
        self.start = start
        self.ptime = ptime
        self.max_burst = max_burst
        self.sent = 0  # frames handed out so far: frame k is due at start + k * ptime
        self.skipped = 0

    def deadline(self, n: int) -> float:
        return self.start + n * self.ptime

    @property
    def next_deadline(self) -> float:
        """When the next frame is due (sleep until then)."""
        return self.deadline(self.sent)

    def due(self, now: float) -> int:
        """Number of frames to send now; advances the frame counter by that many."""
        if now < self.next_deadline:
            return 0
        behind = int((now - self.start) / self.ptime) + 1 - self.sent
        if behind > self.max_burst:
            self.skipped += behind - self.max_burst
            self.sent += behind - self.max_burst
            behind = self.max_burst
        self.sent += behind
        return behind
