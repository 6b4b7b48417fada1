"""The four transaction state machines of RFC 3261 §17, with the RFC 6026 "Accepted" states.

* ``ClientInviteTransaction``    — §17.1.1 (Figure 5) + RFC 6026 §8.4 (Accepted, Timer M)
* ``ClientNonInviteTransaction`` — §17.1.2 (Figure 6)
* ``ServerInviteTransaction``    — §17.2.1 (Figure 7) + RFC 6026 §8.6 (Accepted, Timer L)
* ``ServerNonInviteTransaction`` — §17.2.2 (Figure 8)

Each machine's transitions live in one table, ``{(state, input): (next state,
actions)}``; a pair missing from the table means the input is absorbed (a
retransmission or a stray) — or, for a call by the transaction user, a
``LocalProtocolError``.  Timers are deadlines (``get_timer`` / ``handle_timer(now)``);
no clock is read.  Transactions are created and fed by ``TransactionLayer``
(``transaction_layer.py``); the transaction user calls only
``ServerTransaction.send_response(response, now)`` and reads ``state``,
``request``, ``last_response``.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from sipspeak.sip.errors import LocalProtocolError
from sipspeak.sip.events import (
    Address,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
    Transmit,
)
from sipspeak.sip.headers import CSeq
from sipspeak.sip.message import SipRequest, SipResponse

if TYPE_CHECKING:
    from sipspeak.sip.timers import TimerValues


class TransactionContext(Protocol):
    """What a transaction needs from its layer."""

    timer_values: TimerValues
    outbox: list[object]

    def schedule(self, deadline: float, owner: _Transaction) -> None: ...

    def terminated(self, transaction: _Transaction) -> None: ...


class State(enum.Enum):
    """Transaction states, named as in RFC 3261 §17 and RFC 6026."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class Input(enum.Enum):
    """What can happen to a transaction."""

    RECV_1XX = "1xx received"
    RECV_2XX = "2xx received"
    RECV_FINAL = "300-699 received"
    RECV_REQUEST = "request retransmission"
    RECV_ACK = "ACK received"
    SEND_1XX = "TU sends 1xx"
    SEND_2XX = "TU sends 2xx"
    SEND_FINAL = "TU sends 300-699"
    TIMER_A = "A"
    TIMER_B = "B"
    TIMER_D = "D"
    TIMER_E = "E"
    TIMER_F = "F"
    TIMER_G = "G"
    TIMER_H = "H"
    TIMER_I = "I"
    TIMER_J = "J"
    TIMER_K = "K"
    TIMER_L = "L"
    TIMER_M = "M"


class Action(enum.Enum):
    """Side effects of a transition, run in table order."""

    RETRANSMIT_REQUEST = enum.auto()  # Timers A / E
    BACK_OFF = enum.auto()  # double the A / E / G interval (E, G capped at T2)
    HOLD_AT_T2 = enum.auto()  # E in Proceeding: retransmit every T2 (§17.1.2.2)
    PASS_UP = enum.auto()  # hand the response to the TU
    SEND_ACK = enum.auto()  # ACK for a 300-699 (§17.1.1.3)
    SEND_RESPONSE = enum.auto()  # send the response given by the TU
    RESEND_RESPONSE = (
        enum.auto()
    )  # resend the last response (retransmitted request / G)
    TIMEOUT = enum.auto()  # tell the TU (Timers B, F, H)
    START_D = enum.auto()
    START_G_H = enum.auto()
    START_I = enum.auto()
    START_J = enum.auto()
    START_K = enum.auto()
    START_L = enum.auto()
    START_M = enum.auto()
    CANCEL_A_B = enum.auto()
    CANCEL_E = enum.auto()
    CANCEL_G = enum.auto()


S, I, A = State, Input, Action
Table = dict[tuple[State, Input], tuple[State, tuple[Action, ...]]]

