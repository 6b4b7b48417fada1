"""Jitter buffer over a lossy, reordering, duplicating fake link (float clock)."""

from __future__ import annotations

import random

import pytest

from sipspeak.media.jitterbuffer import AudioFrame, JitterBuffer
from sipspeak.media.rtp import RtpPacket, ts_add, ts_diff


def packet(i: int, ts0: int = 0xFFFF_F000) -> RtpPacket:
    # Payload byte i % 200 (never 0xFF, mu-law silence) identifies the packet.
    return RtpPacket(
        payload_type=0,
        sequence_number=(60000 + i) & 0xFFFF,
        timestamp=ts_add(ts0, 160 * i),
        ssrc=9,
        payload=bytes([i % 200]) * 160,
    )


def run_link(
    n: int, *, loss: float, dup: float, max_delay: float, seed: int
) -> tuple[list[AudioFrame], set[int], JitterBuffer]:
    rng = random.Random(seed)
    arrivals: list[tuple[float, int, RtpPacket]] = []
    lost = set()
    for i in range(n):
        if rng.random() < loss:
            lost.add(i)
            continue
        sent = i * 0.02
        arrivals.append((sent + rng.uniform(0, max_delay), i, packet(i)))
        if rng.random() < dup:
            arrivals.append((sent + rng.uniform(0, max_delay), i, packet(i)))
    arrivals.sort(key=lambda a: (a[0], a[1]))
    jb = JitterBuffer(codec="PCMU", delay=0.06)
    frames: list[AudioFrame] = []
    now = 0.0
    k = 0
    while now < n * 0.02 + 0.5:
        while k < len(arrivals) and arrivals[k][0] <= now:
            jb.put(arrivals[k][2], arrivals[k][0])
            k += 1
        frames += jb.pop(now)
        now += 0.005
    return frames, lost, jb


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lossy_reordered_link_comes_out_ordered_and_complete(seed: int) -> None:
    n = 500
    frames, lost, jb = run_link(n, loss=0.05, dup=0.03, max_delay=0.04, seed=seed)
    first = packet(min(set(range(n)) - lost)).timestamp
    # The output is one gap-free run of timestamps (across the 32-bit wrap).
    pos = 0
    for f in frames:
        assert ts_diff(f.timestamp, first) == pos
        pos += len(f.payload)
    audio = b"".join(f.payload for f in frames)
    played = [i for i in range(n) if i not in lost and i >= min(set(range(n)) - lost)]
    start = min(played)
    for i in range(start, n):
        chunk = audio[(i - start) * 160 : (i - start + 1) * 160]
        if i in lost:
            assert chunk in (
                b"\xff" * 160,
                b"",
            )  # concealed by silence (or past the end)
        else:
            assert chunk == bytes([i % 200]) * 160
    stats = jb.stats()
    assert stats.late == 0
    assert stats.played == len(played)
    assert stats.duplicates > 0


def test_packets_later_than_the_playout_point_are_dropped() -> None:
    jb = JitterBuffer(codec="PCMA", delay=0.02)
    jb.put(packet(0), 0.0)
    jb.put(packet(2), 0.04)
    frames = jb.pop(0.079)
    assert [f.concealed for f in frames] == [False, True, False]
    assert frames[1].payload == b"\xd5" * 160  # A-law silence
    jb.put(packet(1), 0.11)  # arrives after its slot was concealed
    assert all(f.concealed for f in jb.pop(0.2))
    assert jb.stats().late == 1


def test_depth_is_bounded_and_a_jump_resynchronises() -> None:
    jb = JitterBuffer(codec="PCMU", delay=0.06, max_depth=0.2)
    jb.put(packet(0), 0.0)
    jb.put(packet(1000), 0.02)  # 20 s ahead: a new source or a long outage
    assert jb.stats().resyncs == 1
    frames = jb.pop(0.1)
    assert frames[0].timestamp == packet(1000).timestamp
    assert not frames[0].concealed


def test_nothing_due_before_the_first_packet() -> None:
    jb = JitterBuffer(codec="PCMU")
    assert jb.pop(100.0) == [] and jb.get_timer() is None
    jb.put(packet(0), 1.0)
    timer = jb.get_timer()
    assert timer is not None and timer == pytest.approx(1.0 + 0.06 + 0.02)
    assert jb.pop(1.0) == []
    assert len(jb.pop(timer)) == 1
