"""G.711 tables against ITU-T reference values (G.711 Tables 1/2, G.191 g711.c)."""

from __future__ import annotations

import numpy as np
import pytest

from sipspeak.media import g711

# (code, linear) pairs of the G.191 reference expander, 16-bit scale.
ULAW_REFERENCE = [
    (0x00, -32124),
    (0x80, 32124),
    (0xFF, 0),
    (0x7F, 0),
    (0xEF, 132),
    (0x6F, -132),
    (0xDF, 396),
    (0xF0, 120),
    (0xFE, 8),
    (0x8F, 16764),
]
ALAW_REFERENCE = [
    (0xD5, 8),
    (0x55, -8),
    (0xAA, 32256),
    (0x2A, -32256),
    (0xD4, 24),
    (0xC5, 264),
    (0xF5, 528),
    (0x80, 5504),
]


@pytest.mark.parametrize(("code", "linear"), ULAW_REFERENCE)
def test_ulaw_expands_to_reference(code: int, linear: int) -> None:
    assert int(g711.ulaw_decode(bytes([code]))[0]) == linear


@pytest.mark.parametrize(("code", "linear"), ALAW_REFERENCE)
def test_alaw_expands_to_reference(code: int, linear: int) -> None:
    assert int(g711.alaw_decode(bytes([code]))[0]) == linear


def test_reference_encodings() -> None:
    # Silence, full scale and the sign convention of both laws.
    assert g711.ulaw_encode([0, 32767, -32768, 1, -1]) == bytes(
        [0xFF, 0x80, 0x00, 0xFF, 0x7F]
    )
    assert g711.alaw_encode([0, 32767, -32768, 7, -1]) == bytes(
        [0xD5, 0xAA, 0x2A, 0xD5, 0x55]
    )
    assert g711.SILENCE_BYTE == {"PCMU": 0xFF, "PCMA": 0xD5}


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_every_code_round_trips(codec: str) -> None:
    codes = bytes(range(256))
    again = g711.encode(codec, g711.decode(codec, codes))  # type: ignore[arg-type]
    diffs = [c for c, d in zip(codes, again, strict=True) if c != d]
    # mu-law has two zeros (0x7F = -0, 0xFF = +0); both encode back to 0xFF.
    assert diffs == ([0x7F] if codec == "PCMU" else [])


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_quantisation_error_is_within_half_a_step(codec: str) -> None:
    x = np.arange(-32768, 32768, dtype=np.int32)
    y = g711.decode(codec, g711.encode(codec, x.astype(np.int16))).astype(np.int32)  # type: ignore[arg-type]
    err = np.abs(y - x)
    # Relative error of a logarithmic quantiser: at most ~1/32 of the magnitude,
    # absolute error bounded in the linear segments (clipping aside).
    inside = np.abs(x) < 31000
    assert np.all(err[inside] <= np.maximum(np.abs(x[inside]) / 16, 16))
    # Monotonic: a larger input never yields a smaller output.
    assert np.all(np.diff(y) >= 0)


def test_transcoding_tables_match_decode_then_encode() -> None:
    codes = bytes(range(256))
    assert g711.transcode(codes, "PCMU", "PCMA") == g711.alaw_encode(
        g711.ulaw_decode(codes)
    )
    assert g711.transcode(codes, "PCMA", "PCMU") == g711.ulaw_encode(
        g711.alaw_decode(codes)
    )
    assert g711.transcode(codes, "PCMU", "PCMU") is codes
    # Silence maps to silence.
    assert g711.transcode(b"\xff", "PCMU", "PCMA") == b"\xd5"
    # A-law's smallest step (+8) is exactly mu-law code 0xFE.
    assert g711.transcode(b"\xd5", "PCMA", "PCMU") == b"\xfe"


def test_a_1khz_tone_survives_both_laws() -> None:
    t = np.arange(800) / 8000
    tone = (10000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    for codec in ("PCMU", "PCMA"):
        back = g711.decode(codec, g711.encode(codec, tone)).astype(float)  # type: ignore[arg-type]
        snr = 10 * np.log10(
            np.sum(tone.astype(float) ** 2) / np.sum((back - tone) ** 2)
        )
        assert snr > 30  # G.711 gives ~38 dB SNR at this level
