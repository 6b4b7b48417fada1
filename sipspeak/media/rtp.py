"""RTP data packets and sequence/timestamp arithmetic (RFC 3550 §5.1, RFC 3551).

Sans-IO: bytes in, :class:`RtpPacket` out, and back.  ``RtpPacket.parse`` and
``RtpPacket.serialize`` are exact inverses for every packet that parses,
including CSRC lists, header extensions and padding.  Malformed packets raise
``ValueError``; the transport logs and drops them.

Sequence numbers are 16-bit and timestamps 32-bit unsigned counters that wrap
around; the helpers below compare and subtract them modulo 2**16 / 2**32 so that
65535 -> 0 is a step of +1, not -65535 (RFC 3550 §A.1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "CODEC_BY_PAYLOAD_TYPE",
    "PAYLOAD_TYPES",
    "RTP_HEADER_SIZE",
    "Codec",
    "RtpPacket",
    "is_rtcp",
    "seq_add",
    "seq_diff",
    "seq_newer",
    "ts_add",
    "ts_diff",
    "ts_newer",
]

Codec = Literal["PCMU", "PCMA"]

#: Static payload types of RFC 3551 §6, Table 4.
PAYLOAD_TYPES: Final[dict[Codec, int]] = {"PCMU": 0, "PCMA": 8}
CODEC_BY_PAYLOAD_TYPE: Final[dict[int, Codec]] = {0: "PCMU", 8: "PCMA"}

RTP_VERSION: Final = 2
RTP_HEADER_SIZE: Final = 12

_HEADER = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")
_SEQ_MOD: Final = 1 << 16
_new = object.__new__
_TS_MOD: Final = 1 << 32


@dataclass(slots=True, kw_only=True)
class RtpPacket:
    """One RTP data packet (RFC 3550 §5.1).

    Mutable on purpose: whoever receives a packet owns it, and the bridge
    rewrites ``ssrc``/``sequence_number``/``timestamp`` in place instead of
    allocating a copy per packet.
    """

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    #: Header extension (RFC 3550 §5.3.1): ``(profile, data)`` or ``None``.
    extension: tuple[int, bytes] | None = None
    #: Number of padding octets at the end (RFC 3550 §5.1, P bit); 0 = no padding.
    padding: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one RTP packet; raise ``ValueError`` if it is malformed."""
        size = len(data)
        if size < RTP_HEADER_SIZE:
            raise ValueError(f"RTP packet too short: {size} bytes")
        first, second, seq, ts, ssrc = _HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise ValueError(f"RTP version {first >> 6} is not 2")
        if first & 0x3F == 0:
            # Fast path: no padding, no extension, no CSRC (every G.711 packet
            # we produce and nearly every one we receive).  Filling the slots
            # directly costs a third of the generated keyword __init__, and this
            # runs for every packet the engine relays.
            packet = _new(cls)
            packet.payload_type = second & 0x7F
            packet.sequence_number = seq
            packet.timestamp = ts
            packet.ssrc = ssrc
            packet.payload = data[RTP_HEADER_SIZE:]
            packet.marker = second > 0x7F
            packet.csrc = ()
            packet.extension = None
            packet.padding = 0
            return packet
        cc = first & 0x0F
        pos = RTP_HEADER_SIZE + 4 * cc
        if size < pos:
            raise ValueError(f"RTP packet truncated in its CSRC list ({cc} entries)")
        csrc = struct.unpack_from(f"!{cc}I", data, RTP_HEADER_SIZE) if cc else ()
        extension: tuple[int, bytes] | None = None
        if first & 0x10:
            if size < pos + 4:
                raise ValueError("RTP packet truncated in its header extension")
            profile, words = _EXT_HEADER.unpack_from(data, pos)
            pos += 4
            if size < pos + 4 * words:
                raise ValueError("RTP header extension longer than the packet")
            extension = (profile, bytes(data[pos : pos + 4 * words]))
            pos += 4 * words
        end = size
        padding = 0
        if first & 0x20:
            # RFC 3550 §5.1: the last octet counts the padding octets, itself included.
            padding = data[-1]
            if padding == 0 or pos + padding > size:
                raise ValueError(f"RTP padding length {padding} is invalid")
            end = size - padding
        return cls(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=bytes(data[pos:end]),
            marker=bool(second & 0x80),
            csrc=tuple(csrc),
            extension=extension,
            padding=padding,
        )

    def serialize(self) -> bytes:
        """Return the wire form; ``parse(serialize(p)) == p`` for every valid packet."""
        cc = len(self.csrc)
        if cc > 15:
            raise ValueError(f"at most 15 CSRC identifiers, got {cc}")
        first = (RTP_VERSION << 6) | cc
        if self.padding:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        header = _HEADER.pack(
            first,
            second,
            self.sequence_number & 0xFFFF,
            self.timestamp & 0xFFFFFFFF,
            self.ssrc & 0xFFFFFFFF,
        )
        if first == 0x80:
            return header + self.payload
        parts = [header]
        if cc:
            parts.append(struct.pack(f"!{cc}I", *self.csrc))
        if self.extension is not None:
            profile, ext = self.extension
            if len(ext) % 4:
                raise ValueError("RTP header extension length must be a multiple of 4")
            parts.append(_EXT_HEADER.pack(profile, len(ext) // 4))
            parts.append(ext)
        parts.append(self.payload)
        if self.padding:
            if not 0 < self.padding < 256:
                raise ValueError(
                    f"RTP padding must be 1..255 octets, got {self.padding}"
                )
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)


def is_rtcp(data: bytes) -> bool:
    """Tell RTCP from RTP on a shared port (RFC 5761 §4: PT 192..223 in the 2nd octet)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def seq_add(seq: int, delta: int) -> int:
    """``seq + delta`` modulo 2**16."""
    return (seq + delta) & 0xFFFF


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` in the 16-bit sequence space, in [-32768, 32767]."""
    d = (a - b) & 0xFFFF
    return d - _SEQ_MOD if d >= 0x8000 else d


def seq_newer(a: int, b: int) -> bool:
    """True when sequence number ``a`` comes after ``b`` (wrap-around aware)."""
    return seq_diff(a, b) > 0


def ts_add(ts: int, delta: int) -> int:
    """``ts + delta`` modulo 2**32."""
    return (ts + delta) & 0xFFFFFFFF


def ts_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` in the 32-bit timestamp space."""
    d = (a - b) & 0xFFFFFFFF
    return d - _TS_MOD if d >= 0x80000000 else d


def ts_newer(a: int, b: int) -> bool:
    """True when timestamp ``a`` comes after ``b`` (wrap-around aware)."""
    return ts_diff(a, b) > 0
