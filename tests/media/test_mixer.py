"""The listener's mixer (sans-IO): both sides summed 20 ms at a time, silence for a side with
nothing, a side running ahead bounded, loud sums clipped."""

from __future__ import annotations

import numpy as np

from sipspeak.media.g711 import decode, encode
from sipspeak.media.mixer import FRAME, MAX_QUEUED, Mixer


def tone(freq: float, samples: int, amplitude: int = 8000) -> np.ndarray:
    t = np.arange(samples) / 8000.0
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def test_both_sides_summed_in_frames_whatever_the_payload_sizes() -> None:
    mixer = Mixer()
    customer, operator = tone(1000, 480), tone(440, 480)
    # 30 ms payloads from one side, 20 ms from the other: frames line up all the same.
    for start in range(0, 480, 240):
        mixer.feed("customer", "PCMU", encode("PCMU", customer[start:start + 240]))
    for start in range(0, 480, 160):
        mixer.feed("operator", "PCMA", encode("PCMA", operator[start:start + 160]))
    out = np.concatenate([mixer.next_frame() for _ in range(3)])
    expected = (decode("PCMU", encode("PCMU", customer)).astype(np.int32)
                + decode("PCMA", encode("PCMA", operator)).astype(np.int32))
    assert np.array_equal(out, expected.astype(np.int16))
    # Nothing queued: silence, not an error.
    assert not mixer.next_frame().any()


def test_a_side_alone_is_heard_alone_and_loud_sums_are_clipped() -> None:
    mixer = Mixer()
    loud = np.full(FRAME, 30000, dtype=np.int16)
    mixer.feed("customer", "PCMU", encode("PCMU", loud))
    alone = mixer.next_frame()
    assert np.array_equal(alone, decode("PCMU", encode("PCMU", loud)))
    mixer.feed("customer", "PCMU", encode("PCMU", loud))
    mixer.feed("operator", "PCMU", encode("PCMU", loud))
    assert (mixer.next_frame() == 32767).all()


def test_a_side_running_ahead_keeps_only_its_latest_frames() -> None:
    mixer = Mixer()
    for n in range(MAX_QUEUED + 5):
        mixer.feed("customer", "PCMU", encode("PCMU", np.full(FRAME, 100 * n, dtype=np.int16)))
    first = mixer.next_frame()
    # The five oldest were dropped: the first frame out is the sixth fed.
    assert abs(int(first[0]) - 500) < 20
