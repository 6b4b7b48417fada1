"""RFC 4733 telephone-events (DTMF digits in RTP): receive and send.

Sans-IO.  An event is one digit: every packet of it carries the same RTP
timestamp (the event start, §2.3.1), the first one the marker bit (§2.5.1.1),
later ones a growing duration, and the end is sent three times with the E bit
(§2.5.1.4).  :class:`DtmfReceiver` turns that stream into exactly one
:class:`DtmfDigit` per event, however many packets were duplicated, reordered
or lost; :func:`telephone_event_packets` produces the sender's packet train.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import Final

from sipspeak.media.rtp import RtpPacket, seq_add, ts_diff

__all__ = [
    "DTMF_EVENTS",
    "DtmfDigit",
    "DtmfReceiver",
    "TelephoneEvent",
    "telephone_event_packets",
]

log = logging.getLogger(__name__)

#: RFC 4733 §3.2, Table 7: event codes 0-15 of the DTMF named events.
DTMF_EVENTS: Final = "0123456789*#ABCD"
_PAYLOAD = struct.Struct("!BBH")


@dataclass(frozen=True, slots=True, kw_only=True)
class TelephoneEvent:
    """The 4-octet payload of RFC 4733 §2.3."""

    event: int
    end: bool
    volume: int  # 0..63, power level in -dBm0
    duration: int  # timestamp units since the event start

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < 4:
            raise ValueError(f"telephone-event payload too short: {len(payload)} bytes")
        event, flags, duration = _PAYLOAD.unpack_from(payload)
        return cls(
            event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration
        )

    def serialize(self) -> bytes:
        if not 0 <= self.volume <= 63:
            raise ValueError(f"volume must be 0..63, got {self.volume}")
        return _PAYLOAD.pack(
            self.event,
            (0x80 if self.end else 0) | self.volume,
            min(self.duration, 0xFFFF),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfDigit:
    """One key press received from the far end."""

    digit: str  # "0"-"9", "*", "#", "A"-"D"
    duration_ms: int
    timestamp: int  # RTP timestamp of the event start
    ended: bool  # False when the end packets were all lost (flushed by the next event)


class DtmfReceiver:
    """Collapses the packets of RFC 4733 events into one :class:`DtmfDigit` each."""

    def __init__(self, *, payload_type: int, clock_rate: int = 8000) -> None:
        self.payload_type = payload_type
        self._clock_rate = clock_rate
        self._current: int | None = None  # timestamp of the event in progress
        self._current_event = 0
        self._current_duration = 0
        self._reported: int | None = None  # timestamp of the last event surfaced

    def _digit(
        self, timestamp: int, event: int, duration: int, ended: bool
    ) -> DtmfDigit:
        return DtmfDigit(
            digit=DTMF_EVENTS[event],
            duration_ms=duration * 1000 // self._clock_rate,
            timestamp=timestamp,
            ended=ended,
        )

    def feed(self, packet: RtpPacket) -> list[DtmfDigit]:
        """Process one packet of the telephone-event payload type.

        Returns the digits completed by it (usually none or one; two when the
        end of one event was lost and the next one starts).  Malformed payloads
        are logged and dropped.
        """
        try:
            te = TelephoneEvent.parse(packet.payload)
        except ValueError as exc:
            log.warning("dropping telephone-event packet: %s", exc)
            return []
        if te.event >= len(DTMF_EVENTS):
            # Other named events (flash, tones of RFC 4734) are not digits.
            return []
        ts = packet.timestamp
        if self._reported is not None and ts_diff(ts, self._reported) <= 0:
            return []  # an old event already surfaced: end retransmission or late packet
        out: list[DtmfDigit] = []
        if self._current is not None and ts != self._current:
            if ts_diff(ts, self._current) < 0:
                return []  # late packet of an even older event
            # A new event while the previous one never ended: its end packets were lost.
            out.append(
                self._digit(
                    self._current, self._current_event, self._current_duration, False
                )
            )
            self._reported = self._current
            self._current = None
        if te.end:
            out.append(self._digit(ts, te.event, te.duration, True))
            self._reported = ts
            self._current = None
        else:
            if self._current is None or te.duration > self._current_duration:
                self._current_duration = te.duration
            self._current = ts
            self._current_event = te.event
        return out

    def flush(self) -> list[DtmfDigit]:
        """Surface an event whose end never arrived (call this when the stream stops)."""
        if self._current is None:
            return []
        digit = self._digit(
            self._current, self._current_event, self._current_duration, False
        )
        self._reported = self._current
        self._current = None
        return [digit]


def telephone_event_packets(
    digit: str,
    *,
    payload_type: int,
    ssrc: int,
    first_sequence: int,
    timestamp: int,
    duration_ms: int = 100,
    volume: int = 10,
    ptime_ms: int = 20,
    clock_rate: int = 8000,
) -> list[tuple[int, RtpPacket]]:
    """Packets for one key press, each with its send offset in ms from the start.

    §2.5.1: the first packet has the marker bit, every packet the event's start
    timestamp and the duration so far; an update goes out every ``ptime_ms``;
    the final duration is sent three times with the E bit (§2.5.1.4).  The
    caller sends each packet at ``start + offset`` and continues its audio
    sequence numbers at ``first_sequence + len(packets)``.
    """
    if len(digit) != 1 or digit not in DTMF_EVENTS:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    if duration_ms < ptime_ms:
        raise ValueError(
            f"duration {duration_ms} ms shorter than one packet ({ptime_ms} ms)"
        )
    event = DTMF_EVENTS.index(digit)
    step = ptime_ms * clock_rate // 1000
    total = duration_ms * clock_rate // 1000
    out: list[tuple[int, RtpPacket]] = []
    seq = first_sequence

    def add(offset_ms: int, duration: int, end: bool, marker: bool) -> None:
        nonlocal seq
        payload = TelephoneEvent(event=event, end=end, volume=volume, duration=duration)
        out.append(
            (
                offset_ms,
                RtpPacket(
                    payload_type=payload_type,
                    sequence_number=seq,
                    timestamp=timestamp,
                    ssrc=ssrc,
                    payload=payload.serialize(),
                    marker=marker,
                ),
            )
        )
        seq = seq_add(seq, 1)

    duration = step
    offset = 0
    while duration < total:
        add(offset, duration, False, offset == 0)
        duration += step
        offset += ptime_ms
    for i in range(3):
        add(offset + i * ptime_ms, total, True, offset == 0 and i == 0)
    return out
