"""Settings → Группы пользователей (§4.2): pages and /api/v1/groups over one service.

The members' order is the list of «Вызываются все операторы по списку» (§5.2.4): the page
moves a member up or down, the API takes the whole new order.  Any change of the members
tells the campaign runtime (``projects.changed`` for each launched project of the group), so
its queue re-reads the operators and their order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from aiohttp import web

from ..i18n import Text
from ..storage import NotFound
from ..storage.models import Group
from .auth import ADMIN, STAFF, route
from .errors import ApiError, Invalid, json_ok
from .forms import Fields
from .layout import render
from .pages import error_text, form_post, notice, path_id, services_of
from .people import People, group_json
from .users import people

_ID = r"{id:\d+}"
GROUP_OUT: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"},
    "member_ids": {"type": "array", "items": {"type": "integer"}}}}


def moved(member_ids: Sequence[int], user_id: int,
          direction: Literal["up", "down"]) -> list[int]:
    """The order with ``user_id`` one place up or down (unchanged at the list's end)."""
    order = list(member_ids)
    at = order.index(user_id)
    to = at - 1 if direction == "up" else at + 1
    if 0 <= to < len(order):
        order[at], order[to] = order[to], order[at]
    return order


async def _members_changed(request: web.Request, group_id: int) -> None:
    """The launched projects of the group re-read their operators (the dialer's queue)."""
    services = services_of(request)
    for project in await services.db.projects.list(group_id=group_id, launched=True):
        services.bus.publish("projects.changed", project_id=project.id, launched=True)


async def reorder_members(request: web.Request, service: People, group_id: int,
                          user_ids: Sequence[int]) -> Group:
    """Put every member of the group in this order (each once); 422 otherwise."""
    await service.get_group(group_id)
    if not await services_of(request).db.groups.set_member_order(group_id, list(user_ids)):
        raise Invalid(Text("groups.error.order"), field="user_ids")
    await _members_changed(request, group_id)
    return await service.get_group(group_id)


async def move_member(request: web.Request, service: People, group_id: int, user_id: int,
                      direction: str) -> Group:
    """One member one place up or down in the group's list."""
    group = await service.get_group(group_id)
    if user_id not in group.member_ids:
        raise NotFound(Text("people.error.not_member", user=user_id, group=group_id))
    if direction not in ("up", "down"):
        raise Invalid(Text("groups.error.direction"), field="direction")
    order = moved(group.member_ids, user_id, "up" if direction == "up" else "down")
    return await reorder_members(request, service, group_id, order)


async def _context(request: web.Request, service: People) -> dict[str, Any]:
    groups = await service.list_groups()
    candidates = await service.member_candidates()
    names = {g.id: g.name for g in await services_of(request).db.groups.list()}
    memberships: dict[int, list[str]] = {}
    for g in await services_of(request).db.groups.list():
        for uid in g.member_ids:
            memberships.setdefault(uid, []).append(names[g.id])
    db = services_of(request).db
    projects = await db.projects.list(supervisor_id=None if service.is_admin else service.actor.id)
    return {"groups": groups, "candidates": candidates, "memberships": memberships,
            "users_by_id": {u.id: u for u in await db.users.list()}, "projects": projects,
            "can_delete": service.is_admin, "notice": notice(request, "groups")}


async def groups_page(request: web.Request) -> web.Response:
    """User groups: create, rename, members."""
    service = people(request)
    return await render(request, "settings/groups.html", await _context(request, service))


def _page_post(request: web.Request, service: People,
               run: Callable[[], Awaitable[str]]) -> Awaitable[web.Response]:
    async def failed(error: ApiError) -> web.Response:
        context = await _context(request, service)
        context["error"] = error_text(request, error)
        return await render(request, "settings/groups.html", context, status=error.status)

    return form_post(request, run, failed)


async def group_create(request: web.Request) -> web.Response:
    service = people(request)
    fields = await Fields.read(request)

    async def run() -> str:
        await service.create_group(fields.text("name", max_len=500),
                                   project_id=fields.optional_int("project_id", low=1))
        return "/settings/groups?ok=created"

    return await _page_post(request, service, run)


async def group_rename(request: web.Request) -> web.Response:
    service = people(request)
    fields = await Fields.read(request)
    group_id = path_id(request)

    async def run() -> str:
        await service.rename_group(group_id, fields.text("name", max_len=500))
        return f"/settings/groups?ok=saved#group-{group_id}"

    return await _page_post(request, service, run)


async def group_add_members(request: web.Request) -> web.Response:
    service = people(request)
    fields = await Fields.read(request)
    group_id = path_id(request)

    async def run() -> str:
        await service.add_members(group_id, fields.integers("user_ids"))
        await _members_changed(request, group_id)
        return f"/settings/groups?ok=saved#group-{group_id}"

    return await _page_post(request, service, run)


async def group_remove_member(request: web.Request) -> web.Response:
    service = people(request)
    group_id = path_id(request)

    async def run() -> str:
        await service.remove_member(group_id, path_id(request, "user_id"))
        await _members_changed(request, group_id)
        return f"/settings/groups?ok=saved#group-{group_id}"

    return await _page_post(request, service, run)


async def group_move_member(request: web.Request) -> web.Response:
    service = people(request)
    fields = await Fields.read(request)
    group_id = path_id(request)

    async def run() -> str:
        await move_member(request, service, group_id, path_id(request, "user_id"),
                          fields.text("direction", max_len=10))
        return f"/settings/groups?ok=saved#group-{group_id}"

    return await _page_post(request, service, run)


async def group_delete(request: web.Request) -> web.Response:
    service = people(request)

    async def run() -> str:
        await service.delete_group(path_id(request))
        return "/settings/groups?ok=deleted"

    return await _page_post(request, service, run)


# -- API --------------------------------------------------------------------------------


async def api_groups(request: web.Request) -> web.Response:
    """List groups (a supervisor sees the groups of his projects)."""
    return json_ok({"items": [group_json(g) for g in await people(request).list_groups()]})


async def api_group_create(request: web.Request) -> web.Response:
    """Create a group (a supervisor must name one of his projects: project_id)."""
    service = people(request)
    fields = await Fields.read(request)
    group_id = await service.create_group(fields.text("name", max_len=500),
                                          project_id=fields.optional_int("project_id", low=1))
    return json_ok(group_json(await service.get_group(group_id)), status=201)


async def api_group(request: web.Request) -> web.Response:
    """One group with its members."""
    return json_ok(group_json(await people(request).get_group(path_id(request))))


async def api_group_rename(request: web.Request) -> web.Response:
    """Rename a group."""
    service = people(request)
    fields = await Fields.read(request)
    await service.rename_group(path_id(request), fields.text("name", max_len=500))
    return json_ok(group_json(await service.get_group(path_id(request))))


async def api_group_delete(request: web.Request) -> web.Response:
    """Delete a group (admin)."""
    await people(request).delete_group(path_id(request))
    return json_ok({"id": path_id(request), "deleted": True})


async def api_group_add_members(request: web.Request) -> web.Response:
    """Add users to a group (an operator may be in several groups)."""
    service = people(request)
    fields = await Fields.read(request)
    await service.add_members(path_id(request), fields.integers("user_ids"))
    await _members_changed(request, path_id(request))
    return json_ok(group_json(await service.get_group(path_id(request))))


async def api_group_remove_member(request: web.Request) -> web.Response:
    """Remove one user from a group."""
    service = people(request)
    await service.remove_member(path_id(request), path_id(request, "user_id"))
    await _members_changed(request, path_id(request))
    return json_ok(group_json(await service.get_group(path_id(request))))


async def api_group_member_order(request: web.Request) -> web.Response:
    """Reorder the group's members (the list of the «по списку» strategy): every member's
    id once, in the new order."""
    service = people(request)
    fields = await Fields.read(request)
    group = await reorder_members(request, service, path_id(request), fields.integers("user_ids"))
    return json_ok(group_json(group))


def setup_routes(app: web.Application) -> None:
    route(app, "GET", "/settings/groups", groups_page, roles=STAFF, name="settings.groups")
    route(app, "POST", "/settings/groups", group_create, roles=STAFF)
    route(app, "POST", f"/settings/groups/{_ID}", group_rename, roles=STAFF)
    route(app, "POST", f"/settings/groups/{_ID}/members", group_add_members, roles=STAFF)
    route(app, "POST", rf"/settings/groups/{_ID}/members/{{user_id:\d+}}/remove",
          group_remove_member, roles=STAFF)
    route(app, "POST", rf"/settings/groups/{_ID}/members/{{user_id:\d+}}/move",
          group_move_member, roles=STAFF)
    route(app, "POST", f"/settings/groups/{_ID}/delete", group_delete, roles=ADMIN)
    list_out = {"type": "object", "properties": {"items": {"type": "array", "items": GROUP_OUT}}}
    name_in = {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "maxLength": 200}, "project_id": {"type": "integer"}}}
    route(app, "GET", "/api/v1/groups", api_groups, roles=STAFF, api=True,
          response_schema=list_out)
    route(app, "POST", "/api/v1/groups", api_group_create, roles=STAFF, api=True,
          request_schema=name_in, response_schema=GROUP_OUT)
    route(app, "GET", f"/api/v1/groups/{_ID}", api_group, roles=STAFF, api=True,
          response_schema=GROUP_OUT)
    route(app, "PATCH", f"/api/v1/groups/{_ID}", api_group_rename, roles=STAFF, api=True,
          request_schema=name_in, response_schema=GROUP_OUT)
    route(app, "DELETE", f"/api/v1/groups/{_ID}", api_group_delete, roles=ADMIN, api=True)
    route(app, "POST", f"/api/v1/groups/{_ID}/members", api_group_add_members, roles=STAFF,
          api=True, response_schema=GROUP_OUT,
          request_schema={"type": "object", "required": ["user_ids"], "properties": {
              "user_ids": {"type": "array", "items": {"type": "integer"}}}})
    route(app, "DELETE", rf"/api/v1/groups/{_ID}/members/{{user_id:\d+}}",
          api_group_remove_member, roles=STAFF, api=True, response_schema=GROUP_OUT)
    route(app, "PUT", f"/api/v1/groups/{_ID}/members/order", api_group_member_order,
          roles=STAFF, api=True, response_schema=GROUP_OUT,
          request_schema={"type": "object", "required": ["user_ids"], "properties": {
              "user_ids": {"type": "array", "items": {"type": "integer"},
                           "description": "every member once, first called first"}}})
