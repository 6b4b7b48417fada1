"""RTCP packets: SR, RR, SDES (CNAME), BYE and compound packets (RFC 3550 §6.4-§6.6).

Sans-IO.  :func:`parse_compound` splits a UDP datagram into packets and
:func:`serialize_compound` is its exact inverse.  Packets are frozen slotted
dataclasses; a malformed datagram raises ``ValueError`` (the transport logs and
drops it).  Packet types we do not interpret (APP, feedback, XR) are kept as
:class:`RtcpUnknown` so that a compound packet round-trips unchanged.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

__all__ = [
    "NTP_EPOCH_OFFSET",
    "ReportBlock",
    "RtcpBye",
    "RtcpPacket",
    "RtcpReceiverReport",
    "RtcpSdes",
    "RtcpSenderReport",
    "RtcpUnknown",
    "SdesChunk",
    "ntp_from_unix",
    "parse_compound",
    "serialize_compound",
]

PT_SR: Final = 200
PT_RR: Final = 201
PT_SDES: Final = 202
PT_BYE: Final = 203
SDES_CNAME: Final = 1

#: Seconds from 1900-01-01 (NTP epoch) to 1970-01-01 (Unix epoch), RFC 868.
NTP_EPOCH_OFFSET: Final = 2208988800

_COMMON = struct.Struct("!BBH")
_SR_INFO = struct.Struct("!IIIIII")  # ssrc, ntp msw, ntp lsw, rtp ts, packets, octets
_BLOCK = struct.Struct("!IB3sIIII")


def ntp_from_unix(unix_time: float) -> int:
    """64-bit NTP timestamp (RFC 3550 §4) for a Unix time in seconds."""
    return int((unix_time + NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportBlock:
    """Reception report block (RFC 3550 §6.4.1)."""

    ssrc: int
    fraction_lost: int  # 8-bit fixed point, lost/expected * 256
    packets_lost: int  # cumulative, 24-bit signed (duplicates may make it negative)
    highest_sequence: int  # extended highest sequence number received
    jitter: int  # interarrival jitter in timestamp units (§6.4.1, A.8)
    lsr: int  # middle 32 bits of the last SR's NTP timestamp, 0 if none
    dlsr: int  # delay since that SR, 1/65536 s

    def serialize(self) -> bytes:
        lost = self.packets_lost
        lost = max(-0x800000, min(0x7FFFFF, lost)) & 0xFFFFFF
        return _BLOCK.pack(
            self.ssrc,
            self.fraction_lost,
            lost.to_bytes(3, "big"),
            self.highest_sequence,
            self.jitter,
            self.lsr,
            self.dlsr,
        )

    @classmethod
    def parse(cls, data: bytes, pos: int) -> ReportBlock:
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, pos)
        packets_lost = int.from_bytes(lost, "big", signed=True)
        return cls(
            ssrc=ssrc,
            fraction_lost=fraction,
            packets_lost=packets_lost,
            highest_sequence=highest,
            jitter=jitter,
            lsr=lsr,
            dlsr=dlsr,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpSenderReport:
    """SR (RFC 3550 §6.4.1): sender info plus up to 31 report blocks."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    def serialize(self) -> bytes:
        body = _SR_INFO.pack(
            self.ssrc,
            self.ntp_timestamp >> 32,
            self.ntp_timestamp & 0xFFFFFFFF,
            self.rtp_timestamp & 0xFFFFFFFF,
            self.packet_count & 0xFFFFFFFF,
            self.octet_count & 0xFFFFFFFF,
        )
        body += b"".join(r.serialize() for r in self.reports)
        return _header(PT_SR, len(self.reports), body) + body


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpReceiverReport:
    """RR (RFC 3550 §6.4.2)."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def serialize(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(
            r.serialize() for r in self.reports
        )
        return _header(PT_RR, len(self.reports), body) + body


@dataclass(frozen=True, slots=True, kw_only=True)
class SdesChunk:
    """One SDES chunk (RFC 3550 §6.5): a source and its (type, value) items."""

    ssrc: int
    items: tuple[tuple[int, bytes], ...]

    @property
    def cname(self) -> bytes | None:
        return next((v for t, v in self.items if t == SDES_CNAME), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpSdes:
    """SDES (RFC 3550 §6.5); we send only CNAME, which is mandatory (§6.5.1)."""

    chunks: tuple[SdesChunk, ...]

    def serialize(self) -> bytes:
        body = bytearray()
        for chunk in self.chunks:
            part = bytearray(struct.pack("!I", chunk.ssrc))
            for kind, value in chunk.items:
                if len(value) > 255:
                    raise ValueError("SDES item longer than 255 octets")
                part += bytes((kind, len(value))) + value
            # Item list ends with a null octet, then pads to a 32-bit boundary.
            part += bytes(4 - (len(part) % 4))
            body += part
        return _header(PT_SDES, len(self.chunks), bytes(body)) + bytes(body)


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpBye:
    """BYE (RFC 3550 §6.6): the listed sources leave, with an optional reason."""

    sources: tuple[int, ...]
    reason: bytes = b""

    def serialize(self) -> bytes:
        body = b"".join(struct.pack("!I", s) for s in self.sources)
        if self.reason:
            if len(self.reason) > 255:
                raise ValueError("BYE reason longer than 255 octets")
            tail = bytes((len(self.reason),)) + self.reason
            body += tail + bytes(-len(tail) % 4)
        return _header(PT_BYE, len(self.sources), body) + body


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpUnknown:
    """Any other RTCP packet (APP, RTPFB, XR …), kept verbatim."""

    packet_type: int
    count: int
    body: bytes

    def serialize(self) -> bytes:
        return _header(self.packet_type, self.count, self.body) + self.body


RtcpPacket = RtcpSenderReport | RtcpReceiverReport | RtcpSdes | RtcpBye | RtcpUnknown


def _header(packet_type: int, count: int, body: bytes) -> bytes:
    if count > 31:
        raise ValueError(f"RTCP count field holds at most 31, got {count}")
    if len(body) % 4:
        raise ValueError("RTCP packet body must be a multiple of 32 bits")
    return _COMMON.pack(0x80 | count, packet_type, len(body) // 4)


def serialize_compound(packets: list[RtcpPacket] | tuple[RtcpPacket, ...]) -> bytes:
    """Concatenate packets into one datagram (RFC 3550 §6.1)."""
    return b"".join(p.serialize() for p in packets)


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Parse every packet of a compound RTCP datagram; ``ValueError`` if malformed."""
    packets: list[RtcpPacket] = []
    pos = 0
    if len(data) < 4:
        raise ValueError(f"RTCP datagram too short: {len(data)} bytes")
    while pos < len(data):
        if len(data) - pos < 4:
            raise ValueError("RTCP datagram ends inside a packet header")
        first, packet_type, words = _COMMON.unpack_from(data, pos)
        if first >> 6 != 2:
            raise ValueError(f"RTCP version {first >> 6} is not 2")
        if first & 0x20:
            # Padding is only allowed on the last packet (§6.4.1); we never send it.
            raise ValueError("padded RTCP packets are not supported")
        count = first & 0x1F
        end = pos + 4 + 4 * words
        if end > len(data):
            raise ValueError("RTCP length field runs past the datagram")
        body = data[pos + 4 : end]
        packets.append(_parse_one(packet_type, count, bytes(body)))
        pos = end
    return packets


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == PT_SR:
        if len(body) < 24 + 24 * count:
            raise ValueError("SR shorter than its report count")
        ssrc, msw, lsw, rtp_ts, packets, octets = _SR_INFO.unpack_from(body)
        return RtcpSenderReport(
            ssrc=ssrc,
            ntp_timestamp=(msw << 32) | lsw,
            rtp_timestamp=rtp_ts,
            packet_count=packets,
            octet_count=octets,
            reports=tuple(ReportBlock.parse(body, 24 + 24 * i) for i in range(count)),
        )
    if packet_type == PT_RR:
        if len(body) < 4 + 24 * count:
            raise ValueError("RR shorter than its report count")
        return RtcpReceiverReport(
            ssrc=struct.unpack_from("!I", body)[0],
            reports=tuple(ReportBlock.parse(body, 4 + 24 * i) for i in range(count)),
        )
    if packet_type == PT_SDES:
        return RtcpSdes(chunks=_parse_sdes(body, count))
    if packet_type == PT_BYE:
        if len(body) < 4 * count:
            raise ValueError("BYE shorter than its source count")
        sources = struct.unpack_from(f"!{count}I", body)
        reason = b""
        if len(body) > 4 * count:
            n = body[4 * count]
            if 4 * count + 1 + n > len(body):
                raise ValueError("BYE reason runs past the packet")
            reason = body[4 * count + 1 : 4 * count + 1 + n]
        return RtcpBye(sources=tuple(sources), reason=reason)
    return RtcpUnknown(packet_type=packet_type, count=count, body=body)


def _parse_sdes(body: bytes, count: int) -> tuple[SdesChunk, ...]:
    chunks = []
    pos = 0
    for _ in range(count):
        if pos + 4 > len(body):
            raise ValueError("SDES chunk truncated")
        ssrc = struct.unpack_from("!I", body, pos)[0]
        pos += 4
        items = []
        while True:
            if pos >= len(body):
                raise ValueError("SDES item list not terminated")
            kind = body[pos]
            if kind == 0:
                pos += 1
                pos += -pos % 4  # to the next 32-bit boundary
                break
            if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                raise ValueError("SDES item truncated")
            size = body[pos + 1]
            items.append((kind, body[pos + 2 : pos + 2 + size]))
            pos += 2 + size
        chunks.append(SdesChunk(ssrc=ssrc, items=tuple(items)))
    return tuple(chunks)
