"""/api/v1/projects: the same actions as the project pages (§5), as JSON."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .auth import STAFF, current_user, route
from .errors import json_ok
from .forms import Fields, json_object
from .pages import path_id, services_of
from .projects_service import (
    RETRY_KINDS,
    copy_project,
    create_project,
    delete_project,
    list_filters,
    list_projects,
    project_details,
    project_for,
    project_json,
    set_launched,
    update_project,
)

_ID = r"{id:\d+}"
_INT = {"type": "integer"}
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_IDS = {"type": "array", "items": _INT}
_OPT_ID = {"type": ["integer", "null"]}

SETTINGS_SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "name": _STR, "show_numbers": _BOOL, "amd_enabled": _BOOL,
    "amd_params": {"type": "object", "description": "AMD overrides (AmdParams keys)"},
    "robot": _BOOL, "starts_on": {"type": ["string", "null"], "format": "date"},
    "ends_on": {"type": ["string", "null"], "format": "date"},
    "timezone": {"type": "string", "examples": ["Europe/Moscow"]},
    "client_time_from": {"type": "string", "pattern": "^\\d\\d:\\d\\d$"},
    "client_time_to": {"type": "string", "pattern": "^\\d\\d:\\d\\d$"},
    "caller_id": _STR, "trunk_id": _OPT_ID,
    "card_fields": {"type": "array", "items": _STR},
    "intervals": {"type": "array", "items": {"type": "object", "properties": {
        "weekday": {"type": "integer", "minimum": 0, "maximum": 6},
        "start": _STR, "end": _STR}}},
    "group_ids": _IDS, "queue_timeout_s": _INT, "operator_timeout_s": _INT,
    "strategy": {"enum": ["ring_all", "round_robin", "longest_idle", "fewest_calls", "linear"]},
    "operator_auto_answer": _BOOL, "music_on_hold": _BOOL, "supervisor_id": _OPT_ID, "abandon_message_file_id": _OPT_ID,
    "status_ids": _IDS, "operator_tasks_enabled": _BOOL,
    "task_rules": {"type": "array", "items": {"type": "object", "properties": {
        "operator_id": _INT, "status_id": _INT}}},
    "dial_timeout_s": _INT, "global_timeout_enabled": _BOOL, "global_timeout_s": _INT,
    "max_concurrent_calls": _INT,
    "dial_mode": {"enum": ["unlimited", "predictive", "progressive"]},
    "predictive_percent": _INT, "max_attempts": _INT,
    "withdraw_after_s": {"type": "integer", "minimum": 0, "maximum": 600,
                         "description": "0: never; otherwise at least 15"},
    **{f"retry_{k}_intervals": {"type": "string", "examples": ["15;60;1440;60"]}
       for k in RETRY_KINDS},
    **{f"retry_{k}_attempts": _INT for k in RETRY_KINDS},
    "script_html": {"type": "string", "description": "sanitised on save"},
    "crm_status_id": _OPT_ID, "bitrix_host": _STR, "bitrix_title": _STR, "bitrix_login": _STR,
    "bitrix_password": _STR, "bitrix_source_id": _STR, "bitrix_assigned_by_id": _STR,
    "sms_template": _STR, "email_template": _STR, "launched": _BOOL, "call_from_end": _BOOL,
}}
PROJECT_OUT: dict[str, Any] = {"type": "object", "properties": {
    "id": _INT, "created_at": _INT, "group_ids": _IDS, "bitrix_password_set": _BOOL,
    **{k: v for k, v in SETTINGS_SCHEMA["properties"].items() if k != "bitrix_password"}}}
CREATE_IN: dict[str, Any] = {"type": "object", "required": ["name"], "properties": {
    k: SETTINGS_SCHEMA["properties"][k]
    for k in ("name", "queue_timeout_s", "operator_timeout_s", "strategy")}}
LAUNCH_IN: dict[str, Any] = {"type": "object", "properties": {
    "launched": _BOOL, "call_from_end": _BOOL}}




async def api_projects(request: web.Request) -> web.Response:
    """List projects (filters: name, group_id, from, to as YYYY-MM-DD)."""
    services = services_of(request)
    projects = await list_projects(services, current_user(request),
                                   **list_filters(request.query))
    return json_ok({"items": [project_json(p) for p in projects]})


async def api_project_create(request: web.Request) -> web.Response:
    """Create a project (§5.1): name, queue timeout, operator timeout, strategy."""
    services = services_of(request)
    project_id = await create_project(services, current_user(request), await json_object(request))
    project = await services.db.projects.get(project_id)
    return json_ok(await project_details(services, project), status=201)


async def api_project(request: web.Request) -> web.Response:
    """One project with every tab: card fields, intervals, task rules."""
    services = services_of(request)
    project = await project_for(services, current_user(request), path_id(request))
    return json_ok(await project_details(services, project))


async def api_project_update(request: web.Request) -> web.Response:
    """Change settings of any tab (only the fields given; lists replace the stored ones)."""
    services = services_of(request)
    project = await update_project(services, current_user(request), path_id(request),
                                   await json_object(request))
    return json_ok(await project_details(services, project))


async def api_project_launch(request: web.Request) -> web.Response:
    """The "Проект запущен" and "Звонить базу с конца" switches (§5.3, §5.4)."""
    fields = await Fields.read(request)
    project = await set_launched(services_of(request), current_user(request), path_id(request),
                                 launched=fields.optional_flag("launched"),
                                 call_from_end=fields.optional_flag("call_from_end"))
    return json_ok({"id": project.id, "launched": project.launched,
                    "call_from_end": project.call_from_end})


async def api_project_copy(request: web.Request) -> web.Response:
    """Copy a project with every setting (not launched, no contacts)."""
    services = services_of(request)
    new_id = await copy_project(services, current_user(request), path_id(request))
    return json_ok(await project_details(services, await services.db.projects.get(new_id)),
                   status=201)


async def api_project_delete(request: web.Request) -> web.Response:
    """Delete a project (its calls and contacts stay for the reports)."""
    await delete_project(services_of(request), current_user(request), path_id(request))
    return json_ok({"deleted": True})


def setup_routes(app: web.Application) -> None:
    list_out = {"type": "object", "properties": {"items": {"type": "array", "items": PROJECT_OUT}}}
    route(app, "GET", "/api/v1/projects", api_projects, roles=STAFF, api=True,
          query=("name", "group_id", "from", "to"), response_schema=list_out)
    route(app, "POST", "/api/v1/projects", api_project_create, roles=STAFF, api=True,
          request_schema=CREATE_IN, response_schema=PROJECT_OUT)
    route(app, "GET", f"/api/v1/projects/{_ID}", api_project, roles=STAFF, api=True,
          response_schema=PROJECT_OUT)
    route(app, "PATCH", f"/api/v1/projects/{_ID}", api_project_update, roles=STAFF, api=True,
          request_schema=SETTINGS_SCHEMA, response_schema=PROJECT_OUT)
    route(app, "POST", f"/api/v1/projects/{_ID}/launch", api_project_launch, roles=STAFF,
          api=True, request_schema=LAUNCH_IN, response_schema=LAUNCH_IN)
    route(app, "POST", f"/api/v1/projects/{_ID}/copy", api_project_copy, roles=STAFF, api=True,
          response_schema=PROJECT_OUT)
    route(app, "DELETE", f"/api/v1/projects/{_ID}", api_project_delete, roles=STAFF, api=True)
