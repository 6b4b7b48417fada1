"""The pure-Python twin of ``sipspeak/media/_rtpfast.c``.

Same types, same attributes, same arithmetic: the engine runs on it where the C
module was not built (no compiler at install time), and the tests check the
two against each other.  :meth:`Port.drain` here relays nothing itself: every
datagram goes to the slow path, the endpoint's ``datagram_received``, which
does in Python what the C loop does for plain audio packets.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from sipspeak.media.rtp import Codec

__all__ = ["TAP_RECORD", "Port", "ReceiverCore", "RewriterCore", "TapBuffer"]

#: RFC 3550 §A.1: sequence jumps beyond these are treated as a restart / misorder.
MAX_DROPOUT = 3000
MAX_MISORDER = 100
SEQ_MOD = 1 << 16
_BATCH = 32 * 16  # datagrams read per drain() call, as the C loop's rounds x batch
_BUF_SIZE = 2048
#: A TapBuffer segment's header: first timestamp, payload length, codec (0 PCMU,
#: 1 PCMA), arrival of its first packet (monotonic seconds); native byte order, as
#: the C module writes it.
TAP_RECORD = struct.Struct("=IIBxxxd")
_LENGTH = struct.Struct("=I")


class ReceiverCore:
    """Sequence tracking and interarrival jitter of one source (RFC 3550 A.1, A.8)."""

    __slots__ = (
        "bad_seq",
        "base_seq",
        "clock_rate",
        "cycles",
        "expected_prior",
        "jitter",
        "max_seq",
        "probation",
        "received",
        "received_prior",
        "ssrc",
        "transit",
    )

    def __init__(self, *, clock_rate: int = 8000) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive, got {clock_rate}")
        self.clock_rate = clock_rate
        self.ssrc: int | None = None
        self.probation = 0
        self._init_seq(0)

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0
        self.transit: float | None = None
        self.jitter = 0.0  # in timestamp units, the float form of A.8's 1/16 filter

    def update(self, ssrc: int, seq: int, timestamp: int, now: float) -> None:
        """Account for one received packet (A.1 ``update_seq`` + A.8 jitter)."""
        max_seq = self.max_seq
        udelta = (seq - max_seq) & 0xFFFF
        if ssrc != self.ssrc:
            # A new source (the far end switched streams): start over (§8.2).
            self.ssrc = ssrc
            self._init_seq(seq)
        elif udelta < MAX_DROPOUT:
            if seq < max_seq:
                self.cycles += SEQ_MOD  # in order, but wrapped around
            self.max_seq = seq
        elif udelta <= SEQ_MOD - MAX_MISORDER:
            # A very large jump: believe it only if the next packet follows it (A.1).
            if seq == self.bad_seq:
                self._init_seq(seq)
            else:
                self.bad_seq = (seq + 1) & 0xFFFF
                return
        # else: duplicate or reordered packet, counted as received below.
        self.received += 1
        # A.8: D(i-1,i) = (Rj - Ri) - (Sj - Si), J += (|D| - J) / 16.
        transit = now * self.clock_rate - timestamp
        last = self.transit
        self.transit = transit
        if last is not None:
            d = transit - last
            if d < 0:
                d = -d
            # A jump of more than 10 s is a new timeline, not network jitter.
            if d < self.clock_rate * 10:
                self.jitter += (d - self.jitter) * 0.0625


class RewriterCore:
    """One bridge direction's stream identity (the state ``StreamRewriter`` works on)."""

    __slots__ = (
        "dst_pt",
        "in_ssrc",
        "last_seq",
        "last_time",
        "last_ts",
        "native_clock",
        "out_codec",
        "out_ssrc",
        "seq_offset",
        "src_pt",
        "switches",
        "table",
        "tap",
        "target_port",
        "ts_offset",
        "wire_ssrc",
    )

    def __init__(self) -> None:
        self.out_ssrc = 0
        self.in_ssrc = -1
        self.last_seq = 0
        self.last_ts = 0
        self.last_time: float | None = None
        self.seq_offset = 0
        self.ts_offset = 0
        self.wire_ssrc = 0
        self.src_pt = 0
        self.dst_pt = 0
        self.switches = 0
        self.native_clock = False
        self.table: bytes | None = None
        self.tap: Callable[[Codec, int, bytes], None] | None = None
        self.out_codec: Codec = "PCMU"
        self.target_port: Port | None = None


