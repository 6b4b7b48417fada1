"""Tags, uploads and contacts (comments and tasks: card_items; the blacklist: blacklist; the
duplicate check and what counts as in use: contact_duplicates)."""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import cast

from ...i18n import Text
from ..db import now_ms
from ..errors import NotFound
from ..models import (
    Call,
    Contact,
    ContactFilter,
    ContactReportRow,
    NewContact,
    Upload,
)
from .base import Repo, record
from .contact_duplicates import ContactDuplicatesRepo

# Contacts report counters per upload (§5.5): all / called / no answer / busy / error / new.
DIAL_STATES = ("new", "dialing", "called", "no_answer", "busy", "error", "machine", "lost", "done")


class TagsRepo(Repo):
    async def ensure(self, names: Iterable[str]) -> builtins.list[int]:
        """Ids of the named tags, creating the missing ones."""
        ids: builtins.list[int] = []
        async with self.db.transaction():
            for name in dict.fromkeys(n.strip() for n in names if n.strip()):
                await self.db.execute("INSERT OR IGNORE INTO tags(name) VALUES (?)", (name,))
                row = await self.db.fetchone("SELECT id FROM tags WHERE name = ?", (name,))
                if row is not None:
                    ids.append(int(row["id"]))
        return ids

    async def list(self) -> builtins.list[str]:
        return [r["name"] for r in await self.db.fetchall("SELECT name FROM tags ORDER BY name")]


class UploadsRepo(Repo):
    async def create(self, *, project_id: int, filename: str, tags: Sequence[str] = (),
                     created_by: int | None = None, importing: bool = False) -> int:
        """A new upload; ``importing=True`` while its contacts are written batch by batch."""
        async with self.db.transaction():
            upload_id = await self.db.insert(
                "INSERT INTO uploads(project_id, filename, created_by, created_at, state)"
                " VALUES (?,?,?,?,?)",
                (project_id, filename, created_by, now_ms(), "importing" if importing else "done"))
            tag_ids = await TagsRepo(self.db).ensure(tags)
            await self.db.executemany(
                "INSERT INTO upload_tags(upload_id, tag_id) VALUES (?, ?)",
                [(upload_id, t) for t in tag_ids])
            return upload_id

    async def set_counts(self, upload_id: int, *, total: int, accepted: int, rejected: int) -> None:
        """Record the counts; this also completes an upload that was importing."""
        await self.db.execute(
            "UPDATE uploads SET rows_total = ?, rows_accepted = ?, rows_rejected = ?,"
            " state = 'done' WHERE id = ?",
            (total, accepted, rejected, upload_id))

    async def remove_with_contacts(self, upload_id: int) -> int:
        """Delete an upload and every contact it brought (an import that failed half-way)."""
        async with self.db.transaction():
            cursor = await self.db.execute("DELETE FROM contacts WHERE upload_id = ?", (upload_id,))
            await self.db.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
            return cursor.rowcount

    async def remove_unfinished(self) -> int:
        """Remove uploads a stopped process left importing, with their contacts (at start-up)."""
        rows = await self.db.fetchall("SELECT id FROM uploads WHERE state = 'importing'")
        for row in rows:
            await self.remove_with_contacts(int(row["id"]))
        return len(rows)

    async def get(self, upload_id: int) -> Upload:
        row = await self.db.fetchone("SELECT * FROM uploads WHERE id = ?", (upload_id,))
        if row is None:
            raise NotFound(Text("storage.error.upload_not_found", id=upload_id))
        tags = await self.db.fetchall(
            "SELECT t.name FROM upload_tags u JOIN tags t ON t.id = u.tag_id WHERE u.upload_id = ?"
            " ORDER BY t.name", (upload_id,))
        return record(Upload, row, tags=tuple(t["name"] for t in tags))

    async def list(self, project_id: int) -> builtins.list[Upload]:
        rows = await self.db.fetchall(
            "SELECT * FROM uploads WHERE project_id = ? ORDER BY id DESC", (project_id,))
        return [record(Upload, row) for row in rows]

    async def discard(self, upload_id: int) -> bool:
        """Remove an upload that holds no contacts (an import that failed); True if removed."""
        cursor = await self.db.execute(
            "DELETE FROM uploads WHERE id = ? AND NOT EXISTS"
            " (SELECT 1 FROM contacts WHERE upload_id = ?)", (upload_id, upload_id))
        return cursor.rowcount > 0

    async def counters(self, *, project_id: int, upload_id: int | None = None) -> dict[str, int]:
        """The §5.5 counters: all, called, no_answer, busy, error, new."""
        sql = "SELECT dial_state, COUNT(*) AS n FROM contacts WHERE project_id = ?"
        params: builtins.list[object] = [project_id]
        if upload_id is not None:
            sql += " AND upload_id = ?"
            params.append(upload_id)
        rows = await self.db.fetchall(sql + " GROUP BY dial_state", params)
        by_state = {row["dial_state"]: int(row["n"]) for row in rows}
        total = sum(by_state.values())
        return {
            "all": total,
            "called": total - by_state.get("new", 0),
            "no_answer": by_state.get("no_answer", 0),
            "busy": by_state.get("busy", 0),
            "error": by_state.get("error", 0),
            "new": by_state.get("new", 0),
        }


