"""What the outside robot system writes back: a contact's «Статус робота» (manual §5.2.2,
§6.1, §6.2), on the contact and on the robot call it came from."""

from __future__ import annotations

from ...i18n import Text
from ..db import now_ms
from ..errors import NotFound
from .base import Repo


class RobotRepo(Repo):
    async def set_status(self, contact_id: int, status: str | None) -> int | None:
        """Store ``status`` (``None`` clears it) on the contact and on its latest call of
        kind ``robot`` (the calls report's «Статус Робота»), in one transaction.  Returns
        that call's id, or None when the contact had no robot call."""
        async with self.db.transaction():
            cursor = await self.db.execute(
                "UPDATE contacts SET robot_status = ?, updated_at = ? WHERE id = ?",
                (status, now_ms(), contact_id))
            if cursor.rowcount == 0:
                raise NotFound(Text("storage.error.contact_not_found", id=contact_id))
            row = await self.db.fetchone(
                "SELECT id FROM calls WHERE contact_id = ? AND kind = 'robot'"
                " ORDER BY started_at DESC, id DESC LIMIT 1", (contact_id,))
            if row is None:
                return None
            call_id = int(row["id"])
            await self.db.execute("UPDATE calls SET robot_status = ? WHERE id = ?",
                                  (status, call_id))
        return call_id
