"""Trunk money: recorded balances (kept as history), spend and the low-balance threshold.

The balance of a trunk is its last record's balance less the prices of its calls priced since
(``trunk_accounts.spent_kopecks``, kept by triggers on ``calls``, minus the record's mark), so
reading it is one indexed row per trunk however many calls there are.  A day's spend sums the
calls started in the day from the ``calls_spend`` index (migration 0008); :meth:`day_spend`
remembers that sum until a trunk's running spend moves (a call priced, priced again or moved
to another trunk: the triggers of migration 0008 keep it), the day changes or
:data:`DAY_SPEND_KEPT_S` pass, so the header does not re-read the day's calls on every page.
"""

from __future__ import annotations

import builtins
import sqlite3
import time
from typing import TYPE_CHECKING

from ...i18n import Text
from ..db import now_ms
from ..errors import NotFound
from ..models import BALANCE_KINDS, BalanceKind, BalanceRecord, TrunkAccount
from .base import Repo, record

if TYPE_CHECKING:
    from ..db import Database

DAY_SPEND_KEPT_S = 60.0
"""How long a day's spend is trusted without being summed again, however still the trunks'
running spends (a bound for writes outside the triggers, such as a call row deleted by hand)."""

_ACCOUNTS = (
    "SELECT t.id AS trunk_id, t.name AS trunk_name,"
    " COALESCE(a.spent_kopecks, 0) AS spent_kopecks, a.low_balance_kopecks,"
    " COALESCE(a.low_notified, 0) AS low_notified,"
    " r.id AS r_id, r.trunk_id AS r_trunk_id, r.kind AS r_kind,"
    " r.amount_kopecks AS r_amount_kopecks,"
    " r.balance_kopecks AS r_balance_kopecks, r.spent_mark_kopecks AS r_spent_mark_kopecks,"
    " r.comment AS r_comment, r.user_id AS r_user_id, r.created_at AS r_created_at"
    " FROM trunks t LEFT JOIN trunk_accounts a ON a.trunk_id = t.id"
    " LEFT JOIN trunk_balance_records r ON r.id ="
    " (SELECT MAX(id) FROM trunk_balance_records WHERE trunk_id = t.id)")


def _account(row: sqlite3.Row) -> TrunkAccount:
    last = None
    if row["r_id"] is not None:
        names = row.keys()  # an sqlite3.Row iterates over its values, not its names
        last = record(BalanceRecord, {key[2:]: row[key] for key in names if key.startswith("r_")})
    return TrunkAccount(trunk_id=row["trunk_id"], trunk_name=row["trunk_name"],
                        spent_kopecks=row["spent_kopecks"],
                        low_balance_kopecks=row["low_balance_kopecks"],
                        low_notified=bool(row["low_notified"]), last=last)


