"""Errors raised by the SIP core, each carrying the response status it suggests.

Modelled on h11's ``RemoteProtocolError.error_status_hint``: whoever catches the
error decides whether a response is possible (a request whose Via, From, To,
Call-ID and CSeq were understood) and, if so, answers with ``status_hint``
(RFC 3261 §8.2, §16.3, §21.4).  A response that fails to parse is dropped and
never answered (RFC 3261 §18.1.2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sipspeak.sip.message import SipRequest


class SipError(Exception):
    """Base of every SIP core error; ``status_hint`` is the advised response code."""

    status_hint: int = 500

    def __init__(self, reason: str, *, request: SipRequest | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        # The request as far as it could be understood; set when it is
        # complete enough (Via, From, To, Call-ID, CSeq) to carry an error response.
        self.request = request


class SipParseError(SipError):
    """The bytes are not a well-formed SIP message (RFC 3261 §25) — 400 Bad Request."""

    status_hint = 400


class VersionNotSupportedError(SipParseError):
    """SIP-Version other than SIP/2.0 (RFC 3261 §8.2.1 / §21.5.7) — 505."""

    status_hint = 505


class MessageTooLargeError(SipParseError):
    """Message or header section larger than the configured cap — 513 (RFC 3261 §21.5.11)."""

    status_hint = 513


class UnsupportedUriSchemeError(SipParseError):
    """Request-URI scheme the element does not handle — 416 (RFC 3261 §8.2.2.1)."""

    status_hint = 416


class TooManyHopsError(SipError):
    """Max-Forwards reached zero on a request to forward — 483 (RFC 3261 §16.3)."""

    status_hint = 483


class CallTransactionDoesNotExist(SipError):
    """No dialog or transaction matches the request — 481 (RFC 3261 §12.2.2)."""

    status_hint = 481


class NotAcceptableHere(SipError):
    """No usable media in an offer — 488 (RFC 3261 §21.4.26, RFC 3264 §6)."""

    status_hint = 488


class LocalProtocolError(SipError):
    """The local application asked for something the protocol forbids."""

    status_hint = 500
