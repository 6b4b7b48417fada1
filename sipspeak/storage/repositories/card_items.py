"""What operators add to a client card: comments and tasks («Задачи»)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ...i18n import Text
from ..db import now_ms
from ..errors import NotFound
from ..models import Comment, Task
from .base import Repo, record


class CommentsRepo(Repo):
    async def add(self, *, contact_id: int, user_id: int | None, text: str) -> int:
        if not text.strip():
            raise ValueError("комментарий не может быть пустым")
        return await self.db.insert(
            "INSERT INTO contact_comments(contact_id, user_id, text, created_at) VALUES (?,?,?,?)",
            (contact_id, user_id, text.strip(), now_ms()))

    async def list(self, contact_id: int) -> builtins.list[Comment]:
        rows = await self.db.fetchall(
            "SELECT * FROM contact_comments WHERE contact_id = ? ORDER BY id", (contact_id,))
        return [record(Comment, row) for row in rows]

    async def newest_first(self, contact_id: int, *,
                           limit: int = 500) -> builtins.list[tuple[Comment, str]]:
        """The card's «Комментарии»: newest first, each with its author's name."""
        rows = await self.db.fetchall(
            "SELECT m.*, COALESCE(u.full_name, '') AS author FROM contact_comments m"
            " LEFT JOIN users u ON u.id = m.user_id WHERE m.contact_id = ?"
            " ORDER BY m.created_at DESC, m.id DESC LIMIT ?", (contact_id, limit))
        return [(record(Comment, row), str(row["author"])) for row in rows]


@dataclass(frozen=True, slots=True)
class TaskReminder:
    """An open task whose «Дата оповещения» has come and whose reminder is not sent yet."""

    id: int
    contact_id: int
    operator_id: int | None
    created_by: int | None
    text: str
    due_at: int
    auto_call: bool


class TasksRepo(Repo):
    async def add(self, *, contact_id: int, operator_id: int | None, text: str, due_at: int,
                  auto_call: bool = False, created_by: int | None = None) -> int:
        return await self.db.insert(
            "INSERT INTO tasks(contact_id, operator_id, text, due_at, auto_call, created_at,"
            " created_by) VALUES (?,?,?,?,?,?,?)",
            (contact_id, operator_id, text, due_at, int(auto_call), now_ms(), created_by))

    async def list(self, *, contact_id: int | None = None, operator_id: int | None = None,
                   open_only: bool = False, limit: int | None = None) -> builtins.list[Task]:
        sql = "SELECT * FROM tasks WHERE 1=1"
        params: builtins.list[object] = []
        if contact_id is not None:
            sql += " AND contact_id = ?"
            params.append(contact_id)
        if operator_id is not None:
            sql += " AND operator_id = ?"
            params.append(operator_id)
        if open_only:
            sql += " AND done_at IS NULL"
        sql += " ORDER BY due_at, id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [record(Task, r) for r in await self.db.fetchall(sql, params)]

    async def due(self, *, now: int) -> builtins.list[Task]:
        rows = await self.db.fetchall(
            "SELECT * FROM tasks WHERE done_at IS NULL AND due_at <= ? ORDER BY due_at", (now,))
        return [record(Task, r) for r in rows]

    async def due_auto_calls(self, *, project_id: int, now: int,
                             operator_ids: Sequence[int] | None,
                             limit: int = 100) -> builtins.list[Task]:
        """Open tasks with «Совершать звонок автоматически» of the project's contacts that the
        dialer may call at ``now``, earliest due first: of the given operators, or (``None``)
        tasks assigned to nobody. A task is due from ``due_at`` on; once its contact was called
        after that (a failed attempt), only when the contact's next attempt time has come (the
        retry rules: none left, no more automatic calls). Never a contact being dialled or a
        blacklisted number."""
        params: builtins.list[object] = [project_id, now]
        if operator_ids is None:
            who = "t.operator_id IS NULL"
        elif not operator_ids:
            return []
        else:
            who = f"t.operator_id IN ({', '.join('?' for _ in operator_ids)})"
            params += operator_ids
        rows = await self.db.fetchall(
            "SELECT t.* FROM tasks t JOIN contacts c ON c.id = t.contact_id"
            " WHERE c.project_id = ? AND t.auto_call = 1 AND t.done_at IS NULL"
            f" AND t.due_at <= ? AND {who} AND c.dial_state != 'dialing'"
            " AND c.phone NOT IN (SELECT phone FROM blacklist)"
            " AND (c.last_call_at IS NULL OR c.last_call_at < t.due_at"
            "      OR (c.next_attempt_at IS NOT NULL AND c.next_attempt_at <= ?))"
            " ORDER BY t.due_at, t.id LIMIT ?", (*params, now, limit))
        return [record(Task, r) for r in rows]

    async def open_auto_call_contacts(self, contact_ids: Iterable[int]) -> set[int]:
        """Those of ``contact_ids`` with an open automatic-call task: the task dials them, the
        base does not."""
        ids = builtins.list(dict.fromkeys(contact_ids))
        found: set[int] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = await self.db.fetchall(
                "SELECT DISTINCT contact_id FROM tasks WHERE auto_call = 1 AND done_at IS NULL"
                f" AND contact_id IN ({', '.join('?' for _ in chunk)})", chunk)
            found.update(int(r["contact_id"]) for r in rows)
        return found

    async def of_contact(self, contact_id: int) -> builtins.list[tuple[Task, str]]:
        """The card's «Задачи»: open ones first (earliest due first), then the done ones
        (last done first), each with its operator's name."""
        rows = await self.db.fetchall(
            "SELECT t.*, COALESCE(u.full_name, '') AS operator_name FROM tasks t"
            " LEFT JOIN users u ON u.id = t.operator_id WHERE t.contact_id = ?"
            " ORDER BY t.done_at IS NOT NULL, CASE WHEN t.done_at IS NULL THEN t.due_at"
            " ELSE -t.done_at END, t.id", (contact_id,))
        return [(record(Task, r), str(r["operator_name"])) for r in rows]

    async def complete_of_contact(self, contact_id: int, task_id: int) -> None:
        """Mark the contact's open task done; NotFound for another contact's or a done one."""
        cursor = await self.db.execute(
            "UPDATE tasks SET done_at = ? WHERE id = ? AND contact_id = ? AND done_at IS NULL",
            (now_ms(), task_id, contact_id))
        if cursor.rowcount == 0:
            raise NotFound(Text("storage.error.task_not_found", id=task_id))

    # -- reminders («Дата оповещения», manual §6.1.1) -------------------------------------------

    async def due_reminders(self, *, now: int, limit: int = 200) -> builtins.list[TaskReminder]:
        """Open tasks due by ``now`` whose reminder was not sent, earliest first."""
        rows = await self.db.fetchall(
            "SELECT id, contact_id, operator_id, created_by, text, due_at, auto_call FROM tasks"
            " WHERE reminded_at IS NULL AND done_at IS NULL AND due_at <= ?"
            " ORDER BY due_at, id LIMIT ?", (now, limit))
        return [record(TaskReminder, r) for r in rows]

    async def next_reminder_at(self) -> int | None:
        """When the earliest reminder not sent yet is due (None: none is waiting)."""
        row = await self.db.fetchone(
            "SELECT MIN(due_at) AS at FROM tasks WHERE reminded_at IS NULL AND done_at IS NULL")
        return None if row is None or row["at"] is None else int(row["at"])

    async def mark_reminded(self, task_id: int, *, at: int) -> bool:
        """Record the task's reminder as sent; False if it already was (or the task is gone
        or done): a reminder goes out once."""
        cursor = await self.db.execute(
            "UPDATE tasks SET reminded_at = ? WHERE id = ? AND reminded_at IS NULL"
            " AND done_at IS NULL", (at, task_id))
        return cursor.rowcount > 0

    async def complete(self, task_id: int) -> None:
        cursor = await self.db.execute(
            "UPDATE tasks SET done_at = ? WHERE id = ? AND done_at IS NULL", (now_ms(), task_id))
        if cursor.rowcount == 0:
            raise NotFound(Text("storage.error.task_not_found", id=task_id))
