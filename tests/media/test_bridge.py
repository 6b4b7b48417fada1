"""Bridge: header rewriting, continuity across a leg switch, transcoding, taps (sans-IO)."""

from __future__ import annotations

import asyncio
import itertools
import random
from dataclasses import dataclass, field

import numpy as np
import pytest

from sipspeak.media import g711
from sipspeak.media.bridge import Bridge
from sipspeak.media.dtmf import DtmfReceiver
from sipspeak.media.leg import MediaLeg, PacketReceiver
from sipspeak.media.player import play_dtmf
from sipspeak.media.rtp import Codec, RtpPacket, seq_diff, ts_diff


@dataclass
class FakeLeg:
    codec: Codec = "PCMU"
    dtmf_payload_type: int | None = 101
    sent: list[RtpPacket] = field(default_factory=list)
    receiver: PacketReceiver | None = None

    def send(self, packet: RtpPacket) -> None:
        self.sent.append(packet)

    def set_receiver(self, cb: PacketReceiver | None) -> None:
        self.receiver = cb

    def emit(self, packet: RtpPacket) -> None:
        if self.receiver is not None:
            self.receiver(packet)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def stream(
    ssrc: int, seq0: int, ts0: int, n: int, pt: int = 0, fill: int = 0x55
) -> list[RtpPacket]:
    return [
        RtpPacket(
            payload_type=pt,
            sequence_number=(seq0 + i) & 0xFFFF,
            timestamp=(ts0 + 160 * i) & 0xFFFFFFFF,
            ssrc=ssrc,
            payload=bytes([fill]) * 160,
        )
        for i in range(n)
    ]


def play(leg: FakeLeg, packets: list[RtpPacket], clock: Clock) -> None:
    for p in packets:
        leg.emit(p)
        clock.now += 0.02


def assert_continuous(packets: list[RtpPacket]) -> None:
    assert len({p.ssrc for p in packets}) == 1
    for a, b in itertools.pairwise(packets):
        assert seq_diff(b.sequence_number, a.sequence_number) == 1
        assert ts_diff(b.timestamp, a.timestamp) > 0


def test_customer_sees_one_stream_across_hold_music_to_operator_switch() -> None:
    clock = Clock()
    customer, music, operator = FakeLeg(), FakeLeg(), FakeLeg()
    bridge = Bridge(
        customer=customer, operator=music, clock=clock, rng=random.Random(1)
    )
    play(music, stream(0x1111, 65500, 0xFFFFF000, 100), clock)  # wraps seq and ts
    clock.now += 0.5  # half a second of nothing while the operator answers
    old = bridge.replace("operator", operator)
    assert old is music and music.receiver is None
    play(operator, stream(0x2222, 7, 123456, 100), clock)
    out = customer.sent
    assert len(out) == 200
    assert_continuous(out)
    # Within a segment timestamps advance by the packet size...
    assert ts_diff(out[50].timestamp, out[49].timestamp) == 160
    # ...and across the switch by the wall-clock gap (20 ms + 500 ms) in samples.
    assert ts_diff(out[100].timestamp, out[99].timestamp) == round(0.52 * 8000)
    assert out[100].marker and not out[101].marker
    assert bridge.switches("operator") == 2
    # Packets of the detached leg go nowhere.
    music.emit(stream(0x1111, 1, 1, 1)[0])
    assert len(customer.sent) == 200


def test_operator_direction_unaffected_and_reordering_preserved() -> None:
    clock = Clock()
    customer, operator = FakeLeg(), FakeLeg()
    Bridge(customer=customer, operator=operator, clock=clock, rng=random.Random(2))
    packets = stream(0x3333, 10, 0, 5)
    order = [0, 2, 1, 3, 4]
    play(customer, [packets[i] for i in order], clock)
    seqs = [p.sequence_number for p in operator.sent]
    base = seqs[0]
    assert [seq_diff(s, base) for s in seqs] == [0, 2, 1, 3, 4]


