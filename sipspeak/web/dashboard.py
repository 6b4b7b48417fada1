"""«Дашборд» (manual §8): the start page — tiles and the four statistics of a period.

«Статистика Операторы» (time in each status per operator, as §6.3), «Статистика Контакты»
(contacts per dial state), «Статистика Звонков (время)» (dialling, waiting and talking per day)
and «Статистика Звонков (кол-во)» (calls per day and result), for whole days in a time zone
(the reports' filters).  An administrator sees everything, a supervisor his projects, an
operator only his own data.  ``GET /api/v1/dashboard`` answers the same figures.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from ..dialer.agent_stats import format_hms
from ..i18n import translate
from ..storage.models import CallFilter
from .auth import ALL_ROLES, current_user, route, visible_project_ids
from .errors import ApiError, json_ok
from .forms import Fields
from .layout import language_of, render
from .pages import error_text, services_of
from .people import People
from .reports import COLUMNS, call_center_zone, operator_report
from .reports_calls import RESULTS

CONTACT_STATES = ("new", "dialing", "called", "no_answer", "busy", "machine", "lost", "error",
                  "done")
OPERATOR_PARTS = ("talking", "wrap_up", "available", "ringing", "ringback", "do_not_disturb",
                  "paused", "inactive")
"""The statuses an operator's bar is made of (their sum is all his signed-in time)."""

DASHBOARD_OUT: dict[str, Any] = {"type": "object", "properties": {
    "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"},
    "tz": {"type": "string"},
    "operators": {"type": "array", "items": {"type": "object"}},
    "contacts": {"type": "object", "additionalProperties": {"type": "integer"}},
    "calls": {"type": "array", "items": {"type": "object"}}}}


async def figures(request: web.Request, fields: Fields) -> dict[str, Any]:
    """The four statistics of the period the filters name, as the caller may see them."""
    user = current_user(request)
    db = services_of(request).db
    period, rows = await operator_report(request, fields)
    own = user.role == "operator"
    visible = await visible_project_ids(request)
    where = CallFilter(started_from=period.start_ms, started_to=period.end_ms,
                       project_ids=None if visible is None or own else frozenset(visible),
                       operator_id=user.id if own else None)
    zone = ZoneInfo(period.zone)
    # Days are cut at the zone's offset on the first day (Russian zones keep one all year).
    offset = datetime.combine(period.first, datetime.min.time(), zone).utcoffset()
    offset_ms = int(offset.total_seconds() * 1000) if offset is not None else 0
    by_day: dict[int, dict[str, Any]] = {}
    for day, result, count, dial, wait, talk in await db.calls.daily_totals(
            where, offset_ms=offset_ms):
        entry = by_day.setdefault(day, {"count": 0, "by_result": {}, "dial_ms": 0,
                                        "wait_ms": 0, "talk_ms": 0})
        entry["count"] += count
        entry["by_result"][result or "unfinished"] = count
        entry["dial_ms"] += dial
        entry["wait_ms"] += wait
        entry["talk_ms"] += talk
    epoch = date(1970, 1, 1)
    calls = []
    day = period.first
    while day <= period.last:
        entry = by_day.get((day - epoch).days, {"count": 0, "by_result": {}, "dial_ms": 0,
                                                "wait_ms": 0, "talk_ms": 0})
        calls.append({"day": day.isoformat(), **entry})
        day += timedelta(days=1)
    contacts = await db.contacts.by_state(project_ids=None if own else visible,
                                          operator_id=user.id if own else None)
    operators = [{"user_id": r.user.id, "name": r.user.full_name,
                  **{f"{c}_ms": r.duration(c) for c in COLUMNS}}
                 for r in rows if not own or r.user.id == user.id]
    return {"from": period.first.isoformat(), "to": period.last.isoformat(),
            "tz": period.zone, "operators": operators, "contacts": contacts, "calls": calls}


async def _tiles(request: web.Request) -> list[dict[str, Any]]:
    user = current_user(request)
    db = services_of(request).db
    lang = language_of(request)
    if user.role not in ("admin", "supervisor"):
        return [{"label": translate("dashboard.groups", lang),
                 "value": len(await db.users.groups_of(user.id))}]
    people = People(services_of(request), user)
    projects = await db.projects.list(supervisor_id=None if user.role == "admin" else user.id)
    return [
        {"label": translate("dashboard.operators", lang),
         "value": len(await people.list_users(role="operator"))},
        {"label": translate("dashboard.projects", lang), "value": len(projects)},
        {"label": translate("dashboard.groups", lang), "value": len(await people.list_groups())},
    ]


def _share(value: int, total: int) -> float:
    return round(100.0 * value / total, 2) if total else 0.0


async def dashboard(request: web.Request) -> web.Response:
    """The start page after sign-in: tiles and the period's statistics."""
    fields = await Fields.read(request)
    error = None
    try:
        data = await figures(request, fields)
    except ApiError as exc:
        error = exc
        data = await figures(request, Fields.of({}))
    widest = max([sum(o[f"{p}_ms"] for p in OPERATOR_PARTS) for o in data["operators"]] + [0])
    busiest = max([d["dial_ms"] + d["wait_ms"] + d["talk_ms"] for d in data["calls"]] + [0])
    most = max([d["count"] for d in data["calls"]] + [0])
    contacts_total = sum(data["contacts"].values())
    return await render(request, "dashboard.html", {
        "tiles": await _tiles(request), "data": data, "zone_default": call_center_zone(request),
        "operator_parts": OPERATOR_PARTS, "contact_states": CONTACT_STATES, "results": RESULTS,
        "widest": widest, "busiest": busiest, "most": most, "contacts_total": contacts_total,
        "share": _share, "format_hms": format_hms,
        "error": None if error is None else error_text(request, error),
    }, status=200 if error is None else error.status)


async def api_dashboard(request: web.Request) -> web.Response:
    """The dashboard's statistics of a period (operators, contacts, calls per day)."""
    return json_ok(await figures(request, await Fields.read(request)))


def setup_routes(app: web.Application) -> None:
    route(app, "GET", "/", dashboard, roles=ALL_ROLES, name="dashboard")
    route(app, "GET", "/api/v1/dashboard", api_dashboard, roles=ALL_ROLES, api=True,
          response_schema=DASHBOARD_OUT, query=("from", "to", "tz"))

