"""The states and events of an INVITE session (:mod:`sipspeak.sip.session`), on their own so
that the session's machinery and what it reports read apart.  ``session`` re-exports them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipspeak.sip.message import SipRequest, SipResponse

if TYPE_CHECKING:
    from sipspeak.sip.session import InviteSession

__all__ = ["CallAnswered", "CallConfirmed", "CallEnded", "CallFailed", "CallProgress",
           "IncomingCall", "ReinviteAnswered", "ReinviteReceived", "RequestInDialog",
           "SessionState"]


class SessionState(enum.Enum):
    """Life of an INVITE session (dialog states of §12 plus the time before a dialog)."""

    INITIAL = "Initial"
    EARLY = "Early"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


@dataclass(frozen=True, slots=True)
class IncomingCall:
    session: InviteSession
    request: SipRequest


@dataclass(frozen=True, slots=True)
class CallProgress:
    session: InviteSession
    response: SipResponse


@dataclass(frozen=True, slots=True)
class CallAnswered:
    session: InviteSession
    response: SipResponse


@dataclass(frozen=True, slots=True)
class CallConfirmed:
    session: InviteSession
    ack: SipRequest


@dataclass(frozen=True, slots=True)
class CallFailed:
    session: InviteSession
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    session: InviteSession
    by_remote: bool
    reason: str


@dataclass(frozen=True, slots=True)
class ReinviteReceived:
    session: InviteSession
    request: SipRequest


@dataclass(frozen=True, slots=True)
class RequestInDialog:
    """An OPTIONS, INFO or NOTIFY inside the call, already answered 200."""

    session: InviteSession
    request: SipRequest


@dataclass(frozen=True, slots=True)
class ReinviteAnswered:
    session: InviteSession
    response: SipResponse
