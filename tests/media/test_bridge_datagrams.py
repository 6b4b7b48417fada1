"""The bridge's datagram path sends byte for byte what its packet path sends (sans-IO).

Between two RTP endpoints the bridge never builds an ``RtpPacket``
(:class:`~sipspeak.media.leg.RawRtpLeg`).  Every scenario below is played
twice, once through legs that only speak ``RtpPacket`` and once through legs
that speak datagrams the way :class:`~sipspeak.media.endpoint.RtpEndpoint`
does, and the wire bytes must be identical.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sipspeak.media.bridge import Bridge
from sipspeak.media.leg import MediaLeg, PacketReceiver, RawPacketReceiver, RawRtpLeg
from sipspeak.media.rtp import Codec, RtpPacket

sys.path.insert(0, str(Path(__file__).parent))
from rtp_packets import rtp

Tapped = list[tuple[str, Codec, int, bytes]]


@dataclass
class PacketLeg:
    """A leg with only the packet interface; like an endpoint it sends with its own SSRC."""

    ssrc_on_wire: int
    codec: Codec = "PCMU"
    dtmf_payload_type: int | None = 101
    wire: list[bytes] = field(default_factory=list)
    receiver: PacketReceiver | None = None

    def send(self, packet: RtpPacket) -> None:
        packet.ssrc = self.ssrc_on_wire
        self.wire.append(packet.serialize())

    def set_receiver(self, cb: PacketReceiver | None) -> None:
        self.receiver = cb

    def emit(self, data: bytes) -> None:
        if self.receiver is not None:
            self.receiver(RtpPacket.parse(data))


@dataclass
class DatagramLeg:
    """A leg with the datagram fast path, dispatching as ``RtpEndpoint`` does."""

    ssrc: int
    codec: Codec = "PCMU"
    dtmf_payload_type: int | None = 101
    wire: list[bytes] = field(default_factory=list)
    receiver: PacketReceiver | None = None
    raw: RawPacketReceiver | None = None
    sent_octets: int = 0

    def send(self, packet: RtpPacket) -> None:
        packet.ssrc = self.ssrc
        self.wire.append(packet.serialize())

    def send_datagram(
        self, datagram: bytes | bytearray, timestamp: int, payload_size: int
    ) -> None:
        packet = RtpPacket.parse(bytes(datagram))
        assert packet.timestamp == timestamp and len(packet.payload) == payload_size
        self.sent_octets += payload_size
        self.wire.append(bytes(datagram))

    def set_receiver(self, cb: PacketReceiver | None) -> None:
        self.receiver, self.raw = cb, None

    def set_receivers(
        self, cb: PacketReceiver | None, raw: RawPacketReceiver | None
    ) -> None:
        self.receiver, self.raw = cb, raw

    def emit(self, data: bytes) -> None:
        if data[0] == 0x80 and self.raw is not None:
            p = RtpPacket.parse(data)
            self.raw(data, data[1], p.sequence_number, p.timestamp, p.ssrc)
        elif self.receiver is not None:
            self.receiver(RtpPacket.parse(data))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


Scenario = Callable[[Callable[..., MediaLeg], Clock, Tapped], list[MediaLeg]]


def switch_with_wrap(
    make: Callable[..., MediaLeg], clock: Clock, tapped: Tapped
) -> list[MediaLeg]:
    customer, music, operator = make(1), make(2), make(3)
    bridge = Bridge(
        customer=customer, operator=music, clock=clock, rng=random.Random(7)
    )
    bridge.set_tap("operator", lambda c, ts, pl: tapped.append(("op", c, ts, pl)))
    for i in range(40):
        music.emit(rtp(0x1111, 65520 + i, 0xFFFFF000 + 160 * i, marker=i == 0))  # type: ignore[attr-defined]
        clock.now += 0.02
    clock.now += 0.5
    bridge.replace("operator", operator)
    for i in (0, 2, 1, 3):  # reordered
        operator.emit(rtp(0x2222, 7 + i, 1000 + 160 * i))  # type: ignore[attr-defined]
        clock.now += 0.02
    music.emit(rtp(0x1111, 70, 0))  # detached: goes nowhere  # type: ignore[attr-defined]
    return [customer, music, operator]


def transcoding_dtmf_and_other_payloads(
    make: Callable[..., MediaLeg], clock: Clock, tapped: Tapped
) -> list[MediaLeg]:
    customer = make(1, codec="PCMU", dtmf_payload_type=101)
    operator = make(2, codec="PCMA", dtmf_payload_type=96)
    bridge = Bridge(
        customer=customer, operator=operator, clock=clock, rng=random.Random(3)
    )
    bridge.set_tap("customer", lambda c, ts, pl: tapped.append(("cu", c, ts, pl)))
    bridge.set_tap("operator", lambda c, ts, pl: tapped.append(("op", c, ts, pl)))
    emit_c = customer.emit  # type: ignore[attr-defined]
    emit_o = operator.emit  # type: ignore[attr-defined]
    emit_c(rtp(5, 1, 0, fill=0x12))
    emit_c(rtp(5, 2, 160, pt=101, fill=3, marker=True))  # telephone-event -> PT 96
    emit_c(rtp(5, 3, 320, pt=13, fill=0))  # comfort noise: passed through as is
    emit_c(rtp(5, 4, 480, fill=0x34, csrc=(9, 10)))  # not a plain header
    emit_c(rtp(5, 5, 640, fill=0x56, padding=4))
    emit_o(rtp(6, 100, 8000, pt=8, fill=0xD5))
    emit_o(rtp(6, 101, 8160, pt=96, fill=1))  # telephone-event -> PT 101
    clock.now += 1
    bridge.replace("operator", mute := make(4, codec="PCMU", dtmf_payload_type=None))
    # The new leg has no telephone-event: dropped.
    emit_c(rtp(5, 6, 800, pt=101, fill=3))
    emit_c(rtp(5, 7, 960, fill=0x78))
    return [customer, operator, mute]


def mixed_legs(
    make: Callable[..., MediaLeg], clock: Clock, tapped: Tapped
) -> list[MediaLeg]:
    """A datagram source towards a packet-only target (a WebRTC leg) and back."""
    customer = make(1)
    operator = PacketLeg(ssrc_on_wire=2)
    Bridge(customer=customer, operator=operator, clock=clock, rng=random.Random(5))
    for i in range(3):
        customer.emit(rtp(8, i, 160 * i))  # type: ignore[attr-defined]
        operator.emit(rtp(9, i, 160 * i))
    return [customer, operator]


@pytest.mark.parametrize(
    "scenario", [switch_with_wrap, transcoding_dtmf_and_other_payloads, mixed_legs]
)
def test_datagram_path_puts_the_same_bytes_on_the_wire(scenario: Scenario) -> None:
    def packet_leg(ssrc: int, **kw: object) -> MediaLeg:
        return PacketLeg(ssrc_on_wire=ssrc, **kw)  # type: ignore[arg-type]

    def datagram_leg(ssrc: int, **kw: object) -> MediaLeg:
        leg = DatagramLeg(ssrc=ssrc, **kw)  # type: ignore[arg-type]
        assert isinstance(leg, RawRtpLeg)
        return leg

    tapped_p: Tapped = []
    tapped_d: Tapped = []
    by_packets = scenario(packet_leg, Clock(), tapped_p)
    by_datagrams = scenario(datagram_leg, Clock(), tapped_d)
    wires = [leg.wire for leg in by_packets]  # type: ignore[attr-defined]
    assert any(wires)
    assert wires == [leg.wire for leg in by_datagrams]  # type: ignore[attr-defined]
    assert tapped_p == tapped_d


def test_datagram_path_reaches_the_raw_receiver_only_for_plain_headers() -> None:
    customer, operator = DatagramLeg(ssrc=1), DatagramLeg(ssrc=2)
    bridge = Bridge(customer=customer, operator=operator, clock=Clock())
    assert customer.raw is not None and customer.receiver is not None
    customer.emit(rtp(5, 1, 0))
    (out,) = operator.wire
    assert out[0] == 0x80 and out[1] & 0x80  # first packet of a new source: marker
    assert RtpPacket.parse(out).ssrc == 2  # the target leg's own SSRC
    assert operator.sent_octets == 160
    bridge.close()
    assert customer.raw is None and customer.receiver is None
