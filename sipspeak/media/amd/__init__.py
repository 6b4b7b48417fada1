"""Answering-machine detection on the callee's audio (sans-IO).

The call layer feeds 8 kHz 16-bit mono audio and stream time to an
:class:`AnsweringMachineDetector` and reads one :class:`AmdResult`: HUMAN, MACHINE or NOTSURE
with its :class:`AmdReason`. :class:`AmdParams` holds the thresholds (Asterisk's names, tuned
defaults) and validates a project's JSON overrides. ``sipspeak amd-eval`` is
:func:`sipspeak.media.amd.evaluate.main`.
"""

from .detector import AmdDecision, AmdReason, AmdResult, AnsweringMachineDetector
from .params import ASTERISK_DEFAULTS, AmdParams, AmdParamsError

__all__ = [
    "ASTERISK_DEFAULTS",
    "AmdDecision",
    "AmdParams",
    "AmdParamsError",
    "AmdReason",
    "AmdResult",
    "AnsweringMachineDetector",
]