def test_transcoding_only_when_codecs_differ_and_taps_get_the_sent_bytes() -> None:
    clock = Clock()
    customer, operator = (
        FakeLeg(codec="PCMU"),
        FakeLeg(codec="PCMA", dtmf_payload_type=96),
    )
    bridge = Bridge(customer=customer, operator=operator, clock=clock)
    tapped: list[tuple[Codec, int, bytes]] = []
    bridge.set_tap("customer", lambda c, ts, pl: tapped.append((c, ts, pl)))
    tone = (8000 * np.sin(np.arange(160) / 3)).astype(np.int16)
    src = RtpPacket(
        payload_type=0,
        sequence_number=1,
        timestamp=0,
        ssrc=5,
        payload=g711.ulaw_encode(tone),
    )
    customer.emit(src)
    (sent,) = operator.sent
    assert sent.payload_type == 8
    assert sent.payload == g711.transcode(g711.ulaw_encode(tone), "PCMU", "PCMA")
    assert tapped == [("PCMA", sent.timestamp, sent.payload)]
    assert tapped[0][2] is sent.payload  # no copy
    # Same codec the other way round: payload object passed through untouched.
    same_customer, same_operator = FakeLeg(), FakeLeg()
    Bridge(customer=same_customer, operator=same_operator, clock=clock)
    p = stream(9, 0, 0, 1)[0]
    payload = p.payload
    same_customer.emit(p)
    assert same_operator.sent[0].payload is payload


def test_dtmf_payload_type_mapped_or_dropped() -> None:
    clock = Clock()
    customer = FakeLeg(dtmf_payload_type=101)
    operator = FakeLeg(dtmf_payload_type=96)
    bridge = Bridge(customer=customer, operator=operator, clock=clock)
    play(customer, stream(1, 0, 0, 2, pt=101, fill=5), clock)
    assert [p.payload_type for p in operator.sent] == [96, 96]
    mute = FakeLeg(dtmf_payload_type=None)
    bridge.replace("operator", mute)
    play(customer, stream(1, 2, 320, 2, pt=101, fill=5), clock)
    assert mute.sent == []


def test_close_detaches_both_legs() -> None:
    customer, operator = FakeLeg(), FakeLeg()
    bridge = Bridge(customer=customer, operator=operator)
    bridge.close()
    assert customer.receiver is None and operator.receiver is None
    assert bridge.leg("customer") is None


def test_fake_leg_satisfies_the_protocol() -> None:
    leg: MediaLeg = FakeLeg()
    assert leg.codec == "PCMU"


def test_injected_dtmf_continues_the_stream_and_decodes_to_the_digit() -> None:
    clock = Clock()
    customer, operator = FakeLeg(dtmf_payload_type=101), FakeLeg()
    bridge = Bridge(
        customer=customer, operator=operator, clock=clock, rng=random.Random(4)
    )
    play(operator, stream(0x77, 100, 5000, 10), clock)
    train = bridge.dtmf_packets("customer", "5", duration_ms=100)
    for _, packet in train:
        bridge.inject("customer", packet)
    play(operator, stream(0x77, 110, 5000 + 1600, 10), clock)
    out = customer.sent
    assert len(out) == 20 + len(train)
    assert len({p.ssrc for p in out}) == 1
    assert all(
        seq_diff(b.sequence_number, a.sequence_number) == 1
        for a, b in itertools.pairwise(out)
    )
    events = [p for p in out if p.payload_type == 101]
    assert events[0].marker and len({p.timestamp for p in events}) == 1
    # The event starts where the audio timeline is now (after the 10th packet).
    assert ts_diff(events[0].timestamp, out[9].timestamp) >= 160
    receiver = DtmfReceiver(payload_type=101)
    assert [
        d.digit for p in out if p.payload_type == 101 for d in receiver.feed(p)
    ] == ["5"]


def test_dtmf_needs_telephone_event_on_the_target_leg() -> None:
    bridge = Bridge(customer=FakeLeg(dtmf_payload_type=None), operator=FakeLeg())
    with pytest.raises(ValueError, match="telephone-event"):
        bridge.dtmf_packets("customer", "1")


async def test_play_dtmf_paces_every_digit_to_the_far_end() -> None:
    customer, operator = FakeLeg(dtmf_payload_type=101), FakeLeg()
    bridge = Bridge(customer=customer, operator=operator)
    await asyncio.wait_for(
        play_dtmf(bridge, "customer", "12#", duration_ms=60, gap_ms=20), 10
    )
    receiver = DtmfReceiver(payload_type=101)
    digits = [d.digit for p in customer.sent for d in receiver.feed(p)]
    assert digits == ["1", "2", "#"]
    assert all(
        seq_diff(b.sequence_number, a.sequence_number) == 1
        for a, b in itertools.pairwise(customer.sent)
    )
