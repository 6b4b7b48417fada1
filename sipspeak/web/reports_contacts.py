"""«Отчеты» → «Контакты» (manual §6.1): the contacts of the bases with what is known of them.

Filters: number, «Сортировать по дате обновления», the period they were added in (optional),
status, operator, user group (the operator's), a comment's text, project, tag (the base's,
§5.5 «для удобства просмотра статистики»).  Columns are the
manual's (the chooser hides any of them): the card's fields, region / time zone (as a UTC
offset) / carrier found from the number, status, tags, work status (where the dialer is
with the contact), robot status, the last comment, the number of tasks, operator, dates of
creation and update, project.  The page shows 100 a page with «Количество»; CSV and XLSX
hold every contact the filters keep (an XLSX beyond what a sheet holds is refused).  An administrator sees every
project's contacts, a supervisor his projects'.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from ..i18n import translate
from ..storage.models import ContactFilter, ContactReportRow
from .auth import STAFF, route, visible_project_ids
from .errors import ApiError, json_ok
from .exports import (
    EVERY_ROW,
    Lines,
    csv_download,
    keyset_batches,
    refuse_beyond_a_sheet,
    xlsx_download,
)
from .forms import Fields
from .layout import language_of, render
from .pages import error_text, services_of
from .reports import call_center_zone, read_period, visible_groups, visible_operators

PAGE_SIZE = 100
EXPORT_BATCH = 1000
COLUMNS = ("phone", "full_name", "email", "position", "birth_date", "city", "address",
           "description", "region", "timezone", "carrier", "status", "tags", "work_status",
           "robot_status", "comments", "tasks", "operator", "created", "updated", "project")
"""The manual's columns (§6.1 and its column chooser)."""

CONTACT_OUT: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "project_id": {"type": "integer"},
    **{c: {"type": ["string", "integer", "null"]} for c in COLUMNS}}}
REPORT_OUT: dict[str, Any] = {"type": "object", "properties": {
    "count": {"type": "integer"}, "page": {"type": "integer"},
    "items": {"type": "array", "items": CONTACT_OUT}}}


async def read_filter(request: web.Request, fields: Fields) -> ContactFilter:
    created_from = created_to = None
    if fields.text("from", max_len=20) or fields.text("to", max_len=20):
        period = read_period(fields, call_center_zone(request))
        created_from, created_to = period.start_ms, period.end_ms
    visible = await visible_project_ids(request)
    return ContactFilter(
        project_ids=None if visible is None else frozenset(visible),
        project_id=fields.optional_int("project_id", low=1),
        phone="".join(ch for ch in fields.text("phone", max_len=40) if ch.isdigit()),
        created_from=created_from, created_to=created_to,
        status_id=fields.optional_int("status_id", low=1),
        operator_id=fields.optional_int("operator_id", low=1),
        group_id=fields.optional_int("group_id", low=1),
        comment=fields.text("comment", max_len=200), tag=fields.text("tag", max_len=100),
        order_by_updated=fields.flag("by_update", False))


def _offset(zone_name: str | None) -> str:
    """A time zone as the manual shows it: its UTC offset now («+05:00»)."""
    if not zone_name:
        return ""
    try:
        text = datetime.now(ZoneInfo(zone_name)).strftime("%z")
    except (ZoneInfoNotFoundError, ValueError):
        return zone_name
    return f"{text[:3]}:{text[3:]}"


def cells(row: ContactReportRow, lang: str, zone: ZoneInfo) -> dict[str, Any]:
    contact = row.contact

    def when(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, zone).strftime("%d-%m-%Y %H:%M")

    return {
        "phone": contact.phone, "full_name": contact.full_name or "",
        "email": contact.email or "", "position": contact.position or "",
        "birth_date": contact.birth_date or "", "city": contact.city or "",
        "address": contact.address or "", "description": contact.description or "",
        "region": contact.region or "", "timezone": _offset(contact.timezone),
        "carrier": contact.carrier or "", "status": row.status_name, "tags": row.tags,
        "work_status": translate(f"dashboard.contact.{contact.dial_state}", lang),
        "robot_status": contact.robot_status or "", "comments": row.last_comment,
        "tasks": row.tasks,
        "operator": row.operator_name or translate("reports.no_operator", lang),
        "created": when(contact.created_at), "updated": when(contact.updated_at),
        "project": row.project_name,
    }


