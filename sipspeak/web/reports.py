"""«Отчеты» → «Статистика операторов» (manual §6.3): time in each status per operator.

One row per operator for a period of whole days (``from``..``to`` inclusive, in the time
zone ``tz``, by default the call center's ``[general] timezone``): «В линии», «Доступен», «Пауза»,
«Не беспокоить», «В карточке», «В разговоре», «Неактивен», «Ожидание ответа», «Слушает
гудки», summed by :func:`~sipspeak.dialer.agent_stats.operator_statistics` from the status
history (the intervals in storage summed in SQL, and — while the dialer runs — each
operator's current state up to now).  An administrator sees every operator, a supervisor the operators of the
projects he supervises.  The page, ``GET /api/v1/reports/operators`` and the CSV / XLSX
downloads take the same filters (``from``, ``to``, ``tz``, ``group_id``, ``q``); with
``by_day`` the report has the manual's «Дата» column: a row per day and operator (the days he
has time in), the days cut at midnight in ``tz``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from ..dialer.agent_stats import OperatorStatistics, format_hms, statistics_from_totals
from ..dialer.agents import AgentState
from ..i18n import Text, translate
from ..storage.db import now_ms
from ..storage.models import Group, User
from .auth import STAFF, current_user, route
from .errors import Invalid, json_ok
from .exports import csv_download, one_table, xlsx_download
from .forms import Fields
from .layout import language_of, render
from .pages import error_text, services_of

MAX_DAYS = 366
YEARS = (2000, 2100)
"""Dates outside these years are refused (a far-future one cannot be a day of calls)."""
COLUMNS = ("on_line", "available", "paused", "do_not_disturb", "wrap_up", "talking",
           "inactive", "ringing", "ringback")
"""The manual's status columns, in its order; each is ``<column>_ms`` of the statistics."""
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


async def operator_report(request: web.Request, fields: Fields) -> tuple[Period, list[ReportRow]]:
    """The rows of §6.3 for the filters in ``fields``."""
    period = read_period(fields, call_center_zone(request))
    group_id = fields.optional_int("group_id", low=1)
    search = fields.text("q", max_len=100).casefold()
    groups = await services_of(request).db.groups.list()
    names_of: dict[int, list[str]] = {}
    for group in groups:
        for member in group.member_ids:
            names_of.setdefault(member, []).append(group.name)
    members = None
    if group_id is not None:
        members = {m for g in groups if g.id == group_id for m in g.member_ids}
    operators = [o for o in await visible_operators(request)
                 if (members is None or o.id in members)
                 and (not search or search in o.full_name.casefold()
                      or search in (o.extension or ""))]
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


async def visible_groups(request: web.Request) -> list[Group]:
    """The groups the caller may filter by: all for an administrator, those of his projects
    for a supervisor."""
    db = services_of(request).db
    groups = await db.groups.list()
    user = current_user(request)
    if user.role == "admin":
        return groups
    ids = {g for p in await db.projects.list(supervisor_id=user.id) for g in p.group_ids}
    return [g for g in groups if g.id in ids]


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


async def reports_page(request: web.Request) -> web.Response:
    """Статистика операторов: время в каждом статусе за период."""
    fields = await Fields.read(request)
    error = None
    try:
        period, rows = await operator_report(request, fields)
    except Invalid as exc:
        error = exc
        period, rows = await operator_report(request, Fields.of({}))
    query = request.query_string
    return await render(request, "reports/operators.html", {
        "period": period, "rows": rows, "columns": COLUMNS, "format_hms": format_hms,
        "name_of": _name, "groups": await visible_groups(request),
        "group_id": fields.optional_int("group_id", low=1) if error is None else None,
        "q": fields.text("q", max_len=100) if error is None else "",
        "by_day": fields.flag("by_day") if error is None else False,
        "downloads": f"?{query}" if query and error is None else "",
        "error": None if error is None else error_text(request, error),
    }, status=200 if error is None else error.status)


async def api_operators(request: web.Request) -> web.Response:
    """Operator statistics (§6.3) for a period: milliseconds in each status per operator."""
    period, rows = await operator_report(request, await Fields.read(request))
    return json_ok({"from": period.first.isoformat(), "to": period.last.isoformat(),
                    "tz": period.zone, "items": [_row_json(r) for r in rows]})


def _filename(period: Period, suffix: str) -> str:
    return f"operators-{period.first.isoformat()}-{period.last.isoformat()}.{suffix}"


async def operators_csv(request: web.Request) -> web.StreamResponse:
    """The report as CSV (``;``, UTF-8 with BOM: Excel in Russian locales opens it)."""
    period, rows = await operator_report(request, await Fields.read(request))
    return await csv_download(request, _filename(period, "csv"),
                              one_table(_table(rows, language_of(request))))


async def operators_xlsx(request: web.Request) -> web.Response:
    """The report as an XLSX workbook."""
    period, rows = await operator_report(request, await Fields.read(request))
    lang = language_of(request)
    return await xlsx_download(request, _filename(period, "xlsx"),
                               translate("reports.operators", lang),
                               one_table(_table(rows, lang)))


def setup_routes(app: web.Application) -> None:
    query = ("from", "to", "tz", "group_id", "q", "by_day")
    route(app, "GET", "/reports/operators", reports_page, roles=STAFF,
          name="reports.operators")
    route(app, "GET", "/reports/operators.csv", operators_csv, roles=STAFF)
    route(app, "GET", "/reports/operators.xlsx", operators_xlsx, roles=STAFF)
    route(app, "GET", "/api/v1/reports/operators", api_operators, roles=STAFF, api=True,
          response_schema=REPORT_OUT, query=query)
