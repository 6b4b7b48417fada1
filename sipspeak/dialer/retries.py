"""Whether and when to dial a contact again: manual §5.2.5 «Попытки и тип набора».

Per outcome class the project sets an interval list in minutes («Интервал (мин)», e.g.
``"15;60;1440;60"``) and a number of attempts («Попыток»); over all of them stands the global
«Максимальное количество попыток». The rules here:

* after the k-th outcome of a class (k counted over the contact's whole history), the contact is
  dialled again after the k-th interval of that class's list; when k runs past the list, the
  last interval is reused;
* a class allows ``attempts`` outcomes of its kind: after the ``attempts``-th the contact is not
  dialled again for that reason;
* no contact is dialled more than ``max_attempts`` times in all.

Outcome → class: BUSY → «Занято»; NO_ANSWER → «Нет ответа»; ANSWERING_MACHINE → «Автоответчик»;
LOST and ABANDONED → «Потерян» (a person was reached but lost before talking to an operator);
CONGESTION (the trunk or network was saturated) → «Потерян» as well, since the contact is not to
blame; FAILED → «Нет ответа», except the statuses that say the number does not exist (404, 484,
604), which end the contact. ANSWERED ends dialling: the operator's status decides what follows.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from sipspeak.dialer.ports import CallOutcome

NUMBER_DOES_NOT_EXIST = frozenset({404, 484, 604})


class RetryClass(enum.Enum):
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    ANSWERING_MACHINE = "answering_machine"
    LOST = "lost"


class RetryIntervalError(ValueError):
    """An interval list that cannot be parsed; the message names the bad item."""


def parse_retry_intervals(text: str) -> tuple[int, ...]:
    """``"15;60;1440;60"`` → ``(15, 60, 1440, 60)`` minutes. Spaces around items are allowed;
    empty items, non-integers and intervals below one minute are errors."""
    if not text.strip():
        raise RetryIntervalError(
            "the interval list is empty: give minutes separated by ';'"
        )
    minutes = []
    for position, item in enumerate(text.split(";"), start=1):
        item = item.strip()
        if not item:
            raise RetryIntervalError(f"interval #{position} is empty in {text!r}")
        if not item.isdigit():
            raise RetryIntervalError(
                f"interval #{position} ({item!r}) is not a whole number of minutes in {text!r}"
            )
        value = int(item)
        if value < 1:
            raise RetryIntervalError(
                f"interval #{position} must be at least 1 minute in {text!r}"
            )
        minutes.append(value)
    return tuple(minutes)


@dataclass(frozen=True, slots=True)
class RetryRule:
    intervals_min: tuple[int, ...]
    attempts: int

    @classmethod
    def parse(cls, intervals: str, attempts: int) -> RetryRule:
        return cls(parse_retry_intervals(intervals), attempts)

    def __post_init__(self) -> None:
        if not self.intervals_min:
            raise RetryIntervalError("a retry rule needs at least one interval")
        if self.attempts < 0:
            raise ValueError(f"attempts must not be negative, got {self.attempts}")

    def delay_ms(self, occurrence: int) -> int:
        """Delay after the ``occurrence``-th outcome of this class (1-based)."""
        index = min(occurrence, len(self.intervals_min)) - 1
        return self.intervals_min[index] * 60_000


def retry_class(outcome: CallOutcome, sip_code: int | None = None) -> RetryClass | None:
    """The manual's class for an outcome, or ``None`` when the outcome ends dialling."""
    if outcome is CallOutcome.ANSWERED:
        return None
    if outcome is CallOutcome.FAILED:
        return None if sip_code in NUMBER_DOES_NOT_EXIST else RetryClass.NO_ANSWER
    return {
        CallOutcome.BUSY: RetryClass.BUSY,
        CallOutcome.NO_ANSWER: RetryClass.NO_ANSWER,
        CallOutcome.ANSWERING_MACHINE: RetryClass.ANSWERING_MACHINE,
        CallOutcome.LOST: RetryClass.LOST,
        CallOutcome.ABANDONED: RetryClass.LOST,
        CallOutcome.CONGESTION: RetryClass.LOST,
    }[outcome]


@dataclass(frozen=True, slots=True)
class AttemptHistory:
    """What storage keeps per contact: dials made and outcomes per class so far."""

    attempts: int = 0
    by_class: tuple[tuple[RetryClass, int], ...] = ()

    def count(self, cls: RetryClass) -> int:
        return dict(self.by_class).get(cls, 0)

    def after(self, cls: RetryClass | None) -> AttemptHistory:
        """The history with one more dial that ended in ``cls``."""
        counts = dict(self.by_class)
        if cls is not None:
            counts[cls] = counts.get(cls, 0) + 1
        return AttemptHistory(
            self.attempts + 1, tuple(sorted(counts.items(), key=lambda kv: kv[0].value))
        )


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """``retry_at_ms`` is when to dial again, or ``None`` with the ``reason`` it is over."""

    history: AttemptHistory
    retry_at_ms: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    rules: Mapping[RetryClass, RetryRule]

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(
                f"max attempts must be at least 1, got {self.max_attempts}"
            )
        missing = set(RetryClass) - set(self.rules)
        if missing:
            raise ValueError(f"no retry rule for {sorted(c.value for c in missing)}")

    def after_call(
        self,
        history: AttemptHistory,
        outcome: CallOutcome,
        ended_ms: int,
        *,
        sip_code: int | None = None,
    ) -> RetryDecision:
        """Account for one finished dial and decide the next one."""
        cls = retry_class(outcome, sip_code)
        updated = history.after(cls)
        if cls is None:
            reason = (
                "answered"
                if outcome is CallOutcome.ANSWERED
                else "number does not exist"
            )
            return RetryDecision(updated, None, reason)
        if updated.attempts >= self.max_attempts:
            return RetryDecision(
                updated, None, f"maximum of {self.max_attempts} attempts reached"
            )
        rule = self.rules[cls]
        occurrence = updated.count(cls)
        if occurrence >= rule.attempts:
            return RetryDecision(
                updated, None, f"{rule.attempts} attempts for {cls.value} used up"
            )
        return RetryDecision(
            updated, ended_ms + rule.delay_ms(occurrence), f"retry after {cls.value}"
        )
