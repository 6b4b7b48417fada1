"""Per-stream RTCP state: reception statistics, sender counters, report timing.

Sans-IO with time as a parameter (RFC 3550 §6.2-§6.4, Appendix A.1, A.3, A.7,
A.8).  The asyncio endpoint feeds it every RTP packet it sends or receives,
arms one timer at :meth:`RtcpSession.get_timer` and calls
:meth:`RtcpSession.handle_timer` when it fires; the session answers with the
compound datagram (SR or RR + SDES CNAME) to send.

``now`` is a monotonic time in seconds; ``wallclock`` (Unix seconds) is only
used for the NTP timestamp of sender reports.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sipspeak.media.fastpath import ReceiverCore
from sipspeak.media.rtcp import (
    ReportBlock,
    RtcpBye,
    RtcpPacket,
    RtcpReceiverReport,
    RtcpSdes,
    RtcpSenderReport,
    SdesChunk,
    ntp_from_unix,
    parse_compound,
    serialize_compound,
)

__all__ = ["ReceiverStatistics", "RtcpSession", "RtcpStats", "rtcp_interval"]

#: §6.2: minimum interval 5 s (half of it before the first report, §6.3.1 step 3).
RTCP_MIN_TIME = 5.0
#: §6.3.1: e - 3/2, compensating the timer reconsideration's bias toward shorter intervals.
COMPENSATION = 2.71828 - 1.5


def rtcp_interval(
    *,
    members: int,
    senders: int,
    rtcp_bw: float,
    we_sent: bool,
    avg_rtcp_size: float,
    initial: bool,
    rng: random.Random,
) -> float:
    """Randomised RTCP transmission interval in seconds (RFC 3550 §6.3.1, A.7).

    ``rtcp_bw`` is the RTCP bandwidth in octets per second (5 % of the session
    bandwidth).  Senders share a quarter of it when they are fewer than 25 %.
    """
    t_min = RTCP_MIN_TIME / 2 if initial else RTCP_MIN_TIME
    n = members
    if 0 < senders <= members * 0.25:
        if we_sent:
            rtcp_bw *= 0.25
            n = senders
        else:
            rtcp_bw *= 0.75
            n = members - senders
    t = max(avg_rtcp_size * n / rtcp_bw, t_min)
    # "randomized to a value between 0.5 and 1.5 times the calculated interval"
    return t * (rng.random() + 0.5) / COMPENSATION


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpStats:
    """Snapshot of one leg's reception quality (RFC 3550 §6.4.1)."""

    received: int
    expected: int
    cumulative_lost: int
    fraction_lost: float  # 0..1 over the last report interval
    jitter_ms: float  # interarrival jitter (§A.8) in milliseconds
    remote_ssrc: int | None


class ReceiverStatistics(ReceiverCore):
    """Sequence tracking, loss and interarrival jitter of one source (RFC 3550 A.1, A.3, A.8).

    The state and the per-packet ``update(ssrc, seq, timestamp, now)`` live in
    :class:`~sipspeak.media.fastpath.ReceiverCore` (the C relay loop updates
    the same object for the packets it relays); the reports are made here.
    """

    __slots__ = ()

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return 0 if self.ssrc is None else self.extended_max - self.base_seq + 1

    @property
    def cumulative_lost(self) -> int:
        return self.expected - self.received

    def report_block(self, *, lsr: int, dlsr: int) -> ReportBlock | None:
        """Reception report for the next RR/SR, advancing the interval counters (A.3)."""
        if self.ssrc is None:
            return None
        expected = self.expected
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = expected
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = (lost_interval << 8) // expected_interval
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=min(fraction, 255),
            packets_lost=self.cumulative_lost,
            highest_sequence=self.extended_max & 0xFFFFFFFF,
            jitter=int(self.jitter),
            lsr=lsr,
            dlsr=dlsr,
        )

    def stats(self) -> RtcpStats:
        expected = self.expected
        interval = expected - self.expected_prior
        lost_interval = interval - (self.received - self.received_prior)
        return RtcpStats(
            received=self.received,
            expected=expected,
            cumulative_lost=self.cumulative_lost,
            fraction_lost=max(0.0, lost_interval / interval) if interval > 0 else 0.0,
            jitter_ms=self.jitter * 1000.0 / self.clock_rate,
            remote_ssrc=self.ssrc,
        )


