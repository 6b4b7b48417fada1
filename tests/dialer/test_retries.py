"""Retry schedules per outcome (manual §5.2.5) and the global maximum of attempts."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipspeak.dialer.ports import CallOutcome
from sipspeak.dialer.retries import (
    AttemptHistory,
    RetryClass,
    RetryIntervalError,
    RetryPolicy,
    RetryRule,
    parse_retry_intervals,
    retry_class,
)

MIN = 60_000


def manual_policy(max_attempts: int = 20) -> RetryPolicy:
    """The manual's screenshot: busy 15;60;1440;60 ×5, no answer 240;1380;162 ×3, …"""
    return RetryPolicy(
        max_attempts=max_attempts,
        rules={
            RetryClass.BUSY: RetryRule.parse("15;60;1440;60", 5),
            RetryClass.NO_ANSWER: RetryRule.parse("240;1380;162", 3),
            RetryClass.ANSWERING_MACHINE: RetryRule.parse("3360;1440;120", 3),
            RetryClass.LOST: RetryRule.parse("1;2;4;6", 4),
        },
    )


def test_parse_intervals() -> None:
    assert parse_retry_intervals("15;60;1440;60") == (15, 60, 1440, 60)
    assert parse_retry_intervals(" 5 ; 10 ") == (5, 10)
    assert parse_retry_intervals("30") == (30,)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("15;;60", "#2 is empty"),
        ("15;abc", "#2 ('abc') is not a whole number"),
        ("15;1.5", "not a whole number"),
        ("15;-3", "not a whole number"),
        ("0;5", "at least 1 minute"),
        ("15;60;", "#3 is empty"),
    ],
)
def test_bad_interval_lists_are_rejected_naming_the_item(
    text: str, fragment: str
) -> None:
    with pytest.raises(RetryIntervalError) as info:
        parse_retry_intervals(text)
    assert fragment in str(info.value)


@given(st.lists(st.integers(min_value=1, max_value=100_000), min_size=1, max_size=12))
def test_parse_is_the_inverse_of_joining(values: list[int]) -> None:
    assert parse_retry_intervals(";".join(map(str, values))) == tuple(values)


def test_busy_follows_the_interval_list_then_reuses_the_last_interval() -> None:
    policy = manual_policy()
    history = AttemptHistory()
    delays = []
    for n in range(4):
        decision = policy.after_call(history, CallOutcome.BUSY, 1_000 * n)
        assert decision.retry_at_ms is not None
        delays.append((decision.retry_at_ms - 1_000 * n) // MIN)
        history = decision.history
    assert delays == [15, 60, 1440, 60]
    rule = RetryRule.parse("15;60", 9)
    assert [rule.delay_ms(k) // MIN for k in range(1, 6)] == [15, 60, 60, 60, 60]


def test_a_class_stops_after_its_number_of_attempts() -> None:
    policy = manual_policy()
    history = AttemptHistory()
    for _ in range(2):
        decision = policy.after_call(history, CallOutcome.NO_ANSWER, 0)
        assert decision.retry_at_ms is not None
        history = decision.history
    final = policy.after_call(history, CallOutcome.NO_ANSWER, 0)
    assert final.retry_at_ms is None and "3 attempts for no_answer" in final.reason
    assert final.history.attempts == 3


def test_classes_count_separately_under_the_global_maximum() -> None:
    policy = manual_policy(max_attempts=5)
    history = AttemptHistory()
    outcomes = [
        CallOutcome.BUSY,
        CallOutcome.NO_ANSWER,
        CallOutcome.BUSY,
        CallOutcome.LOST,
    ]
    for outcome in outcomes:
        decision = policy.after_call(history, outcome, 0)
        assert decision.retry_at_ms is not None
        history = decision.history
    assert (
        history.count(RetryClass.BUSY) == 2 and history.count(RetryClass.NO_ANSWER) == 1
    )
    # Second busy used the second busy interval, not the fourth of the list.
    assert (
        policy.after_call(AttemptHistory(), CallOutcome.BUSY, 0).retry_at_ms == 15 * MIN
    )
    final = policy.after_call(history, CallOutcome.BUSY, 0)
    assert final.retry_at_ms is None and "maximum of 5" in final.reason


def test_answered_and_nonexistent_numbers_end_dialling() -> None:
    policy = manual_policy()
    assert (
        policy.after_call(AttemptHistory(), CallOutcome.ANSWERED, 0).retry_at_ms is None
    )
    gone = policy.after_call(AttemptHistory(), CallOutcome.FAILED, 0, sip_code=404)
    assert gone.retry_at_ms is None and "does not exist" in gone.reason
    server = policy.after_call(AttemptHistory(), CallOutcome.FAILED, 0, sip_code=500)
    assert server.retry_at_ms == 240 * MIN


def test_outcome_classes() -> None:
    assert retry_class(CallOutcome.ABANDONED) is RetryClass.LOST
    assert retry_class(CallOutcome.CONGESTION) is RetryClass.LOST
    assert retry_class(CallOutcome.ANSWERING_MACHINE) is RetryClass.ANSWERING_MACHINE
    assert (
        manual_policy()
        .after_call(AttemptHistory(), CallOutcome.ABANDONED, 0)
        .retry_at_ms
        == 1 * MIN
    )


def test_policy_needs_every_class_and_a_sane_maximum() -> None:
    with pytest.raises(ValueError, match="no retry rule"):
        RetryPolicy(max_attempts=3, rules={RetryClass.BUSY: RetryRule((5,), 1)})
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0, rules=manual_policy().rules)
