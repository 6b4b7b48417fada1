"""Outgoing webhooks: the endpoints (``webhooks``) and their outbox (``webhook_deliveries``)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from ...i18n import Text
from ..db import now_ms
from ..errors import NotFound
from ..models import Webhook, WebhookDelivery
from .base import Repo, record

_NAME_TAKEN = Text("webhooks.error.name_taken")
_FIELDS = ("name", "url", "events", "secret", "active", "full_numbers")
PRUNE_BATCH = 1000
"""Ended deliveries forgotten per transaction."""


def _not_found(webhook_id: int) -> NotFound:
    return NotFound(Text("webhooks.error.not_found", id=webhook_id))


class WebhooksRepo(Repo):
    async def create(self, *, name: str, url: str, events: Sequence[str], secret: str,
                     active: bool = True, full_numbers: bool = False) -> int:
        now = now_ms()
        async with self.db.transaction():
            await self.ensure_name_free("webhooks", name, message=_NAME_TAKEN)
            return await self.db.insert(
                "INSERT INTO webhooks(name, url, events, secret, active, full_numbers,"
                " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)",
                (name, url, " ".join(events), secret, int(active), int(full_numbers), now, now))

    async def get(self, webhook_id: int) -> Webhook:
        row = await self.db.fetchone("SELECT * FROM webhooks WHERE id = ?", (webhook_id,))
        if row is None:
            raise _not_found(webhook_id)
        return record(Webhook, row)

    async def list(self) -> builtins.list[Webhook]:
        rows = await self.db.fetchall("SELECT * FROM webhooks ORDER BY name COLLATE NOCASE, id")
        return [record(Webhook, r) for r in rows]

    async def subscribed(self, event_type: str) -> builtins.list[Webhook]:
        """The active endpoints that take ``event_type``."""
        rows = await self.db.fetchall("SELECT * FROM webhooks WHERE active = 1 ORDER BY id")
        hooks = [record(Webhook, r) for r in rows]
        return [h for h in hooks if event_type in h.event_types]

    async def update(self, webhook_id: int, **changes: object) -> None:
        """Change the given fields (``events`` as a sequence of types); one transaction."""
        unknown = set(changes) - set(_FIELDS)
        if unknown:
            raise ValueError(f"unknown webhook fields: {', '.join(sorted(unknown))}")
        values: dict[str, object] = {}
        for key, value in changes.items():
            if key == "events" and isinstance(value, (list, tuple)):
                value = " ".join(str(v) for v in value)
            values[key] = int(value) if isinstance(value, bool) else value
        async with self.db.transaction():
            await self.get(webhook_id)
            if "name" in values:
                await self.ensure_name_free("webhooks", str(values["name"]),
                                            message=_NAME_TAKEN, exclude_id=webhook_id)
            if values:
                assignments = ", ".join(f"{name} = ?" for name in values)
                await self.db.execute(
                    f"UPDATE webhooks SET {assignments}, updated_at = ? WHERE id = ?",
                    (*values.values(), now_ms(), webhook_id))

    async def delete(self, webhook_id: int) -> None:
        """The endpoint and its outbox (what was not delivered is dropped with it)."""
        cursor = await self.db.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))
        if cursor.rowcount == 0:
            raise _not_found(webhook_id)

    async def failing(self, webhook_id: int, *, at: int, error: str) -> bool:
        """Mark the endpoint failing after a delivery failed for good; True when it was not
        failing already (so this outage has not been reported yet)."""
        cursor = await self.db.execute(
            "UPDATE webhooks SET failing_since = ?, last_error = ?"
            " WHERE id = ? AND failing_since IS NULL", (at, error, webhook_id))
        if cursor.rowcount == 0:
            await self.db.execute("UPDATE webhooks SET last_error = ? WHERE id = ?",
                                  (error, webhook_id))
            return False
        return True

    async def recovered(self, webhook_id: int) -> None:
        """A delivery was taken: the endpoint is not failing any more."""
        await self.db.execute(
            "UPDATE webhooks SET failing_since = NULL, last_error = ''"
            " WHERE id = ? AND (failing_since IS NOT NULL OR last_error != '')", (webhook_id,))

    async def note_error(self, webhook_id: int, error: str) -> None:
        """The last failed attempt's reason, shown on the settings page."""
        await self.db.execute("UPDATE webhooks SET last_error = ? WHERE id = ?",
                              (error, webhook_id))


