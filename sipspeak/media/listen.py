"""Silent monitoring: both sides of a bridged call mixed into one stream for a listener.

A supervisor listening to a call hears the customer and the operator at once, and neither
hears him.  The bridge's taps (:meth:`~sipspeak.media.bridge.Bridge.set_tap`) hand each
side's audio to a :class:`~sipspeak.media.mixer.Mixer` (sans-IO); :class:`Listener` is the
thin asyncio shell that paces those frames out to the listener's leg every 20 ms as RTP in
the leg's codec, on its own SSRC and sequence.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from sipspeak.media.g711 import Pcm, encode
from sipspeak.media.leg import MediaLeg
from sipspeak.media.mixer import FRAME, Mixer
from sipspeak.media.pacer import FramePacer
from sipspeak.media.rtp import PAYLOAD_TYPES, Codec, RtpPacket

__all__ = ["Listener"]

log = logging.getLogger(__name__)

PTIME = 0.020


class Listener:
    """Paces the mixer's frames out to ``leg`` until :meth:`stop`."""

    def __init__(self, leg: MediaLeg, *, rng: random.Random | None = None) -> None:
        self.leg = leg
        self.mixer = Mixer()
        rng = rng or random.Random()
        self._ssrc = rng.getrandbits(32)
        self._seq = rng.getrandbits(16)
        self._ts = rng.getrandbits(32)
        self._task: asyncio.Task[None] | None = None
        self.frames_sent = 0

    def tap(self, side: str) -> Callable[[Codec, int, bytes], None]:
        """The bridge tap feeding ``side``'s audio to the mix."""
        def feed(codec: Codec, timestamp: int, payload: bytes) -> None:
            del timestamp  # frames are mixed in arrival order
            self.mixer.feed(side, codec, payload)
        return feed

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="listen")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        pacer = FramePacer(start=loop.time(), ptime=PTIME)
        while True:
            for _ in range(pacer.due(loop.time())):
                self._send(self.mixer.next_frame())
            await asyncio.sleep(max(0.0, pacer.next_deadline - loop.time()))

    def _send(self, frame: Pcm) -> None:
        codec = self.leg.codec
        packet = RtpPacket(payload_type=PAYLOAD_TYPES[codec], sequence_number=self._seq,
                           timestamp=self._ts, ssrc=self._ssrc, payload=encode(codec, frame),
                           marker=self.frames_sent == 0)
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + FRAME) & 0xFFFFFFFF
        self.frames_sent += 1
        try:
            self.leg.send(packet)
        except Exception:  # a leg gone under us: the call side stops the listener
            log.exception("listener send failed")
