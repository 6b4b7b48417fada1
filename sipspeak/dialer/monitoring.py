"""«Мониторинг» (manual §7): the live picture of the queues and their operators.

:func:`board` reads the campaign runtime's state at one instant — every running project's
queue (strategy, customers waiting and since when, what its dialling came to since the
campaign started: calls ringing, persons, abandoned, withdrawn) and the state of each of its operators
with the moment he entered it — without changing anything.  The web layer shows it and pushes
it to the browser when it changes; times are on the runtime's epoch clock (ms), so the page
can count «Время» on from ``since_ms``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sipspeak.dialer.acd import QueueStrategy
from sipspeak.dialer.agents import AgentRoster, AgentState
from sipspeak.dialer.campaign import Campaign

__all__ = ["Board", "OperatorLine", "QueueLine", "board", "operator_line"]


@dataclass(frozen=True, slots=True)
class OperatorLine:
    """One operator of a queue: his state («Статус») and since when («Время»)."""

    operator_id: int
    state: AgentState
    since_ms: int | None
    """None while he has not signed in since the service started (shown «Не в сети»)."""


@dataclass(frozen=True, slots=True)
class QueueLine:
    """One project's queue."""

    project_id: int
    strategy: QueueStrategy
    running: bool
    """The project is launched and dialling (a stopped one still finishes its calls)."""
    waiting: int
    """«Звонки в очереди»: customers waiting for an operator."""
    oldest_waiting_since_ms: int | None
    operators: tuple[OperatorLine, ...]
    """In the project's list order."""
    dial_mode: str = "progressive"
    """«Тип автонабора»: unlimited, progressive or predictive."""
    dialling: int = 0
    """Calls the dialer placed that ring (or are in AMD) right now."""
    persons: int = 0
    """Since the campaign started: persons who answered the dialer's calls …"""
    abandoned: int = 0
    """… those of them no operator took in time (the abandonment rate's numerator) …"""
    withdrawn: int = 0
    """… and dials the predictive pacer withdrew still ringing."""


@dataclass(frozen=True, slots=True)
class Board:
    now_ms: int
    queues: tuple[QueueLine, ...]


def operator_line(roster: AgentRoster, operator_id: int) -> OperatorLine:
    """One operator's state and since when; «Не в сети» with no time before he signed in."""
    if operator_id not in roster:
        return OperatorLine(operator_id=operator_id, state=AgentState.OFFLINE, since_ms=None)
    machine = roster[operator_id]
    return OperatorLine(operator_id=operator_id, state=machine.state, since_ms=machine.since_ms)


def board(campaigns: Mapping[int, Campaign], roster: AgentRoster, now_ms: int) -> Board:
    """The picture of every campaign the runtime holds, ordered by project id."""
    queues = []
    for project_id in sorted(campaigns):
        campaign = campaigns[project_id]
        operators = tuple(operator_line(roster, op) for op in campaign.operator_ids)
        tally = campaign.tally
        queues.append(QueueLine(
            project_id=project_id, strategy=campaign.queue.settings.strategy,
            running=campaign.switch.running, waiting=campaign.queue.waiting_count,
            oldest_waiting_since_ms=campaign.queue.oldest_entered_ms, operators=operators,
            dial_mode=campaign.dial_mode, dialling=campaign.dialling, persons=tally.persons,
            abandoned=tally.abandoned, withdrawn=tally.withdrawn))
    return Board(now_ms=now_ms, queues=tuple(queues))
