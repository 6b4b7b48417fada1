"""Test packets shared by the media tests (imported after putting this folder on sys.path)."""

from __future__ import annotations

from sipspeak.media.rtp import RtpPacket


def rtp(
    ssrc: int, seq: int, ts: int, *, pt: int = 0, fill: int = 0x55, **kw: object
) -> bytes:
    """A 20 ms packet of ``fill`` bytes; sequence number and timestamp taken modulo."""
    return RtpPacket(
        payload_type=pt,
        sequence_number=seq & 0xFFFF,
        timestamp=ts & 0xFFFFFFFF,
        ssrc=ssrc,
        payload=bytes([fill]) * 160,
        **kw,  # type: ignore[arg-type]
    ).serialize()
