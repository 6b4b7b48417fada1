"""«Проверка на дубли номеров в проекте» (manual §5.5) and what counts as a contact in use.

The duplicate check merges a project's contacts that share a number; the contacts' «Удалить»
and the check both leave alone a contact in use.  :class:`ContactDuplicatesRepo` is a part of
:class:`~sipspeak.storage.repositories.contacts.ContactsRepo` (``db.contacts``).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence

from .base import Repo

# A contact in use, as the duplicate check and «Удалить» count it (besides what only memory
# knows): in a call whose row has not ended, or on the card the workspace keeps open for an
# operator in wrap-up «В карточке» — the contact of his latest call.
_IN_CALL = "EXISTS (SELECT 1 FROM calls x WHERE x.contact_id = c.id AND x.ended_at IS NULL)"
_WRAP_UP_CARD = ("SELECT contact_id FROM calls WHERE operator_id = ?"
                 " ORDER BY started_at DESC, id DESC LIMIT 1")

# The duplicate check's scratch tables (temp: this connection's own, gone when it closes).
_DEDUPE_TABLES = (
    ("dedupe_numbers", "phone TEXT PRIMARY KEY"),
    ("dedupe_in_use", "id INTEGER PRIMARY KEY"),
    ("dedupe_candidates", ("id INTEGER PRIMARY KEY, phone TEXT NOT NULL,"
                           " created_at INTEGER NOT NULL, history INTEGER NOT NULL,"
                           " in_use INTEGER NOT NULL")),
    ("merged_contacts", "loser INTEGER PRIMARY KEY, keeper INTEGER NOT NULL"),
)


class ContactDuplicatesRepo(Repo):
    # -- «Проверка на дубли номеров в проекте» (manual §5.5) -----------------------------------

    async def duplicate_numbers(self, project_id: int, *, after: str | None,
                                limit: int) -> builtins.list[tuple[str, int]]:
        """Up to ``limit`` numbers after ``after`` (in order) that more than one contact of
        the project has, each with how many: read off the contacts_project_phone index alone
        (numbers are stored as E.164, so one number is one string)."""
        sql = "SELECT phone, COUNT(*) AS n FROM contacts WHERE project_id = ?"
        params: builtins.list[object] = [project_id]
        if after is not None:
            sql += " AND phone > ?"
            params.append(after)
        rows = await self.db.fetchall(
            sql + " GROUP BY phone HAVING COUNT(*) > 1 ORDER BY phone LIMIT ?", [*params, limit])
        return [(str(r["phone"]), int(r["n"])) for r in rows]

    async def in_use_among(self, ids: Sequence[int], *, in_use: Iterable[int] = (),
                           wrap_up_operators: Iterable[int] = ()) -> dict[int, str]:
        """Which of ``ids`` are in use as :meth:`merge_duplicate_numbers` counts it (the
        dialer's claim aside): ``"call"`` — among ``in_use`` (the call service's calls) or in a
        call whose row has not ended; ``"card"`` — the contact of the latest call of one of
        ``wrap_up_operators``.  Index seeks, a few hundred ids a statement."""
        memory = set(in_use)
        cards: set[int] = set()
        for operator_id in sorted(set(wrap_up_operators)):
            row = await self.db.fetchone(_WRAP_UP_CARD, (operator_id,))
            if row is not None and row["contact_id"] is not None:
                cards.add(int(row["contact_id"]))
        wanted = builtins.list(dict.fromkeys(ids))
        out: dict[int, str] = {}
        for first in range(0, len(wanted), 500):
            chunk = wanted[first:first + 500]
            rows = await self.db.fetchall(
                f"SELECT c.id FROM contacts c WHERE c.id IN ({','.join('?' * len(chunk))})"
                f" AND {_IN_CALL}", chunk)
            in_call = memory | {int(r["id"]) for r in rows}
            for contact_id in chunk:
                if contact_id in in_call:
                    out[contact_id] = "call"
                elif contact_id in cards:
                    out[contact_id] = "card"
        return out

    async def merge_duplicate_numbers(
            self, project_id: int, phones: Sequence[str], *, in_use: Iterable[int] = (),
            wrap_up_operators: Iterable[int] = ()) -> tuple[int, int, int]:
        """Leave one contact of the project per number of ``phones``, in one transaction (the
        caller's, if open): the one with the most history (calls, comments, tasks) stays,
        the oldest at a tie, then the lowest id; the others' calls, comments, tasks, leads and
        tags go over to it and they are deleted.

        A number is left as it is when one of its contacts is in use: claimed by the dialer
        ('dialing'), in a call whose row has not ended, among ``in_use`` (the contacts of the
        call service's calls), or the contact of the latest call of one of
        ``wrap_up_operators`` (the workspace keeps that card open «В карточке» until he
        saves it).  Answers ``(contacts deleted, numbers merged, numbers left in use)``."""
        numbers = builtins.list(dict.fromkeys(phones))
        if not numbers:
            return 0, 0, 0
        async with self.db.transaction():
            for table, columns in _DEDUPE_TABLES:
                await self.db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table}({columns})")
                await self.db.execute(f"DELETE FROM temp.{table}")
            await self.db.executemany("INSERT INTO temp.dedupe_numbers(phone) VALUES (?)",
                                      [(n,) for n in numbers])
            await self.db.executemany("INSERT OR IGNORE INTO temp.dedupe_in_use(id) VALUES (?)",
                                      [(i,) for i in sorted(set(in_use))])
            # The card the workspace keeps open in wrap-up: his latest call's contact.
            await self.db.executemany(
                "INSERT OR IGNORE INTO temp.dedupe_in_use(id) SELECT contact_id FROM"
                f" ({_WRAP_UP_CARD}) WHERE contact_id IS NOT NULL",
                [(o,) for o in sorted(set(wrap_up_operators))])
            await self.db.execute(
                "INSERT INTO temp.dedupe_candidates(id, phone, created_at, history, in_use)"
                " SELECT c.id, c.phone, c.created_at,"
                " (SELECT COUNT(*) FROM calls x WHERE x.contact_id = c.id)"
                " + (SELECT COUNT(*) FROM contact_comments m WHERE m.contact_id = c.id)"
                " + (SELECT COUNT(*) FROM tasks t WHERE t.contact_id = c.id),"
                " c.dial_state = 'dialing' OR c.id IN (SELECT id FROM temp.dedupe_in_use)"
                f" OR {_IN_CALL}"
                # CROSS JOIN: number by number off contacts_project_phone, never a scan of
                # the project's whole base.
                " FROM temp.dedupe_numbers n CROSS JOIN contacts c"
                " WHERE c.project_id = ? AND c.phone = n.phone", (project_id,))
            row = await self.db.fetchone(
                "SELECT COUNT(*) AS n FROM (SELECT phone FROM temp.dedupe_candidates"
                " GROUP BY phone HAVING COUNT(*) > 1 AND MAX(in_use) = 1)")
            busy = int(row["n"]) if row is not None else 0
            await self.db.execute(
                "INSERT INTO temp.merged_contacts(loser, keeper) SELECT id, keeper FROM"
                " (SELECT id, FIRST_VALUE(id) OVER (PARTITION BY phone"
                "  ORDER BY history DESC, created_at, id) AS keeper"
                "  FROM temp.dedupe_candidates WHERE phone IN"
                "  (SELECT phone FROM temp.dedupe_candidates"
                "   GROUP BY phone HAVING COUNT(*) > 1 AND MAX(in_use) = 0))"
                " WHERE id != keeper")
            row = await self.db.fetchone(
                "SELECT COUNT(DISTINCT keeper) AS n FROM temp.merged_contacts")
            merged = int(row["n"]) if row is not None else 0
            for table in ("calls", "contact_comments", "tasks", "crm_leads"):
                await self.db.execute(
                    f"UPDATE {table} SET contact_id = (SELECT keeper FROM temp.merged_contacts"
                    f" WHERE loser = {table}.contact_id)"
                    " WHERE contact_id IN (SELECT loser FROM temp.merged_contacts)")
            await self.db.execute(
                "INSERT OR IGNORE INTO contact_tags(contact_id, tag_id)"
                " SELECT m.keeper, t.tag_id FROM contact_tags t"
                " JOIN temp.merged_contacts m ON m.loser = t.contact_id")
            cursor = await self.db.execute(
                "DELETE FROM contacts WHERE id IN (SELECT loser FROM temp.merged_contacts)")
            removed = cursor.rowcount
            for table, _ in _DEDUPE_TABLES:
                await self.db.execute(f"DELETE FROM temp.{table}")
        return removed, merged, busy
