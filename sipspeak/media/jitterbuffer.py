"""Adaptive-free, bounded jitter buffer for consumers that need ordered audio.

Sans-IO, time as a parameter.  The bridge relays without buffering; this is
for the consumers that decode audio (answering-machine detection, analysis):
they :meth:`JitterBuffer.put` every packet as it arrives and
:meth:`JitterBuffer.pop` the frames whose playout time has come.

Playout runs in RTP timestamp units (RFC 3550 §5.1: the timestamp counts
samples, so gaps and reordering are measured in samples, not packets):

* the first packet fixes the playout clock: the frame with timestamp ``T``
  plays at ``first_arrival + delay + (T - T0) / clock_rate``;
* packets are reordered by timestamp, duplicates dropped, packets older than
  the playout point dropped as late;
* a missing frame is concealed with silence of its length when its playout
  time passes (G.711 Appendix I style PLC is out of scope: silence is what
  a recorder and a voice detector want);
* depth is bounded: a packet too far in the future (a burst or a timestamp
  jump of a new source) resynchronises the playout clock to it.
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass

from sipspeak.media.g711 import SILENCE_BYTE
from sipspeak.media.rtp import Codec, RtpPacket, ts_add, ts_diff

__all__ = ["AudioFrame", "JitterBuffer", "JitterBufferStats"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioFrame:
    """Ordered audio in the stream's codec (one byte per sample for G.711)."""

    timestamp: int
    payload: bytes
    concealed: bool  # True: silence standing in for lost packets


@dataclass(frozen=True, slots=True, kw_only=True)
class JitterBufferStats:
    received: int
    played: int
    concealed_frames: int
    late: int
    duplicates: int
    resyncs: int


class JitterBuffer:
    """Reorders, de-duplicates and paces one RTP stream of G.711 audio."""

    def __init__(
        self,
        *,
        codec: Codec,
        delay: float = 0.06,
        max_depth: float = 0.5,
        frame_samples: int = 160,
        clock_rate: int = 8000,
    ) -> None:
        if delay < 0 or max_depth <= delay:
            raise ValueError("need 0 <= delay < max_depth")
        self.codec: Codec = codec
        self._silence = bytes((SILENCE_BYTE[codec],))
        self._delay = delay
        self._max_depth = int(max_depth * clock_rate)
        self._frame = frame_samples
        self._rate = clock_rate
        self._packets: dict[int, bytes] = {}  # offset from _base -> payload
        self._heap: list[int] = []
        self._base = 0  # RTP timestamp of offset 0
        self._origin: float | None = None  # monotonic time at which offset 0 plays
        self._cursor = 0  # offset of the next sample to play
        self._received = 0
        self._played = 0
        self._concealed = 0
        self._late = 0
        self._duplicates = 0
        self._resyncs = 0

    def _restart(self, timestamp: int, now: float) -> None:
        self._packets.clear()
        self._heap.clear()
        self._base = timestamp
        self._origin = now + self._delay
        self._cursor = 0

    def put(self, packet: RtpPacket, now: float) -> None:
        """Accept a packet that arrived at ``now``."""
        self._received += 1
        if not packet.payload:
            return
        if self._origin is None:
            self._restart(packet.timestamp, now)
        offset = ts_diff(packet.timestamp, self._base)
        if offset < self._cursor:
            self._late += 1
            return
        if offset - self._cursor >= self._max_depth:
            # Too far ahead to wait for: a new source or a long outage.  Keep
            # what is buffered out of the way and start over at this packet.
            self._resyncs += 1
            log.debug("jitter buffer resync: %d samples ahead", offset - self._cursor)
            self._restart(packet.timestamp, now)
            offset = 0
        if offset in self._packets:
            self._duplicates += 1
            return
        self._packets[offset] = packet.payload
        heapq.heappush(self._heap, offset)

    def pop(self, now: float) -> list[AudioFrame]:
        """Frames whose playout time is ``<= now``, in order, gaps as silence."""
        if self._origin is None:
            return []
        due = int((now - self._origin) * self._rate)  # playout position, in samples
        out: list[AudioFrame] = []
        while self._cursor + self._frame <= due or (self._heap and self._heap[0] < due):
            heap = self._heap
            if heap and heap[0] == self._cursor:
                offset = heapq.heappop(heap)
                payload = self._packets.pop(offset)
                out.append(
                    AudioFrame(
                        timestamp=ts_add(self._base, offset),
                        payload=payload,
                        concealed=False,
                    )
                )
                self._cursor += len(payload)
                self._played += 1
                continue
            if heap and heap[0] < self._cursor:
                # Overlapping packet (odd packetisation): drop what overlaps.
                self._packets.pop(heapq.heappop(heap))
                self._late += 1
                continue
            # Missing audio: conceal up to the next packet or one frame.
            gap = self._frame
            if heap:
                gap = min(gap, heap[0] - self._cursor)
            if self._cursor + gap > due:
                break
            out.append(
                AudioFrame(
                    timestamp=ts_add(self._base, self._cursor),
                    payload=self._silence * gap,
                    concealed=True,
                )
            )
            self._cursor += gap
            self._concealed += 1
        return out

    def get_timer(self) -> float | None:
        """When the next frame becomes due (``None`` before the first packet)."""
        if self._origin is None:
            return None
        return self._origin + (self._cursor + self._frame) / self._rate

    def stats(self) -> JitterBufferStats:
        return JitterBufferStats(
            received=self._received,
            played=self._played,
            concealed_frames=self._concealed,
            late=self._late,
            duplicates=self._duplicates,
            resyncs=self._resyncs,
        )
