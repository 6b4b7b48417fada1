"""Agent state machine transitions, logged intervals and the §6.3 statistics columns."""

import pytest

from sipspeak.dialer.agent_stats import format_hms, operator_statistics
from sipspeak.dialer.agents import (
    TRANSITIONS,
    AgentRoster,
    AgentState,
    AgentStateInterval,
    AgentStateMachine,
    AgentTrigger,
    IllegalAgentTransition,
)

S, T = AgentState, AgentTrigger


def machine(state: AgentState = S.OFFLINE, **kw: int) -> AgentStateMachine:
    return AgentStateMachine(agent_id=7, now_ms=0, state=state, **kw)


def test_inbound_call_cycle_logs_every_interval() -> None:
    m = machine()
    steps = [
        (T.LOG_IN, 1_000, S.ONLINE),
        (T.SET_AVAILABLE, 3_000, S.AVAILABLE),
        (T.OFFER_CALL, 10_000, S.RINGING),
        (T.OPERATOR_ANSWERED, 12_000, S.TALKING),
        (T.CALL_ENDED, 72_000, S.WRAP_UP),
        (T.CARD_SAVED, 80_000, S.AVAILABLE),
    ]
    closed = []
    for trigger, at, expected in steps:
        closed.append(m.fire(trigger, at))
        assert m.state is expected
    assert [(i.state, i.start_ms, i.end_ms) for i in closed] == [
        (S.OFFLINE, 0, 1_000),
        (S.ONLINE, 1_000, 3_000),
        (S.AVAILABLE, 3_000, 10_000),
        (S.RINGING, 10_000, 12_000),
        (S.TALKING, 12_000, 72_000),
        (S.WRAP_UP, 72_000, 80_000),
    ]


def test_illegal_transition_names_state_and_trigger() -> None:
    m = machine(S.PAUSED)
    with pytest.raises(IllegalAgentTransition) as info:
        m.fire(T.OFFER_CALL, 5)
    assert "offer_call" in str(info.value) and "paused" in str(info.value)
    assert m.state is S.PAUSED and m.since_ms == 0


@pytest.mark.parametrize("state", [S.TALKING, S.RINGING, S.RINGBACK])
def test_cannot_log_out_in_the_middle_of_a_call(state: AgentState) -> None:
    with pytest.raises(IllegalAgentTransition):
        machine(state).fire(T.LOG_OUT, 1)


def test_do_not_disturb_takes_no_queue_call_but_dials_out_and_returns_to_dnd() -> None:
    m = machine(S.DO_NOT_DISTURB)
    assert not m.can(T.OFFER_CALL)
    m.fire(T.DIAL_OUT, 1_000)
    assert m.state is S.RINGBACK
    m.fire(T.CUSTOMER_ANSWERED, 9_000)
    m.fire(T.CALL_ENDED, 20_000)
    m.fire(T.CARD_SAVED, 25_000)
    assert m.state is S.DO_NOT_DISTURB


def test_failed_dial_and_withdrawn_offer_resume_previous_state() -> None:
    m = machine(S.AVAILABLE)
    m.fire(T.DIAL_OUT, 1)
    m.fire(T.DIAL_FAILED, 2)
    assert m.state is S.AVAILABLE
    m.fire(T.OFFER_CALL, 3)
    m.fire(T.OFFER_WITHDRAWN, 4)
    assert m.state is S.AVAILABLE


def test_wrap_up_limit_is_a_deadline_fired_by_the_caller() -> None:
    m = machine(S.TALKING, wrap_up_limit_ms=30_000)
    assert m.get_timer() is None
    m.fire(T.CALL_ENDED, 100_000)
    assert m.get_timer() == 130_000
    assert m.handle_timer(129_999) is None and m.state is S.WRAP_UP
    closed = m.handle_timer(130_000)
    assert closed == AgentStateInterval(7, S.WRAP_UP, 100_000, 130_000)
    assert m.state is S.AVAILABLE and m.get_timer() is None