class RtcpSession:
    """RTCP for one RTP stream pair (ours out, one remote source in)."""

    def __init__(
        self,
        *,
        ssrc: int,
        cname: str,
        now: float,
        session_bandwidth: float = 80_000.0,
        clock_rate: int = 8000,
        rng: random.Random | None = None,
    ) -> None:
        self.ssrc = ssrc
        self.cname = cname.encode()
        self.receiver = ReceiverStatistics(clock_rate=clock_rate)
        # Sender counters; the endpoint's send path updates them in place.
        self.packets_sent = 0
        self.octets_sent = 0
        self.last_sent_timestamp = 0
        self._rng = rng or random.Random()
        # §6.2: RTCP gets 5 % of the session bandwidth (bits/s -> octets/s).
        self._rtcp_bw = session_bandwidth * 0.05 / 8
        self._avg_rtcp_size = 128.0  # a first guess; refined with every packet (§6.3.3)
        self._initial = True
        self._last_sr_ntp_middle = 0
        self._last_sr_arrival: float | None = None
        self.remote_bye = False
        self._next = now + self._interval()

    def _interval(self) -> float:
        members = 2
        senders = int(self._we_sent) + int(self.receiver.ssrc is not None)
        return rtcp_interval(
            members=members,
            senders=senders,
            rtcp_bw=self._rtcp_bw,
            we_sent=self._we_sent,
            avg_rtcp_size=self._avg_rtcp_size,
            initial=self._initial,
            rng=self._rng,
        )

    # -- inputs ---------------------------------------------------------------

    def on_rtp_sent(self, *, timestamp: int, payload_size: int) -> None:
        """Count an RTP packet we sent (for the SR sender info, §6.4.1)."""
        self.packets_sent += 1
        self.octets_sent += payload_size
        self.last_sent_timestamp = timestamp

    @property
    def _we_sent(self) -> bool:
        return self.packets_sent > 0

    def on_rtp_received(
        self, *, ssrc: int, seq: int, timestamp: int, now: float
    ) -> None:
        self.receiver.update(ssrc, seq, timestamp, now)

    def on_rtcp_received(self, data: bytes, *, now: float) -> list[RtcpPacket]:
        """Parse a compound datagram (``ValueError`` if malformed) and note SR / BYE."""
        packets = parse_compound(data)
        self._avg_rtcp_size = len(data) / 16 + self._avg_rtcp_size * 15 / 16
        for packet in packets:
            if isinstance(packet, RtcpSenderReport):
                self._last_sr_ntp_middle = (packet.ntp_timestamp >> 16) & 0xFFFFFFFF
                self._last_sr_arrival = now
            elif isinstance(packet, RtcpBye) and self.receiver.ssrc in packet.sources:
                self.remote_bye = True
        return packets

    # -- timer ----------------------------------------------------------------

    def get_timer(self) -> float:
        """Deadline (same clock as ``now``) of the next regular report."""
        return self._next

    def handle_timer(self, *, now: float, wallclock: float) -> bytes | None:
        """Return the compound report to send if the deadline has passed."""
        if now < self._next:
            return None
        data = serialize_compound(self._report(now, wallclock) + [self._sdes()])
        self._avg_rtcp_size = len(data) / 16 + self._avg_rtcp_size * 15 / 16
        self._initial = False
        self._next = now + self._interval()
        return data

    def bye(self, *, now: float, wallclock: float, reason: str = "") -> bytes:
        """Final compound packet: report + SDES + BYE (RFC 3550 §6.6)."""
        packets = self._report(now, wallclock) + [self._sdes()]
        packets.append(RtcpBye(sources=(self.ssrc,), reason=reason.encode()[:255]))
        return serialize_compound(packets)

    # -- building reports ------------------------------------------------------

    def _report(self, now: float, wallclock: float) -> list[RtcpPacket]:
        lsr = 0
        dlsr = 0
        if self._last_sr_arrival is not None:
            lsr = self._last_sr_ntp_middle
            dlsr = int((now - self._last_sr_arrival) * 65536) & 0xFFFFFFFF
        block = self.receiver.report_block(lsr=lsr, dlsr=dlsr)
        blocks = (block,) if block is not None else ()
        if not self._we_sent:
            return [RtcpReceiverReport(ssrc=self.ssrc, reports=blocks)]
        # §6.4.1: the RTP timestamp should match the NTP time of the report; the
        # timestamp of the last packet sent is within one packet time (20 ms) of
        # it, which is all a receiver's lip-sync/RTT use needs for audio.
        return [
            RtcpSenderReport(
                ssrc=self.ssrc,
                ntp_timestamp=ntp_from_unix(wallclock),
                rtp_timestamp=self.last_sent_timestamp & 0xFFFFFFFF,
                packet_count=self.packets_sent,
                octet_count=self.octets_sent,
                reports=blocks,
            )
        ]

    def _sdes(self) -> RtcpSdes:
        return RtcpSdes(chunks=(SdesChunk(ssrc=self.ssrc, items=((1, self.cname),)),))

    def stats(self) -> RtcpStats:
        return self.receiver.stats()
