"""Call detail records, operator status intervals, notifications."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from typing import Any

from ...i18n import Text
from ..db import now_ms
from ..errors import NotFound
from ..models import (
    CALL_SORTS,
    Call,
    CallFilter,
    CallReportRow,
    Notification,
    OperatorInterval,
)
from .base import Repo, record

_CALL_COLUMNS = tuple(f.name for f in fields(Call) if f.name != "id")

_CALL_SORT: dict[str, tuple[str, Callable[[CallReportRow], object]]] = {
    "project": ("COALESCE(p.name, '')", lambda r: r.project_name),
    "id": ("c.id", lambda r: r.call.id),
    "date": ("c.started_at", lambda r: r.call.started_at),
    "direction": ("c.direction", lambda r: r.call.direction),
    "kind": ("c.kind", lambda r: r.call.kind),
    "phone": ("c.contact_phone", lambda r: r.call.contact_phone),
    "from": ("c.from_number", lambda r: r.call.from_number),
    "to": ("c.to_number", lambda r: r.call.to_number),
    "duration": ("c.duration_ms", lambda r: r.call.duration_ms),
    "billing": ("c.billing_ms", lambda r: r.call.billing_ms),
    "dial": ("c.dial_ms", lambda r: r.call.dial_ms),
    "wait": ("c.wait_ms", lambda r: r.call.wait_ms),
    "talk": ("c.talk_ms", lambda r: r.call.talk_ms),
    "client_status": ("c.client_status", lambda r: r.call.client_status),
    "operator_status": ("c.operator_status", lambda r: r.call.operator_status),
    "contact": ("COALESCE(k.full_name, '')", lambda r: r.contact_name),
    "operator": ("COALESCE(u.full_name, '')", lambda r: r.operator_name),
    "region": ("COALESCE(c.region, '')", lambda r: r.call.region or ""),
    "timezone": ("COALESCE(c.timezone, '')", lambda r: r.call.timezone or ""),
    "result": ("c.result", lambda r: r.call.result),
    "tags": ("c.tags", lambda r: r.call.tags),
    "robot_status": ("COALESCE(c.robot_status, '')", lambda r: r.call.robot_status or ""),
    "price": ("c.price_kopecks", lambda r: r.call.price_kopecks),
}
"""Per sortable column of the calls report: its SQL expression (never NULL, so a keyset
comparison holds) and the same value read from a row (the key a download reads on from)."""
if set(_CALL_SORT) != set(CALL_SORTS):
    raise RuntimeError("the calls report's sort keys and their SQL differ")


def _masked(number: str) -> str:
    """SQL for :func:`sipspeak.crm.phones.mask_phone` of a number column, as the report masks
    it (an empty number stays empty): the first four and the last two characters, a ``*``
    for each one between (``hex(zeroblob(n))`` is n × ``00``), or ``***`` when that short."""
    return (f"CASE WHEN {number} = '' THEN '' WHEN length({number}) <= 6 THEN '***'"
            f" ELSE substr({number}, 1, 4) || replace(hex(zeroblob(length({number}) - 6)),"
            f" '00', '*') || substr({number}, -2) END")


_HIDES = "COALESCE(p.show_numbers, 1) = 0"
_MASKED_SORT: dict[str, str] = {
    "phone": f"CASE WHEN {_HIDES} THEN {_masked('c.contact_phone')} ELSE c.contact_phone END",
    "from": (f"CASE WHEN {_HIDES} AND c.direction = 'inbound'"
             f" THEN {_masked('c.from_number')} ELSE c.from_number END"),
    "to": (f"CASE WHEN {_HIDES} AND c.direction <> 'inbound'"
           f" THEN {_masked('c.to_number')} ELSE c.to_number END"),
}
"""The number columns as a reader with ``numbers_masked`` sees them (the contact's number,
and the customer's side of the call: the caller inbound, the called number outbound, where
the project hides numbers): he is sorted by what he sees, never by the hidden digits."""
_IN_GROUP = "c.operator_id IN (SELECT user_id FROM group_members WHERE group_id = ?)"
_OF_TAG = ("c.contact_id IN (SELECT ct.contact_id FROM contact_tags ct"
           " JOIN tags t ON t.id = ct.tag_id WHERE t.name = ?)")


_CARRY = ("COALESCE((SELECT MAX(started_at) FROM operator_intervals"
          " WHERE user_id = {user} AND started_at < ?), ?)")
"""Where a user's intervals overlapping a period ``[start, …)`` begin (parameters: start,
start): his intervals follow one another, so only the one that started last before the
period can run into it — from its start on (or from the period's start if there is none)
is one index seek on operator_intervals_user, as :meth:`OperatorIntervalsRepo.totals_by_day`
reads its days."""


class CallsRepo(Repo):
    async def open(self, *, direction: str, started_at: int, **values: object) -> int:
        """Insert the row of a call as it starts; ``close`` fills in the rest at the end.
        A ``contact_id`` whose contact was deleted meanwhile (looked up before the call
        counted as in use) is stored as none, in the same statement: the call goes on."""
        values = {"direction": direction, "started_at": started_at, **values}
        unknown = set(values) - set(_CALL_COLUMNS)
        if unknown:
            raise ValueError(f"unknown call fields: {', '.join(sorted(unknown))}")
        names = list(values)
        marks = ["(SELECT id FROM contacts WHERE id = ?)" if name == "contact_id" else "?"
                 for name in names]
        return await self.db.insert(
            f"INSERT INTO calls({', '.join(names)}) VALUES ({', '.join(marks)})",
            list(values.values()))

    async def update(self, call_id: int, **values: object) -> None:
        unknown = set(values) - set(_CALL_COLUMNS)
        if unknown:
            raise ValueError(f"unknown call fields: {', '.join(sorted(unknown))}")
        if not values:
            return
        assignments = ", ".join(f"{name} = ?" for name in values)
        cursor = await self.db.execute(
            f"UPDATE calls SET {assignments} WHERE id = ?", (*values.values(), call_id))
        if cursor.rowcount == 0:
            raise NotFound(Text("storage.error.call_not_found", id=call_id))

    async def get(self, call_id: int) -> Call:
        row = await self.db.fetchone("SELECT * FROM calls WHERE id = ?", (call_id,))
        if row is None:
            raise NotFound(Text("storage.error.call_not_found", id=call_id))
        return record(Call, row)

    async def list(self, *, project_id: int | None = None, operator_id: int | None = None,
                   contact_id: int | None = None, started_from: int | None = None,
                   started_to: int | None = None, limit: int = 100, offset: int = 0) -> builtins.list[Call]:
        sql = "SELECT * FROM calls WHERE 1=1"
        params: builtins.list[object] = []
        for column, value in (("project_id", project_id), ("operator_id", operator_id),
                              ("contact_id", contact_id)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        if started_from is not None:
            sql += " AND started_at >= ?"
            params.append(started_from)
        if started_to is not None:
            sql += " AND started_at < ?"
            params.append(started_to)
        sql += " ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?"
        params += [limit, offset]
        return [record(Call, r) for r in await self.db.fetchall(sql, params)]

    @staticmethod
    def _where(where: CallFilter) -> tuple[str, builtins.list[object]]:
        sql = " WHERE 1=1"
        params: builtins.list[object] = []
        for clause, value in (("c.started_at >= ?", where.started_from),
                              ("c.started_at < ?", where.started_to),
                              ("c.project_id = ?", where.project_id),
                              ("c.operator_id = ?", where.operator_id),
                              ("c.operator_id = ?", where.only_operator_id),
                              ("c.direction = ?", where.direction),
                              ("c.result = ?", where.result),
                              ("c.kind = ?", where.kind),
                              ("c.client_status = ?", where.client_status),
                              ("c.operator_status = ?", where.operator_status),
                              # An index seek per member on calls_operator(operator_id, …).
                              (_IN_GROUP, where.group_id),
                              # The tag's contacts (contact_tags_tag), then their calls
                              # (calls_contact).
                              (_OF_TAG, where.tag or None)):
            if value is not None:
                sql += f" AND {clause}"
                params.append(value)
        if where.project_ids is not None:
            sql += (f" AND c.project_id IN ({', '.join('?' * len(where.project_ids))})"
                    if where.project_ids else " AND 0")
            params += sorted(where.project_ids)
        if where.phone:
            sql += " AND (c.contact_phone LIKE ? OR c.from_number LIKE ? OR c.to_number LIKE ?)"
            params += [f"%{where.phone}%"] * 3
            if where.phone_shown_only:
                sql += (" AND (c.project_id IS NULL OR EXISTS (SELECT 1 FROM projects q"
                        " WHERE q.id = c.project_id AND q.show_numbers = 1))")
        return sql, params

    async def report_count(self, where: CallFilter) -> int:
        """How many calls the report's filters keep («Количество»)."""
        sql, params = self._where(where)
        row = await self.db.fetchone(f"SELECT COUNT(*) AS n FROM calls c{sql}", params)
        return int(row["n"]) if row is not None else 0

    async def report(self, where: CallFilter, *, limit: int = 100, offset: int = 0,
                     after: tuple[Any, int] | None = None) -> builtins.list[CallReportRow]:
        """A page of the calls report in the filter's order (newest first by default, then
        by id the same way), with the project's, the operator's and the contact's names.
        ``after`` = :meth:`sort_key` of the last row of the previous page reads on from there
        (rows added meanwhile neither repeat nor shift the pages)."""
        if where.sort not in _CALL_SORT:
            raise ValueError(f"unknown sort column {where.sort!r}")
        sql, params = self._where(where)
        expr = (_MASKED_SORT.get(where.sort, _CALL_SORT[where.sort][0]) if where.numbers_masked
                else _CALL_SORT[where.sort][0])
        way, beyond = ("DESC", "<") if where.descending else ("ASC", ">")
        if after is not None:
            sql += f" AND ({expr} {beyond} ? OR ({expr} = ? AND c.id {beyond} ?))"
            params += [after[0], after[0], after[1]]
        rows = await self.db.fetchall(
            "SELECT c.*, COALESCE(p.name, '') AS project_name,"
            " COALESCE(p.show_numbers, 1) AS shows_numbers,"
            " COALESCE(u.full_name, '') AS operator_name,"
            " COALESCE(k.full_name, '') AS contact_name FROM calls c"
            " LEFT JOIN projects p ON p.id = c.project_id"
            " LEFT JOIN users u ON u.id = c.operator_id"
            f" LEFT JOIN contacts k ON k.id = c.contact_id{sql}"
            f" ORDER BY {expr} {way}, c.id {way} LIMIT ? OFFSET ?",
            [*params, limit, offset])
        return [CallReportRow(call=record(Call, r), project_name=r["project_name"],
                              operator_name=r["operator_name"], contact_name=r["contact_name"],
                              shows_numbers=bool(r["shows_numbers"]))
                for r in rows]

    @staticmethod
    def sort_key(where: CallFilter, row: CallReportRow) -> tuple[Any, int]:
        """The row's place in the report's order, for :meth:`report`'s ``after``; ``row`` as
        the reader sees it (with ``numbers_masked``, its hidden numbers masked)."""
        return _CALL_SORT[where.sort][1](row), row.call.id

    async def daily_totals(self, where: CallFilter, *,
                           offset_ms: int) -> builtins.list[tuple[int, str, int, int, int, int]]:
        """Per day and result: ``(day, result, calls, dial_ms, wait_ms, talk_ms)``, where
        ``day`` counts days since the epoch in a zone ``offset_ms`` ahead of UTC (the dashboard's
        «Статистика звонков»)."""
        sql, params = self._where(where)
        rows = await self.db.fetchall(
            "SELECT (c.started_at + ?) / 86400000 AS day, c.result, COUNT(*) AS n,"
            " SUM(c.dial_ms) AS dial, SUM(c.wait_ms) AS wait, SUM(c.talk_ms) AS talk"
            f" FROM calls c{sql} GROUP BY day, c.result ORDER BY day, c.result",
            [offset_ms, *params])
        return [(int(r["day"]), str(r["result"]), int(r["n"]), int(r["dial"] or 0),
                 int(r["wait"] or 0), int(r["talk"] or 0)) for r in rows]

    async def close_dangling(self, *, now: int) -> int:
        """Close calls left open by a stopped process as "lost" (run at start-up)."""
        cursor = await self.db.execute(
            "UPDATE calls SET ended_at = ?, duration_ms = MAX(0, ? - started_at),"
            " result = CASE WHEN result = '' THEN 'lost' ELSE result END"
            " WHERE ended_at IS NULL", (now, now))
        return cursor.rowcount


class OperatorIntervalsRepo(Repo):
    async def start(self, *, user_id: int, state: str, at: int, project_id: int | None = None) -> int:
        """Close the user's open interval at ``at`` and open a new one in ``state``."""
        async with self.db.transaction():
            await self.db.execute(
                "UPDATE operator_intervals SET ended_at = ? WHERE user_id = ? AND ended_at IS NULL",
                (at, user_id))
            return await self.db.insert(
                "INSERT INTO operator_intervals(user_id, state, project_id, started_at)"
                " VALUES (?,?,?,?)", (user_id, state, project_id, at))

    async def add_closed(self, *, user_id: int, state: str, started_at: int, ended_at: int,
                         project_id: int | None = None) -> int:
        if ended_at < started_at:
            raise ValueError("интервал кончается раньше, чем начинается")
        return await self.db.insert(
            "INSERT INTO operator_intervals(user_id, state, project_id, started_at, ended_at)"
            " VALUES (?,?,?,?,?)", (user_id, state, project_id, started_at, ended_at))

    async def close_open(self, *, at: int) -> int:
        cursor = await self.db.execute(
            "UPDATE operator_intervals SET ended_at = MAX(started_at, ?) WHERE ended_at IS NULL", (at,))
        return cursor.rowcount

    async def between(self, *, start: int, end: int, user_id: int | None = None) -> builtins.list[OperatorInterval]:
        sql = ("SELECT * FROM operator_intervals WHERE started_at < ?"
               " AND (ended_at IS NULL OR ended_at > ?)")
        params: builtins.list[object] = [end, start]
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        rows = await self.db.fetchall(sql + " ORDER BY user_id, started_at", params)
        return [record(OperatorInterval, r) for r in rows]


    async def history(self, *, user_id: int, start: int, end: int, limit: int,
                      after: tuple[int, int] | None = None) -> builtins.list[OperatorInterval]:
        """One user's intervals that overlap ``[start, end)`` (as stored: not clipped; one
        still open has no end), in the order they started, then by id; ``after`` =
        (started_at, id) of the previous batch's last row reads on from there.  Read in that
        order off operator_intervals_user(user_id, started_at): no sort, and every batch is a
        seek — the first one from :data:`_CARRY`, so a day costs what it holds, not the user's
        whole history before it."""
        sql = ("SELECT * FROM operator_intervals WHERE user_id = ? AND started_at < ?"
               " AND (ended_at IS NULL OR ended_at > ?)")
        params: builtins.list[object] = [user_id, end, start]
        if after is None:
            sql += f" AND started_at >= {_CARRY.format(user='?')}"
            params += [user_id, start, start]
        else:
            sql += " AND started_at >= ? AND (started_at > ? OR id > ?)"
            params += [after[0], after[0], after[1]]
        rows = await self.db.fetchall(sql + " ORDER BY started_at, id LIMIT ?", [*params, limit])
        return [record(OperatorInterval, r) for r in rows]

    async def history_count(self, *, user_ids: Iterable[int], start: int, end: int) -> int:
        """How many intervals :meth:`history` gives for these users (a seek per user from
        :data:`_CARRY`)."""
        ids = sorted(set(user_ids))
        if not ids:
            return 0
        row = await self.db.fetchone(
            f"WITH u(id) AS (VALUES {', '.join('(?)' for _ in ids)})"
            " SELECT COUNT(*) AS n FROM u JOIN operator_intervals o ON o.user_id = u.id"
            f" AND o.started_at >= {_CARRY.format(user='u.id')} AND o.started_at < ?"
            " WHERE o.ended_at IS NULL OR o.ended_at > ?", [*ids, start, start, end, start])
        return int(row["n"]) if row is not None else 0

    async def totals(self, *, start: int, end: int, now: int,
                     user_ids: Iterable[int] | None = None) -> dict[tuple[int, str], int]:
        """Milliseconds per (user, state) of the intervals clipped to ``[start, end)``; an
        interval still open ends at ``now``.  Summed in SQL: a year of a large call center's
        history is not loaded to be added up.  For given users it is one day of
        :meth:`totals_by_day`: index seeks from the period's start, not the users' whole
        history."""
        if user_ids is not None:
            by_day = await self.totals_by_day(days=[(start, end)], now=now, user_ids=user_ids)
            return {(user, state): ms for (_, user, state), ms in by_day.items()}
        sql = ("SELECT user_id, state, SUM(MAX(0, MIN(COALESCE(ended_at, ?), ?)"
               " - MAX(started_at, ?))) AS ms FROM operator_intervals"
               " WHERE started_at < ? AND (ended_at IS NULL OR ended_at > ?)")
        params: builtins.list[object] = [now, end, start, end, start]
        if user_ids is not None:
            ids = sorted(set(user_ids))
            sql += f" AND user_id IN ({', '.join('?' * len(ids))})" if ids else " AND 0"
            params += ids
        rows = await self.db.fetchall(sql + " GROUP BY user_id, state", params)
        return {(int(r["user_id"]), str(r["state"])): int(r["ms"] or 0) for r in rows}

    async def totals_by_day(self, *, days: Sequence[tuple[int, int]], now: int,
                            user_ids: Iterable[int],
                            ) -> dict[tuple[int, int, str], int]:
        """Milliseconds per (day index, user, state): :meth:`totals` for each ``[start, end)``
        of ``days``.  A user's intervals follow one another, so a day is the intervals that
        start in it plus, per user, the one that started last before it if it is still
        running; both are index seeks on (user, start), so a long period costs what its
        days hold, not days × history."""
        ids = sorted(set(user_ids))
        out: dict[tuple[int, int, str], int] = {}
        if not ids or not days:
            return out
        users = ", ".join("(?)" for _ in ids)
        marks = ", ".join("?" for _ in ids)
        sql = (f"WITH u(id) AS (VALUES {users}),"
               " carry AS (SELECT u.id AS user_id, (SELECT MAX(started_at) FROM operator_intervals"
               "   WHERE user_id = u.id AND started_at < ?) AS st FROM u)"
               " SELECT o.user_id AS user_id, o.state AS state,"
               "   MIN(COALESCE(o.ended_at, ?), ?) - ? AS ms"
               " FROM carry JOIN operator_intervals o"
               "   ON o.user_id = carry.user_id AND o.started_at = carry.st"
               " WHERE o.ended_at IS NULL OR o.ended_at > ?"
               " UNION ALL"
               " SELECT user_id, state, MIN(COALESCE(ended_at, ?), ?) - started_at AS ms"
               " FROM operator_intervals"
               f" WHERE user_id IN ({marks}) AND started_at >= ? AND started_at < ?")
        for index, (start, end) in enumerate(days):
            params = [*ids, start, now, end, start, start, now, end, *ids, start, end]
            for r in await self.db.fetchall(sql, params):
                ms = int(r["ms"] or 0)
                if ms > 0:
                    key = (index, int(r["user_id"]), str(r["state"]))
                    out[key] = out.get(key, 0) + ms
        return out


class NotificationsRepo(Repo):
    async def add(self, *, text: str, user_id: int | None = None, level: str = "info") -> int:
        return await self.db.insert(
            "INSERT INTO notifications(user_id, level, text, created_at) VALUES (?,?,?,?)",
            (user_id, level, text, now_ms()))

    async def unread(self, user_id: int) -> builtins.list[Notification]:
        rows = await self.db.fetchall(
            "SELECT * FROM notifications WHERE (user_id = ? OR user_id IS NULL) AND read_at IS NULL"
            " ORDER BY id DESC", (user_id,))
        return [record(Notification, r) for r in rows]

    async def mark_read(self, notification_id: int) -> None:
        await self.db.execute(
            "UPDATE notifications SET read_at = ? WHERE id = ?", (now_ms(), notification_id))
