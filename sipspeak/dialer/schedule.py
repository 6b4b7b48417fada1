"""When a project may call a client: project dates, weekday intervals, the client's local time.

Manual §5.2.1 «Дата начало и конца», «Часовой пояс колл-центра», «Время звонка клиенту» and
§5.2.3 «Дни недели и время звонка». A call may start at an instant when all three hold:

* the call center's calendar date (its IANA zone) is within the project's dates, both inclusive;
* the call center's local time is inside one of that weekday's intervals. An interval whose end
  is not after its start crosses midnight and belongs to the weekday it starts on
  (Fri 22:00–02:00 runs into Saturday night); start == end means the whole day;
* the client's local time (the client's IANA zone, from the phone number's region) is inside the
  client window, with the same midnight rule.

Instants are integer milliseconds since the epoch (UTC); wall times are converted with
``zoneinfo``, so DST and the zones' history are honoured (a wall time in a DST gap resolves as
``datetime`` does, fold 0). Pure functions of their arguments: nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_SEARCH_DAYS = 400
"""How far :meth:`CampaignSchedule.next_allowed` looks ahead before giving up."""


def _to_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _local_date(at_ms: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(at_ms / 1000, tz=zone).date()


def parse_clock(text: str) -> time:
    """``"08:30"`` → ``time(8, 30)``; raises ``ValueError`` naming the bad value."""
    try:
        hours, minutes = text.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"time of day must be HH:MM, got {text!r}") from None


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A daily interval of wall time ``[start, end)``; see the module docstring for midnight."""

    start: time
    end: time

    @classmethod
    def parse(cls, start: str, end: str) -> TimeWindow:
        return cls(parse_clock(start), parse_clock(end))

    def on(self, day: date, zone: ZoneInfo) -> tuple[int, int]:
        """The window that starts on ``day`` in ``zone``, as epoch milliseconds."""
        begin = datetime.combine(day, self.start, tzinfo=zone)
        end_day = day if self.end > self.start else day + timedelta(days=1)
        return _to_ms(begin), _to_ms(datetime.combine(end_day, self.end, tzinfo=zone))


WHOLE_DAY = TimeWindow(time(0, 0), time(0, 0))


def _intersect(
    a: list[tuple[int, int]], b: list[tuple[int, int]]
) -> Iterator[tuple[int, int]]:
    """Intersection of two sorted lists of half-open intervals (each may overlap itself)."""
    for a_start, a_end in a:
        for b_start, b_end in b:
            start, end = max(a_start, b_start), min(a_end, b_end)
            if start < end:
                yield start, end


@dataclass(frozen=True, slots=True)
class CampaignSchedule:
    """A project's calling schedule. ``weekly`` maps weekday (0 = Monday) to its intervals in
    call-center time; a weekday missing from it has no calls."""

    call_center_zone: ZoneInfo
    weekly: Mapping[int, tuple[TimeWindow, ...]]
    client_window: TimeWindow = WHOLE_DAY
    start_date: date | None = None
    end_date: date | None = None

    def __post_init__(self) -> None:
        if any(not 0 <= day <= 6 for day in self.weekly):
            raise ValueError(
                f"weekdays are 0 (Monday) … 6 (Sunday), got {sorted(self.weekly)}"
            )
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError(
                f"project ends ({self.end_date}) before it starts ({self.start_date})"
            )

    def _dates_interval(self) -> tuple[int, int]:
        zone = self.call_center_zone
        start = (
            _to_ms(datetime.combine(self.start_date, time(0, 0), tzinfo=zone))
            if self.start_date
            else -(2**62)
        )
        end = (
            _to_ms(
                datetime.combine(
                    self.end_date + timedelta(days=1), time(0, 0), tzinfo=zone
                )
            )
            if self.end_date
            else 2**62
        )
        return start, end

    def _center_intervals(self, first: date, days: int) -> list[tuple[int, int]]:
        out = []
        for offset in range(days):
            day = first + timedelta(days=offset)
            for window in self.weekly.get(day.weekday(), ()):
                out.append(window.on(day, self.call_center_zone))
        dates = self._dates_interval()
        return sorted(_intersect(out, [dates]))

    def _client_intervals(
        self, first: date, days: int, zone: ZoneInfo
    ) -> list[tuple[int, int]]:
        return [
            self.client_window.on(first + timedelta(days=o), zone) for o in range(days)
        ]

    def allows(self, at_ms: int, client_zone: ZoneInfo) -> bool:
        """May a call to a client in ``client_zone`` start at ``at_ms``?"""
        return self.next_allowed(at_ms, client_zone, horizon_days=1) == at_ms

    def next_allowed(
        self, at_ms: int, client_zone: ZoneInfo, *, horizon_days: int = _SEARCH_DAYS
    ) -> int | None:
        """The first instant at or after ``at_ms`` when a call may start, or ``None`` if there
        is none within ``horizon_days`` (or before the project ends)."""
        dates_start, dates_end = self._dates_interval()
        if at_ms >= dates_end:
            return None
        cursor = max(at_ms, dates_start)
        step = 8
        searched = 0
        while searched <= horizon_days and cursor < dates_end:
            # Start a day early on both sides so windows crossing midnight into today count.
            first_center = _local_date(cursor, self.call_center_zone) - timedelta(
                days=1
            )
            first_client = _local_date(cursor, client_zone) - timedelta(days=1)
            center = self._center_intervals(first_center, step + 2)
            client = self._client_intervals(first_client, step + 2, client_zone)
            candidates = [
                max(start, cursor)
                for start, end in _intersect(center, client)
                if end > cursor
            ]
            if candidates:
                found = min(candidates)
                return found if found < dates_end else None
            cursor = _to_ms(
                datetime.combine(
                    first_center + timedelta(days=step + 1),
                    time(0, 0),
                    tzinfo=self.call_center_zone,
                )
            )
            searched += step
        return None