# RFC 3261 Figure 5 with RFC 6026 Figure 3.
CLIENT_INVITE: Table = {
    (S.CALLING, I.TIMER_A): (S.CALLING, (A.RETRANSMIT_REQUEST, A.BACK_OFF)),
    (S.CALLING, I.TIMER_B): (S.TERMINATED, (A.TIMEOUT,)),
    (S.CALLING, I.RECV_1XX): (S.PROCEEDING, (A.CANCEL_A_B, A.PASS_UP)),
    (S.PROCEEDING, I.RECV_1XX): (S.PROCEEDING, (A.PASS_UP,)),
    (S.CALLING, I.RECV_2XX): (S.ACCEPTED, (A.CANCEL_A_B, A.PASS_UP, A.START_M)),
    (S.PROCEEDING, I.RECV_2XX): (S.ACCEPTED, (A.PASS_UP, A.START_M)),
    (S.ACCEPTED, I.RECV_2XX): (S.ACCEPTED, (A.PASS_UP,)),
    (S.ACCEPTED, I.TIMER_M): (S.TERMINATED, ()),
    (S.CALLING, I.RECV_FINAL): (
        S.COMPLETED,
        (A.CANCEL_A_B, A.PASS_UP, A.SEND_ACK, A.START_D),
    ),
    (S.PROCEEDING, I.RECV_FINAL): (S.COMPLETED, (A.PASS_UP, A.SEND_ACK, A.START_D)),
    (S.COMPLETED, I.RECV_FINAL): (S.COMPLETED, (A.SEND_ACK,)),
    (S.COMPLETED, I.TIMER_D): (S.TERMINATED, ()),
}

# RFC 3261 Figure 6.
CLIENT_NON_INVITE: Table = {
    (S.TRYING, I.TIMER_E): (S.TRYING, (A.RETRANSMIT_REQUEST, A.BACK_OFF)),
    (S.TRYING, I.TIMER_F): (S.TERMINATED, (A.TIMEOUT,)),
    (S.TRYING, I.RECV_1XX): (S.PROCEEDING, (A.PASS_UP,)),
    (S.TRYING, I.RECV_2XX): (S.COMPLETED, (A.CANCEL_E, A.PASS_UP, A.START_K)),
    (S.TRYING, I.RECV_FINAL): (S.COMPLETED, (A.CANCEL_E, A.PASS_UP, A.START_K)),
    (S.PROCEEDING, I.TIMER_E): (S.PROCEEDING, (A.RETRANSMIT_REQUEST, A.HOLD_AT_T2)),
    (S.PROCEEDING, I.TIMER_F): (S.TERMINATED, (A.TIMEOUT,)),
    (S.PROCEEDING, I.RECV_1XX): (S.PROCEEDING, (A.PASS_UP,)),
    (S.PROCEEDING, I.RECV_2XX): (S.COMPLETED, (A.CANCEL_E, A.PASS_UP, A.START_K)),
    (S.PROCEEDING, I.RECV_FINAL): (S.COMPLETED, (A.CANCEL_E, A.PASS_UP, A.START_K)),
    (S.COMPLETED, I.TIMER_K): (S.TERMINATED, ()),
}

# RFC 3261 Figure 7 with RFC 6026 Figure 5.
SERVER_INVITE: Table = {
    (S.PROCEEDING, I.RECV_REQUEST): (S.PROCEEDING, (A.RESEND_RESPONSE,)),
    (S.PROCEEDING, I.SEND_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.PROCEEDING, I.SEND_2XX): (S.ACCEPTED, (A.SEND_RESPONSE, A.START_L)),
    (S.PROCEEDING, I.SEND_FINAL): (S.COMPLETED, (A.SEND_RESPONSE, A.START_G_H)),
    (S.ACCEPTED, I.SEND_2XX): (S.ACCEPTED, (A.SEND_RESPONSE,)),
    (S.ACCEPTED, I.TIMER_L): (S.TERMINATED, ()),
    (S.COMPLETED, I.RECV_REQUEST): (S.COMPLETED, (A.RESEND_RESPONSE,)),
    (S.COMPLETED, I.TIMER_G): (S.COMPLETED, (A.RESEND_RESPONSE, A.BACK_OFF)),
    (S.COMPLETED, I.TIMER_H): (S.TERMINATED, (A.TIMEOUT,)),
    (S.COMPLETED, I.RECV_ACK): (S.CONFIRMED, (A.CANCEL_G, A.START_I)),
    (S.CONFIRMED, I.TIMER_I): (S.TERMINATED, ()),
}

