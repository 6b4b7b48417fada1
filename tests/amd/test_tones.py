"""Goertzel and the tone tracker."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipspeak.media.amd.tones import (
    BEEP_GRID,
    SIT_FREQUENCIES,
    ToneBank,
    ToneMeasure,
    ToneTracker,
    goertzel_power,
    sit_segment,
)

RATE = 8000


def sine(freq: float, n: int = 160, amplitude: float = 1000.0) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(n) / RATE + 0.3)


def test_goertzel_matches_the_dft_on_a_bin():
    x = sine(1000.0) + 0.5 * sine(2000.0)
    spectrum = np.fft.fft(x)
    bin_1000 = 1000 * 160 // RATE
    assert goertzel_power(x, 1000.0) == pytest.approx(abs(spectrum[bin_1000]) ** 2, rel=1e-9)


def test_goertzel_peaks_at_the_tone_frequency():
    x = sine(913.8)
    powers = {f: goertzel_power(x, f) for f in (700.0, 913.8, 1100.0, 1370.6)}
    assert max(powers, key=powers.__getitem__) == 913.8
    assert powers[913.8] > 50 * powers[1370.6]


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1), st.sampled_from([80, 160, 240]))
def test_tone_bank_equals_the_goertzel_recurrence(seed, block):
    x = np.random.default_rng(seed).standard_normal(block) * 3000
    freqs = (425.0, 913.8, 1000.0, 1776.7, 2100.0)
    bank = ToneBank(freqs, block=block)
    expected = [goertzel_power(x, f) for f in freqs]
    assert bank.powers(x) == pytest.approx(expected, rel=1e-7, abs=1e-3)


def test_purity_of_a_pure_tone_and_of_noise():
    bank = ToneBank(tuple(sorted(set(BEEP_GRID + SIT_FREQUENCIES))), block=160)
    x = sine(1370.6)
    measure = bank.strongest(x, float(np.dot(x, x)))
    assert measure.freq == pytest.approx(1370.6)
    assert measure.purity > 0.95
    noise = np.random.default_rng(0).standard_normal(160) * 1000
    assert bank.strongest(noise, float(np.dot(noise, noise))).purity < 0.3
    assert bank.strongest(np.zeros(160), 0.0).purity == 0.0


def test_bank_rejects_an_empty_block():
    with pytest.raises(ValueError):
        ToneBank((1000.0,), block=0)


def test_sit_segments():
    assert [sit_segment(f) for f in (913.8, 985.2, 1370.6, 1428.5, 1776.7)] == [1, 1, 2, 2, 3]
    assert sit_segment(1000.0) == 0
    assert sit_segment(440.0) == 0


def feed(tracker: ToneTracker, freq: float | None, frames: int) -> list[str | None]:
    tone = None if freq is None else ToneMeasure(freq, 0.95)
    return [tracker.update(tone) for _ in range(frames)]


def test_beep_after_min_tone_length():
    tracker = ToneTracker(frame_ms=20, min_tone_ms=200)
    verdicts = feed(tracker, 1000.0, 12)
    assert verdicts.index("beep") == 9  # the 10th frame completes 200 ms


def test_wandering_frequency_is_not_a_beep():
    tracker = ToneTracker(frame_ms=20, min_tone_ms=200)
    verdicts = [tracker.update(ToneMeasure(600.0 + 40 * i, 0.9)) for i in range(20)]
    assert "beep" not in verdicts


def test_sit_sequence_then_not_a_beep():
    tracker = ToneTracker(frame_ms=20, min_tone_ms=200)
    verdicts = feed(tracker, 913.8, 14) + feed(tracker, 1370.6, 14)
    assert "beep" not in verdicts
    assert verdicts[14:].index("sit") == 5  # 120 ms into the second segment


def test_lone_first_sit_tone_held_long_is_a_beep():
    tracker = ToneTracker(frame_ms=20, min_tone_ms=200)
    verdicts = feed(tracker, 985.2, 40)
    assert verdicts.index("beep") == 29  # 600 ms: longer than any SIT segment
