"""Projects and their tabs: groups, statuses, card fields, weekday intervals, task rules."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import fields

from ...i18n import Text
from ..db import now_ms
from ..errors import NotFound
from ..models import (
    DIAL_MODES,
    STRATEGIES,
    CardField,
    Project,
    TaskRule,
    WeekdayInterval,
)
from .base import Repo, record

# Columns an admin may change (everything but the identity and bookkeeping columns).
EDITABLE = tuple(
    f.name for f in fields(Project)
    if f.name not in ("id", "created_at", "updated_at", "deleted_at", "group_ids", "status_ids")
)


def _check(changes: dict[str, object]) -> None:
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValueError(f"unknown project fields: {', '.join(sorted(unknown))}")
    if "name" in changes and not str(changes["name"]).strip():
        raise ValueError("название проекта не может быть пустым")
    if "strategy" in changes and changes["strategy"] not in STRATEGIES:
        raise ValueError(f"неизвестная стратегия {changes['strategy']!r}")
    if "dial_mode" in changes and changes["dial_mode"] not in DIAL_MODES:
        raise ValueError(f"неизвестный тип автонабора {changes['dial_mode']!r}")


class ProjectsRepo(Repo):
    async def create(self, name: str, **settings: object) -> int:
        changes: dict[str, object] = {"name": name.strip(), **settings}
        _check(changes)
        now = now_ms()
        names = list(changes)
        values = [int(v) if isinstance(v, bool) else v for v in changes.values()]
        return await self.db.insert(
            f"INSERT INTO projects({', '.join(names)}, created_at, updated_at)"
            f" VALUES ({', '.join('?' for _ in names)}, ?, ?)", (*values, now, now))

    async def get(self, project_id: int, *, include_deleted: bool = False) -> Project:
        row = await self.db.fetchone("SELECT * FROM projects WHERE id = ?", (project_id,))
        if row is None or (row["deleted_at"] is not None and not include_deleted):
            raise NotFound(Text("storage.error.project_not_found", id=project_id))
        groups = await self.db.fetchall(
            "SELECT group_id FROM project_groups WHERE project_id = ? ORDER BY group_id",
            (project_id,))
        statuses = await self.db.fetchall(
            "SELECT status_id FROM project_statuses WHERE project_id = ? ORDER BY status_id",
            (project_id,))
        return record(Project, row, group_ids=tuple(g["group_id"] for g in groups),
                      status_ids=tuple(s["status_id"] for s in statuses))

    async def list(self, *, name: str = "", group_id: int | None = None,
                   created_from: int | None = None, created_to: int | None = None,
                   supervisor_id: int | None = None, launched: bool | None = None) -> builtins.list[Project]:
        sql = "SELECT p.* FROM projects p WHERE p.deleted_at IS NULL"
        params: builtins.list[object] = []
        if name:
            sql += " AND p.name LIKE ?"
            params.append(f"%{name}%")
        if group_id is not None:
            sql += " AND EXISTS (SELECT 1 FROM project_groups g WHERE g.project_id = p.id AND g.group_id = ?)"
            params.append(group_id)
        if created_from is not None:
            sql += " AND p.created_at >= ?"
            params.append(created_from)
        if created_to is not None:
            sql += " AND p.created_at < ?"
            params.append(created_to)
        if supervisor_id is not None:
            sql += " AND p.supervisor_id = ?"
            params.append(supervisor_id)
        if launched is not None:
            sql += " AND p.launched = ?"
            params.append(int(launched))
        rows = await self.db.fetchall(sql + " ORDER BY p.id DESC", params)
        links = await self.db.fetchall("SELECT project_id, group_id FROM project_groups")
        by_project: dict[int, list[int]] = {}
        for link in links:
            by_project.setdefault(link["project_id"], []).append(link["group_id"])
        return [record(Project, r, group_ids=tuple(sorted(by_project.get(r["id"], ()))))
                for r in rows]

    async def update(self, project_id: int, **changes: object) -> None:
        _check(changes)
        if not changes:
            return
        values = [int(v) if isinstance(v, bool) else v for v in changes.values()]
        assignments = ", ".join(f"{name} = ?" for name in changes)
        cursor = await self.db.execute(
            f"UPDATE projects SET {assignments}, updated_at = ? WHERE id = ? AND deleted_at IS NULL",
            (*values, now_ms(), project_id))
        if cursor.rowcount == 0:
            raise NotFound(Text("storage.error.project_not_found", id=project_id))

    async def delete(self, project_id: int) -> None:
        """Remove a project from the lists; its calls and contacts stay for the reports."""
        cursor = await self.db.execute(
            "UPDATE projects SET deleted_at = ?, launched = 0 WHERE id = ? AND deleted_at IS NULL",
            (now_ms(), project_id))
        if cursor.rowcount == 0:
            raise NotFound(Text("storage.error.project_not_found", id=project_id))

    async def copy(self, project_id: int, *, name: str | None = None) -> int:
        """A new project with every setting of the source (not launched, no contacts)."""
        async with self.db.transaction():
            source = await self.get(project_id)
            settings = {f: getattr(source, f) for f in EDITABLE}
            settings["name"] = name or f"{source.name} копия"
            settings["launched"] = False
            new_id = await self.create(**settings)
            await self.set_groups(new_id, source.group_ids)
            await self.set_statuses(new_id, source.status_ids)
            await self.set_intervals(new_id, await self.intervals(project_id))
            await self.set_card_fields(new_id, [f.name for f in await self.card_fields(project_id)])
            await self.set_task_rules(new_id, await self.task_rules(project_id))
            return new_id

    async def set_groups(self, project_id: int, group_ids: Iterable[int]) -> None:
        async with self.db.transaction():
            await self.db.execute("DELETE FROM project_groups WHERE project_id = ?", (project_id,))
            await self.db.executemany(
                "INSERT INTO project_groups(project_id, group_id) VALUES (?, ?)",
                [(project_id, g) for g in dict.fromkeys(group_ids)])

    async def set_statuses(self, project_id: int, status_ids: Iterable[int]) -> None:
        async with self.db.transaction():
            await self.db.execute("DELETE FROM project_statuses WHERE project_id = ?", (project_id,))
            await self.db.executemany(
                "INSERT INTO project_statuses(project_id, status_id) VALUES (?, ?)",
                [(project_id, s) for s in dict.fromkeys(status_ids)])

    async def card_fields(self, project_id: int) -> builtins.list[CardField]:
        rows = await self.db.fetchall(
            "SELECT * FROM project_card_fields WHERE project_id = ? ORDER BY position, id",
            (project_id,))
        return [record(CardField, row) for row in rows]

    async def set_card_fields(self, project_id: int, names: Sequence[str]) -> None:
        cleaned = [n.strip() for n in names]
        if any(not n for n in cleaned):
            raise ValueError("название поля не может быть пустым")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("названия полей карточки повторяются")
        async with self.db.transaction():
            await self.db.execute("DELETE FROM project_card_fields WHERE project_id = ?", (project_id,))
            await self.db.executemany(
                "INSERT INTO project_card_fields(project_id, name, position) VALUES (?,?,?)",
                [(project_id, n, i) for i, n in enumerate(cleaned)])

    async def intervals(self, project_id: int) -> builtins.list[WeekdayInterval]:
        rows = await self.db.fetchall(
            "SELECT weekday, start_time, end_time FROM project_intervals WHERE project_id = ?"
            " ORDER BY weekday, start_time", (project_id,))
        return [record(WeekdayInterval, row) for row in rows]

    async def set_intervals(self, project_id: int, intervals: Iterable[WeekdayInterval]) -> None:
        items = list(intervals)
        for item in items:
            if not 0 <= item.weekday <= 6:
                raise ValueError(f"день недели {item.weekday} вне 0..6")
            if not (_hhmm(item.start_time) and _hhmm(item.end_time)):
                raise ValueError(f"время должно быть ЧЧ:ММ: {item.start_time}–{item.end_time}")
            if item.start_time >= item.end_time:
                raise ValueError(f"интервал {item.start_time}–{item.end_time}: начало не раньше конца")
        async with self.db.transaction():
            await self.db.execute("DELETE FROM project_intervals WHERE project_id = ?", (project_id,))
            await self.db.executemany(
                "INSERT INTO project_intervals(project_id, weekday, start_time, end_time)"
                " VALUES (?,?,?,?)",
                [(project_id, i.weekday, i.start_time, i.end_time) for i in items])

    async def task_rules(self, project_id: int) -> builtins.list[TaskRule]:
        rows = await self.db.fetchall(
            "SELECT operator_id, status_id FROM project_task_rules WHERE project_id = ? ORDER BY id",
            (project_id,))
        return [record(TaskRule, row) for row in rows]

    async def set_task_rules(self, project_id: int, rules: Iterable[TaskRule]) -> None:
        async with self.db.transaction():
            await self.db.execute("DELETE FROM project_task_rules WHERE project_id = ?", (project_id,))
            await self.db.executemany(
                "INSERT INTO project_task_rules(project_id, operator_id, status_id) VALUES (?,?,?)",
                [(project_id, r.operator_id, r.status_id) for r in rules])

    async def ids_of_operator(self, user_id: int) -> builtins.list[int]:
        """Live projects whose groups hold the operator, launched ones first, then by id."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT p.id, p.launched FROM group_members m"
            " JOIN project_groups pg ON pg.group_id = m.group_id"
            " JOIN projects p ON p.id = pg.project_id"
            " WHERE m.user_id = ? AND p.deleted_at IS NULL"
            " ORDER BY p.launched DESC, p.id", (user_id,))
        return [int(row["id"]) for row in rows]

    async def operator_ids(self, project_id: int) -> builtins.list[int]:
        """Live operators of the project's groups, in group-list order, each once."""
        rows = await self.db.fetchall(
            "SELECT m.user_id FROM project_groups pg"
            " JOIN group_members m ON m.group_id = pg.group_id"
            " JOIN users u ON u.id = m.user_id"
            " WHERE pg.project_id = ? AND u.deleted_at IS NULL"
            " ORDER BY pg.group_id, m.position, m.user_id", (project_id,))
        return list(dict.fromkeys(row["user_id"] for row in rows))


def _hhmm(text: str) -> bool:
    if len(text) != 5 or text[2] != ":" or not (text[:2] + text[3:]).isdigit():
        return False
    return int(text[:2]) <= 24 and int(text[3:]) < 60 and (text[:2] != "24" or text[3:] == "00")
