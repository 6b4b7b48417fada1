"""WAV files for AMD evaluation: any PCM width, rate and channel count to 8 kHz mono int16.

Reading and rate conversion are :mod:`sipspeak.media.audio`'s (one WAV reader in
the package); this module keeps the names the evaluation tools use.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from sipspeak.media.audio import WavFormatError, load_wav
from sipspeak.media.audio import resample as _resample

TARGET_RATE: Final = 8000


#: A file that is not a PCM WAV file this module can read (the media package's error).
WavError = WavFormatError


def read_wav_8k_mono(path: str | Path) -> npt.NDArray[np.int16]:
    """Samples of a PCM WAV file as 8 kHz mono int16 (channels averaged, rate converted)."""
    return load_wav(path)


def resample(x: npt.NDArray[np.float64], rate_in: int, rate_out: int) -> npt.NDArray[np.float64]:
    """Band-limited rate conversion (the same converter prompts and music on hold use)."""
    if rate_out <= 0:
        raise WavError(f"bad sample rates {rate_in} -> {rate_out}")
    return _resample(x, rate_in, rate_out)


def write_wav(path: str | Path, samples: npt.NDArray[np.int16], rate: int = TARGET_RATE) -> None:
    """Write mono int16 samples as a PCM WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
