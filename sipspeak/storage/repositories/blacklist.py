"""«Черный список» (manual §9): numbers never dialled."""

from __future__ import annotations

import builtins
from collections.abc import Iterable

from ..db import now_ms
from ..models import BlacklistEntry
from .base import Repo, record


class BlacklistRepo(Repo):
    async def add(self, phones: Iterable[str], *, comment: str = "",
                  created_by: int | None = None) -> int:
        now = now_ms()
        items = list(dict.fromkeys(phones))
        async with self.db.transaction():
            before = await self._count()
            await self.db.executemany(
                "INSERT OR IGNORE INTO blacklist(phone, comment, created_by, created_at)"
                " VALUES (?,?,?,?)", [(p, comment, created_by, now) for p in items])
            return await self._count() - before

    async def _count(self) -> int:
        row = await self.db.fetchone("SELECT COUNT(*) AS n FROM blacklist")
        return int(row["n"]) if row else 0

    async def remove(self, phones: Iterable[str]) -> int:
        items = list(phones)
        if not items:
            return 0
        cursor = await self.db.execute(
            f"DELETE FROM blacklist WHERE phone IN ({', '.join('?' for _ in items)})", items)
        return cursor.rowcount

    async def contains(self, phone: str) -> bool:
        return await self.db.fetchone("SELECT 1 FROM blacklist WHERE phone = ?", (phone,)) is not None

    async def among(self, phones: Iterable[str]) -> set[str]:
        """The blacklisted numbers out of ``phones`` (the dialer checks its candidates)."""
        items = list(dict.fromkeys(phones))
        found: set[str] = set()
        for start in range(0, len(items), 500):
            chunk = items[start:start + 500]
            rows = await self.db.fetchall(
                f"SELECT phone FROM blacklist WHERE phone IN ({', '.join('?' for _ in chunk)})",
                chunk)
            found.update(r["phone"] for r in rows)
        return found

    async def phones(self) -> set[str]:
        return {r["phone"] for r in await self.db.fetchall("SELECT phone FROM blacklist")}

    async def list(self, *, search: str = "", limit: int = 100, offset: int = 0) -> builtins.list[BlacklistEntry]:
        rows = await self.db.fetchall(
            "SELECT * FROM blacklist WHERE phone LIKE ? ORDER BY created_at DESC, phone"
            " LIMIT ? OFFSET ?", (f"%{search}%", limit, offset))
        return [record(BlacklistEntry, r) for r in rows]
