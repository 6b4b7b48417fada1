"""The interface between dialer/ and calls/: what the dialer asks for, what it hears back.

dialer/ never touches SIP or RTP. It asks the call layer to *originate* a customer leg, to *ring*
an operator's leg, to *bridge* the two and to *hang up*; the call layer answers with the small
frozen events below. The real implementation lives in calls/; the simulator in
``sipspeak.dialer.simulation`` implements the same protocols with a fake clock, which is how the
pacing and the queue are tested and benchmarked.

Times are integer milliseconds (``*_ms``) on the caller's clock: the dialer never reads a clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class CallOutcome(enum.Enum):
    """How a customer leg ended, as counted by the retry rules of manual §5.2.5.

    ``ANSWERED`` is a person who reached an operator; ``ABANDONED`` is a person who answered but
    got no operator in time (queue timeout, or the pacer over-dialled). ``LOST`` is the manual's
    «Потерян»: the call dropped after the answer for a technical reason.
    """

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    CONGESTION = "congestion"
    LOST = "lost"
    ANSWERING_MACHINE = "answering_machine"
    ABANDONED = "abandoned"


class AmdVerdict(enum.Enum):
    HUMAN = "human"
    MACHINE = "machine"
    NOT_SURE = "not_sure"


@dataclass(frozen=True, slots=True)
class ProjectDialSettings:
    """What the call layer needs from a project to place one outbound call."""

    project_id: int
    trunk_id: int
    caller_id: str
    dial_timeout_ms: int
    amd_enabled: bool
    global_timeout_ms: int | None = None

    def __post_init__(self) -> None:
        if self.dial_timeout_ms <= 0:
            raise ValueError(
                f"dial timeout must be positive, got {self.dial_timeout_ms} ms"
            )
        if self.global_timeout_ms is not None and self.global_timeout_ms <= 0:
            raise ValueError(
                f"global timeout must be positive, got {self.global_timeout_ms} ms"
            )


@dataclass(frozen=True, slots=True)
class DialContact:
    """The contact being dialled: its id in storage and the number in E.164 digits."""

    contact_id: int
    phone: str

    def __post_init__(self) -> None:
        if not self.phone or not self.phone.lstrip("+").isdigit():
            raise ValueError(f"phone must be digits, got {self.phone!r}")


# --- events from the call layer about customer legs -------------------------------------------


@dataclass(frozen=True, slots=True)
class CallRinging:
    """180/183 received: the customer's phone rings."""

    call_id: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """200 OK on the customer leg; media flows. With AMD on, a verdict follows."""

    call_id: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class AmdResult:
    """The answering-machine detector's decision on an answered customer leg."""

    call_id: str
    at_ms: int
    verdict: AmdVerdict


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The customer leg is gone. ``sip_code`` carries the final failure status for ``FAILED``."""

    call_id: str
    at_ms: int
    outcome: CallOutcome
    sip_code: int | None = None

    def __post_init__(self) -> None:
        if self.outcome is CallOutcome.FAILED and self.sip_code is None:
            raise ValueError(
                "a FAILED call must carry the SIP status code that ended it"
            )
        if self.sip_code is not None and not 300 <= self.sip_code <= 699:
            raise ValueError(
                f"sip_code must be a final non-2xx status, got {self.sip_code}"
            )


CallEvent = CallRinging | CallAnswered | AmdResult | CallEnded


# --- events from the call layer about operator legs -------------------------------------------


@dataclass(frozen=True, slots=True)
class OperatorAnswered:
    """The operator picked up the offered call (or auto-answer did)."""

    ring_id: str
    operator_id: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class OperatorDeclined:
    """The operator rejected the offered call (486/603 from the phone, or the browser button)."""

    ring_id: str
    operator_id: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class OperatorRingTimeout:
    """The operator's leg rang for the operator timeout with no answer; the call layer cancelled it."""

    ring_id: str
    operator_id: int
    at_ms: int


OperatorEvent = OperatorAnswered | OperatorDeclined | OperatorRingTimeout


# --- what dialer/ asks of calls/ --------------------------------------------------------------


class CallControl(Protocol):
    """Customer legs: the call layer originates through the project's trunk and reports back
    with :data:`CallEvent` values."""

    def originate(self, contact: DialContact, settings: ProjectDialSettings) -> str:
        """Start an outbound call; return its call id at once (the INVITE goes out later)."""
        ...

    def bridge(self, call_id: str, operator_id: int) -> None:
        """Connect an answered customer leg to the operator leg that answered for it."""
        ...

    def hang_up(self, call_id: str) -> None:
        """Release a customer leg (CANCEL before the answer, BYE after)."""
        ...

    def abandon(self, call_id: str) -> None:
        """Release a person no operator took within the queue timeout — after the project's
        message to him, if it has one (a safe-harbour message)."""
        ...

    def robot_takes(self, call_id: str) -> bool:
        """Is the answered person the outside robot's (a «Робот» project's call, manual
        §5.2.1)? The queue then never sees him."""
        ...


class OperatorRinger(Protocol):
    """Operator legs for the ACD queue: ring one operator's phone or browser for a waiting call.

    With ``auto_answer`` the operator's device picks up by itself (manual §5.2.4
    «Автоответ оператора»); the call layer still reports :class:`OperatorAnswered`.
    """

    def ring_operator(
        self, ring_id: str, operator_id: int, call_id: str, *, auto_answer: bool
    ) -> None:
        """Start ringing. The queue names the ring; the :data:`OperatorEvent` values carry it."""
        ...

    def stop_ringing(self, ring_id: str) -> None:
        """Cancel an operator leg that is no longer needed (someone else answered, or the
        customer left)."""
        ...

    def start_hold_music(self, call_id: str) -> None:
        """Play music on hold to a waiting customer (manual §5.2.4 «Музыка на ожидании»)."""
        ...
