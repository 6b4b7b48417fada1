"""Answering-machine detection on the callee's audio, sans-IO.

The detector is fed 8 kHz 16-bit mono audio (any frame size; 10, 20 or 30 ms RTP frames
are usual) together with the stream time of each frame's first sample, and answers once:
HUMAN, MACHINE or NOTSURE, with a reason and the stream time of the decision. It never reads
a clock: the call layer passes stream time and, when audio stops arriving, calls
``handle_timer(get_timer())``.

How it decides (the word logic of Asterisk's ``AMD()``, on better features):

* Every 20 ms analysis frame is "voice" when webrtcvad hears speech, its energy stands
  ``noise_margin_db`` above the adaptive noise floor (:mod:`.noise`) and within
  ``RELATIVE_GATE_DB`` of the loudest speech heard, its mean magnitude is above
  ``silence_threshold`` and it is not a pure tone. A voice frame is "pitched" when its
  normalised cross-correlation at a pitch lag (:func:`periodicity`) is high: vowels are,
  breaths, clicks and line noise are not.
* Voiced runs of at least ``min_word_length`` holding a pitched frame are words;
  ``between_words_silence`` of silence ends a word. Only pitched frames break the silence
  after a greeting, so a breath or a click does not hold back a HUMAN decision, while the
  vowels of a recording heard through heavy noise (short pitched bursts) do.
* A person says a short greeting and waits: ``after_greeting_silence`` after speech gives
  HUMAN. A recording talks on: more than ``greeting`` of voice, more than
  ``maximum_number_of_words`` words or one word longer than ``maximum_word_length`` gives
  MACHINE. A steady tone (:mod:`.tones`) gives MACHINE ("beep"), a SIT sequence MACHINE
  ("sit"). No voice within ``initial_silence`` gives NOTSURE ("no-speech", or "no-audio" when
  no audio or only digital silence came), and ``total_analysis_time`` ends the analysis.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import webrtcvad

from .noise import MIN_DB, NoiseFloor
from .params import AmdParams
from .tones import BEEP_GRID, SIT_FREQUENCIES, ToneBank, ToneTracker

SAMPLE_RATE: Final = 8000
FRAME_MS: Final = 20
FRAME_SAMPLES: Final = SAMPLE_RATE * FRAME_MS // 1000
_FULL_SCALE_SQ: Final = 32768.0 * 32768.0
# Pitch lags searched for voicing: 60-400 Hz.
_LAG_MIN: Final = SAMPLE_RATE // 400
_LAG_MAX: Final = SAMPLE_RATE // 60
_FFT_SIZE: Final = 512
_SHIFTS: Final = FRAME_SAMPLES - np.arange(_LAG_MIN, _LAG_MAX + 1)
# A frame is pitched above this periodicity: vowels of real and synthetic voices score
# 0.55-0.95 in most frames, band-limited breath noise peaks at ~0.4, white noise at ~0.25.
PERIODIC: Final = 0.5
# Pitched time a voiced run needs to count as a word.
MIN_PERIODIC_MS: Final = 20
# Frames this far below the loudest speech of the call are not voice (a television in the
# room, crosstalk); generous, since recorded speech has a wide dynamic range.
RELATIVE_GATE_DB: Final = 30.0
# Voice of a short greeting, after which the silence that ends a greeting starts to grow.
_SHORT_GREETING_MS: Final = 1000


def periodicity(previous: npt.NDArray[np.float64], current: npt.NDArray[np.float64]) -> float:
    """Voicing of the current frame: its peak normalised cross-correlation at pitch lags.

    The current frame is compared with the stretch of audio one lag earlier (reaching back
    into the previous frame) and normalised by both stretches' energies, as in pitch trackers
    (RAPT's NCCF). One frame is short enough to follow a gliding pitch ("Да?"). Vowels score
    ~0.6-0.95; noise, breaths and clicks stay low. Correlations come from one FFT product.
    """
    window = np.concatenate((previous, current))
    spectrum = np.fft.rfft(window, _FFT_SIZE) * np.conj(np.fft.rfft(current, _FFT_SIZE))
    # r[k] = sum_n window[n + k] * current[n]; lag = FRAME_SAMPLES - k.
    r = np.fft.irfft(spectrum, _FFT_SIZE)[_SHIFTS]
    energy = float(np.dot(current, current))
    if energy <= 0.0:
        return 0.0
    cumulative = np.concatenate(([0.0], np.cumsum(window * window)))
    lagged = cumulative[_SHIFTS + FRAME_SAMPLES] - cumulative[_SHIFTS]
    return float(np.max(r / np.sqrt(energy * lagged + energy * energy * 1e-6)))


class AmdDecision(enum.Enum):
    HUMAN = "HUMAN"
    MACHINE = "MACHINE"
    NOTSURE = "NOTSURE"


class AmdReason(enum.Enum):
    HUMAN_SHORT_GREETING = "human-short-greeting"
    LONG_GREETING = "long-greeting"
    TOO_MANY_WORDS = "too-many-words"
    MAX_WORD_LENGTH = "max-word-length"
    BEEP = "beep"
    SIT = "sit"
    NO_SPEECH = "no-speech"
    NO_AUDIO = "no-audio"
    MAX_ANALYSIS_TIME = "max-analysis-time"


@dataclass(frozen=True, slots=True)
class AmdResult:
    """The detector's one answer.

    ``time`` is the stream time of the decision (the end of the audio that decided it);
    ``elapsed`` is the same measured from the detector's ``start_time``.
    """

    decision: AmdDecision
    reason: AmdReason
    time: float
    elapsed: float
    words: int
    voice_ms: int


class AnsweringMachineDetector:
    """One call's detector. Feed audio with :meth:`feed` until it returns an :class:`AmdResult`."""

    def __init__(self, *, params: AmdParams | None = None, start_time: float = 0.0) -> None:
        self.params = params if params is not None else AmdParams()
        self.start_time = start_time
        self._vad = webrtcvad.Vad(self.params.vad_mode)
        self._noise = NoiseFloor(frame_ms=FRAME_MS)
        self._bank = _tone_bank()
        self._tones = ToneTracker(frame_ms=FRAME_MS, min_tone_ms=self.params.min_tone_ms)
        self._pending = np.zeros(0, dtype=np.int16)
        self._frames = 0  # analysis frames (and silent gaps) consumed, in FRAME_MS units
        self._heard_audio = False  # any non-zero sample
        self._result: AmdResult | None = None
        # Word state (Asterisk's names where they exist).
        self._voice_run_ms = 0  # consecutive voiced time (current word or candidate)
        self._silence_run_ms = 0  # silence since the last word-level voice
        self._gap_ms = 0  # unvoiced time inside the current voiced stretch
        self._in_word = False
        self._periodic_run_ms = 0  # voiced time with a pitch in the current run
        self._previous = np.zeros(FRAME_SAMPLES)
        self._peak_db = MIN_DB  # loudest frame of the words heard so far
        self._words = 0
        self._first_word_ms = -1  # analysis time at which the first word began
        self._voice_ms = 0  # voiced time inside words so far
        self._energy_gate = self.params.noise_margin_db
        self._abs_gate = float(self.params.silence_threshold) * FRAME_SAMPLES

    # -- public API -------------------------------------------------------------------------

    @property
    def result(self) -> AmdResult | None:
        """The decision, once made."""
        return self._result

    def get_timer(self) -> float:
        """Stream time by which :meth:`handle_timer` must be called if no audio decides first."""
        p = self.params
        limit = p.initial_silence if self._words == 0 else p.total_analysis_time
        return self.start_time + limit / 1000.0

    def handle_timer(self, now: float) -> AmdResult | None:
        """Audio stopped arriving (or the stream ended): decide on what was heard by ``now``."""
        if self._result is not None:
            return self._result
        if now < self.get_timer():
            return None
        elapsed = now - self.start_time
        if self._words == 0:
            reason = AmdReason.NO_SPEECH if self._heard_audio else AmdReason.NO_AUDIO
            return self._decide(AmdDecision.NOTSURE, reason, elapsed)
        return self._decide(AmdDecision.NOTSURE, AmdReason.MAX_ANALYSIS_TIME, elapsed)

    def feed(self, pcm: bytes | npt.NDArray[np.int16], now: float) -> AmdResult | None:
        """Analyse audio whose first sample plays at stream time ``now`` (seconds).

        ``pcm`` is 8 kHz mono signed 16-bit (little-endian bytes or an int16 array) of any
        length. A jump of ``now`` past the audio already fed (lost packets) counts as silence,
        so ``now`` should come from the RTP timestamps, not from arrival times. Returns the
        decision once made (and the same decision on every later call). Raises ``ValueError``
        for audio that is not 16-bit PCM.
        """
        if self._result is not None:
            return self._result
        if isinstance(pcm, bytes):
            if len(pcm) % 2:
                raise ValueError(f"16-bit PCM has an even number of bytes, got {len(pcm)}")
            samples = np.frombuffer(pcm, dtype="<i2")
        elif pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError(f"expected a 1-D int16 array, got {pcm.ndim}-D {pcm.dtype}")
        else:
            samples = pcm
        consumed_s = self._frames * FRAME_MS / 1000.0 + len(self._pending) / SAMPLE_RATE
        gap_ms = int((now - self.start_time - consumed_s) * 1000.0)
        if gap_ms >= FRAME_MS:
            self._pending = np.zeros(0, dtype=np.int16)
            result = self._silent_gap(gap_ms)
            if result is not None:
                return result
        buffered = np.concatenate((self._pending, samples)) if len(self._pending) else samples
        usable = len(buffered) - len(buffered) % FRAME_SAMPLES
        for offset in range(0, usable, FRAME_SAMPLES):
            result = self._analyse(buffered[offset : offset + FRAME_SAMPLES])
            if result is not None:
                return result
        self._pending = np.array(buffered[usable:], dtype=np.int16)
        return None

    # -- analysis ---------------------------------------------------------------------------

    def _analyse(self, frame: npt.NDArray[np.int16]) -> AmdResult | None:
        self._frames += 1
        x = frame.astype(np.float64)
        # A DC offset (some handsets, some gateways) is neither energy nor pitch.
        x -= x.mean()
        sum_sq = float(np.dot(x, x))
        if not self._heard_audio and frame.any():
            self._heard_audio = True
        if sum_sq > 0.0:
            energy_db = 10.0 * math.log10(sum_sq / (FRAME_SAMPLES * _FULL_SCALE_SQ))
        else:
            energy_db = MIN_DB
        floor_db = self._noise.update(energy_db)
        voiced = False
        periodic = False
        if (
            energy_db >= floor_db + self._energy_gate
            and energy_db >= self._peak_db - RELATIVE_GATE_DB
            and float(np.abs(x).sum()) >= self._abs_gate
        ):
            measure = self._bank.strongest(x, sum_sq)
            tone = measure if measure.purity >= self.params.tone_purity else None
            verdict = self._tones.update(tone)
            if verdict == "sit":
                return self._decide_now(AmdDecision.MACHINE, AmdReason.SIT)
            if verdict == "beep":
                return self._decide_now(AmdDecision.MACHINE, AmdReason.BEEP)
            if tone is None:
                voiced = bool(self._vad.is_speech(frame.tobytes(), SAMPLE_RATE))
                if voiced:
                    periodic = periodicity(self._previous, x) >= PERIODIC
                    if self._in_word and energy_db > self._peak_db:
                        self._peak_db = energy_db
        else:
            self._tones.update(None)
        self._previous = x
        return self._step(voiced, periodic)

    def _silent_gap(self, gap_ms: int) -> AmdResult | None:
        """Time with no audio (lost packets): silence for the word logic."""
        for _ in range(gap_ms // FRAME_MS):
            self._frames += 1
            self._tones.update(None)
            result = self._step(False, False)
            if result is not None:
                return result
        return None

    def _step(self, voiced: bool, periodic: bool) -> AmdResult | None:
        """Asterisk-style word logic for one frame of FRAME_MS."""
        p = self.params
        if voiced:
            self._voice_run_ms += FRAME_MS + self._gap_ms
            self._gap_ms = 0
            if periodic:
                self._periodic_run_ms += FRAME_MS
                # On a noisy line a recording's speech reaches us as short bursts of vowels:
                # any pitched sound breaks the silence that would make a person of it. A
                # breath or a click (no pitch) does not.
                self._silence_run_ms = 0
            else:
                self._silence_run_ms += FRAME_MS
            if self._in_word:
                self._voice_ms += FRAME_MS
            elif (
                self._voice_run_ms >= p.min_word_length and self._periodic_run_ms >= MIN_PERIODIC_MS
            ):
                # A new word: a long enough run with a pitch; its voiced time so far counts.
                self._in_word = True
                self._words += 1
                self._voice_ms += self._voice_run_ms
                if self._first_word_ms < 0:
                    self._first_word_ms = self._frames * FRAME_MS - self._voice_run_ms
            if self._in_word:
                if self._words > p.maximum_number_of_words:
                    return self._decide_now(AmdDecision.MACHINE, AmdReason.TOO_MANY_WORDS)
                if self._voice_ms >= p.greeting:
                    return self._decide_now(AmdDecision.MACHINE, AmdReason.LONG_GREETING)
                if self._frames * FRAME_MS - self._first_word_ms >= p.greeting_span:
                    # Talking on without a pause for longer than a person's greeting lasts,
                    # even if noise hid part of the voice.
                    return self._decide_now(AmdDecision.MACHINE, AmdReason.LONG_GREETING)
                if self._voice_run_ms >= p.maximum_word_length:
                    return self._decide_now(AmdDecision.MACHINE, AmdReason.MAX_WORD_LENGTH)
        else:
            self._silence_run_ms += FRAME_MS
            self._gap_ms += FRAME_MS
            if self._gap_ms >= p.between_words_silence:
                self._in_word = False
                self._voice_run_ms = 0
                self._periodic_run_ms = 0
                self._gap_ms = 0
        if self._words and self._silence_run_ms >= self._required_silence_ms():
            return self._decide_now(AmdDecision.HUMAN, AmdReason.HUMAN_SHORT_GREETING)
        elapsed_ms = self._frames * FRAME_MS
        if self._words == 0 and elapsed_ms >= p.initial_silence:
            reason = AmdReason.NO_SPEECH if self._heard_audio else AmdReason.NO_AUDIO
            return self._decide_now(AmdDecision.NOTSURE, reason)
        if elapsed_ms >= p.total_analysis_time:
            return self._decide_now(AmdDecision.NOTSURE, AmdReason.MAX_ANALYSIS_TIME)
        return None

    def _required_silence_ms(self) -> float:
        """Silence that ends a person's greeting: longer after a longer greeting.

        A person's answer has up to ~1 s of voice ("Алло?", "Да, слушаю"); one with nearly
        ``greeting`` of voice is as likely a recording pausing between its sentences, so the
        silence asked for grows linearly from ``after_greeting_silence`` (at 1 s of voice) to
        ``after_long_greeting_silence`` (at ``greeting``).
        """
        p = self.params
        share = (self._voice_ms - _SHORT_GREETING_MS) / max(1, p.greeting - _SHORT_GREETING_MS)
        share = min(1.0, max(0.0, share))
        extra = max(0, p.after_long_greeting_silence - p.after_greeting_silence)
        return p.after_greeting_silence + share * extra

    def _decide_now(self, decision: AmdDecision, reason: AmdReason) -> AmdResult:
        return self._decide(decision, reason, self._frames * FRAME_MS / 1000.0)

    def _decide(self, decision: AmdDecision, reason: AmdReason, elapsed: float) -> AmdResult:
        self._result = AmdResult(
            decision=decision,
            reason=reason,
            time=self.start_time + elapsed,
            elapsed=elapsed,
            words=self._words,
            voice_ms=self._voice_ms,
        )
        return self._result


_BANK: ToneBank | None = None


def _tone_bank() -> ToneBank:
    """The tone bank is the same for every call: build it once."""
    global _BANK
    if _BANK is None:
        _BANK = ToneBank(tuple(sorted(set(BEEP_GRID + SIT_FREQUENCIES))), block=FRAME_SAMPLES)
    return _BANK


__all__ = [
    "AmdDecision",
    "AmdReason",
    "AmdResult",
    "AnsweringMachineDetector",
    "periodicity",
]
