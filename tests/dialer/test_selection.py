"""Which due contacts are dialled, in which order; blacklist; stopping a project."""

from datetime import datetime
from zoneinfo import ZoneInfo

from sipspeak.dialer.schedule import CampaignSchedule, TimeWindow
from sipspeak.dialer.selection import (
    ContactKind,
    DueContact,
    ProjectRunSwitch,
    pick_contacts,
)

MSK = ZoneInfo("Europe/Moscow")
NOW = int(
    datetime(2026, 11, 26, 15, 0, tzinfo=MSK).timestamp() * 1000
)  # 22:00 in Vladivostok
SCHEDULE = CampaignSchedule(
    call_center_zone=MSK,
    weekly={d: (TimeWindow.parse("09:00", "21:00"),) for d in range(7)},
    client_window=TimeWindow.parse("09:00", "21:00"),
)


def contact(cid: int, seq: int, **kw: object) -> DueContact:
    fields: dict[str, object] = {
        "phone": f"7900000{cid:04d}",
        "client_zone": "Europe/Moscow",
        "due_ms": NOW - 1,
    }
    fields.update(kw)
    return DueContact(contact_id=cid, upload_seq=seq, **fields)  # type: ignore[arg-type]


BASE = [contact(1, 10), contact(2, 20), contact(3, 30), contact(4, 40)]


def pick(
    candidates: list[DueContact],
    *,
    count: int = 10,
    from_end: bool = False,
    blacklist: frozenset[str] = frozenset(),
    switch: ProjectRunSwitch | None = None,
) -> list[int]:
    return [
        c.contact_id
        for c in pick_contacts(
            candidates,
            now_ms=NOW,
            count=count,
            schedule=SCHEDULE,
            blacklist=blacklist,
            switch=switch or ProjectRunSwitch(running=True),
            from_end=from_end,
        )
    ]


def test_oldest_first_or_from_the_end() -> None:
    assert pick(BASE) == [1, 2, 3, 4]
    assert pick(BASE, from_end=True) == [4, 3, 2, 1]
    assert pick(BASE, count=2) == [1, 2]


def test_blacklisted_numbers_are_never_dialled() -> None:
    assert pick(BASE, blacklist=frozenset({"79000000002"})) == [1, 3, 4]


def test_callbacks_and_operator_tasks_due_now_come_first() -> None:
    callback = contact(8, 80, kind=ContactKind.CALLBACK, due_ms=NOW - 500)
    task = contact(
        9, 90, kind=ContactKind.OPERATOR_TASK, operator_id=5, due_ms=NOW - 900
    )
    later = contact(7, 5, kind=ContactKind.CALLBACK, due_ms=NOW + 60_000)
    assert pick([*BASE, callback, task, later], count=3) == [9, 8, 1]


def test_contacts_not_yet_due_or_outside_their_local_window_wait() -> None:
    not_due = contact(5, 1, due_ms=NOW + 1)
    far_east = contact(6, 2, client_zone="Asia/Vladivostok")
    assert pick([not_due, far_east, *BASE]) == [1, 2, 3, 4]


def test_stopping_the_project_stops_new_calls_at_once() -> None:
    switch = ProjectRunSwitch(running=True)
    assert pick(BASE, switch=switch) == [1, 2, 3, 4]
    switch.stop()
    assert pick(BASE, switch=switch) == []
    switch.start()
    assert pick(BASE, switch=switch, count=1) == [1]
