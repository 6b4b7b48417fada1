"""System settings (key → value), statuses and trunks."""

from __future__ import annotations

import builtins
import re

from ...i18n import Text
from ..db import now_ms
from ..errors import NotFound
from ..models import Status, Trunk
from .base import Repo, record

_STATUS_TAKEN = Text("storage.error.status_taken")
_TRUNK_TAKEN = Text("storage.error.trunk_taken")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


class SettingsRepo(Repo):
    async def get(self, key: str, default: str | None = None) -> str | None:
        row = await self.db.fetchone("SELECT value FROM settings WHERE key = ?", (key,))
        return str(row["value"]) if row else default

    async def set(self, key: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO settings(key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    async def all(self) -> dict[str, str]:
        rows = await self.db.fetchall("SELECT key, value FROM settings ORDER BY key")
        return {row["key"]: row["value"] for row in rows}


class StatusesRepo(Repo):
    async def create(self, name: str, color: str = "#9e9e9e", *, active: bool = True) -> int:
        name = name.strip()
        if not name:
            raise ValueError("название статуса не может быть пустым")
        if not _COLOR.match(color):
            raise ValueError(f"цвет должен быть вида #RRGGBB, получено {color!r}")
        async with self.db.transaction():
            await self.ensure_name_free("statuses", name, message=_STATUS_TAKEN)
            return await self.db.insert(
                "INSERT INTO statuses(name, color, active, created_at) VALUES (?,?,?,?)",
                (name, color, int(active), now_ms()))

    async def get(self, status_id: int) -> Status:
        row = await self.db.fetchone("SELECT * FROM statuses WHERE id = ?", (status_id,))
        if row is None:
            raise NotFound(Text("storage.error.status_not_found", id=status_id))
        return record(Status, row)

    async def list(self, *, only_active: bool = False) -> builtins.list[Status]:
        sql = "SELECT * FROM statuses"
        if only_active:
            sql += " WHERE active = 1"
        rows = await self.db.fetchall(sql + " ORDER BY name COLLATE NOCASE")
        return [record(Status, row) for row in rows]

    async def update(self, status_id: int, *, name: str | None = None, color: str | None = None,
                     active: bool | None = None) -> None:
        current = await self.get(status_id)
        name = current.name if name is None else name.strip()
        color = current.color if color is None else color
        if not name:
            raise ValueError("название статуса не может быть пустым")
        if not _COLOR.match(color):
            raise ValueError(f"цвет должен быть вида #RRGGBB, получено {color!r}")
        flag = current.active if active is None else active
        async with self.db.transaction():
            await self.ensure_name_free("statuses", name, message=_STATUS_TAKEN, exclude_id=status_id)
            await self.db.execute(
                "UPDATE statuses SET name = ?, color = ?, active = ? WHERE id = ?",
                (name, color, int(flag), status_id))


_TRUNK_FIELDS = ("name", "username", "password", "host", "inbound_project_id", "robot", "active",
                 "price_per_minute_kopecks", "billing_increment_s", "inbound_sources")


class TrunksRepo(Repo):
    async def create(self, *, name: str, host: str, username: str = "", password: str = "",
                     inbound_project_id: int | None = None, active: bool = True,
                     robot: bool = False, price_per_minute_kopecks: int = 0,
                     billing_increment_s: int = 60, inbound_sources: str = "") -> int:
        if not name.strip():
            raise ValueError("название транка не может быть пустым")
        if not host.strip():
            raise ValueError("хост транка не может быть пустым")
        now = now_ms()
        async with self.db.transaction():
            await self.ensure_name_free("trunks", name.strip(), message=_TRUNK_TAKEN)
            return await self.db.insert(
                "INSERT INTO trunks(name, username, password, host, inbound_project_id, robot,"
                " active, price_per_minute_kopecks, billing_increment_s, inbound_sources,"
                " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (name.strip(), username, password, host.strip(), inbound_project_id, int(robot),
                 int(active), price_per_minute_kopecks, billing_increment_s, inbound_sources,
                 now, now))

    async def get(self, trunk_id: int) -> Trunk:
        row = await self.db.fetchone("SELECT * FROM trunks WHERE id = ?", (trunk_id,))
        if row is None:
            raise NotFound(Text("storage.error.trunk_not_found", id=trunk_id))
        return record(Trunk, row)

    async def list(self, *, only_active: bool = False) -> builtins.list[Trunk]:
        sql = "SELECT * FROM trunks" + (" WHERE active = 1" if only_active else "")
        rows = await self.db.fetchall(sql + " ORDER BY name COLLATE NOCASE")
        return [record(Trunk, row) for row in rows]

    async def update(self, trunk_id: int, **changes: object) -> None:
        unknown = set(changes) - set(_TRUNK_FIELDS)
        if unknown:
            raise ValueError(f"unknown trunk fields: {', '.join(sorted(unknown))}")
        if not changes:
            return
        values = [int(v) if isinstance(v, bool) else v for v in changes.values()]
        assignments = ", ".join(f"{name} = ?" for name in changes)
        async with self.db.transaction():
            if "name" in changes:
                await self.ensure_name_free("trunks", str(changes["name"]).strip(),
                                            message=_TRUNK_TAKEN, exclude_id=trunk_id)
            cursor = await self.db.execute(
                f"UPDATE trunks SET {assignments}, updated_at = ? WHERE id = ?",
                (*values, now_ms(), trunk_id))
        if cursor.rowcount == 0:
            raise NotFound(Text("storage.error.trunk_not_found", id=trunk_id))

    async def delete(self, trunk_id: int) -> None:
        cursor = await self.db.execute("DELETE FROM trunks WHERE id = ?", (trunk_id,))
        if cursor.rowcount == 0:
            raise NotFound(Text("storage.error.trunk_not_found", id=trunk_id))
