"""«Проверка на дубли номеров в проекте» (manual §5.5): find the contacts of a project's base
that share a number and delete the duplicates.

Numbers are compared as E.164 (:func:`~sipspeak.crm.phones.normalize_phone`: ``8 922 …``,
``+7 922 …`` and ``7922…`` are one number); a stored value that is no valid number is
compared by its digits.  Of each number's contacts the one with the most history (calls,
comments and tasks) stays, the oldest of those if several have as much; the others' history
goes over to it (the calls, comments, tasks, leads and tags of a duplicate are the same
person's) and they are deleted.  A number one of whose contacts is being dialled right now is
left as it is, and counted: its call would write to a contact that is gone.  All of it is one
transaction, so the dialer never sees half a merge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sipspeak.crm.phones import InvalidPhoneError, normalize_phone
from sipspeak.storage import Database
from sipspeak.storage.repositories.contacts import ContactHistory

__all__ = ["DedupeReport", "duplicate_groups", "keeper", "phone_key", "plan_merges",
           "remove_duplicates"]


@dataclass(frozen=True, slots=True)
class DedupeReport:
    removed: int
    """Contacts deleted as duplicates."""
    numbers: int
    """Numbers that had duplicates and now have one contact."""
    dialling: int
    """Numbers left with their duplicates: one of their contacts is being dialled now."""


def phone_key(phone: str) -> str:
    """The number as the check compares it: E.164, else its digits."""
    try:
        return normalize_phone(phone)
    except InvalidPhoneError:
        return "".join(c for c in phone if c.isdigit()) or phone


def duplicate_groups(phones: Iterable[tuple[int, str]]) -> list[list[int]]:
    """The ids of contacts sharing a number, per number that more than one contact has."""
    by_number: dict[str, list[int]] = {}
    for contact_id, phone in phones:
        by_number.setdefault(phone_key(phone), []).append(contact_id)
    return [ids for ids in by_number.values() if len(ids) > 1]


def keeper(contacts: Sequence[ContactHistory]) -> ContactHistory:
    """The contact that stays: the most history, then the oldest (the lowest id at a tie)."""
    return min(contacts, key=lambda c: (-c.history, c.created_at, c.id))


def plan_merges(groups: Iterable[Sequence[int]],
                histories: Mapping[int, ContactHistory]) -> tuple[dict[int, list[int]], int]:
    """``(kept id → duplicate ids, numbers left because a contact of theirs is dialled)``."""
    merges: dict[int, list[int]] = {}
    dialling = 0
    for ids in groups:
        contacts = [histories[i] for i in ids if i in histories]
        if len(contacts) < 2:
            continue
        if any(c.dial_state == "dialing" for c in contacts):
            dialling += 1
            continue
        kept = keeper(contacts)
        merges[kept.id] = [c.id for c in contacts if c.id != kept.id]
    return merges, dialling


async def remove_duplicates(db: Database, project_id: int) -> DedupeReport:
    """Delete the duplicates of the project's base in one transaction; what was done."""
    async with db.transaction():
        groups = duplicate_groups(await db.contacts.phones_of(project_id))
        if not groups:
            return DedupeReport(removed=0, numbers=0, dialling=0)
        histories = await db.contacts.histories([i for ids in groups for i in ids])
        merges, dialling = plan_merges(groups, {h.id: h for h in histories})
        removed = await db.contacts.merge_duplicates(merges)
    return DedupeReport(removed=removed, numbers=len(merges), dialling=dialling)