class ContactsRepo(ContactDuplicatesRepo):
    async def insert_many(self, *, project_id: int, upload_id: int | None,
                          contacts: Sequence[NewContact], tags: Sequence[str] = ()) -> int:
        """Store a batch of contacts; call inside ``db.transaction()`` for all-or-nothing."""
        if not contacts:
            return 0
        now = now_ms()
        async with self.db.transaction():
            tag_ids = await TagsRepo(self.db).ensure(tags)
            row = await self.db.fetchone("SELECT COALESCE(MAX(id), 0) AS m FROM contacts")
            first_id = (int(row["m"]) if row else 0) + 1
            await self.db.executemany(
                "INSERT INTO contacts(id, project_id, upload_id, phone, full_name, email, birth_date,"
                " position, city, address, description, custom, region, timezone, carrier,"
                " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(first_id + i, project_id, upload_id, c.phone, c.full_name, c.email, c.birth_date,
                  c.position, c.city, c.address, c.description,
                  json.dumps(c.custom, ensure_ascii=False) if c.custom else "{}",
                  c.region, c.timezone, c.carrier, now, now)
                 for i, c in enumerate(contacts)])
            if tag_ids:
                await self.db.executemany(
                    "INSERT INTO contact_tags(contact_id, tag_id) VALUES (?, ?)",
                    [(first_id + i, t) for i in range(len(contacts)) for t in tag_ids])
        return len(contacts)

    async def find_in_project(self, project_id: int, phone: str) -> int | None:
        """The project's contact with exactly this number (E.164), the latest updated."""
        row = await self.db.fetchone(
            "SELECT id FROM contacts WHERE project_id = ? AND phone = ?"
            " ORDER BY updated_at DESC, id DESC LIMIT 1", (project_id, phone))
        return None if row is None else int(row["id"])

    async def find_in_projects(self, project_ids: Sequence[int],
                               phone: str) -> tuple[int, int] | None:
        """``(contact id, project id)`` of the latest updated contact with exactly this number
        (E.164) in any of the projects; one index seek per project."""
        if not project_ids:
            return None
        marks = ",".join("?" * len(project_ids))
        row = await self.db.fetchone(
            f"SELECT id, project_id FROM contacts WHERE project_id IN ({marks}) AND phone = ?"
            " ORDER BY updated_at DESC, id DESC LIMIT 1", (*project_ids, phone))
        return None if row is None else (int(row["id"]), int(row["project_id"]))

    async def add_caller(self, *, project_id: int, contact: NewContact) -> int:
        """A contact for someone who called in: stored as already called, so the project's
        dialling never picks him up as new."""
        now = now_ms()
        return await self.db.insert(
            "INSERT INTO contacts(project_id, phone, region, timezone, carrier, dial_state,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'called', ?, ?)",
            (project_id, contact.phone, contact.region, contact.timezone, contact.carrier,
             now, now))

    async def existing_phones(self, project_id: int) -> set[str]:
        rows = await self.db.fetchall(
            "SELECT DISTINCT phone FROM contacts WHERE project_id = ?", (project_id,))
        return {row["phone"] for row in rows}

    async def get(self, contact_id: int) -> Contact:
        row = await self.db.fetchone("SELECT * FROM contacts WHERE id = ?", (contact_id,))
        if row is None:
            raise NotFound(Text("storage.error.contact_not_found", id=contact_id))
        tags = await self.db.fetchall(
            "SELECT t.name FROM contact_tags c JOIN tags t ON t.id = c.tag_id WHERE c.contact_id = ?"
            " ORDER BY t.name", (contact_id,))
        return record(Contact, row, tags=tuple(t["name"] for t in tags))

    async def list(self, *, project_id: int | None = None, phone: str = "",
                   status_id: int | None = None, operator_id: int | None = None,
                   dial_states: Sequence[str] = (), upload_id: int | None = None,
                   limit: int = 100, offset: int = 0,
                   order_by_updated: bool = False) -> builtins.list[Contact]:
        sql = "SELECT * FROM contacts WHERE 1=1"
        params: builtins.list[object] = []
        for column, value in (("project_id", project_id), ("status_id", status_id),
                              ("operator_id", operator_id), ("upload_id", upload_id)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        if phone:
            sql += " AND phone LIKE ?"
            params.append(f"%{phone}%")
        if dial_states:
            sql += f" AND dial_state IN ({', '.join('?' for _ in dial_states)})"
            params.extend(dial_states)
        sql += " ORDER BY " + ("updated_at DESC, id DESC" if order_by_updated else "id")
        sql += " LIMIT ? OFFSET ?"
        params += [limit, offset]
        return [record(Contact, row) for row in await self.db.fetchall(sql, params)]

    @staticmethod
    def _report_where(where: ContactFilter) -> tuple[str, builtins.list[object]]:
        sql = " WHERE 1=1"
        params: builtins.list[object] = []
        for clause, value in (("k.project_id = ?", where.project_id),
                              ("k.created_at >= ?", where.created_from),
                              ("k.created_at < ?", where.created_to),
                              ("k.status_id = ?", where.status_id),
                              ("k.operator_id = ?", where.operator_id)):
            if value is not None:
                sql += f" AND {clause}"
                params.append(value)
        if where.project_ids is not None:
            ids = sorted(where.project_ids)
            sql += f" AND k.project_id IN ({', '.join('?' * len(ids))})" if ids else " AND 0"
            params += ids
        if where.group_id is not None:
            sql += (" AND k.operator_id IN (SELECT user_id FROM group_members"
                    " WHERE group_id = ?)")
            params.append(where.group_id)
        if where.phone:
            sql += " AND k.phone LIKE ?"
            params.append(f"%{where.phone}%")
        if where.comment:
            sql += (" AND EXISTS (SELECT 1 FROM contact_comments m WHERE m.contact_id = k.id"
                    " AND m.text LIKE ?)")
            params.append(f"%{where.comment}%")
        if where.tag:
            # The tag's contacts off contact_tags_tag, each then found by its id.
            sql += (" AND k.id IN (SELECT ct.contact_id FROM contact_tags ct"
                    " JOIN tags t ON t.id = ct.tag_id WHERE t.name = ?)")
            params.append(where.tag)
        return sql, params

    async def report_count(self, where: ContactFilter) -> int:
        """How many contacts the report's filters keep."""
        sql, params = self._report_where(where)
        row = await self.db.fetchone(f"SELECT COUNT(*) AS n FROM contacts k{sql}", params)
        return int(row["n"]) if row is not None else 0

    async def report(self, where: ContactFilter, *, limit: int = 100,
                     after: tuple[int, int] | None = None,
                     offset: int = 0) -> builtins.list[ContactReportRow]:
        """A page of the contacts report (newest first, or last updated first) with the
        project, status and operator names, tags, the last comment and the counts of comments
        and tasks.  ``after`` = (sort value, id) of the previous page's last row reads on."""
        sql, params = self._report_where(where)
        key = "k.updated_at" if where.order_by_updated else "k.created_at"
        if after is not None:
            sql += f" AND ({key} < ? OR ({key} = ? AND k.id < ?))"
            params += [after[0], after[0], after[1]]
        rows = await self.db.fetchall(
            "SELECT k.*, COALESCE(p.name, '') AS project_name,"
            " COALESCE(s.name, '') AS status_name, COALESCE(u.full_name, '') AS operator_name,"
            " (SELECT group_concat(t.name, ', ') FROM contact_tags ct JOIN tags t"
            "  ON t.id = ct.tag_id WHERE ct.contact_id = k.id) AS tag_names,"
            " (SELECT m.text FROM contact_comments m WHERE m.contact_id = k.id"
            "  ORDER BY m.id DESC LIMIT 1) AS last_comment,"
            " (SELECT COUNT(*) FROM contact_comments m WHERE m.contact_id = k.id) AS comments,"
            " (SELECT COUNT(*) FROM tasks t WHERE t.contact_id = k.id) AS task_count"
            " FROM contacts k LEFT JOIN projects p ON p.id = k.project_id"
            " LEFT JOIN statuses s ON s.id = k.status_id"
            f" LEFT JOIN users u ON u.id = k.operator_id{sql}"
            f" ORDER BY {key} DESC, k.id DESC LIMIT ? OFFSET ?", [*params, limit, offset])
        return [ContactReportRow(
            contact=record(Contact, r), project_name=r["project_name"],
            status_name=r["status_name"], operator_name=r["operator_name"],
            tags=r["tag_names"] or "", last_comment=r["last_comment"] or "",
            comments=int(r["comments"]), tasks=int(r["task_count"])) for r in rows]

    async def by_state(self, *, project_ids: Iterable[int] | None = None,
                       operator_id: int | None = None) -> dict[str, int]:
        """How many contacts are in each dial state, over the given projects (None = all)
        and, with ``operator_id``, only his (the dashboard's «Статистика контактов»)."""
        sql = "SELECT dial_state, COUNT(*) AS n FROM contacts WHERE 1=1"
        params: builtins.list[object] = []
        if project_ids is not None:
            ids = sorted(set(project_ids))
            sql += f" AND project_id IN ({', '.join('?' * len(ids))})" if ids else " AND 0"
            params += ids
        if operator_id is not None:
            sql += " AND operator_id = ?"
            params.append(operator_id)
        rows = await self.db.fetchall(sql + " GROUP BY dial_state", params)
        return {str(row["dial_state"]): int(row["n"]) for row in rows}

    async def count(self, *, project_id: int) -> int:
        row = await self.db.fetchone(
            "SELECT COUNT(*) AS n FROM contacts WHERE project_id = ?", (project_id,))
        return int(row["n"]) if row else 0

    async def update(self, contact_id: int, **changes: object) -> None:
        allowed = {"full_name", "email", "birth_date", "position", "city", "address", "description",
                   "custom", "status_id", "robot_status", "dial_state", "operator_id", "attempts",
                   "next_attempt_at", "last_call_at", "region", "timezone", "carrier"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown contact fields: {', '.join(sorted(unknown))}")
        if "dial_state" in changes and changes["dial_state"] not in DIAL_STATES:
            raise ValueError(f"unknown dial state {changes['dial_state']!r}")
        if "custom" in changes and isinstance(changes["custom"], dict):
            changes["custom"] = json.dumps(changes["custom"], ensure_ascii=False)
        if not changes:
            return
        assignments = ", ".join(f"{name} = ?" for name in changes)
        cursor = await self.db.execute(
            f"UPDATE contacts SET {assignments}, updated_at = ? WHERE id = ?",
            (*changes.values(), now_ms(), contact_id))
        if cursor.rowcount == 0:
            raise NotFound(Text("storage.error.contact_not_found", id=contact_id))

    async def due(self, *, project_id: int, now: int, limit: int,
                  newest_first: bool = False) -> builtins.list[Contact]:
        """Contacts the dialer may call now: new, or a retry whose time has come."""
        order = "DESC" if newest_first else "ASC"
        rows = await self.db.fetchall(
            "SELECT * FROM contacts WHERE project_id = ?"
            " AND (dial_state = 'new' OR (dial_state IN ('no_answer', 'busy', 'machine', 'lost')"
            "      AND next_attempt_at IS NOT NULL AND next_attempt_at <= ?))"
            " AND phone NOT IN (SELECT phone FROM blacklist)"
            " AND (upload_id IS NULL OR upload_id NOT IN"
            "      (SELECT id FROM uploads WHERE state = 'importing'))"
            f" ORDER BY id {order} LIMIT ?", (project_id, now, limit))
        return [record(Contact, row) for row in rows]

    # -- the dialer's view (manual §5.2.5): due contacts, claims, attempt history ----------

    DIALLER_RETRY_STATES = ("no_answer", "busy", "machine", "lost", "error")
    _DUE = (
        "(dial_state = 'new' OR (dial_state IN ('no_answer', 'busy', 'machine', 'lost', 'error')"
        "  AND next_attempt_at IS NOT NULL AND next_attempt_at <= ?))"
        " AND phone NOT IN (SELECT phone FROM blacklist)"
        " AND (upload_id IS NULL OR upload_id NOT IN"
        "      (SELECT id FROM uploads WHERE state = 'importing'))"
    )
    """Due for the dialer at the time given as its one parameter: new, or a retry whose time
    has come; never a blacklisted number, a contact being dialled ('dialing') or one of an
    upload still importing."""

    async def due_zones(self, *, project_id: int, now: int) -> builtins.list[str | None]:
        """The time zones of the project's due contacts (``None`` for contacts without one)."""
        rows = await self.db.fetchall(
            f"SELECT DISTINCT timezone FROM contacts WHERE project_id = ? AND {self._DUE}",
            (project_id, now))
        return [row["timezone"] for row in rows]

    async def due_for_dialling(self, *, project_id: int, now: int, limit: int,
                               newest_first: bool = False,
                               zones: Sequence[str | None] | None = None,
                               ) -> builtins.list[Contact]:
        """Contacts the dialer may call at ``now`` (see ``_DUE``), in upload order; with
        ``zones`` only those whose time zone is listed (``None`` stands for no zone)."""
        order = "DESC" if newest_first else "ASC"
        params: builtins.list[object] = [project_id, now]
        zone_filter = ""
        if zones is not None:
            named = [z for z in zones if z is not None]
            parts = [f"timezone IN ({', '.join('?' for _ in named)})"] if named else []
            params += named
            if None in zones:
                parts.append("timezone IS NULL")
            zone_filter = f" AND ({' OR '.join(parts) or '0'})"
        rows = await self.db.fetchall(
            f"SELECT * FROM contacts WHERE project_id = ? AND {self._DUE}{zone_filter}"
            f" ORDER BY id {order} LIMIT ?", (*params, limit))
        return [record(Contact, row) for row in rows]

    async def claim_for_dialling(self, contact_ids: Sequence[int], *,
                                 now: int) -> builtins.list[int]:
        """Mark the contacts that are still due as being dialled ('dialing'), in one statement,
        so no other tick or node dials them too; return the ids actually claimed."""
        if not contact_ids:
            return []
        marks = ", ".join("?" for _ in contact_ids)
        async with self.db.transaction():
            cursor = await self.db.execute(
                "UPDATE contacts SET dial_state = 'dialing', updated_at = ?"
                f" WHERE id IN ({marks}) AND {self._DUE} RETURNING id",
                (now, *contact_ids, now))
            rows = await cursor.fetchall()
        return sorted(int(row[0]) for row in rows)

    async def release_claim(self, contact_id: int, *, dial_state: str,
                            next_attempt_at: int | None) -> None:
        """Give back a claimed contact that was not dialled after all (its project stopped)."""
        await self.db.execute(
            "UPDATE contacts SET dial_state = ?, next_attempt_at = ?, updated_at = ?"
            " WHERE id = ? AND dial_state = 'dialing'",
            (dial_state, next_attempt_at, now_ms(), contact_id))

    async def dial_history(
            self, contact_id: int) -> tuple[int, builtins.list[tuple[str, int | None]]]:
        """``(attempts, [(result, sip_code), …])``: the contact's dial count and the outcomes of
        its finished calls (the CDRs), from which the dialer counts retries per class."""
        row = await self.db.fetchone("SELECT attempts FROM contacts WHERE id = ?", (contact_id,))
        if row is None:
            raise NotFound(Text("storage.error.contact_not_found", id=contact_id))
        calls = await self.db.fetchall(
            "SELECT result, sip_code FROM calls WHERE contact_id = ? AND ended_at IS NOT NULL"
            " AND result != '' ORDER BY id", (contact_id,))
        return int(row["attempts"]), [(str(c["result"]), c["sip_code"]) for c in calls]

    async def record_attempt(self, contact_id: int, *, dial_state: str, attempts: int,
                             next_attempt_at: int | None, last_call_at: int) -> None:
        """Store the outcome of one dial: state, attempt count and the next attempt time."""
        await self.db.execute(
            "UPDATE contacts SET dial_state = ?, attempts = ?, next_attempt_at = ?,"
            " last_call_at = ?, updated_at = ? WHERE id = ?",
            (dial_state, attempts, next_attempt_at, last_call_at, now_ms(), contact_id))

    async def claim_for_task(self, contact_id: int, *, now: int) -> bool:
        """Mark a contact as being dialled for an operator task ('dialing'), whatever its base
        state (a task may call back a contact the base already reached); False if it is being
        dialled already."""
        cursor = await self.db.execute(
            "UPDATE contacts SET dial_state = 'dialing', updated_at = ?"
            " WHERE id = ? AND dial_state != 'dialing'", (now, contact_id))
        return cursor.rowcount > 0

    async def release_stale_claims(self, *, now: int) -> int:
        """Contacts left 'dialing' by a process that stopped mid-call: due again now, as lost."""
        cursor = await self.db.execute(
            "UPDATE contacts SET dial_state = 'lost', next_attempt_at = ?, updated_at = ?"
            " WHERE dial_state = 'dialing'", (now, now))
        return cursor.rowcount

    async def delete_blacklisted(self, project_id: int) -> int:
        cursor = await self.db.execute(
            "DELETE FROM contacts WHERE project_id = ? AND phone IN (SELECT phone FROM blacklist)",
            (project_id,))
        return cursor.rowcount

    async def delete(self, contact_ids: Iterable[int]) -> int:
        ids = list(contact_ids)
        if not ids:
            return 0
        cursor = await self.db.execute(
            f"DELETE FROM contacts WHERE id IN ({', '.join('?' for _ in ids)})", ids)
        return cursor.rowcount

    # -- the client card (manual §5.2.2, §6.1.1) ----------------------------------------------

    CARD_COLUMNS = frozenset({"full_name", "email", "birth_date", "position", "city", "address",
                              "description", "status_id", "operator_id"})
    """What the card's «Сохранить» may change (never the number or the dialer's state)."""

    async def save_card(self, contact_id: int, *, changes: Mapping[str, object],
                        custom: Mapping[str, str] | None = None,
                        tags: Sequence[str] | None = None) -> tuple[int | None, int | None]:
        """Write one «Сохранить» of the card in one transaction: the columns, the custom
        fields merged into ``custom`` (an empty value removes a field), the tags (replaced
        when given) and ``updated_at``. Anything failing (a status or operator removed
        meanwhile) leaves the contact as it was.  Returns the status the contact had just
        before this write and the one it wrote (two saves at once each see the other's)."""
        unknown = set(changes) - self.CARD_COLUMNS
        if unknown:
            raise ValueError(f"not card fields: {', '.join(sorted(unknown))}")
        async with self.db.transaction():
            row = await self.db.fetchone("SELECT custom, status_id FROM contacts WHERE id = ?",
                                         (contact_id,))
            if row is None:
                raise NotFound(Text("storage.error.contact_not_found", id=contact_id))
            values: dict[str, object] = dict(changes)
            if custom:
                merged = _custom_of(row["custom"])
                for name, value in custom.items():
                    if value:
                        merged[name] = value
                    else:
                        merged.pop(name, None)
                values["custom"] = json.dumps(merged, ensure_ascii=False)
            if tags is not None:
                tag_ids = await TagsRepo(self.db).ensure(tags)
                await self.db.execute("DELETE FROM contact_tags WHERE contact_id = ?",
                                      (contact_id,))
                await self.db.executemany(
                    "INSERT INTO contact_tags(contact_id, tag_id) VALUES (?, ?)",
                    [(contact_id, t) for t in tag_ids])
            assignments = "".join(f"{name} = ?, " for name in values)
            await self.db.execute(
                f"UPDATE contacts SET {assignments}updated_at = ? WHERE id = ?",
                (*values.values(), now_ms(), contact_id))
        previous = None if row["status_id"] is None else int(row["status_id"])
        written = cast("int | None", values["status_id"]) if "status_id" in values else previous
        return previous, written

    async def delete_unless_dialling(
            self, contact_ids: Iterable[int], *,
            project_ids: Iterable[int] | None) -> tuple[builtins.list[int], int]:
        """Delete the contacts of ``project_ids`` (None = any project) among ``contact_ids``
        that are not being dialled, in one statement (a claim of the dialer cannot slip in
        between); return ``(the ids deleted, how many were left as being dialled)``."""
        ids = builtins.list(dict.fromkeys(contact_ids))
        if not ids:
            return [], 0
        where = f"id IN ({', '.join('?' for _ in ids)})"
        params: builtins.list[object] = builtins.list(ids)
        if project_ids is not None:
            projects = sorted(set(project_ids))
            where += (f" AND project_id IN ({', '.join('?' for _ in projects)})"
                      if projects else " AND 0")
            params += projects
        async with self.db.transaction():
            busy = await self.db.fetchone(
                f"SELECT COUNT(*) AS n FROM contacts WHERE {where} AND dial_state = 'dialing'",
                params)
            cursor = await self.db.execute(
                f"DELETE FROM contacts WHERE {where} AND dial_state != 'dialing' RETURNING id",
                params)
            deleted = sorted(int(row[0]) for row in await cursor.fetchall())
            return deleted, int(busy["n"]) if busy is not None else 0

    async def calls_of(self, contact_id: int, phone: str, *,
                       project_ids: Iterable[int] | None,
                       limit: int = 100) -> builtins.list[tuple[Call, str, str]]:
        """«Показать звонки»: the calls of the contact or of its number (newest first) in
        ``project_ids`` (None = all), with the project's and the operator's names."""
        sql = ("SELECT c.*, COALESCE(p.name, '') AS project_name,"
               " COALESCE(u.full_name, '') AS operator_name FROM calls c"
               " LEFT JOIN projects p ON p.id = c.project_id"
               " LEFT JOIN users u ON u.id = c.operator_id"
               # The two lookups by their own indexes, whatever the project filter.
               " WHERE c.id IN (SELECT id FROM calls WHERE contact_id = ?"
               " UNION SELECT id FROM calls WHERE contact_phone = ?)")
        params: builtins.list[object] = [contact_id, phone]
        if project_ids is not None:
            projects = sorted(set(project_ids))
            # "+": filter the number's calls, never scan the projects' calls for the number.
            sql += (f" AND +c.project_id IN ({', '.join('?' for _ in projects)})"
                    if projects else " AND 0")
            params += projects
        rows = await self.db.fetchall(
            sql + " ORDER BY c.started_at DESC, c.id DESC LIMIT ?", [*params, limit])
        return [(record(Call, r), str(r["project_name"]), str(r["operator_name"]))
                for r in rows]


def _custom_of(text: str | None) -> dict[str, str]:
    """The stored ``custom`` JSON as a dict of strings ({} for anything else)."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None}
