"""Campaign schedule: project dates, weekday intervals, client local time, next allowed time."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from sipspeak.dialer.schedule import (
    WHOLE_DAY,
    CampaignSchedule,
    TimeWindow,
    parse_clock,
)

MSK = ZoneInfo("Europe/Moscow")
VLAT = ZoneInfo("Asia/Vladivostok")  # UTC+10, seven hours ahead of Moscow
KGD = ZoneInfo("Europe/Kaliningrad")  # UTC+2


def ms(zone: ZoneInfo, *args: int) -> int:
    return int(datetime(*args, tzinfo=zone).timestamp() * 1000)  # type: ignore[misc]


def when(at_ms: int | None, zone: ZoneInfo = MSK) -> datetime | None:
    return None if at_ms is None else datetime.fromtimestamp(at_ms / 1000, tz=zone)


def every_day(window: TimeWindow, **kw: object) -> CampaignSchedule:
    return CampaignSchedule(
        call_center_zone=MSK,
        weekly={d: (window,) for d in range(7)},
        **kw,  # type: ignore[arg-type]
    )


NINE_TO_NINE = TimeWindow.parse("09:00", "21:00")


def test_vladivostok_client_is_called_only_in_his_own_daytime() -> None:
    s = every_day(NINE_TO_NINE, client_window=NINE_TO_NINE)
    # 10:00 Moscow = 17:00 Vladivostok: allowed.
    assert s.allows(ms(MSK, 2026, 11, 26, 10, 0), VLAT)
    # 15:00 Moscow = 22:00 Vladivostok: the client's evening is over.
    at = ms(MSK, 2026, 11, 26, 15, 0)
    assert not s.allows(at, VLAT)
    assert s.allows(at, MSK)
    # Next: his 09:00 is 02:00 in Moscow, outside the center's hours; so 09:00 Moscow.
    assert when(s.next_allowed(at, VLAT)) == datetime(2026, 11, 27, 9, 0, tzinfo=MSK)


def test_kaliningrad_client_waits_for_his_morning() -> None:
    s = every_day(TimeWindow.parse("08:00", "22:00"), client_window=NINE_TO_NINE)
    at = ms(MSK, 2026, 11, 26, 8, 30)  # 07:30 in Kaliningrad
    assert when(s.next_allowed(at, KGD), KGD) == datetime(
        2026, 11, 26, 9, 0, tzinfo=KGD
    )


def test_center_interval_crossing_midnight_belongs_to_its_start_day() -> None:
    # Friday 22:00–02:00 only (2026-11-27 is a Friday).
    s = CampaignSchedule(
        call_center_zone=MSK, weekly={4: (TimeWindow.parse("22:00", "02:00"),)}
    )
    assert s.allows(
        ms(MSK, 2026, 11, 28, 1, 30), MSK
    )  # Saturday night, still Friday's window
    assert not s.allows(ms(MSK, 2026, 11, 28, 2, 0), MSK)
    assert not s.allows(
        ms(MSK, 2026, 11, 27, 1, 30), MSK
    )  # Thursday's night: no window
    assert when(s.next_allowed(ms(MSK, 2026, 11, 28, 2, 0), MSK)) == datetime(
        2026, 12, 4, 22, 0, tzinfo=MSK
    )


def test_client_window_crossing_midnight() -> None:
    s = every_day(WHOLE_DAY, client_window=TimeWindow.parse("23:00", "01:00"))
    assert s.allows(ms(VLAT, 2026, 11, 26, 0, 30), VLAT)
    assert not s.allows(ms(VLAT, 2026, 11, 26, 1, 0), VLAT)
    assert when(s.next_allowed(ms(VLAT, 2026, 11, 26, 1, 0), VLAT), VLAT) == datetime(
        2026, 11, 26, 23, 0, tzinfo=VLAT
    )


def test_weekday_intervals_and_days_without_calls() -> None:
    # Monday 09:00–12:00 and 14:00–18:00, nothing else.
    s = CampaignSchedule(
        call_center_zone=MSK,
        weekly={
            0: (TimeWindow.parse("09:00", "12:00"), TimeWindow.parse("14:00", "18:00"))
        },
    )
    monday = (2026, 11, 30)
    assert when(s.next_allowed(ms(MSK, *monday, 12, 0), MSK)) == datetime(
        *monday, 14, 0, tzinfo=MSK
    )
    assert s.allows(ms(MSK, *monday, 17, 59), MSK)
    tuesday_noon = ms(MSK, 2026, 12, 1, 12, 0)
    assert when(s.next_allowed(tuesday_noon, MSK)) == datetime(
        2026, 12, 7, 9, 0, tzinfo=MSK
    )


def test_project_dates_are_inclusive_in_call_center_time() -> None:
    s = every_day(WHOLE_DAY, start_date=date(2026, 12, 1), end_date=date(2026, 12, 3))
    before = ms(MSK, 2026, 11, 20, 12, 0)
    assert when(s.next_allowed(before, MSK)) == datetime(2026, 12, 1, 0, 0, tzinfo=MSK)
    assert s.allows(ms(MSK, 2026, 12, 3, 23, 59), MSK)
    assert s.next_allowed(ms(MSK, 2026, 12, 4, 0, 0), MSK) is None


def test_no_allowed_time_before_the_project_ends_gives_none() -> None:
    # Only Sundays, but the project runs Monday to Wednesday.
    s = CampaignSchedule(
        call_center_zone=MSK,
        weekly={6: (NINE_TO_NINE,)},
        start_date=date(2026, 11, 30),
        end_date=date(2026, 12, 2),
    )
    assert s.next_allowed(ms(MSK, 2026, 11, 30, 10, 0), MSK) is None


def test_daylight_saving_zone_client() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    s = every_day(WHOLE_DAY, client_window=NINE_TO_NINE)
    # Berlin in summer is UTC+2 (Moscow UTC+3): 09:00 Berlin = 10:00 Moscow.
    summer = ms(MSK, 2026, 7, 1, 9, 30)
    assert when(s.next_allowed(summer, berlin)) == datetime(
        2026, 7, 1, 10, 0, tzinfo=MSK
    )
    # In winter UTC+1: 09:00 Berlin = 11:00 Moscow.
    winter = ms(MSK, 2026, 1, 15, 9, 30)
    assert when(s.next_allowed(winter, berlin)) == datetime(
        2026, 1, 15, 11, 0, tzinfo=MSK
    )


def test_bad_input_is_rejected_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_clock("9am")
    with pytest.raises(ValueError, match="weekdays"):
        CampaignSchedule(call_center_zone=MSK, weekly={7: (NINE_TO_NINE,)})
    with pytest.raises(ValueError, match="before it starts"):
        every_day(NINE_TO_NINE, start_date=date(2026, 2, 1), end_date=date(2026, 1, 1))
    assert parse_clock(" 08:05 ") == time(8, 5)
