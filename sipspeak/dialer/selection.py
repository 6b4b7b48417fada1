"""Which contacts to dial next, in what order; and the project's run switch.

Manual §5.3 «Проект запущен», §5.4 «Порядок прозвона базы» («Звонить базу с конца»), §9
«Черный список», §5.2.4 «Задача на оператора». Given the contacts storage says are due, the
rules here pick the ones to dial now:

1. a project that is not running dials nothing (stopping takes effect on the next pick: calls
   already placed finish, no new one starts);
2. a blacklisted number is never dialled, whatever else says it is due;
3. a contact is due when its next-attempt time has come and the schedule allows a call to its
   time zone now (:class:`~sipspeak.dialer.schedule.CampaignSchedule`);
4. callbacks and operator tasks due now come first, earliest due first;
5. then the base in upload order: oldest first, or newest first with «Звонить базу с конца».
"""

from __future__ import annotations

import enum
from collections.abc import Container, Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sipspeak.dialer.schedule import CampaignSchedule


class ContactKind(enum.Enum):
    BASE = "base"
    CALLBACK = "callback"
    """«Перезвон»: the operator promised to call back at a time."""
    OPERATOR_TASK = "operator_task"
    """«Задача на оператора»: a card assigned to an operator."""


@dataclass(frozen=True, slots=True)
class DueContact:
    """A contact as storage hands it to the dialer.

    ``upload_seq`` orders the base by upload (a larger value was uploaded later);
    ``due_ms`` is the next-attempt or callback time; ``client_zone`` is its IANA zone.
    """

    contact_id: int
    phone: str
    client_zone: str
    upload_seq: int
    due_ms: int
    kind: ContactKind = ContactKind.BASE
    operator_id: int | None = None


class ProjectRunSwitch:
    """«Проект запущен». The runtime asks :attr:`running` before every pick."""

    def __init__(self, *, running: bool = False) -> None:
        self._running = running

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        self._running = True

    def stop(self) -> None:
        self._running = False


def _zone(name: str, cache: dict[str, ZoneInfo]) -> ZoneInfo:
    zone = cache.get(name)
    if zone is None:
        zone = cache[name] = ZoneInfo(name)
    return zone


def pick_contacts(
    candidates: Iterable[DueContact],
    *,
    now_ms: int,
    count: int,
    schedule: CampaignSchedule,
    blacklist: Container[str],
    switch: ProjectRunSwitch,
    from_end: bool = False,
) -> list[DueContact]:
    """Up to ``count`` contacts to dial at ``now_ms``, in dialling order (see module docstring)."""
    if count <= 0 or not switch.running:
        return []
    zones: dict[str, ZoneInfo] = {}
    due = [
        c
        for c in candidates
        if c.phone not in blacklist
        and c.due_ms <= now_ms
        and schedule.allows(now_ms, _zone(c.client_zone, zones))
    ]
    first = sorted(
        (c for c in due if c.kind is not ContactKind.BASE),
        key=lambda c: (c.due_ms, c.upload_seq),
    )
    base = sorted(
        (c for c in due if c.kind is ContactKind.BASE),
        key=lambda c: c.upload_seq,
        reverse=from_end,
    )
    return (first + base)[:count]
