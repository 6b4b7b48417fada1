"""What the SIP core hands to its owner: addresses, datagrams to send, and events.

All are frozen slotted dataclasses (house style, after h11's events).  The
transaction layer and the user agent put ``Transmit`` items and events into one
ordered outbox; the asyncio shell sends the ``Transmit`` items and the
application reacts to the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sipspeak.sip.message import SipRequest, SipResponse

if TYPE_CHECKING:
    from sipspeak.sip.transaction import ClientTransaction, ServerTransaction

TransportName = Literal["UDP", "TCP", "TLS", "WS", "WSS"]


@dataclass(frozen=True, slots=True)
class Address:
    """Where a message came from or goes to.

    ``connection`` identifies the stream (TCP / WebSocket) a request arrived on:
    responses MUST go back on it (RFC 3261 §18.2.2, RFC 7118 §5).  ``None`` for
    UDP, or when the shell should open or pick a connection to ``host:port``.
    """

    transport: TransportName
    host: str
    port: int
    connection: int | None = None

    @property
    def reliable(self) -> bool:
        """Reliable transports turn off retransmission timers A, E, G (RFC 3261 §17)."""
        return self.transport != "UDP"


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send ``message`` to ``destination``."""

    message: SipRequest | SipResponse
    destination: Address


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request for the transaction user (RFC 3261 §17.2).

    ``transaction`` is the server transaction to answer through; it is ``None``
    for an ACK to a 2xx, which is its own transaction (§17.1.1.3, §13.2.2.4).
    ``merged`` marks a request without To tag whose Call-ID, From tag and CSeq
    match a live transaction of another branch: a fork that reached us twice
    (§8.2.2.2, answered 482).
    """

    request: SipRequest
    transaction: ServerTransaction | None
    source: Address
    merged: bool = False


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response passed up by a client transaction (RFC 3261 §17.1)."""

    response: SipResponse
    transaction: ClientTransaction


@dataclass(frozen=True, slots=True)
class TransactionTimedOut:
    """Timer B, F (no final response) or H (no ACK) fired (RFC 3261 §17.1.1.2, §17.2.1).

    ``owner`` is the transaction's owner when it timed out (the layer clears
    ``transaction.owner`` once the transaction is gone)."""

    transaction: ClientTransaction | ServerTransaction
    owner: object = None


@dataclass(frozen=True, slots=True)
class MessageRejected:
    """An inbound message that could not be used; ``reason`` for the log."""

    reason: str
    source: Address