class Port:
    """An endpoint's RTP socket: latched source, destination and counters."""

    __slots__ = (
        "_dest",
        "_sock",
        "dropped_foreign",
        "dropped_malformed",
        "dtmf_pt",
        "last_sent_timestamp",
        "octets_sent",
        "packets_sent",
        "rewriter",
        "rx_count",
        "send_errors",
        "slow",
        "stats",
    )

    def __init__(
        self,
        sock: socket.socket,
        stats: ReceiverCore,
        slow: Callable[[bytes, Any], None],
    ) -> None:
        self._sock: socket.socket | None = sock
        self.stats = stats
        self.slow = slow
        self.rewriter: RewriterCore | None = None
        self.dtmf_pt: int | None = None
        self._dest: Any = None
        self.rx_count = 0
        self.packets_sent = 0
        self.octets_sent = 0
        self.last_sent_timestamp = 0
        self.dropped_foreign = 0
        self.dropped_malformed = 0
        self.send_errors = 0

    def set_latched(self, addr: Any) -> None:
        """The C loop filters by it; here the slow path does (nothing to keep)."""

    def set_dest(self, addr: Any) -> None:
        self._dest = addr

    def send(self, data: bytes | bytearray) -> bool:
        if self._dest is None or self._sock is None:
            return False
        try:
            self._sock.sendto(data, self._dest)
        except OSError:
            self.send_errors += 1
            return False
        return True

    def drain(self) -> None:
        sock = self._sock
        for _ in range(_BATCH):
            if sock is None:
                return
            try:
                data, addr = sock.recvfrom(_BUF_SIZE + 1)
            except OSError:
                return  # drained (EAGAIN), or an ICMP report on the socket
            if len(data) > _BUF_SIZE:
                self.dropped_malformed += 1  # no RTP audio packet is this large
            else:
                self.slow(data, addr)
            sock = self._sock

    def detach(self) -> None:
        self._sock = None
        self._dest = None
        self.rewriter = None


class TapBuffer:
    """A bridge tap that keeps audio as contiguous segments, taken in bulk with :meth:`take`.

    A segment is a :data:`TAP_RECORD` header (first timestamp, length, codec,
    arrival of its first packet) and the payload bytes.  A packet that
    continues the last segment (same codec, timestamp = its start + its length:
    G.711 is one byte per sample) is appended to it, up to ``segment`` bytes;
    any other starts a new one.  Past ``limit`` bytes nothing more is kept and
    :attr:`dropped` counts it.
    """

    __slots__ = ("_clock", "_data", "_last", "dropped", "limit", "segment")

    def __init__(
        self,
        *,
        limit: int = 1 << 20,
        segment: int = 4000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` stamps arrivals (tests; the C type always uses CLOCK_MONOTONIC)."""
        if segment < 1 or limit < TAP_RECORD.size + max(_BUF_SIZE, segment):
            raise ValueError(f"limit {limit} / segment {segment} out of range")
        self._clock = clock
        self._data = bytearray()
        self._last = -1
        self.limit = limit
        self.segment = segment
        self.dropped = 0

    def __call__(self, codec: Codec, timestamp: int, payload: bytes) -> None:
        n = len(payload)
        code = 1 if codec == "PCMA" else 0
        timestamp &= 0xFFFFFFFF
        data = self._data
        if self._last >= 0:
            start, length, last_code, _ = TAP_RECORD.unpack_from(data, self._last)
            if (
                last_code == code
                and (start + length) & 0xFFFFFFFF == timestamp
                and length + n <= self.segment
                and len(data) + n <= self.limit
            ):
                data += payload
                _LENGTH.pack_into(data, self._last + 4, length + n)
                return
        if len(data) + TAP_RECORD.size + n > self.limit:
            self.dropped += 1
            return
        self._last = len(data)
        data += TAP_RECORD.pack(timestamp, n, code, self._clock())
        data += payload

    @property
    def pending(self) -> int:
        return len(self._data)

    def take(self) -> bytes:
        data = bytes(self._data)
        self._data.clear()
        self._last = -1
        return data
