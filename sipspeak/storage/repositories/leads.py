"""The CRM leads outbox (``crm_leads``)."""

from __future__ import annotations

import builtins

from ..models import CrmLead
from .base import Repo, record


class CrmLeadsRepo(Repo):
    async def add(self, *, project_id: int, contact_id: int | None, user_id: int | None,
                  fields: str, now: int) -> int:
        """A lead to send from ``now`` on."""
        return await self.db.insert(
            "INSERT INTO crm_leads(project_id, contact_id, user_id, fields, next_attempt_at,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (project_id, contact_id, user_id, fields, now, now))

    async def due(self, *, now: int, limit: int = 20) -> builtins.list[CrmLead]:
        rows = await self.db.fetchall(
            "SELECT * FROM crm_leads WHERE state = 'pending' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, id LIMIT ?", (now, limit))
        return [record(CrmLead, r) for r in rows]

    async def next_due_at(self) -> int | None:
        row = await self.db.fetchone(
            "SELECT MIN(next_attempt_at) AS at FROM crm_leads WHERE state = 'pending'")
        return None if row is None or row["at"] is None else int(row["at"])

    async def sent(self, lead_id: int, *, crm_id: str, at: int) -> None:
        await self.db.execute(
            "UPDATE crm_leads SET state = 'sent', crm_id = ?, sent_at = ?, error = '',"
            " attempts = attempts + 1 WHERE id = ?", (crm_id, at, lead_id))

    async def retry(self, lead_id: int, *, error: str, next_attempt_at: int) -> None:
        await self.db.execute(
            "UPDATE crm_leads SET error = ?, next_attempt_at = ?, attempts = attempts + 1"
            " WHERE id = ?", (error, next_attempt_at, lead_id))

    async def failed(self, lead_id: int, *, error: str) -> None:
        await self.db.execute(
            "UPDATE crm_leads SET state = 'failed', error = ?, attempts = attempts + 1"
            " WHERE id = ?", (error, lead_id))

    async def list(self, *, contact_id: int) -> builtins.list[CrmLead]:
        rows = await self.db.fetchall(
            "SELECT * FROM crm_leads WHERE contact_id = ? ORDER BY id DESC", (contact_id,))
        return [record(CrmLead, r) for r in rows]
