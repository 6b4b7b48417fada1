"""SDP and ICE-candidate helpers of the WebRTC gateway (sans-IO).

Just enough reading of the browser's session descriptions to decide, before
aiortc sees them, whether they fit the softphone: one audio m-line offering
PCMU (RFC 4566 §5.14 m=, §6 a=rtpmap; RFC 3551 §6 static payload types), and
trickled candidates that parse (RFC 8839 §5.1).  aiortc's own parser asserts
on malformed candidates; wire input is validated here instead.
"""

from __future__ import annotations

from typing import Final

from aiortc import RTCIceCandidate
from aiortc.sdp import candidate_from_sdp

__all__ = [
    "WebRtcSignallingError",
    "media_kinds",
    "parse_candidate",
    "sdp_audio_codecs",
]

#: RFC 3551 §6: static payload types that need no a=rtpmap line.
_STATIC_FORMATS: Final = {"0": "PCMU", "8": "PCMA", "9": "G722", "13": "CN"}


class WebRtcSignallingError(ValueError):
    """Signalling input the gateway cannot use; ``status_hint`` says why.

    The hints reuse SIP's status codes (RFC 3261 §21) so the workspace can
    report them the same way: 488 Not Acceptable Here (no PCMU, not exactly
    one audio line), 400 (a candidate that does not parse), 491 (out of order
    for the offer/answer state), 481 (the leg is gone), 500 (our own failure).
    """

    def __init__(self, message: str, *, status_hint: int = 488) -> None:
        super().__init__(message)
        self.status_hint = status_hint


def sdp_audio_codecs(sdp: str) -> list[str]:
    """Encoding names of the first audio m-line's formats, in SDP order.

    RFC 4566 §5.14 (m=) and §6 (a=rtpmap); RFC 3264 §6.1: in an answer the
    first format is the one the answerer will send.
    """
    formats: list[str] = []
    names: dict[str, str] = {}
    in_audio = False
    seen_audio = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            if seen_audio:
                break
            fields = line[2:].split()
            in_audio = bool(fields) and fields[0] == "audio"
            if in_audio:
                seen_audio = True
                formats = fields[3:]
        elif in_audio and line.startswith("a=rtpmap:"):
            pt, _, encoding = line[len("a=rtpmap:") :].partition(" ")
            names[pt] = encoding.split("/", 1)[0].upper()
    return [names.get(pt, _STATIC_FORMATS.get(pt, pt)) for pt in formats]


def parse_candidate(text: str) -> RTCIceCandidate:
    """Parse one trickled candidate; raise :class:`WebRtcSignallingError` (400).

    RFC 8839 §5.1: ``candidate:<foundation> <component-id> <transport>
    <priority> <address> <port> typ <cand-type> [raddr … rport …] *(ext)``.
    The fields aiortc converts with ``int()`` are checked first, because its
    parser asserts on short input instead of raising.
    """
    value = text.strip().removeprefix("a=").removeprefix("candidate:")
    fields = value.split()
    if len(fields) < 8 or fields[6] != "typ":
        raise WebRtcSignallingError(
            f"malformed ICE candidate {text!r}", status_hint=400
        )
    if not (fields[1].isdigit() and fields[3].isdigit() and fields[5].isdigit()):
        raise WebRtcSignallingError(
            f"malformed ICE candidate {text!r}", status_hint=400
        )
    if not 0 < int(fields[5]) < 65536:
        raise WebRtcSignallingError(
            f"bad port in ICE candidate {text!r}", status_hint=400
        )
    try:
        return candidate_from_sdp(value)
    except ValueError as exc:
        raise WebRtcSignallingError(
            f"malformed ICE candidate {text!r}", status_hint=400
        ) from exc


def media_kinds(sdp: str) -> list[str]:
    """The media type of every m-line, in order (RFC 4566 §5.14)."""
    return [
        line[2:].split(" ", 1)[0] for line in sdp.splitlines() if line.startswith("m=")
    ]
