"""RTCP packets, reception statistics and report timing (RFC 3550 §6, A.1, A.3, A.7, A.8)."""

from __future__ import annotations

import random
import statistics

import pytest

from sipspeak.media.rtcp import (
    ReportBlock,
    RtcpBye,
    RtcpReceiverReport,
    RtcpSdes,
    RtcpSenderReport,
    RtcpUnknown,
    SdesChunk,
    ntp_from_unix,
    parse_compound,
    serialize_compound,
)
from sipspeak.media.rtcpsession import ReceiverStatistics, RtcpSession, rtcp_interval

BLOCK = ReportBlock(
    ssrc=0x11223344,
    fraction_lost=64,
    packets_lost=-3,
    highest_sequence=70000,
    jitter=42,
    lsr=0xAABBCCDD,
    dlsr=65536,
)
COMPOUND = [
    RtcpSenderReport(
        ssrc=1,
        ntp_timestamp=ntp_from_unix(1_700_000_000.5),
        rtp_timestamp=160,
        packet_count=10,
        octet_count=1600,
        reports=(BLOCK,),
    ),
    RtcpSdes(chunks=(SdesChunk(ssrc=1, items=((1, b"call-42@sipspeak"),)),)),
    RtcpBye(sources=(1,), reason=b"hangup"),
]


def test_compound_round_trip() -> None:
    wire = serialize_compound(COMPOUND)
    assert parse_compound(wire) == COMPOUND
    assert serialize_compound(parse_compound(wire)) == wire
    assert len(wire) % 4 == 0


def test_receiver_report_and_unknown_round_trip() -> None:
    packets = [
        RtcpReceiverReport(ssrc=7, reports=(BLOCK, BLOCK)),
        RtcpUnknown(packet_type=205, count=1, body=b"\x00" * 8),
    ]
    assert parse_compound(serialize_compound(packets)) == packets


def test_sdes_cname_of_every_length_round_trips() -> None:
    for n in range(12):
        sdes = RtcpSdes(chunks=(SdesChunk(ssrc=5, items=((1, b"x" * n),)),))
        (back,) = parse_compound(sdes.serialize())
        assert back == sdes
        assert isinstance(back, RtcpSdes) and back.chunks[0].cname == b"x" * n


def test_every_truncated_prefix_of_a_compound_raises() -> None:
    wire = serialize_compound(COMPOUND)
    boundaries = set()
    pos = 0
    for p in COMPOUND:
        pos += len(p.serialize())
        boundaries.add(pos)
    for n in range(len(wire)):
        if n in boundaries:
            # A prefix ending exactly at a packet boundary is a valid shorter compound.
            assert len(parse_compound(wire[:n])) >= 1
            continue
        with pytest.raises(ValueError):
            parse_compound(wire[:n])


def test_bad_version_raises() -> None:
    wire = bytearray(COMPOUND[2].serialize())
    wire[0] = (wire[0] & 0x3F) | 0x40
    with pytest.raises(ValueError, match="version"):
        parse_compound(bytes(wire))


def feed(
    stats: ReceiverStatistics, seqs: list[int], *, delays: list[float] | None = None
) -> None:
    for i, seq in enumerate(seqs):
        delay = delays[i] if delays else 0.0
        # Packet n carries timestamp 160 n and is sent at n * 20 ms.
        n = (seq - seqs[0]) & 0xFFFF
        stats.update(99, seq, (1000 + 160 * n) & 0xFFFFFFFF, 10.0 + n * 0.02 + delay)


def test_loss_counted_across_sequence_wrap() -> None:
    stats = ReceiverStatistics()
    seqs = [(65500 + i) & 0xFFFF for i in range(100) if i % 10 != 3]
    feed(stats, seqs)
    assert stats.expected == 100 - 0  # 65500 .. 65599 (wrapped)
    assert stats.cumulative_lost == 10
    block = stats.report_block(lsr=0, dlsr=0)
    assert block is not None
    assert block.packets_lost == 10
    assert block.fraction_lost == (10 << 8) // 100
    assert block.highest_sequence == 65536 + (65599 - 65536)
    # Nothing new: the next interval reports zero fraction lost, same cumulative loss.
    again = stats.report_block(lsr=0, dlsr=0)
    assert again is not None and again.fraction_lost == 0 and again.packets_lost == 10


