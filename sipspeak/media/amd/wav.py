"""Reading WAV files for AMD evaluation: any PCM width, rate and channel count to 8 kHz mono int16."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

TARGET_RATE: Final = 8000


class WavError(ValueError):
    """A file that is not a PCM WAV file this module can read."""


def read_wav_8k_mono(path: str | Path) -> npt.NDArray[np.int16]:
    """Samples of a PCM WAV file as 8 kHz mono int16 (channels averaged, rate converted)."""
    try:
        with wave.open(str(path), "rb") as w:
            channels = w.getnchannels()
            width = w.getsampwidth()
            rate = w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise WavError(f"{path}: not a PCM WAV file ({exc})") from exc
    samples = _decode(raw, width)
    if channels > 1:
        usable = len(samples) - len(samples) % channels
        samples = samples[:usable].reshape(-1, channels).mean(axis=1)
    if rate != TARGET_RATE:
        samples = resample(samples, rate, TARGET_RATE)
    return np.clip(np.round(samples), -32768, 32767).astype(np.int16)


def _decode(raw: bytes, width: int) -> npt.NDArray[np.float64]:
    """PCM bytes to float samples on the 16-bit scale."""
    if width == 1:  # unsigned 8-bit
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.float64)
    if width == 3:
        b = np.frombuffer(raw[: len(raw) - len(raw) % 3], dtype=np.uint8).reshape(-1, 3)
        value = (
            b[:, 0].astype(np.int32)
            | (b[:, 1].astype(np.int32) << 8)
            | (b[:, 2].astype(np.int32) << 16)
        )
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        return value.astype(np.float64) / 256.0
    if width == 4:
        return np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536.0
    raise WavError(f"unsupported sample width {width} bytes")


def resample(x: npt.NDArray[np.float64], rate_in: int, rate_out: int) -> npt.NDArray[np.float64]:
    """Band-limited rate conversion: windowed-sinc low-pass (when downsampling), then interpolation."""
    if rate_in <= 0 or rate_out <= 0:
        raise WavError(f"bad sample rates {rate_in} -> {rate_out}")
    if len(x) == 0 or rate_in == rate_out:
        return x
    if rate_out < rate_in:
        cutoff = 0.45 * rate_out / rate_in  # cycles per input sample, below the new Nyquist
        taps = 63
        n = np.arange(taps) - (taps - 1) / 2
        kernel = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(taps)
        x = np.convolve(x, kernel / kernel.sum(), mode="same")
    n_out = int(len(x) * rate_out / rate_in)
    t_out = np.arange(n_out) * (rate_in / rate_out)
    result: npt.NDArray[np.float64] = np.interp(t_out, np.arange(len(x)), x)
    return result


def write_wav(path: str | Path, samples: npt.NDArray[np.int16], rate: int = TARGET_RATE) -> None:
    """Write mono int16 samples as a PCM WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
