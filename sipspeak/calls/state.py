"""The life of one call, sans-IO: phases, the transition table, deadlines, the outcome.

A call is a customer leg (outbound through a trunk, or inbound from one) that may be
joined to an operator leg.  The asyncio service (:mod:`sipspeak.calls.service`) feeds the
signalling facts in with ``now`` (integer ms) and asks :meth:`CallState.get_timer` for the
next deadline; :meth:`CallState.handle_timer` returns what is due (cancel the dial, end the
call on the project's global timeout).  Nothing here reads a clock or touches a socket.

Outcomes follow manual §5.2.5 and :func:`sipspeak.calls.cdr.outcome_for_status`:
answered / busy (486, 600) / no answer (dial timeout, 480, 408, 487 after our CANCEL) /
failed (other 3xx–6xx, with the code) / congestion (503) / abandoned (the customer hung
up while waiting for an operator, or we released him at the queue timeout: the dialer's
«person answered but got no operator») /
lost (the media stopped: a technical drop after the answer) / answering machine.  The
dialer retries abandoned and lost alike (its «Потерян» class).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..dialer.ports import CallOutcome
from .cdr import CallTimes, outcome_for_status

__all__ = ["CallPhase", "CallInput", "TRANSITIONS", "Due", "CallState", "IllegalTransition"]


class CallPhase(enum.Enum):
    DIALLING = "dialling"  # INVITE sent (or received), no answer yet
    RINGING = "ringing"  # 180/183 seen
    ANSWERED = "answered"  # customer answered, no operator yet (waiting, AMD)
    BRIDGED = "bridged"  # customer and operator talk
    ENDED = "ended"


class CallInput(enum.Enum):
    PROGRESS = "1xx"
    ANSWER = "2xx"
    BRIDGE = "operator joined"
    END = "either side gone"


class IllegalTransition(RuntimeError):
    """A fact that cannot happen in the current phase (a bug in the caller)."""


_P, _I = CallPhase, CallInput
#: Every transition; a pair missing here is illegal, except END which ends any live phase.
TRANSITIONS: dict[tuple[CallPhase, CallInput], CallPhase] = {
    (_P.DIALLING, _I.PROGRESS): _P.RINGING,
    (_P.RINGING, _I.PROGRESS): _P.RINGING,
    (_P.DIALLING, _I.ANSWER): _P.ANSWERED,
    (_P.RINGING, _I.ANSWER): _P.ANSWERED,
    (_P.ANSWERED, _I.BRIDGE): _P.BRIDGED,
    (_P.DIALLING, _I.END): _P.ENDED,
    (_P.RINGING, _I.END): _P.ENDED,
    (_P.ANSWERED, _I.END): _P.ENDED,
    (_P.BRIDGED, _I.END): _P.ENDED,
}


class Due(enum.Enum):
    """What a deadline asks the service to do."""

    CANCEL_DIAL = "dial timeout: CANCEL the INVITE"
    GLOBAL_TIMEOUT = "global timeout: end the call whatever its state"


@dataclass(slots=True)
class CallState:
    """Instants and the outcome of one call; ``*_ms`` on the service's clock."""

    started_ms: int
    dial_timeout_ms: int | None = None
    global_timeout_ms: int | None = None
    phase: CallPhase = CallPhase.DIALLING
    answered_ms: int | None = None
    bridged_ms: int | None = None
    ended_ms: int | None = None
    outcome: CallOutcome | None = None
    sip_code: int | None = None
    cancelled_for_timeout: bool = False
    operator_answered: bool = False

    # -- inputs ----------------------------------------------------------------------------
    def _go(self, event: CallInput) -> None:
        nxt = TRANSITIONS.get((self.phase, event))
        if nxt is None:
            raise IllegalTransition(f"{event.value} in phase {self.phase.value}")
        self.phase = nxt

    @property
    def live(self) -> bool:
        return self.phase is not CallPhase.ENDED

    def progress(self, now_ms: int) -> bool:
        """A provisional response; True the first time (the customer's phone rings)."""
        first = self.phase is CallPhase.DIALLING
        if self.phase in (CallPhase.DIALLING, CallPhase.RINGING):
            self._go(CallInput.PROGRESS)
        return first

    def answer(self, now_ms: int) -> None:
        self._go(CallInput.ANSWER)
        self.answered_ms = max(now_ms, self.started_ms)

    def bridge(self, now_ms: int) -> None:
        self._go(CallInput.BRIDGE)
        self.bridged_ms = max(now_ms, self.answered_ms or self.started_ms)
        self.operator_answered = True

    def failed(self, now_ms: int, status: int) -> CallOutcome:
        """The INVITE got a final failure (or Timer B's 408, or 487 after our CANCEL)."""
        if self.cancelled_for_timeout and status in (487, 408):
            return self.end(now_ms, CallOutcome.NO_ANSWER)
        code = status if 300 <= status <= 699 else 500
        outcome = outcome_for_status(code)
        return self.end(now_ms, outcome, code)

    def hung_up(self, now_ms: int, *, media_lost: bool = False) -> CallOutcome:
        """Either side ended an answered call (BYE), or the media stopped.

        A BYE while the customer still waits for an operator is ``ABANDONED`` (what the
        dialer's queue calls a customer who left); silence on the media is ``LOST``.
        """
        if media_lost:
            return self.end(now_ms, CallOutcome.LOST)
        if self.phase is CallPhase.BRIDGED:
            return self.end(now_ms, CallOutcome.ANSWERED)
        return self.end(now_ms, CallOutcome.ABANDONED)

    def released(self, now_ms: int, *, machine: bool = False) -> CallOutcome:
        """We release an answered call (the dialer's ``hang_up``).

        Bridged, it was a conversation; after an answering-machine verdict it is that
        machine; otherwise the customer got no operator in time (the queue timeout): the
        dialer's ``ABANDONED``.
        """
        if self.phase is CallPhase.BRIDGED:
            return self.end(now_ms, CallOutcome.ANSWERED)
        return self.end(now_ms, CallOutcome.ANSWERING_MACHINE if machine
                        else CallOutcome.ABANDONED)

    def end(self, now_ms: int, outcome: CallOutcome, sip_code: int | None = None) -> CallOutcome:
        """End with ``outcome`` unless already ended (the first reason wins)."""
        if self.phase is CallPhase.ENDED:
            assert self.outcome is not None  # set together with the phase, below
            return self.outcome
        self._go(CallInput.END)
        self.ended_ms = max(now_ms, self.bridged_ms or self.answered_ms or self.started_ms)
        self.outcome = outcome
        self.sip_code = sip_code if sip_code is not None and 300 <= sip_code <= 699 else None
        return outcome

    # -- time ------------------------------------------------------------------------------
    def _deadlines(self) -> list[tuple[int, Due]]:
        out: list[tuple[int, Due]] = []
        if not self.live:
            return out
        if (self.dial_timeout_ms is not None and not self.cancelled_for_timeout
                and self.phase in (CallPhase.DIALLING, CallPhase.RINGING)):
            out.append((self.started_ms + self.dial_timeout_ms, Due.CANCEL_DIAL))
        if self.global_timeout_ms is not None:
            out.append((self.started_ms + self.global_timeout_ms, Due.GLOBAL_TIMEOUT))
        return out

    def get_timer(self) -> int | None:
        return min((at for at, _ in self._deadlines()), default=None)

    def handle_timer(self, now_ms: int) -> list[Due]:
        due = [what for at, what in self._deadlines() if at <= now_ms]
        if Due.CANCEL_DIAL in due:
            self.cancelled_for_timeout = True
        return due

    def times(self) -> CallTimes:
        ended = self.ended_ms if self.ended_ms is not None else self.started_ms
        return CallTimes(started_ms=self.started_ms, ended_ms=ended,
                         answered_ms=self.answered_ms, bridged_ms=self.bridged_ms)
