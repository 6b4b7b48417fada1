"""«Отчеты» → «Статистика операторов» (manual §6.3): time in each status per operator.

One row per operator for a period of whole days (``from``..``to`` inclusive, in the time
zone ``tz``, by default the call center's ``[general] timezone``): «В линии», «Доступен», «Пауза»,
«Не беспокоить», «В карточке», «В разговоре», «Неактивен», «Ожидание ответа», «Слушает
гудки», summed by :func:`~sipspeak.dialer.agent_stats.operator_statistics` from the status
history (the intervals in storage summed in SQL, and — while the dialer runs — each
operator's current state up to now).  An administrator sees every operator, a supervisor the
operators of the projects he supervises, an operator himself only (§1.3 «просмотр собственной
статистики»): the filters only ever narrow that.  The page, ``GET /api/v1/reports/operators``
and the CSV / XLSX downloads take the same filters (``from``, ``to``, ``tz``, ``group_id``,
``project_id`` — the operators of the project's groups —, ``q``) and order (``sort`` = a
column, ``order`` = ``asc`` / ``desc``; by name by default); with ``by_day`` the report has
the manual's «Дата» column: a row per day and operator (the days he has time in), the days
cut at midnight in ``tz``.  «Историю статусов можно скачать»: the status history of the same
operators and period, interval by interval (operator, status, start, end, duration; each
interval cut to the period, one still running ends now), as CSV or XLSX.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from ..dialer.agent_stats import OperatorStatistics, format_hms, statistics_from_totals
from ..dialer.agents import AgentState
from ..i18n import Text, translate
from ..storage.db import now_ms
from ..storage.models import Group, OperatorInterval, User
from .auth import ALL_ROLES, current_user, route, visible_project_ids
from .errors import Invalid, json_ok
from .exports import (
    Lines,
    csv_download,
    one_table,
    refuse_beyond_a_sheet,
    xlsx_download,
)
from .forms import Fields
from .layout import language_of, render
from .pages import error_text, services_of

MAX_DAYS = 366
YEARS = (2000, 2100)
"""Dates outside these years are refused (a far-future one cannot be a day of calls)."""
COLUMNS = ("on_line", "available", "paused", "do_not_disturb", "wrap_up", "talking",
           "inactive", "ringing", "ringback")
"""The manual's status columns, in its order; each is ``<column>_ms`` of the statistics."""
SORTS = ("date", "name", "phone", "groups", *COLUMNS)
"""The columns the report can be sorted by («Дата» only has days with ``by_day``)."""
ORDERS = ("asc", "desc")
HISTORY_BATCH = 1000
_STATES = frozenset(state.value for state in AgentState)

ROW_OUT: dict[str, Any] = {"type": "object", "properties": {
    "user_id": {"type": "integer"}, "name": {"type": "string"},
    "extension": {"type": ["string", "null"]}, "phone": {"type": "string"},
    "groups": {"type": "array", "items": {"type": "string"}},
    "date": {"type": "string", "format": "date", "description": "with by_day only"},
    **{f"{c}_ms": {"type": "integer"} for c in COLUMNS}}}
REPORT_OUT: dict[str, Any] = {"type": "object", "properties": {
    "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"},
    "tz": {"type": "string"}, "items": {"type": "array", "items": ROW_OUT}}}


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    last: date
    zone: str
    start_ms: int
    end_ms: int

    def days(self) -> list[tuple[date, int, int]]:
        """Each day of the period with its bounds (ms) in the period's zone."""
        zone = ZoneInfo(self.zone)
        out = []
        day = self.first
        while day <= self.last:
            after = day + timedelta(days=1)
            out.append((day, _midnight(day, zone), _midnight(after, zone)))
            day = after
        return out


