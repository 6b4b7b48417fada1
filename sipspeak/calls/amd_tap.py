"""Answering-machine detection on an answered customer leg: a bridge tap feeding the detector.

The bridge hands the customer's audio to a tap as ``(codec, rtp_timestamp, payload)``;
this adapter only appends the payload to a batch, per packet.  A batch of contiguous audio
(100 ms, or less when the timestamps jump or the codec changes) is decoded at once by
media/'s G.711 code and fed to the sans-IO detector with the stream time the RTP timestamp
gives (RFC 3550 §5.1: the timestamp counts 8 kHz samples), so lost packets count as silence.
G.711 carries one byte per sample, so a payload's length is its duration.  The decision is reported once to
``on_result``; :meth:`AmdTap.check` decides on silence when no audio arrives at all.
:func:`fan` lets the recorder and the detector share the customer's side of the bridge.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from sipspeak.media.amd.detector import AmdDecision, AmdResult, AnsweringMachineDetector
from sipspeak.media.amd.params import AmdParams, AmdParamsError
from sipspeak.media.bridge import Tap
from sipspeak.media.g711 import decode
from sipspeak.media.rtp import Codec, ts_diff

from ..dialer.ports import AmdVerdict

__all__ = ["AmdTap", "amd_params", "fan", "verdict_of"]

log = logging.getLogger(__name__)
BATCH_SAMPLES = 800  # 100 ms at 8 kHz: five 20 ms packets per decode and analysis


def fan(*taps: Tap | None) -> Tap | None:
    """One bridge tap feeding several (the recorder and the detector); None when none."""
    live = [t for t in taps if t is not None]
    if len(live) <= 1:
        return live[0] if live else None

    def tap(codec: Codec, timestamp: int, payload: bytes) -> None:
        for one in live:
            one(codec, timestamp, payload)

    return tap


def amd_params(text: str) -> AmdParams:
    """A project's AMD overrides (JSON object text); bad overrides fall back to defaults."""
    if not text.strip():
        return AmdParams()
    try:
        return AmdParams.from_mapping(json.loads(text))
    except (ValueError, AmdParamsError) as exc:
        log.warning("ignoring the project's AMD parameters: %s", exc)
        return AmdParams()


def verdict_of(result: AmdResult) -> AmdVerdict:
    return {AmdDecision.HUMAN: AmdVerdict.HUMAN, AmdDecision.MACHINE: AmdVerdict.MACHINE,
            AmdDecision.NOTSURE: AmdVerdict.NOT_SURE}[result.decision]


class AmdTap:
    """Feeds one customer stream to an :class:`AnsweringMachineDetector` until it decides."""

    def __init__(self, *, params: AmdParams, on_result: Callable[[AmdResult], None]) -> None:
        self.detector = AnsweringMachineDetector(params=params)
        self._on_result = on_result
        self._first_ts: int | None = None
        self._batch = bytearray()
        self._batch_codec: Codec = "PCMU"
        self._batch_start = 0  # samples after the first packet
        self._batch_end = 0
        self.result: AmdResult | None = None

    def __call__(self, codec: Codec, timestamp: int, payload: bytes) -> None:
        if self.result is not None:
            return
        if self._first_ts is None:
            self._first_ts = timestamp
        offset = ts_diff(timestamp, self._first_ts)
        if offset < 0:
            return  # reordered packet from before the first one
        if self._batch and (codec != self._batch_codec or offset != self._batch_end):
            self.flush()  # a gap, a reordering or a codec change ends the batch
        if not self._batch:
            self._batch_codec = codec
            self._batch_start = offset
        self._batch += payload
        self._batch_end = offset + len(payload)
        if len(self._batch) >= BATCH_SAMPLES:
            self.flush()

    def flush(self) -> None:
        """Decode and analyse the audio batched so far."""
        if not self._batch or self.result is not None:
            return
        pcm = decode(self._batch_codec, bytes(self._batch))
        self._batch.clear()
        self._decided(self.detector.feed(pcm, self._batch_start / 8000.0))

    def check(self, elapsed: float) -> None:
        """No decision from audio ``elapsed`` seconds after the answer: decide on silence."""
        self.flush()
        if self.result is None:
            self._decided(self.detector.handle_timer(elapsed))

    @property
    def deadline(self) -> float:
        """Seconds after the start by which :meth:`check` should be called."""
        return self.detector.get_timer()

    def _decided(self, result: AmdResult | None) -> None:
        if result is None or self.result is not None:
            return
        self.result = result
        try:
            self._on_result(result)
        except Exception:
            log.exception("AMD result handler failed")
