"""The browser softphone's signalling messages (sans-IO): JSON text in, typed events out.

The softphone speaks over one WebSocket per browser tab (``/api/v1/softphone``).  Every
message is a JSON object with a ``type``; the SDP inside is the browser's (webrtc-pc §4.4
``RTCSessionDescription.sdp``, RFC 8829 JSEP).  Server → browser:

* ``{"type": "ring", "ring": id, "call": id, "caller": number, "project": name,
  "contact": id|null, "auto_answer": bool, "sdp": offer}`` — a call is offered; the browser
  answers with an SDP answer to that offer (JSEP §5.3) or declines;
* ``{"type": "ended", "ring": id}`` — the offer is withdrawn (another device answered, the
  caller left, the operator timeout passed) or the call on this device ended;
* ``{"type": "error", "error": code, "message": text}`` — a message was not understood or
  could not be used (nothing else changes);
* ``{"type": "held", "call": id, "on_hold": bool}`` — the call on this device is on hold
  (or back from it) as its ``hold`` / ``unhold`` asked;
* ``{"type": "pong"}`` — the answer to a ``ping``.

Browser → server: ``answer`` (``ring``, ``sdp``), ``decline`` (``ring``), ``hangup``
(``ring`` optional), ``candidate`` (``ring``, ``candidate``, ``sdpMid``: a trickled ICE
candidate, RFC 8838 §4), ``dtmf`` (``digits`` of ``0-9 * # A-D``), ``hold`` / ``unhold``
(``call``: the id of the ``ring`` message of the call talked on here) and ``ping``.

:func:`parse_message` validates a text frame once, at the edge: anything malformed raises
:class:`SignallingError` whose ``code`` goes back in the ``error`` message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "Answer",
    "BrowserMessage",
    "Candidate",
    "Decline",
    "Dtmf",
    "Hangup",
    "Hold",
    "Ping",
    "SignallingError",
    "error_message",
    "parse_message",
]

MAX_MESSAGE: Final = 64 * 1024
"""A text frame longer than this is refused (a browser's SDP answer is about 1-3 KiB)."""
MAX_SDP: Final = 32 * 1024
MAX_RING_ID: Final = 128
MAX_CALL_ID: Final = 128
_DIGITS: Final = re.compile(r"[0-9*#A-D]{1,32}")


class SignallingError(ValueError):
    """A message that cannot be used; ``code`` is sent back as the ``error`` field."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code


@dataclass(frozen=True, slots=True)
class Answer:
    """The browser's SDP answer to the offer of ring ``ring`` (JSEP §5.3)."""

    ring: str
    sdp: str


@dataclass(frozen=True, slots=True)
class Decline:
    """The operator refused the offered call (``ring`` None: every offer of this device)."""

    ring: str | None


@dataclass(frozen=True, slots=True)
class Hangup:
    """The operator ends the call on this device (or refuses it while it rings)."""

    ring: str | None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A trickled ICE candidate (RFC 8838 §4); ``candidate`` empty = end-of-candidates."""

    ring: str
    candidate: str
    sdp_mid: str | None


@dataclass(frozen=True, slots=True)
class Dtmf:
    """Keys the operator pressed during the call (sent on as RFC 4733 events)."""

    digits: str


@dataclass(frozen=True, slots=True)
class Hold:
    """The operator puts call ``call`` on hold (``on_hold``) or takes it off (manual §5.2.4):
    what his desk phone's re-INVITE with ``sendonly`` / ``sendrecv`` does (RFC 3264 §8.4)."""

    call: str
    on_hold: bool


@dataclass(frozen=True, slots=True)
class Ping:
    """A keep-alive; answered with ``pong``."""


BrowserMessage = Answer | Decline | Hangup | Candidate | Dtmf | Hold | Ping


def _optional(data: dict[str, Any], key: str, limit: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise SignallingError("bad_field", f"{key!r} must be a string of at most {limit}")
    return value


def _required(data: dict[str, Any], key: str, limit: int) -> str:
    value = _optional(data, key, limit)
    if not value:
        raise SignallingError("bad_field", f"{key!r} is required")
    return value


def parse_message(text: str | bytes) -> BrowserMessage:
    """One text frame of the browser, validated; raises :class:`SignallingError`."""
    if len(text) > MAX_MESSAGE:
        raise SignallingError("too_large")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise SignallingError("not_json") from None
    if not isinstance(data, dict):
        raise SignallingError("not_object")
    kind = data.get("type")
    if kind == "answer":
        return Answer(ring=_required(data, "ring", MAX_RING_ID),
                      sdp=_required(data, "sdp", MAX_SDP))
    if kind == "decline":
        return Decline(ring=_optional(data, "ring", MAX_RING_ID))
    if kind == "hangup":
        return Hangup(ring=_optional(data, "ring", MAX_RING_ID))
    if kind == "candidate":
        ring = _required(data, "ring", MAX_RING_ID)
        candidate = data.get("candidate")
        if not isinstance(candidate, str) or len(candidate) > 1024:
            raise SignallingError("bad_field", "'candidate' must be a string")
        return Candidate(ring=ring, candidate=candidate,
                         sdp_mid=_optional(data, "sdpMid", 64))
    if kind == "dtmf":
        digits = data.get("digits")
        if not isinstance(digits, str) or not _DIGITS.fullmatch(digits):
            raise SignallingError("bad_field", "'digits' must be 1-32 of 0-9 * # A-D")
        return Dtmf(digits=digits)
    if kind in ("hold", "unhold"):
        return Hold(call=_required(data, "call", MAX_CALL_ID), on_hold=kind == "hold")
    if kind == "ping":
        return Ping()
    raise SignallingError("unknown_type")


def error_message(code: str, detail: str = "") -> dict[str, Any]:
    """The ``error`` message for a refused input."""
    return {"type": "error", "error": code, "message": detail or code}
