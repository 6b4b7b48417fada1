"""Operator statistics columns of manual §6.3 «Статистика операторов», from state intervals.

The manual's columns and how each is computed here (every figure is milliseconds of the
operator's intervals clipped to the report period):

=================  ============================================================================
«В линии»          all working time: available, do-not-disturb, wrap-up, talking, ringing and
                   ringback («включая разговор, ожидание звонка, не беспокоить, доступен»).
                   Pause is not working time and «Не в сети» is not on the line.
«Доступен»         available: waiting for the queue to hand over a call.
«Пауза»            paused.
«Не беспокоить»    do-not-disturb.
«В карточке»       wrap-up: filling in the client card after the call.
«В разговоре»      talking.
«Неактивен»        signed in with the status «Не в сети» (:attr:`AgentState.ONLINE`). Time logged
                   out is not counted: the manual limits this column to the working day, and a
                   logged-out operator has none.
«Ожидание ответа»  ringing: an inbound/queue call waits for the operator to press «Ответить».
«Слушает гудки»    ringback: the operator dialled out and waits for the customer to answer.
=================  ============================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sipspeak.dialer.agents import AgentState, AgentStateInterval

ON_LINE_STATES = frozenset(
    {
        AgentState.AVAILABLE,
        AgentState.DO_NOT_DISTURB,
        AgentState.WRAP_UP,
        AgentState.TALKING,
        AgentState.RINGING,
        AgentState.RINGBACK,
    }
)


@dataclass(frozen=True, slots=True)
class OperatorStatistics:
    """One row of §6.3 for one operator and one period; all durations in milliseconds."""

    agent_id: int
    on_line_ms: int
    available_ms: int
    paused_ms: int
    do_not_disturb_ms: int
    wrap_up_ms: int
    talking_ms: int
    inactive_ms: int
    ringing_ms: int
    ringback_ms: int


def _clip(interval: AgentStateInterval, start_ms: int, end_ms: int) -> int:
    return max(0, min(interval.end_ms, end_ms) - max(interval.start_ms, start_ms))


def operator_statistics(
    agent_id: int,
    intervals: Iterable[AgentStateInterval],
    *,
    period_start_ms: int,
    period_end_ms: int,
) -> OperatorStatistics:
    """Sum one operator's intervals over ``[period_start_ms, period_end_ms)`` into §6.3 columns.

    Intervals of other operators are ignored, so a whole day's history can be passed in.
    """
    if period_end_ms < period_start_ms:
        raise ValueError(
            f"period ends before it starts: {period_start_ms}..{period_end_ms}"
        )
    by_state = dict.fromkeys(AgentState, 0)
    for interval in intervals:
        if interval.agent_id == agent_id:
            by_state[interval.state] += _clip(interval, period_start_ms, period_end_ms)
    return statistics_from_totals(agent_id, by_state)


def statistics_from_totals(agent_id: int, by_state: Mapping[AgentState, int]) -> OperatorStatistics:
    """The §6.3 columns from the milliseconds already summed per state (absent = 0)."""
    by_state = {state: by_state.get(state, 0) for state in AgentState}
    return OperatorStatistics(
        agent_id=agent_id,
        on_line_ms=sum(by_state[s] for s in ON_LINE_STATES),
        available_ms=by_state[AgentState.AVAILABLE],
        paused_ms=by_state[AgentState.PAUSED],
        do_not_disturb_ms=by_state[AgentState.DO_NOT_DISTURB],
        wrap_up_ms=by_state[AgentState.WRAP_UP],
        talking_ms=by_state[AgentState.TALKING],
        inactive_ms=by_state[AgentState.ONLINE],
        ringing_ms=by_state[AgentState.RINGING],
        ringback_ms=by_state[AgentState.RINGBACK],
    )


def format_hms(duration_ms: int) -> str:
    """``HH:MM:SS`` as the report shows it (hours may exceed 24: «30:09:30»)."""
    seconds = duration_ms // 1000
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
