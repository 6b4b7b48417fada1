"""Settings → Пользователи (§4.1): pages and /api/v1/users over one service."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..accounts import NewUser
from ..storage.models import ROLES
from .auth import STAFF, current_user, route
from .errors import ApiError, json_ok
from .forms import Fields
from .layout import render
from .pages import error_text, form_post, notice, path_id, services_of
from .people import People, UserChanges, user_json

_ID = r"{id:\d+}"

USER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "role": {"type": "string", "enum": list(ROLES)},
        "full_name": {"type": "string", "maxLength": 200},
        "email": {"type": "string", "format": "email"},
        "phone": {"type": "string"},
        "password": {"type": "string", "minLength": 6},
        "extension": {"type": ["string", "null"], "pattern": "^[0-9]{2,10}$"},
        "sip_password": {"type": ["string", "null"], "minLength": 8},
        "trunk_id": {"type": ["integer", "null"]},
        "group_ids": {"type": "array", "items": {"type": "integer"}},
        "language": {"type": "string", "enum": ["ru", "en"]},
    },
}
USER_OUT: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "role": {"type": "string"}, "full_name": {"type": "string"},
    "email": {"type": "string"}, "phone": {"type": "string"},
    "extension": {"type": ["string", "null"]}, "trunk_id": {"type": ["integer", "null"]},
    "group_ids": {"type": "array", "items": {"type": "integer"}},
    "deleted_at": {"type": ["integer", "null"]}}}


def people(request: web.Request) -> People:
    return People(services_of(request), current_user(request))


def new_user(fields: Fields) -> NewUser:
    return NewUser(
        role=fields.text("role", "operator", max_len=20),
        full_name=fields.text("full_name", max_len=500),
        email=fields.text("email", max_len=500),
        password=fields.secret("password"),
        phone=fields.text("phone", max_len=100),
        extension=fields.text("extension", max_len=40) or None,
        sip_password=fields.secret("sip_password") or None,
        trunk_id=fields.optional_int("trunk_id", low=1))


def user_changes(fields: Fields) -> UserChanges:
    trunk = fields.optional_int("trunk_id", low=1)
    return UserChanges(
        role=fields.optional_text("role", max_len=20) or None,
        full_name=fields.optional_text("full_name", max_len=500),
        email=fields.optional_text("email", max_len=500),
        phone=fields.optional_text("phone", max_len=100),
        password=fields.secret("password") or None,
        extension=fields.optional_text("extension", max_len=40),
        sip_password=fields.secret("sip_password") or None,
        trunk_id=trunk,
        clear_trunk=fields.has("trunk_id") and trunk is None,
        language=fields.optional_text("language", max_len=5))


# -- pages ------------------------------------------------------------------------------


async def _list_context(request: web.Request, service: People) -> dict[str, Any]:
    role = request.query.get("role") or None
    search = request.query.get("q", "")[:200]
    removed = request.query.get("removed") == "1"
    users = await service.list_users(role=role if role in ROLES else None, search=search,
                                     include_deleted=removed and service.is_admin)
    db = services_of(request).db
    trunks = await db.trunks.list()
    return {
        "users": users, "roles": ROLES if service.is_admin else ("operator",),
        "filter_roles": ROLES, "role": role, "q": search, "removed": removed,
        "trunks": trunks, "trunk_names": {t.id: t.name for t in trunks},
        "groups": await service.list_groups(), "can_see_removed": service.is_admin,
    }


async def users_page(request: web.Request) -> web.Response:
    """Users: search by role and name, add, edit, remove."""
    service = people(request)
    context = await _list_context(request, service)
    context["notice"] = notice(request, "users")
    return await render(request, "settings/users.html", context)


async def users_create(request: web.Request) -> web.Response:
    service = people(request)
    fields = await Fields.read(request)

    async def action() -> str:
        await service.create_user(new_user(fields), group_ids=fields.integers("group_ids"))
        return "/settings/users?ok=created"

    async def failed(error: ApiError) -> web.Response:
        context = await _list_context(request, service)
        context.update({"error": error_text(request, error), "form": fields,
                        "open_form": True})
        return await render(request, "settings/users.html", context, status=error.status)

    return await form_post(request, action, failed)


async def user_edit_page(request: web.Request) -> web.Response:
    """Edit one user."""
    service = people(request)
    user = await service.get_user(path_id(request))
    return await render(request, "settings/user_edit.html", await _edit_context(
        request, service, user.id))


async def _edit_context(request: web.Request, service: People, user_id: int) -> dict[str, Any]:
    target = await service.get_user(user_id)
    return {"target": target,
            # a supervisor cannot change roles: the select offers the current one only
            "roles": ROLES if service.is_admin else (target.role,),
            "trunks": await services_of(request).db.trunks.list()}


async def user_save(request: web.Request) -> web.Response:
    service = people(request)
    user_id = path_id(request)
    fields = await Fields.read(request)

    async def action() -> str:
        await service.update_user(user_id, user_changes(fields))
        _changed(request, user_id)
        return "/settings/users?ok=saved"

    async def failed(error: ApiError) -> web.Response:
        context = await _edit_context(request, service, user_id)
        context["error"] = error_text(request, error)
        return await render(request, "settings/user_edit.html", context, status=error.status)

    return await form_post(request, action, failed)


async def user_delete(request: web.Request) -> web.Response:
    service = people(request)
    user_id = path_id(request)

    async def action() -> str:
        await service.delete_user(user_id)
        _changed(request, user_id)
        return "/settings/users?ok=deleted"

    async def failed(error: ApiError) -> web.Response:
        context = await _list_context(request, service)
        context["error"] = error_text(request, error)
        return await render(request, "settings/users.html", context, status=error.status)

    return await form_post(request, action, failed)


def _changed(request: web.Request, user_id: int) -> None:
    """Live sockets of his (the browser softphone) check his sign-in again now: a removed
    user or a changed password may have ended it."""
    services_of(request).bus.publish("user.changed", user_id=user_id)


# -- API --------------------------------------------------------------------------------


async def api_users(request: web.Request) -> web.Response:
    """List users (query: role, q, removed=1)."""
    service = people(request)
    role = request.query.get("role") or None
    users = await service.list_users(role=role, search=request.query.get("q", "")[:200],
                                     include_deleted=request.query.get("removed") == "1")
    items = [user_json(u, group_ids=await service.group_ids_of(u.id)) for u in users]
    return json_ok({"items": items})


async def api_user_create(request: web.Request) -> web.Response:
    """Create a user."""
    service = people(request)
    fields = await Fields.read(request)
    user_id = await service.create_user(new_user(fields), group_ids=fields.integers("group_ids"))
    user = await service.get_user(user_id)
    return json_ok(user_json(user, group_ids=await service.group_ids_of(user_id)), status=201)


async def api_user(request: web.Request) -> web.Response:
    """One user."""
    service = people(request)
    user = await service.get_user(path_id(request))
    return json_ok(user_json(user, group_ids=await service.group_ids_of(user.id)))


async def api_user_update(request: web.Request) -> web.Response:
    """Change a user (only the fields given)."""
    service = people(request)
    user = await service.update_user(path_id(request), user_changes(await Fields.read(request)))
    _changed(request, user.id)
    return json_ok(user_json(user, group_ids=await service.group_ids_of(user.id)))


async def api_user_delete(request: web.Request) -> web.Response:
    """Remove a user (soft delete: history stays, sessions and tokens end)."""
    await people(request).delete_user(path_id(request))
    _changed(request, path_id(request))
    return json_ok({"id": path_id(request), "deleted": True})


def setup_routes(app: web.Application) -> None:
    route(app, "GET", "/settings/users", users_page, roles=STAFF, name="settings.users")
    route(app, "POST", "/settings/users", users_create, roles=STAFF)
    route(app, "GET", f"/settings/users/{_ID}", user_edit_page, roles=STAFF)
    route(app, "POST", f"/settings/users/{_ID}", user_save, roles=STAFF)
    route(app, "POST", f"/settings/users/{_ID}/delete", user_delete, roles=STAFF)
    route(app, "GET", "/api/v1/users", api_users, roles=STAFF, api=True,
          query=("role", "q", "removed"),
          response_schema={"type": "object", "properties": {
              "items": {"type": "array", "items": USER_OUT}}})
    route(app, "POST", "/api/v1/users", api_user_create, roles=STAFF, api=True,
          request_schema={**USER_SCHEMA, "required": ["role", "full_name", "email", "password"]},
          response_schema=USER_OUT)
    route(app, "GET", f"/api/v1/users/{_ID}", api_user, roles=STAFF, api=True,
          response_schema=USER_OUT)
    route(app, "PATCH", f"/api/v1/users/{_ID}", api_user_update, roles=STAFF, api=True,
          request_schema=USER_SCHEMA, response_schema=USER_OUT)
    route(app, "DELETE", f"/api/v1/users/{_ID}", api_user_delete, roles=STAFF, api=True)