def _page(fields: Fields) -> int:
    return fields.optional_int("page", low=1, high=10**6) or 1


def _zone(request: web.Request) -> ZoneInfo:
    return ZoneInfo(call_center_zone(request))


async def contacts_page(request: web.Request) -> web.Response:
    """Контакты: номера баз с данными карточки, статусом и историей работы."""
    db = services_of(request).db
    fields = await Fields.read(request)
    lang = language_of(request)
    error = None
    try:
        where = await read_filter(request, fields)
        page = _page(fields)
    except ApiError as exc:
        error = exc
        fields = Fields.of({})
        where = await read_filter(request, fields)
        page = 1
    count = await db.contacts.report_count(where)
    rows = await db.contacts.report(where, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    zone = _zone(request)
    visible = await visible_project_ids(request)
    query = {k: v for k, v in request.query.items() if k != "page"} if error is None else {}
    return await render(request, "reports/contacts.html", {
        "where": where, "count": count, "page": page,
        "pages": max(1, -(-count // PAGE_SIZE)), "columns": COLUMNS,
        "rows": [(r, cells(r, lang, zone)) for r in rows],
        "projects": [p for p in await db.projects.list()
                     if visible is None or p.id in visible],
        "statuses": await db.statuses.list(), "operators": await visible_operators(request),
        "groups": await visible_groups(request), "tags": await db.tags.list(),
        "query": query, "fields": fields,
        "error": None if error is None else error_text(request, error),
    }, status=200 if error is None else error.status)


async def api_contacts(request: web.Request) -> web.Response:
    """The contacts report (§6.1): «Количество» and a page of contacts."""
    fields = await Fields.read(request)
    where = await read_filter(request, fields)
    page = _page(fields)
    db = services_of(request).db
    rows = await db.contacts.report(where, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    lang, zone = language_of(request), _zone(request)
    return json_ok({"count": await db.contacts.report_count(where), "page": page,
                    "items": [{"id": r.contact.id, "project_id": r.contact.project_id,
                               **cells(r, lang, zone)} for r in rows]})


async def _table(request: web.Request, *, xlsx: bool = False) -> AsyncIterator[Lines]:
    """Every contact the filters keep as a table (for XLSX: refused beyond what a sheet
    holds)."""
    where = await read_filter(request, await Fields.read(request))
    lang, zone = language_of(request), _zone(request)
    db = services_of(request).db
    if xlsx:
        refuse_beyond_a_sheet(await db.contacts.report_count(where))
    yield [[translate(f"reports.contact.{c}", lang) for c in COLUMNS]]

    def key(row: ContactReportRow) -> tuple[int, int]:
        contact = row.contact
        return (contact.updated_at if where.order_by_updated else contact.created_at,
                contact.id)

    async for rows in keyset_batches(
            lambda count, after: db.contacts.report(where, limit=count, after=after), key,
            batch=EXPORT_BATCH, limit=EVERY_ROW):
        yield [[cells(r, lang, zone)[c] for c in COLUMNS] for r in rows]


async def contacts_csv(request: web.Request) -> web.StreamResponse:
    """Every contact the filters keep, as CSV (``;``, UTF-8 with BOM)."""
    return await csv_download(request, "contacts.csv", _table(request))


async def contacts_xlsx(request: web.Request) -> web.StreamResponse:
    """Every contact the filters keep, as an XLSX workbook."""
    return await xlsx_download(request, "contacts.xlsx",
                               translate("reports.contacts", language_of(request)),
                               _table(request, xlsx=True))


def setup_routes(app: web.Application) -> None:
    query = ("phone", "by_update", "from", "to", "tz", "status_id", "operator_id", "group_id",
             "comment", "project_id", "tag", "page")
    route(app, "GET", "/reports/contacts", contacts_page, roles=STAFF,
          name="reports.contacts")
    route(app, "GET", "/reports/contacts.csv", contacts_csv, roles=STAFF)
    route(app, "GET", "/reports/contacts.xlsx", contacts_xlsx, roles=STAFF)
    route(app, "GET", "/api/v1/reports/contacts", api_contacts, roles=STAFF, api=True,
          response_schema=REPORT_OUT, query=query)
