"""Message framing on stream transports — TCP and WebSocket (RFC 3261 §18.3, §7.5; RFC 5626 §3.5.1).

On a stream the Content-Length header is the only way to find where a message
ends, so it MUST be present (§18.3).  ``StreamFramer`` is sans-IO, like h11's
receive buffer: ``feed(data)`` appends bytes, ``next_message()`` returns one
whole message as bytes (ready for ``parse_message(..., stream=True)``) or
``None`` when more bytes are needed.  CRLF keep-alives between messages are
skipped and counted in ``keepalives`` (RFC 5626 §3.5.1 "double CRLF" pings;
the transport answers each with a single CRLF).  A framing error leaves the
stream unusable: the transport answers if it can and closes the connection.
"""

from __future__ import annotations

import re

from sipspeak.sip.errors import MessageTooLargeError, SipParseError
from sipspeak.sip.message import MAX_MESSAGE_SIZE

_CONTENT_LENGTH_RE = re.compile(
    rb"\r\n(?:content-length|l)[ \t]*:[ \t]*(\S*)", re.IGNORECASE
)


class StreamFramer:
    """Cut a byte stream into SIP messages by Content-Length."""

    __slots__ = ("_broken", "_buffer", "_max_size", "keepalives")

    def __init__(self, *, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buffer = bytearray()
        self._max_size = max_size
        self.keepalives = 0
        self._broken = False

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buffer += data

    @property
    def pending(self) -> int:
        """Bytes received but not yet returned as a message."""
        return len(self._buffer)

    def next_message(self) -> bytes | None:
        """Return the next complete message, or None if it has not fully arrived.

        Raises ``MessageTooLargeError`` (513) or ``SipParseError`` (400); after
        that the framer refuses further input, as the stream position is lost.
        """
        if self._broken:
            raise SipParseError("stream framing was lost")
        buf = self._buffer
        skipped = 0
        while buf[skipped : skipped + 2] == b"\r\n":
            skipped += 2
        if skipped:
            self.keepalives += skipped // 4 if skipped >= 4 else 0
            del buf[:skipped]
        if buf[:1] == b"\r" or not buf:
            return None
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > self._max_size:
                self._broken = True
                raise MessageTooLargeError("header section exceeds the size cap")
            return None
        head = bytes(buf[:end])
        match = _CONTENT_LENGTH_RE.search(head)
        if match is None:
            self._broken = True
            raise SipParseError(
                "Content-Length is mandatory on stream transports (§18.3)"
            )
        text = match.group(1)
        if not text.isdigit() or len(text) > 9:
            self._broken = True
            raise SipParseError(f"bad Content-Length {text[:20]!r}")
        total = end + 4 + int(text)
        if total > self._max_size:
            self._broken = True
            raise MessageTooLargeError(
                f"message of {total} bytes exceeds {self._max_size}"
            )
        if len(buf) < total:
            return None
        message = bytes(buf[:total])
        del buf[:total]
        return message