class WebhookDeliveriesRepo(Repo):
    async def add_many(self, rows: Sequence[tuple[int, str, str, str]], *, now: int) -> None:
        """``(webhook id, event id, event type, body)`` rows to send from ``now`` on, all
        stored or none."""
        await self.db.executemany(
            "INSERT INTO webhook_deliveries(webhook_id, event_id, event_type, body,"
            " next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(*row, now, now) for row in rows])

    async def due(self, *, webhook_id: int, now: int,
                  limit: int) -> builtins.list[WebhookDelivery]:
        """The endpoint's next ``limit`` due deliveries in the order they are sent
        (``next_attempt_at``, then ``id``): a seek in ``webhook_deliveries_pending`` that
        stops at the limit, so only the rows returned are read."""
        rows = await self.db.fetchall(
            "SELECT * FROM webhook_deliveries WHERE webhook_id = ? AND state = 'pending'"
            " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
            (webhook_id, now, limit))
        return [record(WebhookDelivery, r) for r in rows]

    async def first_due(self) -> dict[int, int]:
        """When the first pending delivery of each endpoint that has one is due, by endpoint
        id: one seek per endpoint (``webhook_deliveries_pending`` covers it, no body read)."""
        rows = await self.db.fetchall(
            "SELECT w.id AS webhook_id, (SELECT MIN(d.next_attempt_at) FROM webhook_deliveries d"
            " WHERE d.webhook_id = w.id AND d.state = 'pending') AS at FROM webhooks w")
        return {int(r["webhook_id"]): int(r["at"]) for r in rows if r["at"] is not None}

    async def sent(self, delivery_id: int, *, status: int, at: int) -> None:
        await self.db.execute(
            "UPDATE webhook_deliveries SET state = 'sent', last_status = ?, sent_at = ?,"
            " error = '', attempts = attempts + 1 WHERE id = ?", (status, at, delivery_id))

    async def retry(self, delivery_id: int, *, status: int | None, error: str,
                    next_attempt_at: int) -> None:
        await self.db.execute(
            "UPDATE webhook_deliveries SET last_status = ?, error = ?, next_attempt_at = ?,"
            " attempts = attempts + 1 WHERE id = ?", (status, error, next_attempt_at, delivery_id))

    async def failed(self, delivery_id: int, *, status: int | None, error: str) -> None:
        await self.db.execute(
            "UPDATE webhook_deliveries SET state = 'failed', last_status = ?, error = ?,"
            " attempts = attempts + 1 WHERE id = ?", (status, error, delivery_id))

    async def list(self, *, webhook_id: int | None = None, state: str | None = None,
                   limit: int = 100) -> builtins.list[WebhookDelivery]:
        """The latest deliveries, newest first."""
        where: builtins.list[str] = []
        params: builtins.list[object] = []
        if webhook_id is not None:
            where.append("webhook_id = ?")
            params.append(webhook_id)
        if state is not None:
            where.append("state = ?")
            params.append(state)
        sql = "SELECT * FROM webhook_deliveries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = await self.db.fetchall(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
        return [record(WebhookDelivery, r) for r in rows]

    async def pending_counts(self) -> dict[int, int]:
        """Deliveries still to be made, per endpoint id (counted in the pending index)."""
        rows = await self.db.fetchall(
            "SELECT w.id AS webhook_id, (SELECT COUNT(*) FROM webhook_deliveries d"
            " WHERE d.webhook_id = w.id AND d.state = 'pending') AS n FROM webhooks w")
        return {int(r["webhook_id"]): int(r["n"]) for r in rows if r["n"]}

    async def prune(self, *, before: int, batch: int = PRUNE_BATCH) -> int:
        """Forget deliveries that ended (sent or failed) before ``before``; how many.  At most
        ``batch`` rows go per transaction, so the other writers get in between."""
        gone = 0
        while True:
            cursor = await self.db.execute(
                "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries"
                " WHERE state != 'pending' AND created_at < ? LIMIT ?)", (before, batch))
            gone += cursor.rowcount
            if cursor.rowcount < batch:
                return gone
