"""Registrations of operators' phones, kept across restarts (``phone_bindings``)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from ..models import PhoneBindingRow
from .base import Repo, columns, record

_COLUMNS = columns(PhoneBindingRow)


class PhoneBindingsRepo(Repo):
    async def replace(self, extension: str, rows: Sequence[PhoneBindingRow]) -> None:
        """The extension's bindings are exactly ``rows`` from now on (none: it is offline)."""
        if any(row.extension != extension for row in rows):
            raise ValueError(f"every binding must be of extension {extension!r}")
        async with self.db.transaction():
            await self.db.execute("DELETE FROM phone_bindings WHERE extension = ?", (extension,))
            await self.db.executemany(
                f"INSERT INTO phone_bindings({', '.join(_COLUMNS)})"
                f" VALUES ({', '.join('?' * len(_COLUMNS))})",
                [tuple(getattr(row, name) for name in _COLUMNS) for row in rows])

    async def live(self, now_ms: int) -> builtins.list[PhoneBindingRow]:
        """Every binding that has not expired by ``now_ms``; the expired ones are removed."""
        async with self.db.transaction():
            await self.db.execute("DELETE FROM phone_bindings WHERE expires_at <= ?", (now_ms,))
            rows = await self.db.fetchall(
                "SELECT * FROM phone_bindings ORDER BY extension, contact")
        return [record(PhoneBindingRow, row) for row in rows]
