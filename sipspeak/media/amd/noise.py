"""Adaptive noise floor: how loud the line is when nobody speaks.

A fixed silence threshold (Asterisk's 256) calls a hissing line "voice" and a quiet caller
"silence". The floor here is the quietest frame of the last second ("minimum statistics"):
speech always has quiet gaps (between words, at stop consonants) within a second, so the
floor stays at the line's noise during speech and follows a change of line noise within a
second (rising at most 10 dB/s, so a sound held for longer than the window is not learnt
as noise at once).
"""

from __future__ import annotations

from collections import deque
from typing import Final

# Digital silence has no level; energies are clamped to this (dBFS).
MIN_DB: Final = -100.0


class NoiseFloor:
    """Tracks the noise floor in dBFS as the minimum frame energy over a sliding window."""

    __slots__ = ("_floor", "_max_rise", "_window", "_window_min")

    def __init__(
        self, *, frame_ms: int, window_ms: int = 1000, max_rise_db_per_s: float = 10.0
    ) -> None:
        if frame_ms <= 0 or window_ms < frame_ms:
            raise ValueError(f"bad noise-floor window {window_ms} ms for {frame_ms} ms frames")
        self._window: deque[float] = deque(maxlen=window_ms // frame_ms)
        self._window_min = MIN_DB
        self._floor = MIN_DB
        self._max_rise = max_rise_db_per_s * frame_ms / 1000.0

    @property
    def floor_db(self) -> float:
        """Current floor; MIN_DB before any frame."""
        return self._floor

    def update(self, energy_db: float) -> float:
        """Learn one frame's energy and return the floor including it."""
        window = self._window
        leaving = window[0] if len(window) == window.maxlen else None
        window.append(energy_db)
        if len(window) == 1 or energy_db <= self._window_min:
            self._window_min = energy_db
        elif leaving is not None and leaving <= self._window_min:
            self._window_min = min(window)
        if len(window) == 1 or self._window_min <= self._floor:
            self._floor = self._window_min
        else:
            # A sound held longer than the window (a long vowel, music) must not become the
            # floor at once: the floor climbs towards the window's minimum at a bounded rate.
            self._floor = min(self._window_min, self._floor + self._max_rise)
        return self._floor
