"""Adaptive noise floor: how loud the line is when nobody speaks.

A fixed silence threshold (Asterisk's 256) calls a hissing line "voice" and a quiet caller
"silence". The floor here is the quietest frame of the last second ("minimum statistics"):
speech always has quiet gaps (between words, at stop consonants) within a second, so the
floor stays at the line's noise during speech and follows a change of line noise within a
second.
"""

from __future__ import annotations

from collections import deque
from typing import Final

# Digital silence has no level; energies are clamped to this (dBFS).
MIN_DB: Final = -100.0


class NoiseFloor:
    """Tracks the noise floor in dBFS as the minimum frame energy over a sliding window."""

    __slots__ = ("_window", "_floor")

    def __init__(self, *, frame_ms: int, window_ms: int = 1000) -> None:
        if frame_ms <= 0 or window_ms < frame_ms:
            raise ValueError(f"bad noise-floor window {window_ms} ms for {frame_ms} ms frames")
        self._window: deque[float] = deque(maxlen=window_ms // frame_ms)
        self._floor = MIN_DB

    @property
    def floor_db(self) -> float:
        """Current floor (the quietest frame of the window); MIN_DB before any frame."""
        return self._floor

    def update(self, energy_db: float) -> float:
        """Learn one frame's energy and return the floor including it."""
        window = self._window
        leaving = window[0] if len(window) == window.maxlen else None
        window.append(energy_db)
        if len(window) == 1 or energy_db <= self._floor:
            self._floor = energy_db
        elif leaving is not None and leaving <= self._floor:
            self._floor = min(window)
        return self._floor
