"""Audio for prompts and music on hold: any PCM WAV -> 8 kHz mono int16, and the
default hold melody synthesised by the package itself.

Conversion happens once, when a prompt is loaded, never per packet.  The
resampler is numpy only: a windowed-sinc low-pass below the new Nyquist
frequency when downsampling, then linear interpolation onto the 8 kHz grid
(good enough for telephone-band G.711, whose own passband ends at 3.4 kHz).
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "RATE",
    "WavFormatError",
    "hold_melody",
    "load_wav",
    "resample",
    "to_mono_int16",
]

RATE = 8000
Pcm = npt.NDArray[np.int16]


class WavFormatError(ValueError):
    """The file is not a PCM WAV file we can read."""


def load_wav(path: str | Path) -> Pcm:
    """Read a PCM WAV file (8/16/24/32-bit, any rate, any channels) as 8 kHz mono int16."""
    try:
        with wave.open(str(path), "rb") as w:
            channels = w.getnchannels()
            width = w.getsampwidth()
            rate = w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise WavFormatError(f"{path}: {exc}") from exc
    samples = _decode_pcm(raw, width)
    if channels > 1:
        samples = (
            samples[: len(samples) // channels * channels]
            .reshape(-1, channels)
            .mean(axis=1)
        )
    return to_mono_int16(resample(samples, rate, RATE))


def _decode_pcm(raw: bytes, width: int) -> npt.NDArray[np.float64]:
    """Little-endian PCM bytes -> float samples scaled to the int16 range."""
    if width == 1:  # 8-bit WAV is unsigned
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.float64)
    if width == 3:
        b = (
            np.frombuffer(raw[: len(raw) // 3 * 3], dtype=np.uint8)
            .reshape(-1, 3)
            .astype(np.int32)
        )
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        return v.astype(np.float64) / 256.0
    if width == 4:
        return np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536.0
    raise WavFormatError(f"unsupported sample width: {width} bytes")


def resample(
    samples: npt.ArrayLike, source_rate: int, target_rate: int = RATE
) -> npt.NDArray[np.float64]:
    """Resample float samples; anti-aliasing low-pass when going down."""
    x = np.asarray(samples, dtype=np.float64)
    if source_rate <= 0:
        raise WavFormatError(f"invalid sample rate {source_rate}")
    if source_rate == target_rate or len(x) == 0:
        return x
    if target_rate < source_rate:
        cutoff = (
            0.45 * target_rate / source_rate
        )  # cycles per input sample, below Nyquist
        taps = 129
        n = np.arange(taps) - (taps - 1) / 2
        kernel = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(taps)
        kernel /= kernel.sum()
        x = np.convolve(x, kernel, mode="same")
    duration = len(x) / source_rate
    t_out = np.arange(int(duration * target_rate)) / target_rate
    t_in = np.arange(len(x)) / source_rate
    return np.interp(t_out, t_in, x)


def to_mono_int16(samples: npt.ArrayLike) -> Pcm:
    """Round and clip float samples to int16."""
    return np.clip(
        np.rint(np.asarray(samples, dtype=np.float64)), -32768, 32767
    ).astype(np.int16)


# Frequencies (Hz) of the default melody: a calm arpeggio in C major, then A minor.
_NOTES = {
    "C4": 261.63,
    "E4": 329.63,
    "G4": 392.00,
    "A4": 440.00,
    "C5": 523.25,
    "E5": 659.25,
}
_TUNE = [
    ("C4", 0.4),
    ("E4", 0.4),
    ("G4", 0.4),
    ("C5", 0.8),
    ("G4", 0.4),
    ("E4", 0.4),
    ("C4", 0.8),
    ("A4", 0.4),
    ("C5", 0.4),
    ("E5", 0.4),
    ("A4", 0.8),
    ("E4", 0.4),
    ("G4", 0.4),
    ("C4", 1.2),
]


def hold_melody(*, level: float = 0.25) -> Pcm:
    """The default music on hold: about 8 s of soft bell-like tones that loop cleanly.

    Synthesised (fundamental + two harmonics, exponential decay, short attack)
    so that the package ships no third-party audio.  ``level`` is the peak
    amplitude as a fraction of full scale.
    """
    parts = []
    for name, seconds in _TUNE:
        t = np.arange(int(seconds * RATE)) / RATE
        f = _NOTES[name]
        tone = (
            np.sin(2 * np.pi * f * t)
            + 0.35 * np.sin(2 * np.pi * 2 * f * t)
            + 0.12 * np.sin(2 * np.pi * 3 * f * t)
        )
        envelope = np.minimum(t / 0.01, 1.0) * np.exp(-3.0 * t / seconds)
        envelope[-80:] *= np.linspace(1.0, 0.0, 80)  # no click at the note's end
        parts.append(tone * envelope)
    melody = np.concatenate(parts)
    melody *= level * 32767 / np.max(np.abs(melody))
    return to_mono_int16(melody)
