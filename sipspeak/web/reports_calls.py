"""«Отчеты» → «Звонки» (manual §6.2): every call with the columns of the manual.

Filters: a period of whole days in a time zone (as :mod:`.reports`), project, direction, call
type, result, client status, operator status, operator, user group (the operator's), tag (the
contact's, §5.5) and a number (digits of the contact's, caller's or called number).  The page
shows «Количество» and the calls a page at a time, newest first or by the column clicked
(``sort``, ``order``: sorted in SQL, so the pages and the downloads follow it), with a column
chooser and the recording to play or download; the CSV / XLSX downloads hold every call the
filters keep (an XLSX beyond what a sheet holds is refused, CSV has no limit).  An
administrator sees every call, a supervisor the calls of his projects, an operator his own
calls (§1.3), with the customer's number masked where the project hides numbers — his
number search finds no call whose number he may not see, and sorting by a number column
orders by the masked form, so no order depends on digits he cannot see.  A recording is
served only from the recordings directory, to staff who may see its call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from ..calls.cdr import ClientStatus, OperatorStatus
from ..crm.phones import mask_phone
from ..i18n import Text, translate
from ..storage import NotFound
from ..storage.models import CALL_SORTS, CallFilter, CallReportRow
from .auth import ALL_ROLES, STAFF, current_user, route, visible_project_ids
from .errors import ApiError, Invalid, json_ok
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
from .pages import error_text, path_id, services_of
from .reports import (
    Period,
    call_center_zone,
    read_period,
    read_sort,
    visible_groups,
    visible_operators,
    visible_projects,
)

PAGE_SIZE = 100
EXPORT_BATCH = 1000
DIRECTIONS = ("outbound", "inbound")
RESULTS = ("answered", "busy", "no_answer", "failed", "congestion", "lost",
           "answering_machine", "abandoned")
KINDS = ("auto", "manual", "click", "robot", "inbound")
COLUMNS = ("project", "id", "date", "direction", "kind", "phone", "from", "to", "duration",
           "billing", "dial", "wait", "talk", "client_status", "operator_status", "contact",
           "operator", "region", "timezone", "result", "tags", "robot_status", "price")
"""The manual's columns, in its order (the recording is the page's own last column)."""

CALL_OUT: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "project_id": {"type": ["integer", "null"]},
    "project": {"type": "string"}, "started_at": {"type": "integer"},
    "direction": {"type": "string"}, "kind": {"type": "string"},
    "contact_phone": {"type": "string"}, "from_number": {"type": "string"},
    "to_number": {"type": "string"}, "duration_ms": {"type": "integer"},
    "billing_ms": {"type": "integer"}, "dial_ms": {"type": "integer"},
    "wait_ms": {"type": "integer"}, "talk_ms": {"type": "integer"},
    "client_status": {"type": "string"}, "operator_status": {"type": "string"},
    "contact": {"type": "string"}, "operator_id": {"type": ["integer", "null"]},
    "operator": {"type": "string"}, "region": {"type": ["string", "null"]},
    "timezone": {"type": ["string", "null"]}, "result": {"type": "string"},
    "tags": {"type": "string"}, "robot_status": {"type": ["string", "null"]},
    "price_kopecks": {"type": "integer"}, "recording": {"type": "boolean"}}}
REPORT_OUT: dict[str, Any] = {"type": "object", "properties": {
    "count": {"type": "integer"}, "page": {"type": "integer"},
    "items": {"type": "array", "items": CALL_OUT}}}

_CLIENT = {status.value: status.name.lower() for status in ClientStatus}
_OPERATOR = {status.value: status.name.lower() for status in OperatorStatus if status.value}
CLIENT_STATUSES = tuple(_CLIENT.values())
OPERATOR_STATUSES = tuple(_OPERATOR.values())


def _choice(fields: Fields, name: str, allowed: tuple[str, ...]) -> str | None:
    value = fields.text(name, max_len=40) or None
    if value is not None and value not in allowed:
        raise Invalid(Text("reports.error.choice"), field=name)
    return value


async def read_filter(request: web.Request, fields: Fields) -> tuple[Period, CallFilter]:
    period = read_period(fields, call_center_zone(request))
    client = _choice(fields, "client_status", CLIENT_STATUSES)
    operator = _choice(fields, "operator_status", OPERATOR_STATUSES)
    sort, descending = read_sort(fields, CALL_SORTS, "date", descending=True)
    phone = "".join(ch for ch in fields.text("phone", max_len=40) if ch.isdigit())
    user = current_user(request)
    own = user.role == "operator"
    visible = None if own else await visible_project_ids(request)
    return period, CallFilter(
        started_from=period.start_ms, started_to=period.end_ms,
        project_ids=None if visible is None else frozenset(visible),
        only_operator_id=user.id if own else None, phone_shown_only=own,
        numbers_masked=own,
        project_id=fields.optional_int("project_id", low=1),
        operator_id=fields.optional_int("operator_id", low=1),
        group_id=fields.optional_int("group_id", low=1),
        direction=_choice(fields, "direction", DIRECTIONS),
        result=_choice(fields, "result", RESULTS), kind=_choice(fields, "kind", KINDS),
        client_status=None if client is None else ClientStatus[client.upper()].value,
        operator_status=None if operator is None else OperatorStatus[operator.upper()].value,
        tag=fields.text("tag", max_len=100), phone=phone, sort=sort, descending=descending)


def masked(row: CallReportRow, role: str) -> CallReportRow:
    """The row as ``role`` may read it: an operator gets the customer's number masked where
    the call's project hides numbers (the contact's number, and the caller's on an inbound
    call or the called one on an outbound)."""
    if role != "operator" or row.shows_numbers:
        return row

    def hide(number: str) -> str:
        return mask_phone(number) if number else ""

    call = replace(row.call, contact_phone=hide(row.call.contact_phone))
    if call.direction == "inbound":
        call = replace(call, from_number=hide(call.from_number))
    else:
        call = replace(call, to_number=hide(call.to_number))
    return replace(row, call=call)


def _seconds(ms: int) -> int:
    return (ms + 500) // 1000


def cells(row: CallReportRow, lang: str, zone: ZoneInfo) -> dict[str, Any]:
    """The row's columns as the report shows them (durations in seconds, price in roubles)."""
    call = row.call
    when = datetime.fromtimestamp(call.started_at / 1000, zone)
    client = _CLIENT.get(call.client_status)
    operator = _OPERATOR.get(call.operator_status)
    return {
        "project": row.project_name, "id": call.id, "date": when.strftime("%d-%m-%Y %H:%M:%S"),
        "direction": translate(f"reports.direction.{call.direction}", lang),
        "kind": translate(f"reports.kind.{call.kind}", lang),
        "phone": call.contact_phone, "from": call.from_number, "to": call.to_number,
        "duration": _seconds(call.duration_ms), "billing": _seconds(call.billing_ms),
        "dial": _seconds(call.dial_ms), "wait": _seconds(call.wait_ms),
        "talk": _seconds(call.talk_ms),
        "client_status": translate(f"reports.client.{client}", lang) if client
        else call.client_status,
        "operator_status": translate(f"reports.operator.{operator}", lang) if operator
        else call.operator_status,
        "contact": row.contact_name, "operator": row.operator_name,
        "region": call.region or "", "timezone": call.timezone or "",
        "result": translate(f"reports.result.{call.result}", lang) if call.result else "",
        "tags": call.tags, "robot_status": call.robot_status or "",
        "price": f"{call.price_kopecks // 100}.{call.price_kopecks % 100:02d}",
    }