# RFC 3261 Figure 8.
SERVER_NON_INVITE: Table = {
    (S.TRYING, I.SEND_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.TRYING, I.SEND_2XX): (S.COMPLETED, (A.SEND_RESPONSE, A.START_J)),
    (S.TRYING, I.SEND_FINAL): (S.COMPLETED, (A.SEND_RESPONSE, A.START_J)),
    (S.PROCEEDING, I.SEND_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.PROCEEDING, I.SEND_2XX): (S.COMPLETED, (A.SEND_RESPONSE, A.START_J)),
    (S.PROCEEDING, I.SEND_FINAL): (S.COMPLETED, (A.SEND_RESPONSE, A.START_J)),
    (S.PROCEEDING, I.RECV_REQUEST): (S.PROCEEDING, (A.RESEND_RESPONSE,)),
    (S.COMPLETED, I.RECV_REQUEST): (S.COMPLETED, (A.RESEND_RESPONSE,)),
    (S.COMPLETED, I.TIMER_J): (S.TERMINATED, ()),
}

_TIMER_INPUT = {i.value: i for i in Input if i.name.startswith("TIMER_")}


def _response_input(status: int, *, received: bool) -> Input:
    if status < 200:
        return I.RECV_1XX if received else I.SEND_1XX
    if status < 300:
        return I.RECV_2XX if received else I.SEND_2XX
    return I.RECV_FINAL if received else I.SEND_FINAL