def test_duplicates_and_reordering_do_not_count_as_loss() -> None:
    stats = ReceiverStatistics()
    feed(stats, [1, 2, 4, 3, 5, 5, 6])
    assert stats.expected == 6
    assert stats.cumulative_lost == -1  # one duplicate, as RFC 3550 §6.4.1 allows


def test_jitter_zero_for_constant_delay_and_grows_with_variation() -> None:
    steady = ReceiverStatistics()
    feed(steady, list(range(200)), delays=[0.05] * 200)
    assert steady.stats().jitter_ms == pytest.approx(0.0, abs=1e-6)
    shaky = ReceiverStatistics()
    rng = random.Random(1)
    feed(
        shaky, list(range(2000)), delays=[rng.choice([0.0, 0.010]) for _ in range(2000)]
    )
    # Alternating 0/10 ms delays: E|D| = 5 ms, which the 1/16 filter converges to.
    assert 3.5 < shaky.stats().jitter_ms < 6.5


def test_new_source_restarts_statistics() -> None:
    stats = ReceiverStatistics()
    feed(stats, list(range(50)))
    stats.update(1234, 40000, 5, 20.0)
    assert stats.ssrc == 1234 and stats.expected == 1 and stats.cumulative_lost == 0


def test_interval_is_randomised_around_five_seconds() -> None:
    rng = random.Random(3)
    values = [
        rtcp_interval(
            members=2,
            senders=2,
            rtcp_bw=500.0,
            we_sent=True,
            avg_rtcp_size=100.0,
            initial=False,
            rng=rng,
        )
        for _ in range(2000)
    ]
    # 5 s x U(0.5, 1.5) / (e - 3/2)  ->  [2.05, 6.16] s, mean 4.10 s.
    assert min(values) >= 5 * 0.5 / 1.21828 - 1e-9
    assert max(values) <= 5 * 1.5 / 1.21828 + 1e-9
    assert statistics.mean(values) == pytest.approx(5 / 1.21828, rel=0.05)
    assert len({round(v, 6) for v in values}) > 1000


def test_session_sends_rr_then_sr_with_cname_and_bye() -> None:
    sess = RtcpSession(ssrc=0xABC, cname="leg@host", now=0.0, rng=random.Random(0))
    for n in range(100):
        sess.on_rtp_received(ssrc=77, seq=n, timestamp=160 * n, now=n * 0.02)
    assert sess.handle_timer(now=0.1, wallclock=1e9) is None  # not due yet
    first = sess.handle_timer(now=sess.get_timer(), wallclock=1e9)
    assert first is not None
    rr, sdes = parse_compound(first)
    assert isinstance(rr, RtcpReceiverReport) and rr.reports[0].ssrc == 77
    assert isinstance(sdes, RtcpSdes) and sdes.chunks[0].cname == b"leg@host"
    for n in range(50):
        sess.on_rtp_sent(timestamp=160 * n, payload_size=160)
    second = sess.handle_timer(now=sess.get_timer(), wallclock=1e9 + 5)
    assert second is not None
    sr = parse_compound(second)[0]
    assert isinstance(sr, RtcpSenderReport)
    assert (sr.packet_count, sr.octet_count) == (50, 8000)
    bye = parse_compound(sess.bye(now=20.0, wallclock=1e9 + 20, reason="done"))
    assert isinstance(bye[-1], RtcpBye) and bye[-1].sources == (0xABC,)


def test_session_records_remote_sr_for_lsr_and_remote_bye() -> None:
    sess = RtcpSession(ssrc=1, cname="a", now=0.0, rng=random.Random(0))
    sess.on_rtp_received(ssrc=2, seq=1, timestamp=0, now=0.0)
    remote = RtcpSenderReport(
        ssrc=2,
        ntp_timestamp=0x0001_2345_6789_0000,
        rtp_timestamp=0,
        packet_count=1,
        octet_count=160,
    )
    sess.on_rtcp_received(remote.serialize(), now=1.0)
    due = sess.get_timer()
    out = sess.handle_timer(now=due, wallclock=1e9)
    assert out is not None
    rr = parse_compound(out)[0]
    assert isinstance(rr, RtcpReceiverReport)
    assert rr.reports[0].lsr == 0x23456789
    assert rr.reports[0].dlsr == int((due - 1.0) * 65536)
    sess.on_rtcp_received(RtcpBye(sources=(2,)).serialize(), now=2.0)
    assert sess.remote_bye
