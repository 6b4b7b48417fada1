"""«Проверка на дубли номеров в проекте» (manual §5.5): find the contacts of a project's base
that share a number and delete the duplicates.

Every way a contact is written stores its number as E.164 (the import, the inbound caller:
:func:`~sipspeak.crm.phones.normalize_phone`), so ``8 922 …``, ``+7 922 …`` and ``7922…``
are one stored string and the duplicates are found by SQL over the project-phone index, with
no Python work per contact.  Of each number's contacts the one with the most history (calls,
comments and tasks) stays, the oldest of those if several have as much; the others' history
goes over to it (the calls, comments, tasks, leads and tags of a duplicate are the same
person's) and they are deleted.

A number one of whose contacts is in use is left as it is, and counted: its contact is
claimed by the dialer, in a call (a call row not ended, or a call the call service still
holds, such as an inbound caller being answered), or on an operator's card during his
wrap-up «В карточке» — deleting it would lose what the call or the operator writes to it.
What only the running services know (their calls, who is in wrap-up) is :class:`InUse`, read
inside each write transaction, after the write lock is taken: a call ending after that
cannot write its end (the write waits), so its row still shows it in progress.

The numbers are merged in batches of at most :data:`BATCH_CONTACTS` contacts, one write
transaction each, so other writers (call records, the dialer) get their turn in between on a
large base; each number is merged whole in one transaction, never half.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sipspeak.storage import Database

__all__ = ["BATCH_CONTACTS", "PAGE_NUMBERS", "DedupeReport", "InUse", "remove_duplicates"]

BATCH_CONTACTS = 2000
"""Contacts merged per write transaction at most (a number with more is merged alone)."""
PAGE_NUMBERS = 500
"""Duplicate numbers read at a time (off the index, outside any write transaction)."""


@dataclass(frozen=True, slots=True)
class DedupeReport:
    removed: int
    """Contacts deleted as duplicates."""
    numbers: int
    """Numbers that had duplicates and now have one contact."""
    dialling: int
    """Numbers left with their duplicates: one of their contacts is in a call or on an
    operator's card now."""


@dataclass(frozen=True, slots=True)
class InUse:
    """What only the running services know is in use now."""

    contacts: frozenset[int] = frozenset()
    """The contacts of the call service's calls (those it still holds)."""
    wrap_up_operators: frozenset[int] = frozenset()
    """Operators in wrap-up «В карточке»: the card of their latest call is open."""


def nothing_in_use() -> InUse:
    """No call service and no dialer run: only storage tells what is in use."""
    return InUse()


async def remove_duplicates(db: Database, project_id: int, *,
                            in_use: Callable[[], InUse] = nothing_in_use,
                            batch_contacts: int = BATCH_CONTACTS) -> DedupeReport:
    """Delete the duplicates of the project's base, a batch of numbers per transaction;
    what was done.  ``in_use`` is asked at the start of every batch's transaction."""
    removed = numbers = busy = 0
    after: str | None = None
    while True:
        page = await db.contacts.duplicate_numbers(project_id, after=after, limit=PAGE_NUMBERS)
        for batch in _batches(page, batch_contacts):
            async with db.transaction():
                now = in_use()
                gone, merged, left = await db.contacts.merge_duplicate_numbers(
                    project_id, batch, in_use=now.contacts,
                    wrap_up_operators=now.wrap_up_operators)
            removed, numbers, busy = removed + gone, numbers + merged, busy + left
        if len(page) < PAGE_NUMBERS:
            return DedupeReport(removed=removed, numbers=numbers, dialling=busy)
        after = page[-1][0]


def _batches(numbers: list[tuple[str, int]], most: int) -> list[list[str]]:
    """The numbers in order, cut into runs of at most ``most`` contacts (a number with more
    is a run of its own: it is never split)."""
    out: list[list[str]] = []
    size = 0
    for phone, count in numbers:
        if not out or size + count > most:
            out.append([])
            size = 0
        out[-1].append(phone)
        size += count
    return out
