"""Call detail records: every column of the manual's calls report (§6.2), computed here.

A call's life is a handful of instants (ms on one clock): started (INVITE sent or received),
answered (the customer's 200 OK, or our answer to an inbound call), bridged (an operator
joined), ended.  The report's durations follow from them:

    Длит.    duration = ended - started
    Дозвон   dial     = answered - started        (or the whole call if never answered)
    Биллинг  billing  = ended - answered          (what the trunk bills)
    Ожид.    wait     = bridged - answered        (customer waiting for an operator)
    Разг.    talk     = ended - bridged

so duration = dial + billing and billing = wait + talk, as in the manual's sample rows.
Money is integer kopecks: the trunk bills whole increments of ``billing_increment_s``
(per-second billing is an increment of 1) at ``price_per_minute_kopecks``, rounded up.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..dialer.ports import CallOutcome

__all__ = ["CallTimes", "Tariff", "MAX_PRICE_PER_MINUTE_KOPECKS", "MAX_BILLING_INCREMENT_S",
           "Durations", "durations", "price_kopecks", "outcome_for_status",
           "ClientStatus", "OperatorStatus", "client_status", "RESULT_LABELS",
           "operator_status", "completion_columns"]


class ClientStatus(enum.Enum):
    """«Статус клиента» column."""

    ANSWERED = "Клиент ответил"
    NO_ANSWER = "Клиент не ответил"
    BUSY = "Занято"
    FAILED = "Ошибка"
    CONGESTION = "Перегрузка сети"
    MACHINE = "Автоответчик"
    HUNG_UP_WAITING = "Клиент положил трубку в очереди"


class OperatorStatus(enum.Enum):
    """«Статус оператора» column."""

    ANSWERED = "Оператор ответил"
    NO_ANSWER = "Оператор не ответил"
    NOT_OFFERED = ""


RESULT_LABELS: dict[CallOutcome, str] = {
    CallOutcome.ANSWERED: "Разговор",
    CallOutcome.BUSY: "Занято",
    CallOutcome.NO_ANSWER: "Нет ответа",
    CallOutcome.FAILED: "Ошибка",
    CallOutcome.CONGESTION: "Перегрузка",
    CallOutcome.LOST: "Потерян",
    CallOutcome.ANSWERING_MACHINE: "Автоответчик",
    CallOutcome.ABANDONED: "Сброшен в очереди",
}


def outcome_for_status(code: int) -> CallOutcome:
    """The dialer's outcome for a final non-2xx answer to our INVITE (RFC 3261 §21).

    486 Busy Here and 600 Busy Everywhere are busy; 480 Temporarily Unavailable and 408
    Request Timeout are no answer, as is 487 after our own CANCEL on the dial timeout;
    503 Service Unavailable is congestion; anything else 3xx–6xx is a failure with its code.
    """
    if not 300 <= code <= 699:
        raise ValueError(f"not a final failure status: {code}")
    if code in (486, 600):
        return CallOutcome.BUSY
    if code in (408, 480, 487):
        return CallOutcome.NO_ANSWER
    if code == 503:
        return CallOutcome.CONGESTION
    return CallOutcome.FAILED


@dataclass(frozen=True, slots=True)
class CallTimes:
    started_ms: int
    ended_ms: int
    answered_ms: int | None = None
    bridged_ms: int | None = None

    def __post_init__(self) -> None:
        if self.ended_ms < self.started_ms:
            raise ValueError("a call cannot end before it starts")
        if self.answered_ms is not None and not self.started_ms <= self.answered_ms <= self.ended_ms:
            raise ValueError("the answer must fall within the call")
        if self.bridged_ms is not None:
            if self.answered_ms is None:
                raise ValueError("a call is bridged only after it is answered")
            if not self.answered_ms <= self.bridged_ms <= self.ended_ms:
                raise ValueError("the bridge must fall between the answer and the end")


@dataclass(frozen=True, slots=True)
class Durations:
    duration_ms: int
    dial_ms: int
    billing_ms: int
    wait_ms: int
    talk_ms: int


def durations(times: CallTimes) -> Durations:
    duration = times.ended_ms - times.started_ms
    if times.answered_ms is None:
        return Durations(duration, duration, 0, 0, 0)
    billing = times.ended_ms - times.answered_ms
    if times.bridged_ms is None:
        return Durations(duration, times.answered_ms - times.started_ms, billing, billing, 0)
    return Durations(duration, times.answered_ms - times.started_ms, billing,
                     times.bridged_ms - times.answered_ms, times.ended_ms - times.bridged_ms)


MAX_PRICE_PER_MINUTE_KOPECKS = 100_000
"""1000 ₽ a minute: dearer than any satellite or premium route; more is a typing slip."""
MAX_BILLING_INCREMENT_S = 600
"""Providers bill per second, per 6, 30 or 60 seconds; ten minutes is past any real plan."""


@dataclass(frozen=True, slots=True)
class Tariff:
    price_per_minute_kopecks: int
    billing_increment_s: int = 60

    def __post_init__(self) -> None:
        if self.price_per_minute_kopecks < 0:
            raise ValueError("price per minute cannot be negative")
        if self.billing_increment_s < 1:
            raise ValueError("billing increment must be at least one second")


def price_kopecks(billing_ms: int, tariff: Tariff) -> int:
    """Whole increments started are billed (a 61 s call on 60 s increments bills 120 s)."""
    if billing_ms <= 0:
        return 0
    increment_ms = tariff.billing_increment_s * 1000
    billed_ms = -(-billing_ms // increment_ms) * increment_ms
    return -(-billed_ms * tariff.price_per_minute_kopecks // 60_000)


def client_status(outcome: CallOutcome) -> ClientStatus:
    return {
        CallOutcome.ANSWERED: ClientStatus.ANSWERED,
        CallOutcome.BUSY: ClientStatus.BUSY,
        CallOutcome.NO_ANSWER: ClientStatus.NO_ANSWER,
        CallOutcome.FAILED: ClientStatus.FAILED,
        CallOutcome.CONGESTION: ClientStatus.CONGESTION,
        CallOutcome.LOST: ClientStatus.ANSWERED,
        CallOutcome.ANSWERING_MACHINE: ClientStatus.MACHINE,
        CallOutcome.ABANDONED: ClientStatus.HUNG_UP_WAITING,
    }[outcome]


def operator_status(*, offered: bool, answered: bool) -> OperatorStatus:
    """«Статус оператора»: empty when no operator was rung for the call."""
    if answered:
        return OperatorStatus.ANSWERED
    return OperatorStatus.NO_ANSWER if offered else OperatorStatus.NOT_OFFERED


def completion_columns(times: CallTimes, outcome: CallOutcome, *, sip_code: int | None,
                       tariff: Tariff | None, operator_offered: bool,
                       recording_path: str | None, amd_result: str | None) -> dict[str, object]:
    """The columns of a calls row filled in when the call ends (``db.calls.update``).

    ``result`` stores the :class:`CallOutcome` value (``close_dangling`` writes "lost" the
    same way); :data:`RESULT_LABELS` turns it into the report's words.
    """
    d = durations(times)
    return {
        "answered_at": times.answered_ms,
        "bridged_at": times.bridged_ms,
        "ended_at": times.ended_ms,
        "duration_ms": d.duration_ms,
        "dial_ms": d.dial_ms,
        "billing_ms": d.billing_ms,
        "wait_ms": d.wait_ms,
        "talk_ms": d.talk_ms,
        "client_status": client_status(outcome).value,
        "operator_status": operator_status(offered=operator_offered,
                                           answered=times.bridged_ms is not None).value,
        "result": outcome.value,
        "sip_code": sip_code,
        "amd_result": amd_result,
        "price_kopecks": price_kopecks(d.billing_ms, tariff) if tariff is not None else 0,
        "recording_path": recording_path,
    }
