"""RTP packet parsing/serialisation and wrap-around arithmetic (RFC 3550 §5.1, §A.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipspeak.media.rtp import (
    RtpPacket,
    is_rtcp,
    seq_add,
    seq_diff,
    seq_newer,
    ts_add,
    ts_diff,
    ts_newer,
)

# A PCMU packet as a phone sends it: V=2, M=1, PT=0, seq 0x1234, ts 0xdeadbeef.
SIMPLE = bytes.fromhex("80801234deadbeef01020304") + bytes(range(160))
# CC=2, X=1, P=1: two CSRCs, a one-word extension, 3 octets of padding.
FULL = (
    bytes.fromhex("b208fffe0000000100000002")
    + bytes.fromhex("0000000a0000000b")
    + bytes.fromhex("bede0001aabbccdd")
    + b"\xd5" * 160
    + b"\x00\x00\x03"
)


def test_parse_simple_packet() -> None:
    p = RtpPacket.parse(SIMPLE)
    assert (p.payload_type, p.marker, p.sequence_number) == (0, True, 0x1234)
    assert (p.timestamp, p.ssrc) == (0xDEADBEEF, 0x01020304)
    assert p.payload == bytes(range(160))
    assert p.serialize() == SIMPLE


def test_parse_packet_with_csrc_extension_padding() -> None:
    p = RtpPacket.parse(FULL)
    assert p.payload_type == 8 and not p.marker
    assert p.csrc == (10, 11)
    assert p.extension == (0xBEDE, bytes.fromhex("aabbccdd"))
    assert p.padding == 3
    assert p.payload == b"\xd5" * 160
    assert p.serialize() == FULL


@pytest.mark.parametrize("packet", [SIMPLE, FULL], ids=["simple", "full"])
def test_every_truncated_prefix_is_rejected_or_shorter(packet: bytes) -> None:
    for n in range(len(packet)):
        prefix = packet[:n]
        try:
            p = RtpPacket.parse(prefix)
        except ValueError:
            continue
        # A prefix that still parses must round-trip exactly.
        assert p.serialize() == prefix
    for n in range(12):
        with pytest.raises(ValueError):
            RtpPacket.parse(packet[:n])


def test_full_packet_prefixes_cut_into_header_fields_raise() -> None:
    # Every cut inside the CSRC list or the extension must be an error.
    for n in range(12, 12 + 8 + 8):
        with pytest.raises(ValueError):
            RtpPacket.parse(FULL[:n])


def test_bad_version_and_bad_padding_raise() -> None:
    with pytest.raises(ValueError, match="version"):
        RtpPacket.parse(b"\x40" + SIMPLE[1:])
    bad_pad = bytes([0xA0]) + SIMPLE[1:12] + b"\x00\x00"
    with pytest.raises(ValueError, match="padding"):
        RtpPacket.parse(bad_pad)
    too_long_pad = bytes([0xA0]) + SIMPLE[1:12] + b"\x01\x09"
    with pytest.raises(ValueError, match="padding"):
        RtpPacket.parse(too_long_pad)


@given(
    pt=st.integers(0, 127),
    seq=st.integers(0, 0xFFFF),
    ts=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    marker=st.booleans(),
    payload=st.binary(max_size=300),
    csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
    ext=st.one_of(st.none(), st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40))),
    padding=st.integers(0, 255),
)
def test_serialize_parse_round_trip(
    pt: int,
    seq: int,
    ts: int,
    ssrc: int,
    marker: bool,
    payload: bytes,
    csrc: list[int],
    ext: tuple[int, bytes] | None,
    padding: int,
) -> None:
    if ext is not None:
        ext = (ext[0], ext[1][: len(ext[1]) // 4 * 4])
    p = RtpPacket(
        payload_type=pt,
        sequence_number=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=payload,
        marker=marker,
        csrc=tuple(csrc),
        extension=ext,
        padding=padding,
    )
    wire = p.serialize()
    assert RtpPacket.parse(wire) == p
    assert RtpPacket.parse(wire).serialize() == wire


@given(st.binary(max_size=64))
def test_random_bytes_parse_or_raise_value_error(data: bytes) -> None:
    try:
        p = RtpPacket.parse(data)
    except ValueError:
        return
    assert p.serialize() == data


def test_sequence_arithmetic_wraps() -> None:
    assert seq_add(65535, 1) == 0
    assert seq_add(0, -1) == 65535
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_diff(100, 100) == 0
    assert seq_newer(2, 65530)
    assert not seq_newer(65530, 2)


def test_timestamp_arithmetic_wraps() -> None:
    assert ts_add(0xFFFFFF60, 160) == 0
    assert ts_diff(0, 0xFFFFFF60) == 160
    assert ts_diff(0xFFFFFF60, 0) == -160
    assert ts_newer(80, 0xFFFFFFF0)
    assert not ts_newer(0xFFFFFFF0, 80)


def test_is_rtcp_tells_rtcp_from_rtp() -> None:
    assert is_rtcp(bytes([0x80, 200]))  # SR
    assert is_rtcp(bytes([0x81, 203]))  # BYE
    assert not is_rtcp(SIMPLE)
    assert not is_rtcp(b"\x80")