def _midnight(day: date, zone: ZoneInfo) -> int:
    return int(datetime.combine(day, time(), zone).timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class ReportRow:
    user: User
    groups: tuple[str, ...]
    stats: OperatorStatistics
    day: date | None = None
    """The row's day («Дата») when the report is by day."""

    def duration(self, column: str) -> int:
        value: int = getattr(self.stats, f"{column}_ms")
        return value


def _day(fields: Fields, name: str, default: date) -> date:
    text = fields.text(name, max_len=20)
    if not text:
        return default
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise Invalid(Text("reports.error.date"), field=name) from None
    if not YEARS[0] <= day.year <= YEARS[1]:
        raise Invalid(Text("reports.error.year", low=YEARS[0], high=YEARS[1]), field=name)
    return day


def read_period(fields: Fields, default_zone: str) -> Period:
    """The report's days from the filters: today by default; at most ``MAX_DAYS``."""
    zone_name = fields.text("tz", default_zone, max_len=64)
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(Text("reports.error.zone", zone=zone_name), field="tz") from None
    today = datetime.now(zone).date()
    first = _day(fields, "from", today)
    last = _day(fields, "to", first if fields.has("from") else today)
    if last < first:
        raise Invalid(Text("reports.error.order"), field="to")
    if (last - first).days >= MAX_DAYS:
        raise Invalid(Text("reports.error.span", days=MAX_DAYS), field="to")

    return Period(first=first, last=last, zone=zone_name, start_ms=_midnight(first, zone),
                  end_ms=_midnight(last + timedelta(days=1), zone))


def call_center_zone(request: web.Request) -> str:
    """The configured call-center time zone (``[general] timezone``)."""
    zone: str = services_of(request).config.get("general", "timezone")
    return zone


async def visible_operators(request: web.Request) -> list[User]:
    """The operators the caller may see, in name order (an operator sees himself)."""
    db = services_of(request).db
    user = current_user(request)
    if user.role == "operator":
        return [user]
    operators = await db.users.list(role="operator")
    if user.role == "admin":
        return operators
    allowed: set[int] = set()
    for project in await db.projects.list(supervisor_id=user.id):
        allowed |= set(await db.projects.operator_ids(project.id))
    return [o for o in operators if o.id in allowed]


async def _totals(request: web.Request, period: Period, user_ids: list[int], *,
                  by_day: bool) -> dict[tuple[int, int], dict[AgentState, int]]:
    """Milliseconds per (day index, operator) and state within the period — one "day" 0 for
    the whole period unless ``by_day``: the stored history (an open interval ends now) and,
    while the dialer runs, each operator's current state so far."""
    services = services_of(request)
    bounds = ([(start, end) for _, start, end in period.days()] if by_day
              else [(period.start_ms, period.end_ms)])
    out: dict[tuple[int, int], dict[AgentState, int]] = {}
    if by_day:
        stored = await services.db.intervals.totals_by_day(days=bounds, now=now_ms(),
                                                           user_ids=user_ids)
    else:
        stored = {(0, user, state): ms for (user, state), ms in (await services.db.intervals.totals(
            start=period.start_ms, end=period.end_ms, now=now_ms(), user_ids=user_ids)).items()}
    for (index, user_id, state), ms in stored.items():
        if state in _STATES:
            out.setdefault((index, user_id), {})[AgentState(state)] = ms
    campaigns = getattr(services, "campaigns", None)
    if campaigns is not None:
        wanted = set(user_ids)
        live_now = campaigns.now_ms()
        for machine in campaigns.roster.machines():
            if machine.agent_id not in wanted:
                continue
            live = machine.open_interval(max(live_now, machine.since_ms))
            for index, (start, end) in enumerate(bounds):
                ms = max(0, min(live.end_ms, end) - max(live.start_ms, start))
                if ms:
                    states = out.setdefault((index, machine.agent_id), {})
                    states[live.state] = states.get(live.state, 0) + ms
    return out


async def chosen_operators(request: web.Request, fields: Fields,
                           groups: list[Group] | None = None) -> list[User]:
    """The visible operators the filters keep (``group_id``, ``project_id``, ``q``), in
    name order: a filter only narrows what the caller may see."""
    db = services_of(request).db
    group_id = fields.optional_int("group_id", low=1)
    project_id = fields.optional_int("project_id", low=1)
    search = fields.text("q", max_len=100).casefold()
    keep: set[int] | None = None
    if group_id is not None:
        groups = await db.groups.list() if groups is None else groups
        keep = {m for g in groups if g.id == group_id for m in g.member_ids}
    if project_id is not None:
        visible = await visible_project_ids(request)
        staffed = (set(await db.projects.operator_ids(project_id))
                   if visible is None or project_id in visible else set())
        keep = staffed if keep is None else keep & staffed
    return [o for o in await visible_operators(request)
            if (keep is None or o.id in keep)
            and (not search or search in o.full_name.casefold()
                 or search in (o.extension or ""))]


async def operator_report(request: web.Request, fields: Fields) -> tuple[Period, list[ReportRow]]:
    """The rows of §6.3 for the filters in ``fields``, by name (and day)."""
    period = read_period(fields, call_center_zone(request))
    groups = await services_of(request).db.groups.list()
    names_of: dict[int, list[str]] = {}
    for group in groups:
        for member in group.member_ids:
            names_of.setdefault(member, []).append(group.name)
    operators = await chosen_operators(request, fields, groups)
    by_day = fields.flag("by_day")
    totals = await _totals(request, period, [o.id for o in operators], by_day=by_day)
    if not by_day:
        return period, [ReportRow(user=o, groups=tuple(names_of.get(o.id, ())),
                                  stats=statistics_from_totals(o.id, totals.get((0, o.id), {})))
                        for o in operators]
    # «Дата»: a row per day and operator, for the days he has time in.
    rows = [ReportRow(user=o, groups=tuple(names_of.get(o.id, ())), day=day,
                      stats=statistics_from_totals(o.id, totals[(index, o.id)]))
            for index, (day, _, _) in enumerate(period.days())
            for o in operators if (index, o.id) in totals]
    return period, rows


def read_sort(fields: Fields, allowed: tuple[str, ...], default: str, *,
              descending: bool = False) -> tuple[str, bool]:
    """``sort`` (one of ``allowed``) and ``order`` (asc / desc) of a report's filters: the
    column clicked and which way; ``default`` and ``descending`` when not given."""
    column = fields.text("sort", max_len=40) or default
    if column not in allowed:
        raise Invalid(Text("reports.error.sort", column=column), field="sort")
    order = fields.text("order", max_len=10) or ("desc" if descending else "asc")
    if order not in ORDERS:
        raise Invalid(Text("reports.error.choice"), field="order")
    return column, order == "desc"


def sorted_rows(rows: list[ReportRow], column: str, descending: bool) -> list[ReportRow]:
    """The rows by ``column``, ties kept in the report's own order (day, name)."""
    def key(row: ReportRow) -> Any:
        if column == "date":
            return row.day or date.min
        if column == "name":
            return row.user.full_name.casefold()
        if column == "phone":
            return row.user.phone
        if column == "groups":
            return ", ".join(row.groups).casefold()
        return row.duration(column)

    return sorted(rows, key=key, reverse=descending)


async def visible_groups(request: web.Request) -> list[Group]:
    """The groups the caller may filter by: all for an administrator, those of his projects
    for a supervisor, his own for an operator."""
    db = services_of(request).db
    groups = await db.groups.list()
    user = current_user(request)
    if user.role == "admin":
        return groups
    if user.role == "operator":
        return [g for g in groups if user.id in g.member_ids]
    ids = {g for p in await db.projects.list(supervisor_id=user.id) for g in p.group_ids}
    return [g for g in groups if g.id in ids]


async def visible_projects(request: web.Request) -> list[Any]:
    """The projects the caller may filter by (an operator: those of his groups)."""
    visible = await visible_project_ids(request)
    return [p for p in await services_of(request).db.projects.list()
            if visible is None or p.id in visible]


def _row_json(row: ReportRow) -> dict[str, Any]:
    return {**({"date": row.day.isoformat()} if row.day is not None else {}),
            "user_id": row.user.id, "name": row.user.full_name, "extension": row.user.extension,
            "phone": row.user.phone, "groups": list(row.groups),
            **{f"{c}_ms": row.duration(c) for c in COLUMNS}}


def _table(rows: list[ReportRow], lang: str) -> list[list[Any]]:
    """Header and rows as the downloads write them (durations HH:MM:SS)."""
    by_day = any(r.day is not None for r in rows)
    first = ("date",) if by_day else ()
    header = [translate(f"reports.col.{c}", lang)
              for c in (*first, "name", "phone", "groups", *COLUMNS)]
    body = [[*((r.day.strftime("%d-%m-%Y") if r.day else "",) if by_day else ()),
             _name(r.user), r.user.phone, ", ".join(r.groups),
             *(format_hms(r.duration(c)) for c in COLUMNS)] for r in rows]
    return [header, *body]


def _name(user: User) -> str:
    return f"{user.full_name} ({user.extension})" if user.extension else user.full_name


async def sorted_report(request: web.Request,
                        fields: Fields) -> tuple[Period, list[ReportRow], tuple[str, bool]]:
    """The report's rows in the order its ``sort`` and ``order`` ask for (by default by
    name, or by day and name with ``by_day``)."""
    column, descending = read_sort(fields, SORTS, "date" if fields.flag("by_day") else "name")
    period, rows = await operator_report(request, fields)
    return period, sorted_rows(rows, column, descending), (column, descending)


async def reports_page(request: web.Request) -> web.Response:
    """Статистика операторов: время в каждом статусе за период."""
    fields = await Fields.read(request)
    error = None
    try:
        period, rows, (column, descending) = await sorted_report(request, fields)
    except Invalid as exc:
        error = exc
        fields = Fields.of({})
        period, rows, (column, descending) = await sorted_report(request, fields)
    query = dict(request.query) if error is None else {}
    return await render(request, "reports/operators.html", {
        "period": period, "rows": rows, "columns": COLUMNS, "format_hms": format_hms,
        "name_of": _name, "groups": await visible_groups(request),
        "projects": await visible_projects(request),
        "group_id": fields.optional_int("group_id", low=1),
        "project_id": fields.optional_int("project_id", low=1),
        "q": fields.text("q", max_len=100), "by_day": fields.flag("by_day"),
        "sort": column, "descending": descending, "query": query,
        "own": current_user(request).role == "operator",
        "error": None if error is None else error_text(request, error),
    }, status=200 if error is None else error.status)


async def api_operators(request: web.Request) -> web.Response:
    """Operator statistics (§6.3) for a period: milliseconds in each status per operator."""
    period, rows, _ = await sorted_report(request, await Fields.read(request))
    return json_ok({"from": period.first.isoformat(), "to": period.last.isoformat(),
                    "tz": period.zone, "items": [_row_json(r) for r in rows]})


def _filename(period: Period, suffix: str) -> str:
    return f"operators-{period.first.isoformat()}-{period.last.isoformat()}.{suffix}"


async def operators_csv(request: web.Request) -> web.StreamResponse:
    """The report as CSV (``;``, UTF-8 with BOM: Excel in Russian locales opens it)."""
    period, rows, _ = await sorted_report(request, await Fields.read(request))
    return await csv_download(request, _filename(period, "csv"),
                              one_table(_table(rows, language_of(request))))


async def operators_xlsx(request: web.Request) -> web.StreamResponse:
    """The report as an XLSX workbook."""
    period, rows, _ = await sorted_report(request, await Fields.read(request))
    lang = language_of(request)
    return await xlsx_download(request, _filename(period, "xlsx"),
                               translate("reports.operators", lang),
                               one_table(_table(rows, lang)))


# -- «Историю статусов можно скачать»: the intervals one by one ---------------------------


def clipped(interval: OperatorInterval, period: Period, now: int) -> tuple[int, int] | None:
    """The part of a stored interval inside the period (one still open lasts until now)."""
    start = max(interval.started_at, period.start_ms)
    end = min(now if interval.ended_at is None else interval.ended_at, period.end_ms)
    return (start, end) if end > start else None


def _live(request: web.Request, user_id: int) -> OperatorInterval | None:
    """The operator's current state while the dialer runs (stored only once it ends)."""
    campaigns = getattr(services_of(request), "campaigns", None)
    if campaigns is None:
        return None
    for machine in campaigns.roster.machines():
        if machine.agent_id == user_id:
            live = machine.open_interval(max(campaigns.now_ms(), machine.since_ms))
            return OperatorInterval(id=0, user_id=user_id, state=live.state.value,
                                    project_id=None, started_at=live.start_ms,
                                    ended_at=live.end_ms)
    return None


async def _history(request: web.Request, *,
                   xlsx: bool = False) -> tuple[Period, AsyncIterator[Lines]]:
    """The filters' period and the status history of their operators as a table: each
    operator in name order, his intervals in the order they started."""
    fields = await Fields.read(request)
    period = read_period(fields, call_center_zone(request))
    operators = await chosen_operators(request, fields)
    db = services_of(request).db
    lang, zone, now = language_of(request), ZoneInfo(period.zone), now_ms()
    if xlsx:
        live = sum(1 for o in operators if _live(request, o.id) is not None)
        refuse_beyond_a_sheet(live + await db.intervals.history_count(
            user_ids=[o.id for o in operators], start=period.start_ms, end=period.end_ms))

    def when(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, zone).strftime("%d-%m-%Y %H:%M:%S")

    def line(user: User, interval: OperatorInterval) -> list[Any] | None:
        part = clipped(interval, period, now)
        if part is None:
            return None
        state = (translate(f"reports.state.{interval.state}", lang)
                 if interval.state in _STATES else interval.state)
        return [_name(user), state, when(part[0]), when(part[1]), format_hms(part[1] - part[0])]

    async def lines() -> AsyncIterator[Lines]:
        yield [[translate(f"reports.history.{c}", lang)
                for c in ("name", "state", "start", "end", "duration")]]
        for user in operators:
            after: tuple[int, int] | None = None
            while True:
                batch = await db.intervals.history(user_id=user.id, start=period.start_ms,
                                                   end=period.end_ms, limit=HISTORY_BATCH,
                                                   after=after)
                if not batch:
                    break
                after = (batch[-1].started_at, batch[-1].id)
                yield [out for out in (line(user, i) for i in batch) if out is not None]
            live = _live(request, user.id)
            current = None if live is None else line(user, live)
            if current is not None:
                yield [current]

    return period, lines()


def _history_name(period: Period, suffix: str) -> str:
    return f"status-history-{period.first.isoformat()}-{period.last.isoformat()}.{suffix}"


async def history_csv(request: web.Request) -> web.StreamResponse:
    """The operators' status history, interval by interval, as CSV."""
    period, table = await _history(request)
    return await csv_download(request, _history_name(period, "csv"), table)


async def history_xlsx(request: web.Request) -> web.StreamResponse:
    """The operators' status history, interval by interval, as an XLSX workbook."""
    period, table = await _history(request, xlsx=True)
    return await xlsx_download(request, _history_name(period, "xlsx"),
                               translate("reports.history", language_of(request)), table)


def setup_routes(app: web.Application) -> None:
    query = ("from", "to", "tz", "group_id", "project_id", "q", "by_day", "sort", "order")
    route(app, "GET", "/reports/operators", reports_page, roles=ALL_ROLES,
          name="reports.operators")
    route(app, "GET", "/reports/operators.csv", operators_csv, roles=ALL_ROLES)
    route(app, "GET", "/reports/operators.xlsx", operators_xlsx, roles=ALL_ROLES)
    route(app, "GET", "/reports/operators/history.csv", history_csv, roles=ALL_ROLES)
    route(app, "GET", "/reports/operators/history.xlsx", history_xlsx, roles=ALL_ROLES)
    route(app, "GET", "/api/v1/reports/operators", api_operators, roles=ALL_ROLES, api=True,
          response_schema=REPORT_OUT, query=query)
