"""Answering-machine detection parameters.

The names follow Asterisk's ``AMD()`` application (``amd.conf``): initial silence, greeting,
after-greeting silence, total analysis time, minimum word length, between-words silence,
maximum number of words, silence threshold and maximum word length. ``ASTERISK_DEFAULTS``
holds Asterisk's own values; the defaults of :class:`AmdParams` are the values tuned on the
``tune`` split of the project's corpus (``scripts/amd_corpus.py``), with the reasoning beside
each field. A project stores overrides as a JSON object; :meth:`AmdParams.from_mapping`
validates it once, at the edge.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final


class AmdParamsError(ValueError):
    """A parameter mapping that cannot configure the detector (unknown key, wrong type, absurd value)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AmdParams:
    """Thresholds of the detector; every duration is in milliseconds.

    Tuned defaults (Asterisk's value in brackets) and why:

    * ``initial_silence`` 2500 [2500]: a person who picks up speaks within ~1.5 s; 2.5 s of
      silence means nobody is talking (NOTSURE, "no-speech").
    * ``greeting`` 2200 [1500]: total voiced time that marks a recorded greeting. 1500 ms
      throws away people who answer with a phrase ("Да, я вас слушаю, говорите" is ~1.8 s
      of voice); greetings of machines run 3–8 s, so 2.2 s costs them nothing but latency.
    * ``after_greeting_silence`` 700 [800]: silence after a short greeting (up to 1 s of
      voice) that says a person finished and waits. The HUMAN decision comes this long after
      he stops, so it drives the latency bar (<= 1.0 s after the greeting); 700 ms keeps a
      0.3 s margin. Pauses inside a recorded sentence are shorter; see the next field for the
      pauses between a recording's sentences.
    * ``after_long_greeting_silence`` 1000 (not in Asterisk): the silence asked for grows
      linearly from ``after_greeting_silence`` at 1 s of voice to this at ``greeting`` of
      voice. A recording that said two sentences (~2 s of voice) and pauses 0.7-0.9 s before
      the third is not a person; a person's long answer ("Да, я вас слушаю, говорите", ~1.5 s
      of voice) waits ~0.85 s for its HUMAN, the short answers that make the median 0.7 s.
    * ``total_analysis_time`` 5000 [5000]: hard stop of the analysis.
    * ``min_word_length`` 100 [100]: voiced runs shorter than this are clicks or breaths.
    * ``between_words_silence`` 80 [50]: 50 ms splits a word at every stop consonant with
      20 ms frames; 80 ms still separates words spoken at a normal pace.
    * ``maximum_number_of_words`` 6 [2]: two words throw away "Да, слушаю" or "Алло? Алло?";
      a person's greeting has at most ~5 words, a machine passes 6 within its first sentence.
    * ``silence_threshold`` 64 [256]: mean absolute sample value under which a frame is silent
      whatever the voice-activity detector says. Asterisk's 256 hides quiet callers on weak
      lines; the adaptive noise floor does the real work above this absolute floor.
    * ``maximum_word_length`` 5000 [5000]: a voiced run this long is a recording or music.

    Extra (not in Asterisk):

    * ``greeting_span`` 3000: talking from the first word for this long without a pause of
      ``after_greeting_silence`` is a recording (MACHINE, "long-greeting") even when noise hid
      part of its voice from the ``greeting`` count; a person's longest answers span ~2 s.
    * ``noise_margin_db`` 7: a frame counts as voice only when it is this far above the
      adaptive noise floor (so a hissing line is not a voice).
    * ``vad_mode`` 2: webrtcvad aggressiveness 0–3.
    * ``min_tone_ms`` 200: a steady pure tone this long is a beep (beeps last 0.3-1 s);
      ``tone_purity`` 0.8: the share of a frame's energy one tone must hold. A beep 12 dB over
      line noise still holds ~0.9; a drawn-out vowel of a low monotone voice held one harmonic
      at 0.7-0.76 for 200 ms in the tune split, and was called a beep at 0.7.
    """

    initial_silence: int = 2500
    greeting: int = 2200
    after_greeting_silence: int = 700
    after_long_greeting_silence: int = 1000
    total_analysis_time: int = 5000
    min_word_length: int = 100
    between_words_silence: int = 80
    maximum_number_of_words: int = 6
    silence_threshold: int = 64
    maximum_word_length: int = 5000
    greeting_span: int = 3000
    noise_margin_db: float = 7.0
    vad_mode: int = 2
    min_tone_ms: int = 200
    tone_purity: float = 0.8

    def __post_init__(self) -> None:
        for name, (low, high) in _RANGES.items():
            value = getattr(self, name)
            kind = _KINDS[name]
            int_for_float = kind is float and isinstance(value, int)
            if isinstance(value, bool) or not (isinstance(value, kind) or int_for_float):
                raise AmdParamsError(
                    f"{name} must be {'a number' if kind is float else 'an integer'}, got {value!r}"
                )
            if not low <= value <= high:
                raise AmdParamsError(f"{name}={value!r} is out of range [{low}, {high}]")
        if self.greeting > self.total_analysis_time:
            raise AmdParamsError(
                f"greeting={self.greeting} ms exceeds total_analysis_time="
                f"{self.total_analysis_time} ms: a long greeting could never be detected"
            )
        if self.initial_silence > self.total_analysis_time:
            raise AmdParamsError(
                f"initial_silence={self.initial_silence} ms exceeds total_analysis_time="
                f"{self.total_analysis_time} ms"
            )
        if self.after_long_greeting_silence < self.after_greeting_silence:
            raise AmdParamsError(
                f"after_long_greeting_silence={self.after_long_greeting_silence} ms is shorter "
                f"than after_greeting_silence={self.after_greeting_silence} ms"
            )
        if self.min_word_length > self.maximum_word_length:
            raise AmdParamsError(
                f"min_word_length={self.min_word_length} ms exceeds maximum_word_length="
                f"{self.maximum_word_length} ms"
            )

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any], *, base: AmdParams | None = None
    ) -> AmdParams:
        """Build parameters from a project's JSON overrides on top of ``base`` (the defaults).

        Raises :class:`AmdParamsError` naming the offending key for unknown keys, wrong types
        and values out of their sane range.
        """
        if not isinstance(mapping, Mapping):
            raise AmdParamsError(
                f"AMD parameters must be a JSON object, got {type(mapping).__name__}"
            )
        unknown = sorted(str(k) for k in mapping if k not in _RANGES)
        if unknown:
            raise AmdParamsError(
                f"unknown AMD parameter(s): {', '.join(unknown)}; known: {', '.join(sorted(_RANGES))}"
            )
        values: dict[str, Any] = {}
        for key, value in mapping.items():
            kind = _KINDS[key]
            if isinstance(value, bool):
                raise AmdParamsError(f"{key} must be a number, got {value!r}")
            if kind is int and isinstance(value, float):
                if not value.is_integer():
                    raise AmdParamsError(f"{key} must be an integer, got {value!r}")
                value = int(value)
            if kind is float and isinstance(value, int):
                value = float(value)
            values[key] = value
        return dataclasses.replace(base if base is not None else cls(), **values)

    def to_mapping(self) -> dict[str, int | float]:
        """The parameters as a JSON-ready mapping (inverse of :meth:`from_mapping`)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


# Sane ranges: anything outside is a configuration mistake, not a tuning choice.
_RANGES: Final[dict[str, tuple[float, float]]] = {
    "initial_silence": (200, 30000),
    "greeting": (200, 30000),
    "after_greeting_silence": (100, 10000),
    "after_long_greeting_silence": (100, 10000),
    "total_analysis_time": (500, 60000),
    "min_word_length": (10, 2000),
    "between_words_silence": (10, 2000),
    "maximum_number_of_words": (1, 100),
    "silence_threshold": (0, 32767),
    "maximum_word_length": (100, 60000),
    "greeting_span": (200, 60000),
    "noise_margin_db": (0.0, 40.0),
    "vad_mode": (0, 3),
    "min_tone_ms": (40, 2000),
    "tone_purity": (0.1, 1.0),
}
_KINDS: Final[dict[str, type]] = {
    name: (float if name in ("noise_margin_db", "tone_purity") else int) for name in _RANGES
}

ASTERISK_DEFAULTS: Final[AmdParams] = AmdParams(
    initial_silence=2500,
    greeting=1500,
    after_greeting_silence=800,
    after_long_greeting_silence=800,  # Asterisk asks the same silence after any greeting
    total_analysis_time=5000,
    min_word_length=100,
    between_words_silence=50,
    maximum_number_of_words=2,
    silence_threshold=256,
    maximum_word_length=5000,
    greeting_span=5000,  # no such limit in Asterisk: the whole analysis
)