def _call_json(row: CallReportRow) -> dict[str, Any]:
    call = row.call
    return {"id": call.id, "project_id": call.project_id, "project": row.project_name,
            "started_at": call.started_at, "direction": call.direction, "kind": call.kind,
            "contact_phone": call.contact_phone, "from_number": call.from_number,
            "to_number": call.to_number, "duration_ms": call.duration_ms,
            "billing_ms": call.billing_ms, "dial_ms": call.dial_ms, "wait_ms": call.wait_ms,
            "talk_ms": call.talk_ms, "client_status": call.client_status,
            "operator_status": call.operator_status, "contact": row.contact_name,
            "operator_id": call.operator_id, "operator": row.operator_name,
            "region": call.region, "timezone": call.timezone, "result": call.result,
            "tags": call.tags, "robot_status": call.robot_status,
            "price_kopecks": call.price_kopecks, "recording": bool(call.recording_path)}


def _page(fields: Fields) -> int:
    return fields.optional_int("page", low=1, high=10**6) or 1


async def calls_page(request: web.Request) -> web.Response:
    """Звонки: все звонки периода с колонками руководства и записями разговоров."""
    services = services_of(request)
    fields = await Fields.read(request)
    lang = language_of(request)
    error = None
    try:
        period, where = await read_filter(request, fields)
        page = _page(fields)
    except ApiError as exc:
        error = exc
        fields = Fields.of({})
        period, where = await read_filter(request, fields)
        page = 1
    db = services.db
    role = current_user(request).role
    count = await db.calls.report_count(where)
    rows = await db.calls.report(where, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    zone = ZoneInfo(period.zone)
    query = {k: v for k, v in request.query.items() if k != "page"} if error is None else {}
    return await render(request, "reports/calls.html", {
        "period": period, "where": where, "count": count, "page": page,
        "pages": max(1, -(-count // PAGE_SIZE)), "columns": COLUMNS,
        "rows": [(r, cells(masked(r, role), lang, zone)) for r in rows],
        "projects": await visible_projects(request),
        "operators": await visible_operators(request), "groups": await visible_groups(request),
        "tags": await db.tags.list(), "directions": DIRECTIONS, "kinds": KINDS,
        "results": RESULTS, "client_statuses": CLIENT_STATUSES,
        "operator_statuses": OPERATOR_STATUSES, "client_status": fields.text("client_status"),
        "operator_status": fields.text("operator_status"), "query": query,
        "phone": fields.text("phone", max_len=40), "own": role == "operator",
        "error": None if error is None else error_text(request, error),
    }, status=200 if error is None else error.status)


async def api_calls(request: web.Request) -> web.Response:
    """The calls report (§6.2): «Количество» and a page of calls, newest first or as sorted."""
    fields = await Fields.read(request)
    _, where = await read_filter(request, fields)
    page = _page(fields)
    db = services_of(request).db
    role = current_user(request).role
    rows = await db.calls.report(where, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return json_ok({"count": await db.calls.report_count(where), "page": page,
                    "items": [_call_json(masked(r, role)) for r in rows]})


async def _table(request: web.Request, *,
                 xlsx: bool = False) -> tuple[Period, AsyncIterator[Lines]]:
    """The filters' period and every call they keep as a table (for XLSX: refused beyond
    what a sheet holds)."""
    period, where = await read_filter(request, await Fields.read(request))
    lang, zone = language_of(request), ZoneInfo(period.zone)
    db = services_of(request).db
    role = current_user(request).role
    if xlsx:
        refuse_beyond_a_sheet(await db.calls.report_count(where))

    async def lines() -> AsyncIterator[Lines]:
        yield [[translate(f"reports.call.{c}", lang) for c in COLUMNS]]
        # Read on from the last row's place in the report's order (its sort value and id).
        async for rows in keyset_batches(
                lambda count, after: db.calls.report(where, limit=count, after=after),
                lambda row: db.calls.sort_key(where, masked(row, role)),
                batch=EXPORT_BATCH, limit=EVERY_ROW):
            yield [[cells(masked(r, role), lang, zone)[c] for c in COLUMNS] for r in rows]

    return period, lines()


def _filename(period: Period, suffix: str) -> str:
    return f"calls-{period.first.isoformat()}-{period.last.isoformat()}.{suffix}"


async def calls_csv(request: web.Request) -> web.StreamResponse:
    """Every call the filters keep, as CSV (``;``, UTF-8 with BOM)."""
    period, table = await _table(request)
    return await csv_download(request, _filename(period, "csv"), table)


async def calls_xlsx(request: web.Request) -> web.StreamResponse:
    """Every call the filters keep, as an XLSX workbook."""
    period, table = await _table(request, xlsx=True)
    return await xlsx_download(request, _filename(period, "xlsx"),
                               translate("reports.calls", language_of(request)), table)


async def recording(request: web.Request) -> web.StreamResponse:
    """A call's recording (stereo WAV: customer left, operator right); ``?download=1`` saves it."""
    services = services_of(request)
    call = await services.db.calls.get(path_id(request))
    visible = await visible_project_ids(request)
    if visible is not None and call.project_id not in visible:
        raise NotFound(Text("storage.error.call_not_found", id=call.id))
    root = services.config.recordings_dir.resolve()
    path = Path(call.recording_path).resolve() if call.recording_path else None
    if path is None or not path.is_relative_to(root) or not path.is_file():
        raise ApiError(404, "not_found", Text("reports.error.no_recording", id=call.id))
    response = web.FileResponse(path, headers={"Content-Type": "audio/wav"})
    if request.query.get("download"):
        response.headers["Content-Disposition"] = f'attachment; filename="call-{call.id}.wav"'
    return response


def setup_routes(app: web.Application) -> None:
    query = ("from", "to", "tz", "project_id", "operator_id", "group_id", "direction", "kind",
             "result", "client_status", "operator_status", "tag", "phone", "sort", "order",
             "page")
    route(app, "GET", "/reports/calls", calls_page, roles=ALL_ROLES, name="reports")
    route(app, "GET", "/reports/calls.csv", calls_csv, roles=ALL_ROLES)
    route(app, "GET", "/reports/calls.xlsx", calls_xlsx, roles=ALL_ROLES)
    route(app, "GET", r"/reports/calls/{id:\d+}/recording", recording, roles=STAFF)
    route(app, "GET", "/api/v1/reports/calls", api_calls, roles=ALL_ROLES, api=True,
          response_schema=REPORT_OUT, query=query)
