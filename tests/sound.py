"""Sound files for the tests: sine tones written as mono 16-bit WAV."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def write_tone(path: Path, frequency: float, *, seconds: float = 2.0, rate: int = 48000,
               amplitude: float = 0.5) -> Path:
    """A sine of ``frequency`` (a whole number of cycles per second loops seamlessly)."""
    t = np.arange(int(rate * seconds)) / rate
    samples = (amplitude * 32767 * np.sin(2 * np.pi * frequency * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path
