"""Audio player: music on hold and prompts, as a media leg the bridge can hold.

A :class:`Player` is a :class:`~sipspeak.media.leg.MediaLeg` that talks and
never listens: bridge it to a customer (``Bridge(customer=..., operator=player)``)
and later ``bridge.replace("operator", operator_leg)``; the bridge keeps the
customer's stream continuous across the switch.  Used alone, give it a
receiver that sends to an endpoint (``player.set_receiver(endpoint.send)``).

Audio is converted once, at construction, to 8 kHz mono and then encoded in
the leg's codec; playback only slices 160-byte frames.  Pacing is drift-free
(:class:`~sipspeak.media.pacer.FramePacer`: frame ``n`` at ``start + n x 20 ms``
on the loop's monotonic clock).  The playback task belongs to the player:
:meth:`stop` cancels it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sipspeak.media.audio import hold_melody, load_wav
from sipspeak.media.bridge import Bridge, Side
from sipspeak.media.g711 import SILENCE_BYTE, encode
from sipspeak.media.leg import PacketReceiver
from sipspeak.media.pacer import FramePacer
from sipspeak.media.rtp import PAYLOAD_TYPES, Codec, RtpPacket

__all__ = ["Player", "play_dtmf"]

log = logging.getLogger(__name__)

FRAME = 160  # samples per 20 ms at 8 kHz
PTIME = 0.02


class Player:
    """Plays 8 kHz audio as paced RTP packets to its receiver."""

    dtmf_payload_type: int | None = None

    def __init__(
        self,
        *,
        codec: Codec,
        audio: npt.ArrayLike | None = None,
        loop: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        """``audio``: int16 samples at 8 kHz (default: the built-in hold melody)."""
        self.codec: Codec = codec
        samples = hold_melody() if audio is None else np.asarray(audio, dtype=np.int16)
        encoded = encode(codec, samples)
        # Pad to whole frames with silence so every packet is exactly 20 ms.
        pad = -len(encoded) % FRAME
        self._encoded = encoded + bytes((SILENCE_BYTE[codec],)) * pad
        self._frames = len(self._encoded) // FRAME
        self.loop = loop
        rng = rng or random.Random()
        self._ssrc = rng.getrandbits(32)
        self._seq = rng.getrandbits(16)
        self._ts = rng.getrandbits(32)
        self._position = 0  # next frame index into the audio
        self._receiver: PacketReceiver | None = None
        self._task: asyncio.Task[None] | None = None
        self.frames_sent = 0
        self.done = asyncio.Event()

    @classmethod
    def from_wav(cls, path: str | Path, *, codec: Codec, loop: bool = True) -> Player:
        """A player for any PCM WAV file (converted once to 8 kHz mono)."""
        return cls(codec=codec, audio=load_wav(path), loop=loop)

    # -- MediaLeg ----------------------------------------------------------------

    def send(self, packet: RtpPacket) -> None:
        """A player does not listen: whatever the other side says is discarded."""

    def set_receiver(self, cb: PacketReceiver | None) -> None:
        self._receiver = cb

    # -- playback ------------------------------------------------------------------

    def start(self) -> None:
        """Start (or restart after :meth:`stop`) playback on the running loop."""
        if self._task is None or self._task.done():
            self.done.clear()
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="player"
            )

    async def stop(self) -> None:
        """Stop playback and wait for the task to end."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    def next_packet(self) -> RtpPacket | None:
        """The next 20 ms packet, or ``None`` at the end of a non-looping prompt."""
        if self._position >= self._frames:
            if not self.loop:
                return None
            self._position = 0
        start = self._position * FRAME
        packet = RtpPacket(
            payload_type=PAYLOAD_TYPES[self.codec],
            sequence_number=self._seq,
            timestamp=self._ts,
            ssrc=self._ssrc,
            payload=self._encoded[start : start + FRAME],
            marker=self.frames_sent == 0,
        )
        self._position += 1
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + FRAME) & 0xFFFFFFFF
        self.frames_sent += 1
        return packet

    def _skip(self, frames: int) -> None:
        self._ts = (self._ts + frames * FRAME) & 0xFFFFFFFF
        self._position += frames
        if self.loop and self._frames:
            self._position %= self._frames

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        pacer = FramePacer(start=loop.time(), ptime=PTIME)
        try:
            while True:
                skipped = pacer.skipped
                due = pacer.due(loop.time())
                if pacer.skipped != skipped:
                    # Woke up far too late: drop that audio but keep the clock honest.
                    self._skip(pacer.skipped - skipped)
                for _ in range(due):
                    packet = self.next_packet()
                    if packet is None:
                        self.done.set()
                        return
                    receiver = self._receiver
                    if receiver is not None:
                        receiver(packet)
                # Sleep until the absolute deadline of the next frame.
                await asyncio.sleep(max(0.0, pacer.next_deadline - loop.time()))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("player stopped by an error")
            self.done.set()


async def play_dtmf(
    bridge: Bridge, to: Side, digits: str, *, duration_ms: int = 100, gap_ms: int = 100
) -> None:
    """Send ``digits`` as RFC 4733 events to ``to``'s far end through ``bridge``.

    Each digit is the full train of :meth:`Bridge.dtmf_packets` (marker on the
    first packet, updates every 20 ms, the end three times), paced on the loop's
    monotonic clock from the digit's start; ``gap_ms`` of silence between digits.
    """
    loop = asyncio.get_running_loop()
    for digit in digits:
        train = bridge.dtmf_packets(to, digit, duration_ms=duration_ms)
        start = loop.time()
        for offset_ms, packet in train:
            delay = start + offset_ms / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            bridge.inject(to, packet)
        await asyncio.sleep(gap_ms / 1000)
