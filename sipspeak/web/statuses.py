"""Settings → Статусы (§4.3): name, colour, active toggle; pages and /api/v1/statuses."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ..i18n import Text
from ..storage.models import Status
from .auth import ADMIN, ALL_ROLES, route
from .errors import ApiError, Invalid, json_ok
from .forms import Fields
from .layout import render
from .pages import error_text, form_post, notice, path_id, services_of

_ID = r"{id:\d+}"
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_NAME = 100
STATUS_OUT: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"},
    "color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"}, "active": {"type": "boolean"}}}
STATUS_IN: dict[str, Any] = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": MAX_NAME},
    "color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"}, "active": {"type": "boolean"}}}


def status_json(status: Status) -> dict[str, Any]:
    return {"id": status.id, "name": status.name, "color": status.color, "active": status.active}


def _check(name: str | None, color: str | None) -> None:
    if name is not None:
        if not name:
            raise Invalid(Text("statuses.error.name_empty"), field="name")
        if len(name) > MAX_NAME:
            raise Invalid(Text("people.error.name_long", max=MAX_NAME), field="name")
    if color is not None and not _COLOR.match(color):
        raise Invalid(Text("statuses.error.color"), field="color")


async def create_status(request: web.Request, fields: Fields) -> int:
    name = fields.text("name", max_len=500)
    color = fields.text("color", "#9e9e9e", max_len=20)
    _check(name, color)
    return await services_of(request).db.statuses.create(name, color,
                                                         active=fields.flag("active", True))


async def update_status(request: web.Request, status_id: int, fields: Fields) -> Status:
    name = fields.optional_text("name", max_len=500)
    color = fields.optional_text("color", max_len=20)
    _check(name, color)
    db = services_of(request).db
    await db.statuses.update(status_id, name=name, color=color,
                             active=fields.optional_flag("active"))
    return await db.statuses.get(status_id)


async def _context(request: web.Request) -> dict[str, Any]:
    return {"statuses": await services_of(request).db.statuses.list(),
            "notice": notice(request, "statuses")}


async def statuses_page(request: web.Request) -> web.Response:
    """Statuses: create, recolour, deactivate."""
    return await render(request, "settings/statuses.html", await _context(request))


async def _failed(request: web.Request, error: ApiError) -> web.Response:
    context = await _context(request)
    context["error"] = error_text(request, error)
    return await render(request, "settings/statuses.html", context, status=error.status)


async def status_create(request: web.Request) -> web.Response:
    fields = await Fields.read(request)

    async def run() -> str:
        await create_status(request, fields)
        return "/settings/statuses?ok=created"

    return await form_post(request, run, lambda e: _failed(request, e))


async def status_save(request: web.Request) -> web.Response:
    fields = await Fields.read(request)

    async def run() -> str:
        await update_status(request, path_id(request), fields)
        return "/settings/statuses?ok=saved"

    return await form_post(request, run, lambda e: _failed(request, e))


async def api_statuses(request: web.Request) -> web.Response:
    """List statuses (query: active=1 for active ones only)."""
    db = services_of(request).db
    statuses = await db.statuses.list(only_active=request.query.get("active") == "1")
    return json_ok({"items": [status_json(s) for s in statuses]})


async def api_status_create(request: web.Request) -> web.Response:
    """Create a status."""
    status_id = await create_status(request, await Fields.read(request))
    return json_ok(status_json(await services_of(request).db.statuses.get(status_id)), status=201)


async def api_status(request: web.Request) -> web.Response:
    """One status."""
    return json_ok(status_json(await services_of(request).db.statuses.get(path_id(request))))


async def api_status_update(request: web.Request) -> web.Response:
    """Rename, recolour, activate or deactivate a status."""
    status = await update_status(request, path_id(request), await Fields.read(request))
    return json_ok(status_json(status))


def setup_routes(app: web.Application) -> None:
    route(app, "GET", "/settings/statuses", statuses_page, roles=ADMIN, name="settings.statuses")
    route(app, "POST", "/settings/statuses", status_create, roles=ADMIN)
    route(app, "POST", f"/settings/statuses/{_ID}", status_save, roles=ADMIN)
    list_out = {"type": "object", "properties": {"items": {"type": "array", "items": STATUS_OUT}}}
    route(app, "GET", "/api/v1/statuses", api_statuses, roles=ALL_ROLES, api=True,
          query=("active",), response_schema=list_out)
    route(app, "POST", "/api/v1/statuses", api_status_create, roles=ADMIN, api=True,
          request_schema={**STATUS_IN, "required": ["name"]}, response_schema=STATUS_OUT)
    route(app, "GET", f"/api/v1/statuses/{_ID}", api_status, roles=ALL_ROLES, api=True,
          response_schema=STATUS_OUT)
    route(app, "PATCH", f"/api/v1/statuses/{_ID}", api_status_update, roles=ADMIN, api=True,
          request_schema=STATUS_IN, response_schema=STATUS_OUT)
