"""RFC 4733 telephone-events: one digit per event, however the packets arrive."""

from __future__ import annotations

import random

import pytest

from sipspeak.media.dtmf import (
    DtmfDigit,
    DtmfReceiver,
    TelephoneEvent,
    telephone_event_packets,
)
from sipspeak.media.rtp import RtpPacket


def train(
    digit: str, ts: int, seq: int = 100, duration_ms: int = 100
) -> list[RtpPacket]:
    return [
        p
        for _, p in telephone_event_packets(
            digit,
            payload_type=101,
            ssrc=5,
            first_sequence=seq,
            timestamp=ts,
            duration_ms=duration_ms,
        )
    ]


def test_sender_packet_train_follows_rfc4733() -> None:
    timed = telephone_event_packets(
        "7",
        payload_type=101,
        ssrc=5,
        first_sequence=65534,
        timestamp=8000,
        duration_ms=100,
    )
    offsets = [o for o, _ in timed]
    packets = [p for _, p in timed]
    events = [TelephoneEvent.parse(p.payload) for p in packets]
    assert offsets == sorted(offsets) and offsets[0] == 0
    assert [p.marker for p in packets] == [True] + [False] * (len(packets) - 1)
    assert {p.timestamp for p in packets} == {8000}
    assert [p.sequence_number for p in packets][:3] == [65534, 65535, 0]
    assert [e.end for e in events][-3:] == [True, True, True]
    assert not any(e.end for e in events[:-3])
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert {e.event for e in events} == {7}


def test_digit_surfaces_once_despite_end_retransmissions() -> None:
    rx = DtmfReceiver(payload_type=101)
    out: list[DtmfDigit] = []
    for p in train("5", 1000) + train("5", 1000):  # the whole train duplicated too
        out += rx.feed(p)
    assert out == [DtmfDigit(digit="5", duration_ms=100, timestamp=1000, ended=True)]


def test_sequence_of_digits_with_loss_and_reordering() -> None:
    rng = random.Random(7)
    packets: list[RtpPacket] = []
    digits = "0123456789*#ABCD"
    for i, d in enumerate(digits):
        packets += train(d, 8000 + i * 2000, seq=i * 10)
    # Lose 20 % of the packets but always keep at least one per event,
    # and swap neighbours within each event.
    kept = []
    for p in packets:
        if rng.random() > 0.2 or not any(k.timestamp == p.timestamp for k in kept):
            kept.append(p)
    for i in range(0, len(kept) - 1, 2):
        if kept[i].timestamp == kept[i + 1].timestamp:
            kept[i], kept[i + 1] = kept[i + 1], kept[i]
    rx = DtmfReceiver(payload_type=101)
    out = [d for p in kept for d in rx.feed(p)] + rx.flush()
    assert "".join(d.digit for d in out) == digits


def test_lost_end_packets_flush_on_next_event_and_on_flush() -> None:
    rx = DtmfReceiver(payload_type=101)
    first = [p for p in train("1", 0) if not TelephoneEvent.parse(p.payload).end]
    out = [d for p in first for d in rx.feed(p)]
    assert out == []
    out = [d for p in train("2", 4000) for d in rx.feed(p)]
    assert [(d.digit, d.ended) for d in out] == [("1", False), ("2", True)]
    assert out[0].duration_ms == 80  # the longest duration seen before the loss
    third = [p for p in train("3", 9000) if not TelephoneEvent.parse(p.payload).end]
    assert [d for p in third for d in rx.feed(p)] == []
    assert [(d.digit, d.ended) for d in rx.flush()] == [("3", False)]
    assert rx.flush() == []


def test_malformed_and_non_digit_events_are_dropped() -> None:
    rx = DtmfReceiver(payload_type=101)
    short = RtpPacket(
        payload_type=101, sequence_number=1, timestamp=1, ssrc=1, payload=b"\x01"
    )
    flash = RtpPacket(
        payload_type=101,
        sequence_number=2,
        timestamp=2,
        ssrc=1,
        payload=TelephoneEvent(event=16, end=True, volume=0, duration=800).serialize(),
    )
    assert rx.feed(short) == [] and rx.feed(flash) == []


def test_bad_digit_rejected() -> None:
    with pytest.raises(ValueError):
        telephone_event_packets(
            "x", payload_type=101, ssrc=1, first_sequence=0, timestamp=0
        )