def test_card_saved_before_the_limit_cancels_the_deadline() -> None:
    m = machine(S.TALKING, wrap_up_limit_ms=30_000)
    m.fire(T.CALL_ENDED, 0)
    m.fire(T.CARD_SAVED, 5_000)
    assert m.get_timer() is None and m.handle_timer(60_000) is None


def test_time_cannot_go_back() -> None:
    m = machine(S.ONLINE)
    m.fire(T.SET_AVAILABLE, 100)
    with pytest.raises(ValueError):
        m.fire(T.SET_PAUSED, 50)


def test_every_state_can_be_reached_and_left() -> None:
    targets = {t for t in TRANSITIONS.values() if isinstance(t, AgentState)}
    sources = {s for (s, _) in TRANSITIONS}
    assert targets == set(S)
    assert sources == set(S)


def test_roster_collects_intervals_and_fires_wrap_up_limits() -> None:
    roster = AgentRoster(wrap_up_limit_ms=1_000)
    roster.add(1, 0, S.TALKING)
    roster.add(2, 0, S.AVAILABLE)
    with pytest.raises(ValueError):
        roster.add(1, 0)
    roster.fire(1, T.CALL_ENDED, 500)
    assert roster.get_timer() == 1_500
    assert roster.handle_timer(1_500) == [1]
    assert [(i.state, i.start_ms, i.end_ms) for i in roster.drain_intervals()] == [
        (S.TALKING, 0, 500),
        (S.WRAP_UP, 500, 1_500),
    ]
    assert roster.drain_intervals() == []


def _day() -> list[AgentStateInterval]:
    rows = [
        (S.OFFLINE, 0, 100),
        (S.ONLINE, 100, 200),
        (S.AVAILABLE, 200, 300),
        (S.RINGING, 300, 310),
        (S.TALKING, 310, 500),
        (S.WRAP_UP, 500, 560),
        (S.PAUSED, 560, 700),
        (S.DO_NOT_DISTURB, 700, 800),
        (S.RINGBACK, 800, 830),
        (S.TALKING, 830, 900),
        (S.WRAP_UP, 900, 950),
        (S.ONLINE, 950, 1_000),
    ]
    return [AgentStateInterval(5, s, a, b) for s, a, b in rows] + [
        AgentStateInterval(6, S.TALKING, 0, 1_000)
    ]


def test_statistics_columns_over_the_whole_day() -> None:
    stats = operator_statistics(5, _day(), period_start_ms=0, period_end_ms=1_000)
    assert stats.available_ms == 100
    assert stats.ringing_ms == 10
    assert stats.talking_ms == 190 + 70
    assert stats.wrap_up_ms == 60 + 50
    assert stats.paused_ms == 140
    assert stats.do_not_disturb_ms == 100
    assert stats.ringback_ms == 30
    assert stats.inactive_ms == 100 + 50
    # В линии: available, ringing, talking, wrap-up, DND, ringback; not pause, not «Не в сети».
    assert stats.on_line_ms == 100 + 10 + 260 + 110 + 100 + 30


def test_statistics_clip_intervals_to_the_period() -> None:
    stats = operator_statistics(5, _day(), period_start_ms=250, period_end_ms=600)
    assert stats.available_ms == 50
    assert stats.ringing_ms == 10
    assert stats.talking_ms == 190
    assert stats.wrap_up_ms == 60
    assert stats.paused_ms == 40
    assert stats.inactive_ms == 0
    assert stats.on_line_ms == 50 + 10 + 190 + 60


def test_statistics_of_an_operator_never_online_are_zero() -> None:
    stats = operator_statistics(99, _day(), period_start_ms=0, period_end_ms=1_000)
    assert stats.on_line_ms == stats.inactive_ms == stats.talking_ms == 0


def test_hms_format_allows_more_than_a_day() -> None:
    assert format_hms((30 * 3600 + 9 * 60 + 30) * 1000 + 999) == "30:09:30"
    assert format_hms(0) == "00:00:00"