class TrunkMoneyRepo(Repo):
    def __init__(self, db: Database) -> None:
        super().__init__(db)
        # (range, every trunk's running spend) → (when summed, monotonic s; the sums)
        self._day_spend: tuple[tuple[object, ...], float, dict[int | None, int]] | None = None

    async def accounts(self) -> builtins.list[TrunkAccount]:
        """Every trunk's money, in name order."""
        rows = await self.db.fetchall(_ACCOUNTS + " ORDER BY t.name COLLATE NOCASE")
        return [_account(row) for row in rows]

    async def account(self, trunk_id: int) -> TrunkAccount:
        row = await self.db.fetchone(_ACCOUNTS + " WHERE t.id = ?", (trunk_id,))
        if row is None:
            raise NotFound(Text("storage.error.trunk_not_found", id=trunk_id))
        return _account(row)

    async def record_balance(self, trunk_id: int, *, kind: BalanceKind, amount_kopecks: int,
                             user_id: int | None = None, comment: str = "") -> BalanceRecord:
        """Set the account's balance, or add a top-up to the balance it has now."""
        if kind not in BALANCE_KINDS:
            raise ValueError(f"unknown balance record kind {kind!r}")
        async with self.db.transaction():
            current = await self.account(trunk_id)
            balance = amount_kopecks
            if kind == "topup":
                balance += current.balance_kopecks or 0
            record_id = await self.db.insert(
                "INSERT INTO trunk_balance_records(trunk_id, kind, amount_kopecks,"
                " balance_kopecks, spent_mark_kopecks, comment, user_id, created_at)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (trunk_id, kind, amount_kopecks, balance, current.spent_kopecks, comment,
                 user_id, now_ms()))
        return await self._record(record_id)

    async def _record(self, record_id: int) -> BalanceRecord:
        row = await self.db.fetchone("SELECT * FROM trunk_balance_records WHERE id = ?",
                                     (record_id,))
        if row is None:
            raise NotFound(Text("storage.error.trunk_not_found", id=record_id))
        return record(BalanceRecord, row)

    async def history(self, trunk_id: int, *, limit: int = 50) -> builtins.list[BalanceRecord]:
        """The trunk's balance records, newest first."""
        rows = await self.db.fetchall(
            "SELECT * FROM trunk_balance_records WHERE trunk_id = ? ORDER BY id DESC LIMIT ?",
            (trunk_id, limit))
        return [record(BalanceRecord, row) for row in rows]

    async def histories(self, *, limit: int = 10) -> dict[int, builtins.list[BalanceRecord]]:
        """The latest records of every trunk (the trunks page), newest first."""
        rows = await self.db.fetchall(
            "SELECT * FROM (SELECT r.*, ROW_NUMBER() OVER (PARTITION BY trunk_id"
            " ORDER BY id DESC) AS n FROM trunk_balance_records r) WHERE n <= ?"
            " ORDER BY trunk_id, id DESC", (limit,))
        out: dict[int, builtins.list[BalanceRecord]] = {}
        for row in rows:
            out.setdefault(row["trunk_id"], []).append(record(BalanceRecord, row))
        return out

    async def set_low_balance(self, trunk_id: int, kopecks: int | None) -> None:
        """The threshold below which the administrators are told (None: never); a new
        threshold is told about afresh."""
        async with self.db.transaction():
            await self.db.execute(
                "INSERT INTO trunk_accounts(trunk_id, low_balance_kopecks) VALUES (?, ?)"
                " ON CONFLICT(trunk_id) DO UPDATE SET low_balance_kopecks ="
                " excluded.low_balance_kopecks, low_notified = CASE WHEN"
                " low_balance_kopecks IS excluded.low_balance_kopecks THEN low_notified"
                " ELSE 0 END", (trunk_id, kopecks))

    async def spent_by_trunk(self, *, start_ms: int, end_ms: int) -> dict[int | None, int]:
        """The prices of the calls started in ``[start_ms, end_ms)`` per trunk (None: calls
        without a trunk)."""
        rows = await self.db.fetchall(
            "SELECT trunk_id, SUM(price_kopecks) AS spent FROM calls"
            " WHERE started_at >= ? AND started_at < ? GROUP BY trunk_id", (start_ms, end_ms))
        return {row["trunk_id"]: int(row["spent"]) for row in rows}

    async def day_spend(self, *, start_ms: int, end_ms: int) -> dict[int | None, int]:
        """:meth:`spent_by_trunk` of ``[start_ms, end_ms)``, summed again only when a trunk's
        running spend moved since it was last summed for that range (or it is
        :data:`DAY_SPEND_KEPT_S` old): between calls being priced, one small read."""
        rows = await self.db.fetchall(
            "SELECT trunk_id, spent_kopecks FROM trunk_accounts ORDER BY trunk_id")
        # Read before the sum: a call priced in between makes the next read sum again.
        mark = (start_ms, end_ms, *((int(r[0]), int(r[1])) for r in rows))
        kept, now = self._day_spend, time.monotonic()
        if kept is not None and kept[0] == mark and now - kept[1] < DAY_SPEND_KEPT_S:
            return dict(kept[2])
        spent = await self.spent_by_trunk(start_ms=start_ms, end_ms=end_ms)
        self._day_spend = (mark, now, spent)
        return dict(spent)

    async def claim_low_balances(self) -> builtins.list[TrunkAccount]:
        """The accounts that fell below their threshold since they were last told about,
        marked told in the same transaction; accounts back at or above it are re-armed."""
        async with self.db.transaction():
            accounts = await self.accounts()
            crossed = [a for a in accounts if a.low and not a.low_notified]
            rearmed = [a for a in accounts if a.low_notified and not a.low]
            marks = {**{a.trunk_id: 1 for a in crossed}, **{a.trunk_id: 0 for a in rearmed}}
            if marks:
                await self.db.executemany(
                    "UPDATE trunk_accounts SET low_notified = ? WHERE trunk_id = ?",
                    [(flag, trunk_id) for trunk_id, flag in marks.items()])
        return crossed
