"""The two-leg RTP bridge: relays packets between a customer and an operator leg.

No buffering, no decoding on the relay path (RFC 3550 §7 describes what a
translator may rewrite; this is one).  Per direction the bridge keeps one
outgoing stream identity, so each far end sees one continuous RTP stream even
when the leg behind the bridge changes (hold music -> operator, a transfer):

* SSRC: fixed per direction for the life of the bridge;
* sequence numbers continue at ``last + 1`` after a switch (RFC 3550 §5.1);
* timestamps continue at ``last + elapsed wall time`` in samples (at least
  one 20 ms frame), so the far
  end's jitter estimate and playout stay sane, and the first packet after a
  switch carries the marker bit (RFC 3551 §4.1, start of a talkspurt).

Payloads are transcoded (one ``bytes.translate``) only when the two legs
negotiated different G.711 laws; RFC 4733 telephone-events are passed through
with the payload type the receiving leg negotiated (dropped when it has none).

Taps (recorder, AMD) see the audio of one direction after rewriting, as
``tap(codec, timestamp, payload)``, and nothing at all is done for a direction
without a tap.

Between two RTP endpoints (:class:`~sipspeak.media.leg.RawRtpLeg`, the
common case) no :class:`RtpPacket` is built: the endpoint hands over the
datagram with its header fields already unpacked, and the rewriter copies it
once into a ``bytearray``, packs the new second octet, sequence number,
timestamp and SSRC into octets 1-11 with one ``pack_into`` and sends that.
Only a transcoded or tapped packet has its payload sliced out.
"""

from __future__ import annotations

import logging
import random
import struct
import time
from collections.abc import Callable
from typing import Final, Literal

from sipspeak.media.dtmf import telephone_event_packets
from sipspeak.media.fastpath import RewriterCore
from sipspeak.media.g711 import ALAW_TO_ULAW, ULAW_TO_ALAW
from sipspeak.media.leg import MediaLeg, NativeRtpLeg, RawRtpLeg
from sipspeak.media.rtp import PAYLOAD_TYPES, Codec, RtpPacket

__all__ = ["Bridge", "Side", "StreamRewriter", "Tap"]

Side = Literal["customer", "operator"]
#: ``tap(codec, rtp_timestamp, payload)``: audio of one direction, payload not copied.
Tap = Callable[[Codec, int, bytes], None]

log = logging.getLogger(__name__)

_NEW_SOURCE = -1  # in_ssrc value that forces a resynchronisation
#: Octets 1-11 of the fixed RTP header: M/PT, sequence number, timestamp, SSRC.
_PACK_AFTER_FIRST: Final = struct.Struct("!BHII").pack_into
#: The whole plain 12-byte header (first octet 0x80: version 2, nothing optional).
_PACK_HEADER: Final = struct.Struct("!BBHII").pack


