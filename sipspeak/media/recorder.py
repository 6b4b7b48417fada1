"""Stereo WAV call recorder: customer on the left channel, operator on the right.

Fed by the bridge's taps (``recorder.tap("customer")`` / ``tap("operator")``),
it places every packet's audio by its RTP timestamp (RFC 3550 §5.1: the
timestamp counts samples), so reordering is undone and gaps become silence.
Each channel is anchored once, on its first packet, to the recording's own
clock; from then on only timestamps position the audio (a big timestamp jump
re-anchors the channel on the clock again).

The file is written incrementally through a small window of pending audio:
memory stays bounded whatever the call length.  After every flush the RIFF and
data sizes in the header are rewritten, so a crash leaves a readable WAV file
holding everything up to the last flush; :meth:`WavRecorder.close` writes the
rest and fixes the header a final time.  On the event loop the taps are
:class:`~sipspeak.media.fastpath.TapBuffer` objects that the C relay loop
fills without calling Python; every :data:`PUMP_EVERY` seconds the recorder
takes them: a run of contiguous packets arrives as one segment and is placed
with one slice copy (both channels merged in arrival order).  Per flush it slices the
pending bytes off.  Decoding, interleaving and the disk writes run on one shared background
thread (:func:`shared_disk_writer`), so neither a slow disk nor the decoding
of other calls' audio stalls the packets on the loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np

from sipspeak.media.bridge import Tap
from sipspeak.media.fastpath import TAP_RECORD, TapBuffer
from sipspeak.media.g711 import SILENCE_BYTE, decode, transcode
from sipspeak.media.rtp import Codec

__all__ = ["WavRecorder", "shared_disk_writer", "wav_header"]

log = logging.getLogger(__name__)

Channel = Literal["customer", "operator"]
_CHANNEL_INDEX: dict[Channel, int] = {"customer": 0, "operator": 1}
RATE = 8000
#: How often buffered taps are emptied into the recording (seconds; below the window).
PUMP_EVERY = 0.25
_CODECS: tuple[Codec, Codec] = ("PCMU", "PCMA")  # TapBuffer's codec numbers


def _arrival(piece: tuple[float, int, Codec, int, bytes]) -> float:
    return piece[0]


_shared_writer: ThreadPoolExecutor | None = None
_shared_lock = threading.Lock()


def shared_disk_writer() -> Executor:
    """The one background thread every recorder hands its disk writes to, in order.

    Disk writes can block for milliseconds when the disk is busy; done on the
    event loop they would delay every call's packets.  One worker keeps each
    file's writes in order.
    """
    global _shared_writer
    with _shared_lock:
        if _shared_writer is None:
            _shared_writer = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="recorder-io"
            )
        return _shared_writer


def _append(
    fd: int,
    count: int,
    channels: list[tuple[Codec, bytes] | None],
    data_bytes: int,
) -> None:
    """Decode and interleave ``count`` samples per channel, append them, fix the sizes.

    Runs on the writer thread.  A channel that is ``None`` has not started yet
    and is written as silence.  The RIFF and data sizes sit at offsets 4 and 40.
    """
    if len(channels) == 2 and all(channels):
        block = np.empty((count, 2), dtype=np.int16)
    else:
        block = np.zeros((count, 2), dtype=np.int16)
    for index, channel in enumerate(channels):
        if channel is not None:
            block[:, index] = decode(*channel)
    try:
        view = memoryview(block.tobytes())
        while view:
            view = view[os.write(fd, view) :]
        os.pwrite(fd, struct.pack("<I", 36 + data_bytes), 4)
        os.pwrite(fd, struct.pack("<I", data_bytes), 40)
    except OSError:
        log.exception("recording write failed (fd %d)", fd)


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        log.exception("closing a recording failed (fd %d)", fd)


def wav_header(*, data_bytes: int, channels: int = 2, rate: int = RATE) -> bytes:
    """44-byte canonical RIFF/WAVE header for 16-bit PCM."""
    block = channels * 2
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class _Channel:
    """One side of the call: its timestamp anchor and its pending G.711 bytes.

    Audio is kept as received (one byte per sample) and decoded once per
    flush, a whole block at a time: per packet only a slice assignment.
    """

    __slots__ = ("base_pos", "base_ts", "codec", "end", "pending", "silence")

    def __init__(
        self, *, codec: Codec, base_ts: int, base_pos: int, window: int
    ) -> None:
        self.codec: Codec = codec
        self.silence = bytes((SILENCE_BYTE[codec],))
        self.pending = bytearray(self.silence * window)
        self.base_ts = base_ts
        self.base_pos = base_pos
        self.end = base_pos  # one past the last sample placed


class WavRecorder:
    """Writes one call to ``path`` as 8 kHz 16-bit stereo WAV.

    ``window`` seconds of audio are held back to absorb network jitter and
    reordering before being written; ``flush_every`` seconds of audio are
    written at a time.  ``clock`` (monotonic seconds) only anchors channels.
    """

    def __init__(
        self,
        *,
        path: str | Path,
        window: float = 1.0,
        flush_every: float = 0.5,
        max_jump: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        writer: Executor | None = None,
    ) -> None:
        """``writer``: where disk writes run (default: :func:`shared_disk_writer`)."""
        if flush_every <= 0 or window <= flush_every:
            raise ValueError("need 0 < flush_every < window")
        self.path = Path(path)
        self._fd: int | None = os.open(
            self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644
        )
        os.write(self._fd, wav_header(data_bytes=0))
        self._writer = writer or shared_disk_writer()
        self._last_write: Future[None] | None = None
        self._clock = clock
        self._start = clock()
        self._window = int(window * RATE)
        self._flush = int(flush_every * RATE)
        self._hold = (
            self._window - self._flush
        )  # kept back for packets still on their way
        self._max_jump = int(max_jump * RATE)
        # The longest stretch placed at once: making room for it in the window
        # never writes out audio that is still to be placed.
        self._piece = min(self._flush, self._hold)
        self._written = 0  # samples per channel already in the file
        self._channels: list[_Channel | None] = [None, None]
        self._taps: dict[int, Tap] = {}
        self._buffers: dict[int, TapBuffer] = {}
        self._pump_timer: asyncio.TimerHandle | None = None
        self.late_packets = 0

    def tap(self, channel: Channel) -> Tap:
        """A bridge tap that records the audio coming from ``channel``'s side (one per side).

        On a running event loop, with the recorder on the monotonic clock, the
        tap is a :class:`~sipspeak.media.fastpath.TapBuffer`: the relay loop
        keeps the packets there without calling Python, and the recorder
        empties it every :data:`PUMP_EVERY` seconds (a run of contiguous
        packets is one segment, placed with one copy).  Otherwise every packet
        is placed as it comes.
        """
        index = _CHANNEL_INDEX[channel]
        tap = self._taps.get(index)
        if tap is not None:
            return tap
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None and self._clock is time.monotonic:
            buffer = TapBuffer(segment=self._piece)
            self._buffers[index] = buffer
            tap = buffer
            if self._pump_timer is None:
                # A random phase: recorders started together do not pump together.
                first = PUMP_EVERY * (0.5 + random.random())
                self._pump_timer = loop.call_later(first, self._pump_due, loop)
        else:
            # A partial, not a closure: one Python frame less per recorded packet.
            tap = functools.partial(self.write, index)
        self._taps[index] = tap
        return tap

    def _pump_due(self, loop: asyncio.AbstractEventLoop) -> None:
        self._pump_timer = None
        if self._fd is None:
            return
        self.pump()
        self._pump_timer = loop.call_later(PUMP_EVERY, self._pump_due, loop)

    def pump(self) -> None:
        """Place everything the buffered taps kept so far, in the order it arrived.

        Each segment (a run of contiguous audio) is placed with one copy; both
        channels' segments are merged by arrival time, so a channel that a
        stalled loop let run ahead does not push the other's audio out as late.
        """
        pieces: list[tuple[float, int, Codec, int, bytes]] = []
        size = TAP_RECORD.size
        for index, buffer in self._buffers.items():
            if not buffer.pending:
                continue
            data = buffer.take()
            offset = 0
            while offset < len(data):
                ts, n, codec, arrival = TAP_RECORD.unpack_from(data, offset)
                offset += size
                pieces.append((arrival, index, _CODECS[codec], ts, data[offset : offset + n]))
                offset += n
        if len(pieces) > 1:
            pieces.sort(key=_arrival)
        for arrival, index, codec, ts, payload in pieces:
            self.write(index, codec, ts, payload, arrival)

    def write(
        self,
        index: int,
        codec: Codec,
        timestamp: int,
        payload: bytes,
        arrival: float | None = None,
    ) -> None:
        """Place audio on channel ``index`` (0 = left, 1 = right) by its RTP timestamp.

        ``arrival``: when the first sample arrived (monotonic seconds), for a
        packet placed later than it came; default now.
        """
        if self._fd is None:
            return
        if len(payload) > self._piece:
            # A long stretch (a batch from a stalled loop): in pieces the window can hold.
            step = self._piece
            for offset in range(0, len(payload), step):
                self.write(
                    index,
                    codec,
                    (timestamp + offset) & 0xFFFFFFFF,
                    payload[offset : offset + step],
                    None if arrival is None else arrival + offset / RATE,
                )
            return
        ch = self._channels[index]
        if ch is None:
            ch = self._anchor(index, codec, timestamp, arrival)
        elif codec != ch.codec:
            payload = transcode(payload, codec, ch.codec)
        # ts_diff inlined (this runs for every recorded packet): signed 32-bit distance.
        delta = (timestamp - ch.base_ts) & 0xFFFFFFFF
        if delta >= 0x80000000:
            delta -= 0x100000000
        pos = ch.base_pos + delta
        if not -self._max_jump < pos - ch.end < self._max_jump:
            # Timestamps jumped (a new stream not bridged over): trust the clock.
            now = self._clock() if arrival is None else arrival
            ch.base_ts = timestamp
            ch.base_pos = pos = max(self._written, int((now - self._start) * RATE))
        n = len(payload)
        start = pos - self._written
        if start < 0:
            self.late_packets += 1
            if start + n <= 0:
                return
            payload = payload[-start:]
            pos -= start
            n = len(payload)
            start = 0
        while start + n > self._window:
            # This channel ran a window ahead of the other: the other is silent
            # (or very late).  Make room a whole flush at a time, not per packet.
            self._write_out(max(start + n - self._window, self._flush))
            start = pos - self._written
        ch.pending[start : start + n] = payload
        ch.end = max(ch.end, pos + n)
        # Write out what every channel has moved past, in flush-sized steps.
        other = self._channels[1 - index]
        low = ch.end if other is None or other.end > ch.end else other.end
        ready = low - self._hold - self._written
        if ready >= self._flush:
            self._write_out(ready)

    def _anchor(
        self, index: int, codec: Codec, timestamp: int, arrival: float | None
    ) -> _Channel:
        now = self._clock() if arrival is None else arrival
        pos = max(self._written, int((now - self._start) * RATE))
        ch = _Channel(codec=codec, base_ts=timestamp, base_pos=pos, window=self._window)
        self._channels[index] = ch
        return ch

    def _write_out(self, count: int) -> None:
        """Hand ``count`` samples per channel to the disk writer, header sizes included."""
        if self._fd is None:
            return
        count = min(count, self._window)
        chunks: list[tuple[Codec, bytes] | None] = []
        for ch in self._channels:
            if ch is None:
                chunks.append(None)
                continue
            chunks.append((ch.codec, bytes(ch.pending[:count])))
            del ch.pending[:count]
            ch.pending += ch.silence * count
        self._written += count
        self._last_write = self._writer.submit(
            _append, self._fd, count, chunks, self._written * 4
        )

    @property
    def duration(self) -> float:
        """Seconds of audio written so far."""
        return self._written / RATE

    def sync(self, timeout: float | None = 10.0) -> None:
        """Block until everything handed to the disk writer so far is on disk (tests)."""
        self.pump()
        if self._last_write is not None:
            self._last_write.result(timeout)

    def close(self, *, wait: bool = True) -> None:
        """Write the pending audio up to the furthest channel and close the file.

        ``wait=False`` returns at once (on the event loop at hang-up); the
        writer thread finishes the file in the background.
        """
        if self._fd is None:
            return
        if self._pump_timer is not None:
            self._pump_timer.cancel()
            self._pump_timer = None
        self.pump()
        ends = [c.end for c in self._channels if c is not None]
        if ends:
            end = max(ends)
            while end > self._written:
                self._write_out(end - self._written)
        fd, self._fd = self._fd, None
        done = self._writer.submit(_close, fd)
        if wait:
            done.result(30)