class _Transaction:
    """Shared mechanics: the table walk and the timers."""

    TABLE: ClassVar[Table] = {}
    __slots__ = (
        "_ctx",
        "_interval",
        "_timers",
        "key",
        "last_response",
        "owner",
        "peer",
        "request",
        "state",
    )

    def __init__(
        self,
        *,
        key: tuple[str, ...],
        state: State,
        request: SipRequest,
        peer: Address,
        ctx: TransactionContext,
    ) -> None:
        self.key = key
        self.state = state
        self.request = request
        self.peer = peer  # destination of a client transaction, source of a server one
        self.last_response: SipResponse | None = None
        # Whoever the transaction user routes this transaction's events to
        # (a session, a listener); the layer never looks at it.
        self.owner: Any = None
        self._ctx = ctx
        self._timers: dict[str, float] = {}
        self._interval = ctx.timer_values.t1

    @property
    def reliable(self) -> bool:
        return self.peer.reliable

    @property
    def is_terminated(self) -> bool:
        return self.state is State.TERMINATED

    def abandon_timers(self) -> None:
        self._timers.clear()

    def get_timer(self) -> float | None:
        """Earliest pending deadline of this transaction."""
        return min(self._timers.values(), default=None)

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now`` (earliest first)."""
        while self._timers and self.state is not State.TERMINATED:
            name, deadline = min(self._timers.items(), key=lambda item: item[1])
            if deadline > now:
                self._ctx.schedule(deadline, self)
                return
            del self._timers[name]
            self._step(_TIMER_INPUT[name], now, None)

    def _start(self, name: str, now: float, delay: float) -> None:
        deadline = now + delay
        self._timers[name] = deadline
        self._ctx.schedule(deadline, self)

    def _step(self, what: Input, now: float, response: SipResponse | None) -> bool:
        row = self.TABLE.get((self.state, what))
        if row is None:
            return False
        self.state, actions = row
        for action in actions:
            self._act(action, now, response)
        if self.state is State.TERMINATED:
            self._timers.clear()
            self._ctx.terminated(self)
        return True

    def _transmit(self, message: SipRequest | SipResponse) -> None:
        self._ctx.outbox.append(Transmit(message, self.peer))

    def _act(self, action: Action, now: float, response: SipResponse | None) -> None:
        values = self._ctx.timer_values
        if action is A.RETRANSMIT_REQUEST:
            self._transmit(self.request)
        elif action is A.BACK_OFF:
            doubled = self._interval * 2
            # Timer A doubles without bound; E and G are capped at T2 (§17.1.2.2, §17.2.1).
            self._interval = (
                doubled if "A" in self.TIMER_NAMES else min(doubled, values.t2)
            )
            self._start(self.TIMER_NAMES[0], now, self._interval)
        elif action is A.HOLD_AT_T2:
            self._start("E", now, values.t2)
        elif action is A.TIMEOUT:
            self._ctx.outbox.append(TransactionTimedOut(self, self.owner))  # type: ignore[arg-type]
        elif action is A.SEND_RESPONSE or action is A.RESEND_RESPONSE:
            if response is not None:
                self.last_response = response
            if self.last_response is not None:
                self._transmit(self.last_response)
        elif action is A.PASS_UP and response is not None:
            self._ctx.outbox.append(ResponseReceived(response, self))  # type: ignore[arg-type]
        elif action is A.SEND_ACK and response is not None:
            self._transmit(_ack_for(self.request, response))
        elif action is A.CANCEL_A_B:
            self._timers.pop("A", None)
            self._timers.pop("B", None)
        elif action is A.CANCEL_E:
            self._timers.pop("E", None)
        elif action is A.CANCEL_G:
            self._timers.pop("G", None)
        else:
            self._start_timer(action, now)

    def _start_timer(self, action: Action, now: float) -> None:
        values = self._ctx.timer_values
        unreliable = not self.reliable
        if action is A.START_D:
            self._start(
                "D", now, 32.0 if unreliable else 0.0
            )  # §17.1.1.2: > 32 s on UDP
        elif action is A.START_G_H:
            if unreliable:
                self._interval = values.t1
                self._start("G", now, values.t1)
            self._start("H", now, values.timeout)
        elif action is A.START_I:
            self._start("I", now, values.t4 if unreliable else 0.0)
        elif action is A.START_J:
            self._start("J", now, values.timeout if unreliable else 0.0)
        elif action is A.START_K:
            self._start("K", now, values.t4 if unreliable else 0.0)
        elif action is A.START_L:
            self._start("L", now, values.timeout)
        elif action is A.START_M:
            self._start("M", now, values.timeout)

    TIMER_NAMES: ClassVar[tuple[str, ...]] = ()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.request.method} {self.key[0]} {self.state.value}>"


def _ack_for(invite: SipRequest, response: SipResponse) -> SipRequest:
    """The ACK a client INVITE transaction sends for a 300-699 (RFC 3261 §17.1.1.3)."""
    return SipRequest(
        method="ACK",
        uri=invite.uri,
        via=invite.via[:1],
        from_=invite.from_,
        to=response.to,
        call_id=invite.call_id,
        cseq=CSeq(invite.cseq.seq, "ACK"),
        max_forwards=70,
        route=list(invite.route),
    )


class ClientInviteTransaction(_Transaction):
    """RFC 3261 §17.1.1 with RFC 6026 §8.4."""

    TABLE = CLIENT_INVITE
    TIMER_NAMES = ("A",)
    __slots__ = ()

    def start(self, now: float) -> None:
        self._transmit(self.request)
        if not self.reliable:
            self._start("A", now, self._ctx.timer_values.t1)
        self._start("B", now, self._ctx.timer_values.timeout)

    def receive_response(self, response: SipResponse, now: float) -> None:
        self._step(_response_input(response.status, received=True), now, response)


class ClientNonInviteTransaction(_Transaction):
    """RFC 3261 §17.1.2."""

    TABLE = CLIENT_NON_INVITE
    TIMER_NAMES = ("E",)
    __slots__ = ()

    def start(self, now: float) -> None:
        self._transmit(self.request)
        if not self.reliable:
            self._start("E", now, self._ctx.timer_values.t1)
        self._start("F", now, self._ctx.timer_values.timeout)

    def receive_response(self, response: SipResponse, now: float) -> None:
        self._step(_response_input(response.status, received=True), now, response)


class _ServerTransaction(_Transaction):
    __slots__ = ()

    def start(self, now: float, merged: bool = False) -> None:
        event = RequestReceived(self.request, self, self.peer, merged)  # type: ignore[arg-type]
        self._ctx.outbox.append(event)

    def receive_request(self, request: SipRequest, now: float) -> None:
        """A retransmission, or the ACK for our 300-699."""
        what = I.RECV_ACK if request.method == "ACK" else I.RECV_REQUEST
        self._step(what, now, None)

    def send_response(self, response: SipResponse, now: float) -> None:
        """Send a response from the transaction user (§17.2.1, §17.2.2)."""
        if not self._step(
            _response_input(response.status, received=False), now, response
        ):
            raise LocalProtocolError(
                f"cannot send {response.status} in state {self.state.value} of {self!r}"
            )


class ServerInviteTransaction(_ServerTransaction):
    """RFC 3261 §17.2.1 with RFC 6026 §8.6."""

    TABLE = SERVER_INVITE
    TIMER_NAMES = ("G",)
    __slots__ = ()


class ServerNonInviteTransaction(_ServerTransaction):
    """RFC 3261 §17.2.2."""

    TABLE = SERVER_NON_INVITE
    __slots__ = ()


ClientTransaction = ClientInviteTransaction | ClientNonInviteTransaction
ServerTransaction = ServerInviteTransaction | ServerNonInviteTransaction
