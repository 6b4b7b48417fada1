"""Tone detection with the Goertzel algorithm: voicemail beeps and Special Information Tones.

The Goertzel recurrence (``goertzel_power``) measures the energy of one frequency in a block of
samples. A :class:`ToneBank` measures many frequencies at once for every analysis frame: it
precomputes, per frequency, the cosine and sine terms that the recurrence sums, so one matrix
product gives the same powers as running the recurrence once per frequency (tests check the
two agree), at a cost a live call can afford.

Special Information Tones (ITU-T E.180 / Telcordia GR-1162): three tones of 274 or 380 ms,
913.8 or 985.2 Hz, then 1370.6 or 1428.5 Hz, then 1776.7 Hz, before an operator intercept
("the number you have dialled is not in service").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

SAMPLE_RATE: Final = 8000

SIT_FIRST: Final = (913.8, 985.2)
SIT_SECOND: Final = (1370.6, 1428.5)
SIT_THIRD: Final = (1776.7,)
SIT_FREQUENCIES: Final = SIT_FIRST + SIT_SECOND + SIT_THIRD

# Voicemail beeps seen in the field run from ~400 Hz to ~2.1 kHz. A 20 ms block resolves
# ~50 Hz; a 25 Hz grid keeps any beep within 12.5 Hz of a bin (>= 80 % of its power).
BEEP_GRID: Final = tuple(float(f) for f in range(400, 2101, 25))


def goertzel_power(samples: npt.ArrayLike, freq: float, rate: int = SAMPLE_RATE) -> float:
    """Squared magnitude of the DFT of ``samples`` at ``freq`` Hz, by the Goertzel recurrence."""
    x = np.asarray(samples, dtype=np.float64)
    coeff = 2.0 * math.cos(2.0 * math.pi * freq / rate)
    s_prev = 0.0
    s_prev2 = 0.0
    for sample in x.tolist():
        s = sample + coeff * s_prev - s_prev2
        s_prev2 = s_prev
        s_prev = s
    return s_prev * s_prev + s_prev2 * s_prev2 - coeff * s_prev * s_prev2


@dataclass(frozen=True, slots=True)
class ToneMeasure:
    """The strongest tone of one frame: its frequency and the share of the frame's energy it holds."""

    freq: float
    purity: float


class ToneBank:
    """Goertzel powers of a fixed set of frequencies over blocks of ``block`` samples."""

    __slots__ = ("_basis", "_scale", "block", "freqs")

    def __init__(self, freqs: tuple[float, ...], *, block: int, rate: int = SAMPLE_RATE) -> None:
        if block <= 0:
            raise ValueError(f"block must be positive, got {block}")
        self.freqs = np.asarray(freqs, dtype=np.float64)
        self.block = block
        n = np.arange(block, dtype=np.float64)[:, None]
        w = 2.0 * np.pi * self.freqs[None, :] / rate
        # Columns: cos terms then sin terms; |x·cos|² + |x·sin|² is the Goertzel power.
        self._basis = np.hstack([np.cos(w * n), np.sin(w * n)])
        # A sinusoid of amplitude A on a bin holds (A·N/2)² of power and A²·N/2 of energy.
        self._scale = 2.0 / block

    def powers(self, block: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Goertzel power of every frequency of the bank over ``block``."""
        proj = block @ self._basis
        k = len(self.freqs)
        result: npt.NDArray[np.float64] = proj[:k] ** 2 + proj[k:] ** 2
        return result

    def strongest(self, block: npt.NDArray[np.float64], energy: float) -> ToneMeasure:
        """The bank's strongest frequency in ``block`` and its purity (0..~1) given the block's energy."""
        p = self.powers(block)
        i = int(np.argmax(p))
        purity = float(p[i]) * self._scale / energy if energy > 0.0 else 0.0
        return ToneMeasure(float(self.freqs[i]), purity)


def sit_segment(freq: float, *, tolerance: float = 12.0) -> int:
    """Which SIT segment (1, 2 or 3) ``freq`` belongs to, or 0 if none."""
    for index, group in enumerate((SIT_FIRST, SIT_SECOND, SIT_THIRD), start=1):
        if any(abs(freq - f) <= tolerance for f in group):
            return index
    return 0


class ToneTracker:
    """Follows a steady tone from frame to frame and recognises beeps and SIT sequences.

    ``update`` is called once per analysis frame with that frame's strongest tone (or ``None``
    when no tone is pure enough) and returns ``"beep"``, ``"sit"`` or ``None``.
    """

    __slots__ = ("_frame_ms", "_freq", "_gap_ms", "_min_tone_ms", "_run_ms", "_sit_seen")

    def __init__(self, *, frame_ms: int, min_tone_ms: int) -> None:
        self._frame_ms = frame_ms
        self._min_tone_ms = min_tone_ms
        self._freq = 0.0
        self._run_ms = 0
        self._sit_seen = 0  # highest SIT segment recognised so far in sequence
        self._gap_ms = 0

    def update(self, tone: ToneMeasure | None) -> str | None:
        if tone is not None and self._run_ms and abs(tone.freq - self._freq) <= 30.0:
            self._run_ms += self._frame_ms
        else:
            self._close_run()
            if tone is None:
                self._gap_ms += self._frame_ms
                if self._gap_ms > 200:
                    self._sit_seen = 0
                self._freq = 0.0
                self._run_ms = 0
                return None
            self._freq = tone.freq
            self._run_ms = self._frame_ms
        self._gap_ms = 0
        segment = sit_segment(self._freq)
        if segment:
            # A SIT segment lasts 274 or 380 ms; wait for the sequence rather than call it a beep,
            # unless the tone runs on far longer than any SIT segment.
            if self._run_ms >= 600:
                return "beep"
            if segment == self._sit_seen + 1 and self._sit_seen >= 1 and self._run_ms >= 120:
                return "sit"
            return None
        if self._run_ms >= self._min_tone_ms:
            return "beep"
        return None

    def _close_run(self) -> None:
        """The steady tone just ended: remember a completed SIT segment."""
        if self._run_ms >= 120:
            segment = sit_segment(self._freq)
            if segment == self._sit_seen + 1:
                self._sit_seen = segment
            elif segment == 1:
                self._sit_seen = 1
            else:
                self._sit_seen = 0
