"""CDR arithmetic against the manual's sample rows, tariffs and SIP status mapping."""

from __future__ import annotations

import pytest

from sipspeak.calls.cdr import (CallTimes, ClientStatus, Tariff, client_status, durations,
                                outcome_for_status, price_kopecks)
from sipspeak.dialer.ports import CallOutcome


@pytest.mark.parametrize(
    ("dial", "wait", "talk"),
    [(2, 19, 0), (2, 9, 3), (5, 0, 0)],  # rows of the manual's calls report, in seconds
)
def test_report_columns_add_up_like_the_manual(dial: int, wait: int, talk: int) -> None:
    start = 1_700_000_000_000
    answered = start + dial * 1000
    bridged = answered + wait * 1000 if talk else None
    ended = answered + (wait + talk) * 1000
    d = durations(CallTimes(started_ms=start, answered_ms=answered, bridged_ms=bridged, ended_ms=ended))
    assert d.duration_ms == (dial + wait + talk) * 1000
    assert d.dial_ms == dial * 1000
    assert d.billing_ms == (wait + talk) * 1000
    assert (d.wait_ms, d.talk_ms) == (wait * 1000, talk * 1000)
    assert d.duration_ms == d.dial_ms + d.billing_ms and d.billing_ms == d.wait_ms + d.talk_ms


def test_unanswered_call_is_all_dialling() -> None:
    d = durations(CallTimes(started_ms=0, ended_ms=30_000))
    assert (d.duration_ms, d.dial_ms, d.billing_ms, d.wait_ms, d.talk_ms) == (30_000, 30_000, 0, 0, 0)


@pytest.mark.parametrize(
    "times",
    [dict(started_ms=10, ended_ms=5), dict(started_ms=0, ended_ms=10, answered_ms=11),
     dict(started_ms=0, ended_ms=10, bridged_ms=5),
     dict(started_ms=0, ended_ms=10, answered_ms=6, bridged_ms=5)],
)
def test_impossible_times_are_refused(times: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        CallTimes(**times)


@pytest.mark.parametrize(
    ("billing_ms", "price", "increment", "expected"),
    [(0, 150, 60, 0), (1, 150, 60, 150), (60_000, 150, 60, 150), (61_000, 150, 60, 300),
     (61_000, 150, 1, 153), (30_500, 100, 1, 52), (59_999, 99, 30, 99)],
)
def test_price_bills_whole_increments_rounding_up(billing_ms: int, price: int, increment: int,
                                                  expected: int) -> None:
    assert price_kopecks(billing_ms, Tariff(price, increment)) == expected


@pytest.mark.parametrize(
    ("code", "outcome"),
    [(486, CallOutcome.BUSY), (600, CallOutcome.BUSY), (480, CallOutcome.NO_ANSWER),
     (408, CallOutcome.NO_ANSWER), (487, CallOutcome.NO_ANSWER), (503, CallOutcome.CONGESTION),
     (404, CallOutcome.FAILED), (403, CallOutcome.FAILED), (302, CallOutcome.FAILED)],
)
def test_sip_status_maps_to_dialer_outcome(code: int, outcome: CallOutcome) -> None:
    assert outcome_for_status(code) is outcome


def test_non_final_status_is_not_an_outcome() -> None:
    for code in (100, 180, 200, 700):
        with pytest.raises(ValueError):
            outcome_for_status(code)
    assert client_status(CallOutcome.ANSWERING_MACHINE) is ClientStatus.MACHINE