class StreamRewriter(RewriterCore):
    """One direction of the bridge: source leg -> target leg.

    Its bound :meth:`receive` is installed as the source leg's receiver, so
    the per-packet path is a single Python call deep.  Between two RTP
    endpoints with the C relay loop (:mod:`sipspeak.media.fastpath`), plain
    audio packets do not reach Python at all: the loop applies the same
    rewriting to this object's state (``target_port`` set by :meth:`connect`).
    """

    # The stream state (SSRC, offsets, last sequence number / timestamp / time,
    # payload types, table, tap, target port) lives in RewriterCore, which the
    # C relay loop reads and updates for the packets it relays itself.
    __slots__ = ("_clock", "dst_dtmf", "send_datagram", "src_dtmf", "target")

    def __init__(self, *, clock: Callable[[], float], rng: random.Random) -> None:
        super().__init__()
        self._clock = clock
        # The relay loop stamps packets with CLOCK_MONOTONIC: only under that clock.
        self.native_clock = clock is time.monotonic
        self.out_ssrc = rng.getrandbits(32)
        self.in_ssrc = _NEW_SOURCE
        # A random first sequence number and timestamp (RFC 3550 §5.1).
        self.last_seq = rng.getrandbits(16)
        self.last_ts = rng.getrandbits(32)
        self.last_time = None
        self.seq_offset = 0
        self.ts_offset = 0
        self.target: MediaLeg | None = None
        # Set when the target is an RTP socket (RawRtpLeg): the datagram path.
        self.send_datagram: Callable[[bytes | bytearray, int, int], None] | None = None
        self.wire_ssrc = self.out_ssrc
        self.src_pt = 0
        self.dst_pt = 0
        self.src_dtmf: int | None = None
        self.dst_dtmf: int | None = None
        self.out_codec = "PCMU"
        self.table = None
        self.tap = None
        self.switches = 0

    def connect(self, source: MediaLeg, target: MediaLeg) -> None:
        """(Re)configure for a pair of legs; the next packet starts a new segment."""
        self.target = target
        self.target_port = target.native_port if isinstance(target, NativeRtpLeg) else None
        if isinstance(target, RawRtpLeg):
            self.send_datagram = target.send_datagram
            # The endpoint would put its own SSRC on a packet anyway (its RTCP
            # sender reports advertise it): write that one straight away.
            self.wire_ssrc = target.ssrc
        else:
            self.send_datagram = None
            self.wire_ssrc = self.out_ssrc
        self.src_pt = PAYLOAD_TYPES[source.codec]
        self.dst_pt = PAYLOAD_TYPES[target.codec]
        self.src_dtmf = source.dtmf_payload_type
        self.dst_dtmf = target.dtmf_payload_type
        self.out_codec = target.codec
        if source.codec == target.codec:
            self.table = None
        else:
            self.table = ULAW_TO_ALAW if source.codec == "PCMU" else ALAW_TO_ULAW
        self.in_ssrc = _NEW_SOURCE

    def _resync(self, packet: RtpPacket) -> None:
        """A new source: map its numbering onto the continuation of ours."""
        self._resync_to(packet.sequence_number, packet.timestamp, packet.ssrc)
        packet.marker = True

    def _resync_to(self, sequence_number: int, timestamp: int, ssrc: int) -> None:
        now = self._clock()
        seq = (self.last_seq + 1) & 0xFFFF
        # At least one 20 ms frame, so the new audio never overlaps the old.
        step = 160
        if self.last_time is not None:
            step = max(160, round((now - self.last_time) * 8000))
        ts = (self.last_ts + step) & 0xFFFFFFFF
        self.seq_offset = (seq - sequence_number) & 0xFFFF
        self.ts_offset = (ts - timestamp) & 0xFFFFFFFF
        self.in_ssrc = ssrc
        self.switches += 1

    def now_timestamp(self) -> int:
        """This stream's RTP timestamp for the present moment (for injected events)."""
        if self.last_time is None:
            return self.last_ts
        elapsed = max(0, round((self._clock() - self.last_time) * 8000))
        return (self.last_ts + elapsed) & 0xFFFFFFFF

    def inject(self, packet: RtpPacket) -> None:
        """Send a packet of the bridge's own (an RFC 4733 event) inside this stream.

        It takes the next sequence number; later relayed packets shift by one
        so that the far end still sees consecutive numbers (RFC 3550 §5.1).
        """
        seq = (self.last_seq + 1) & 0xFFFF
        packet.sequence_number = seq
        packet.ssrc = self.out_ssrc
        self.last_seq = seq
        if packet.marker:
            # An event starts now: the stream's timeline is here, even when no
            # audio flows (the next event must get a later timestamp).
            self.last_ts = packet.timestamp
            self.last_time = self._clock()
        self.seq_offset = (self.seq_offset + 1) & 0xFFFF
        if self.target is not None:
            self.target.send(packet)

    def _call_tap(self, timestamp: int, payload: bytes) -> None:
        """Feed the tap; one that fails (a recorder on a full disk) is logged and detached."""
        tap = self.tap
        if tap is None:
            return
        try:
            tap(self.out_codec, timestamp, payload)
        except Exception:
            log.exception("bridge tap %r failed; detached, the audio goes on", tap)
            if self.tap is tap:
                self.tap = None

    def receive(self, packet: RtpPacket) -> None:
        """Rewrite ``packet`` in place and send it to the target leg."""
        if packet.ssrc != self.in_ssrc:
            self._resync(packet)
        seq = (packet.sequence_number + self.seq_offset) & 0xFFFF
        ts = (packet.timestamp + self.ts_offset) & 0xFFFFFFFF
        packet.sequence_number = seq
        packet.timestamp = ts
        packet.ssrc = self.out_ssrc
        self.last_seq = seq
        self.last_ts = ts
        self.last_time = self._clock()
        pt = packet.payload_type
        if pt == self.src_pt:
            if self.table is not None:
                packet.payload = packet.payload.translate(self.table)
                packet.payload_type = self.dst_pt
            if self.tap is not None:
                self._call_tap(ts, packet.payload)
        elif pt == self.src_dtmf:
            if self.dst_dtmf is None:
                return  # the target never negotiated telephone-event
            packet.payload_type = self.dst_dtmf
        target = self.target
        if target is not None:
            target.send(packet)

    def receive_raw(
        self, data: bytes, second: int, seq: int, ts: int, ssrc: int
    ) -> None:
        """:meth:`receive` for a plain-header datagram (``RawPacketReceiver``).

        Same rewriting, same taps; the packet goes out through the target's
        ``send_datagram`` with no :class:`RtpPacket` in between.
        """
        send = self.send_datagram
        if send is None:
            # The target is not an RTP socket (a WebRTC leg, a test double).
            self.receive(RtpPacket.parse(data))
            return
        if ssrc != self.in_ssrc:
            self._resync_to(seq, ts, ssrc)
            second |= 0x80  # marker: a new talkspurt (RFC 3551 §4.1)
        seq = (seq + self.seq_offset) & 0xFFFF
        ts = (ts + self.ts_offset) & 0xFFFFFFFF
        self.last_seq = seq
        self.last_ts = ts
        self.last_time = self._clock()
        pt = second & 0x7F
        if pt == self.src_pt:
            table = self.table
            tap = self.tap
            if table is not None or tap is not None:
                payload = data[12:]
                if table is not None:
                    payload = payload.translate(table)
                    second = (second & 0x80) | self.dst_pt
                if tap is not None:
                    self._call_tap(ts, payload)
                    if self.send_datagram is None:
                        return  # the tap ended the bridge
                send(
                    _PACK_HEADER(0x80, second, seq, ts, self.wire_ssrc) + payload,
                    ts,
                    len(payload),
                )
                return
        elif pt == self.src_dtmf:
            dst_dtmf = self.dst_dtmf
            if dst_dtmf is None:
                return  # the target never negotiated telephone-event
            second = (second & 0x80) | dst_dtmf
        out = bytearray(data)
        _PACK_AFTER_FIRST(out, 1, second, seq, ts, self.wire_ssrc)
        send(out, ts, len(data) - 12)


