"""The AMD tap batches the bridge's packets (one G.711 decode per 100 ms, not per packet) and
still reaches the decision the detector reaches when fed packet by packet, gaps included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from callworld import spoken_greeting

from sipspeak.calls import amd_tap
from sipspeak.calls.amd_tap import AmdTap
from sipspeak.media.amd.detector import AmdResult, AnsweringMachineDetector
from sipspeak.media.amd.params import AmdParams
from sipspeak.media.g711 import decode, encode
from sipspeak.media.rtp import Codec


def packets(audio: np.ndarray, codec: Codec, *, lost: set[int]) -> list[tuple[int, bytes]]:
    """(RTP timestamp, payload) per 20 ms, minus the packets numbered in ``lost``."""
    encoded = encode(codec, audio[:len(audio) - len(audio) % 160])
    first_ts = 0xFFFFF000  # the timestamp wraps during the greeting
    return [((first_ts + n * 160) & 0xFFFFFFFF, encoded[n * 160:(n + 1) * 160])
            for n in range(len(encoded) // 160) if n not in lost]


def per_packet(stream: list[tuple[int, bytes]], codec: Codec) -> AmdResult | None:
    detector = AnsweringMachineDetector(params=AmdParams())
    first = stream[0][0]
    for ts, payload in stream:
        result = detector.feed(decode(codec, payload), ((ts - first) & 0xFFFFFFFF) / 8000.0)
        if result is not None:
            return result
    return detector.handle_timer(60.0)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_batched_tap_decides_as_the_detector_fed_per_packet(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: Codec) -> None:
    greeting = spoken_greeting(tmp_path)
    stream = packets(greeting, codec, lost=set(range(40, 46)) | {90, 91, 150})
    expected = per_packet(stream, codec)
    assert expected is not None

    decodes: list[int] = []

    def counting_decode(c: Codec, payload: bytes) -> np.ndarray:
        decodes.append(len(payload))
        return decode(c, payload)

    monkeypatch.setattr(amd_tap, "decode", counting_decode)
    results: list[AmdResult] = []
    tap = AmdTap(params=AmdParams(), on_result=results.append)
    fed = 0
    for ts, payload in stream:
        tap(codec, ts, payload)
        fed += 1
        if results:
            break
    tap.check(60.0)
    assert results == [expected]  # the same verdict, reason and timing, reported once
    # Far fewer decodes than packets: batches of five, cut short only at the gaps.
    assert len(decodes) <= fed // 5 + 8
    assert max(decodes) == amd_tap.BATCH_SAMPLES
