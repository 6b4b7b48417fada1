"""Synthetic telephone signals for the AMD tests: voiced words, tones, noise, breaths."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pytest

from sipspeak.media.amd.detector import AmdResult, AnsweringMachineDetector
from sipspeak.media.amd.params import AmdParams

RATE = 8000


class Signals:
    """Builders of float signals on the 16-bit scale, and a streaming runner."""

    rate = RATE

    @staticmethod
    def word(
        seconds: float, *, f0: float = 140.0, level_db: float = -20.0, seed: int = 0
    ) -> np.ndarray:
        """A voiced, word-like sound: harmonics of a gliding pitch in the telephone band."""
        rng = np.random.default_rng(seed)
        t = np.arange(int(seconds * RATE)) / RATE
        pitch = f0 * (1 + 0.05 * np.sin(2 * np.pi * (2 + rng.random()) * t))
        phase = 2 * np.pi * np.cumsum(pitch) / RATE
        x = sum(
            np.sin(k * phase + rng.uniform(0, 6)) / k**0.7 for k in range(2, 22) if k * f0 < 3400
        )
        x = np.asarray(x) * np.minimum(1.0, np.minimum(t, t[::-1]) / 0.03)
        return x / np.sqrt(np.mean(x**2)) * 10 ** (level_db / 20) * 32768

    @classmethod
    def sentence(cls, seconds: float, *, level_db: float = -20.0) -> np.ndarray:
        """Continuous speech: 250 ms words with 60 ms gaps, like a recorded greeting."""
        parts = []
        i = 0
        while sum(len(p) for p in parts) < seconds * RATE:
            parts.append(cls.word(0.25, f0=110 + 7 * (i % 6), level_db=level_db, seed=i))
            parts.append(np.zeros(int(0.06 * RATE)))
            i += 1
        return np.concatenate(parts)[: int(seconds * RATE)]

    @staticmethod
    def noise(seconds: float, level_db: float = -60.0, seed: int = 1) -> np.ndarray:
        x = np.random.default_rng(seed).standard_normal(int(seconds * RATE))
        return x * 10 ** (level_db / 20) * 32768

    @staticmethod
    def tone(freq: float, seconds: float, level_db: float = -15.0) -> np.ndarray:
        t = np.arange(int(seconds * RATE)) / RATE
        return np.sin(2 * np.pi * freq * t) * 10 ** (level_db / 20) * 32768 * np.sqrt(2)

    @staticmethod
    def breath(seconds: float, level_db: float = -40.0, seed: int = 3) -> np.ndarray:
        """Band-limited noise with a smooth envelope: no pitch."""
        n = int(seconds * RATE)
        spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
        f = np.fft.rfftfreq(n, 1 / RATE)
        spectrum[(f < 400) | (f > 2500)] = 0
        x = np.fft.irfft(spectrum, n) * np.hanning(n)
        return x / np.sqrt(np.mean(x**2)) * 10 ** (level_db / 20) * 32768

    @staticmethod
    def concat(parts: Iterable[np.ndarray]) -> np.ndarray:
        return np.concatenate(list(parts))

    @staticmethod
    def mix(base: np.ndarray, other: np.ndarray) -> np.ndarray:
        n = max(len(base), len(other))
        out = np.zeros(n)
        out[: len(base)] += base
        out[: len(other)] += other
        return out

    @staticmethod
    def pcm(x: np.ndarray) -> np.ndarray:
        return np.clip(np.round(x), -32768, 32767).astype(np.int16)

    @classmethod
    def run(
        cls,
        x: np.ndarray,
        *,
        frame_ms: int = 20,
        params: AmdParams | None = None,
        start_time: float = 0.0,
    ) -> AmdResult:
        """Stream ``x`` frame by frame; fire the timer if the audio ends undecided."""
        samples = cls.pcm(x)
        detector = AnsweringMachineDetector(params=params, start_time=start_time)
        step = RATE * frame_ms // 1000
        for offset in range(0, len(samples) - step + 1, step):
            result = detector.feed(samples[offset : offset + step], start_time + offset / RATE)
            if result is not None:
                return result
        result = detector.handle_timer(detector.get_timer())
        assert result is not None
        return result


@pytest.fixture
def sig() -> type[Signals]:
    return Signals