class Bridge:
    """Relays audio between a customer leg and an operator leg.

    Either leg may be replaced while the bridge runs (:meth:`replace`); the far
    end of the other leg keeps seeing one continuous stream.  :meth:`close`
    detaches the bridge from both legs (it never closes the legs themselves).
    """

    def __init__(
        self,
        *,
        customer: MediaLeg,
        operator: MediaLeg,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        rng = rng or random.Random()
        self._legs: dict[Side, MediaLeg | None] = {
            "customer": customer,
            "operator": operator,
        }
        # Keyed by the side the audio comes FROM.
        self._directions: dict[Side, StreamRewriter] = {
            "customer": StreamRewriter(clock=clock, rng=rng),
            "operator": StreamRewriter(clock=clock, rng=rng),
        }
        self._wire()

    @staticmethod
    def _other(side: Side) -> Side:
        return "operator" if side == "customer" else "customer"

    def _wire(self) -> None:
        for side, direction in self._directions.items():
            source = self._legs[side]
            target = self._legs[self._other(side)]
            if source is None or target is None:
                continue
            direction.connect(source, target)
            if isinstance(source, RawRtpLeg):
                source.set_receivers(direction.receive, direction.receive_raw)
                if isinstance(source, NativeRtpLeg):
                    source.set_relay(direction)
            else:
                source.set_receiver(direction.receive)

    def leg(self, side: Side) -> MediaLeg | None:
        return self._legs[side]

    def replace(self, side: Side, leg: MediaLeg) -> MediaLeg | None:
        """Put ``leg`` on ``side`` (e.g. the operator after hold music); return the old leg.

        The old leg is detached (its packets are no longer relayed) but left open.
        """
        old = self._legs[side]
        if old is not None:
            old.set_receiver(None)
        self._legs[side] = leg
        self._wire()
        return old

    def reconfigure(self) -> None:
        """Re-read both legs' codecs and telephone-event types (after a re-INVITE).

        Each direction starts a new segment, so its sequence numbers and
        timestamps continue as after a leg switch.
        """
        self._wire()

    def set_tap(self, side: Side, tap: Tap | None) -> None:
        """Observe the audio coming from ``side`` (after rewriting); ``None`` removes it."""
        self._directions[side].tap = tap

    def tap_of(self, side: Side) -> Tap | None:
        """The tap observing ``side`` now (to add another beside it)."""
        tap: Tap | None = self._directions[side].tap
        return tap

    def dtmf_packets(
        self, to: Side, digit: str, *, duration_ms: int = 100, volume: int = 10
    ) -> list[tuple[int, RtpPacket]]:
        """The RFC 4733 packet train of one key press towards ``to``'s far end.

        Returns ``(offset_ms, packet)`` pairs: send each with :meth:`inject`
        ``offset_ms`` after the first (the asyncio pacing lives in
        :func:`sipspeak.media.player.play_dtmf`).  Raises ``ValueError`` if that
        leg did not negotiate telephone-event or ``digit`` is not a DTMF key.
        """
        leg = self._legs[to]
        if leg is None or leg.dtmf_payload_type is None:
            raise ValueError(f"the {to} leg did not negotiate telephone-event")
        direction = self._directions[self._other(to)]
        return telephone_event_packets(
            digit,
            payload_type=leg.dtmf_payload_type,
            ssrc=direction.out_ssrc,
            first_sequence=0,  # numbered by inject()
            timestamp=direction.now_timestamp(),
            duration_ms=duration_ms,
            volume=volume,
        )

    def inject(self, to: Side, packet: RtpPacket) -> None:
        """Send ``packet`` to ``to``'s far end inside the stream the bridge keeps there."""
        self._directions[self._other(to)].inject(packet)

    def switches(self, side: Side) -> int:
        """How many source changes the stream from ``side`` has bridged over."""
        return self._directions[side].switches

    def close(self) -> None:
        for side, leg in self._legs.items():
            if leg is not None:
                leg.set_receiver(None)
            self._legs[side] = None
        for direction in self._directions.values():
            direction.target = None
            direction.target_port = None
            direction.send_datagram = None
            direction.tap = None
