"""Проекты (§5): the list with filters, create, the settings tabs, launch, copy, delete.

Pages here, /api/v1 in :mod:`projects_api`; both call :mod:`projects_service`.  A tab's form
is turned into the same mapping the API takes (:func:`form_settings`): an unchecked box is
``False``, repeated inputs are lists, interval and task-rule rows are zipped into objects.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import MultiDictProxy

from ..crm.dedupe import remove_duplicates
from ..i18n import Text, joined
from ..storage.models import Project, Status, User
from . import projects_api
from .auth import STAFF, current_user, route
from .errors import ApiError, BadRequest, Invalid, json_ok
from .in_use import in_use_now
from .layout import language_of, render
from .pages import error_text, form_post, notice, path_id, services_of
from .projects_service import (
    DIAL_MODE_KEYS,
    FLAG_FIELDS,
    RETRY_KINDS,
    STRATEGY_KEYS,
    TABS,
    WEEKDAYS,
    copy_project,
    create_project,
    delete_project,
    list_filters,
    list_projects,
    project_details,
    project_for,
    set_launched,
    time_zones,
    update_project,
)
from .script_file import MAX_FILE_BYTES, ScriptFileError, script_from_file

if TYPE_CHECKING:
    from ..app import Services

_ID = r"{id:\d+}"
TAB_ORDER: tuple[str, ...] = ("project", "card", "schedule", "queue", "attempts", "script",
                              "integration")
LIST_FIELDS = ("group_ids", "status_ids", "card_fields")
#: Settings a form shows again as typed when the save fails (texts and check boxes).
SHOWN_AS_TYPED = frozenset(name for tab in ("project", "queue", "attempts", "script",
                                            "integration", "launch")
                           for name in TABS[tab]) - {"bitrix_password", "group_ids",
                                                     "status_ids", "task_rules"}
#: Fixed fields of the client card (§5.2.2), always shown to the operator.
FIXED_CARD_FIELDS: tuple[str, ...] = ("full_name", "phone", "tags", "email", "birth_date",
                                      "region", "robot_status", "status")


class AsTyped:
    """A project as the template shows it, with the values the user typed over it."""

    def __init__(self, project: Project, typed: dict[str, object]) -> None:
        self._project = project
        self._typed = typed

    def __getattr__(self, name: str) -> object:
        if name in self._typed:
            return self._typed[name]
        return getattr(self._project, name)


def form_settings(form: MultiDictProxy[Any], tab: str) -> dict[str, Any]:
    """The settings mapping of one tab's HTML form."""
    if tab not in TABS:
        raise Invalid(Text("projects.error.tab"), field="tab")
    data: dict[str, Any] = {}
    for name in TABS[tab]:
        if name in FLAG_FIELDS:
            data[name] = name in form
        elif name in LIST_FIELDS:
            data[name] = [v for v in form.getall(name, []) if isinstance(v, str)]
        elif name == "intervals":
            data[name] = [{"weekday": d, "start": s, "end": e} for d, s, e in zip(
                form.getall("interval_weekday", []), form.getall("interval_start", []),
                form.getall("interval_end", []), strict=False)]
        elif name == "task_rules":
            data[name] = [{"operator_id": o, "status_id": s} for o, s in zip(
                form.getall("rule_operator", []), form.getall("rule_status", []),
                strict=False) if o or s]
        elif name in form:
            data[name] = form[name]
    return data


async def _people(request: web.Request, user: User) -> dict[str, Any]:
    db = services_of(request).db
    users = await db.users.list()
    return {"supervisors": [u for u in users if u.role == "supervisor"
                            and (user.role == "admin" or u.id == user.id)],
            "operators": [u for u in users if u.role == "operator"],
            "user_names": {u.id: u.full_name for u in users},
            "user_emails": {u.id: u.email for u in users}}


async def _list_context(request: web.Request) -> dict[str, Any]:
    services = services_of(request)
    user = current_user(request)
    projects = await list_projects(services, user, **list_filters(request.query))
    groups = await services.db.groups.list()
    return {"projects": projects, "groups": groups, "group_names": {g.id: g.name for g in groups},
            "filters": {k: request.query.get(k, "") for k in ("name", "group_id", "from", "to")},
            "strategies": STRATEGY_KEYS, "notice": notice(request, "projects.ok"),
            "created": {p.id: _stamp(p.created_at) for p in projects},
            **await _people(request, user)}


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%d-%m-%Y %H:%M")


async def projects_page(request: web.Request) -> web.Response:
    """Projects: list with filters, create, launch switch and actions."""
    return await render(request, "projects/list.html", await _list_context(request))


async def _list_failed(request: web.Request, error: ApiError) -> web.Response:
    context = await _list_context(request)
    context.update(error=error_text(request, error), error_field=error.field)
    return await render(request, "projects/list.html", context, status=error.status)


async def project_create(request: web.Request) -> web.Response:
    form = await request.post()
    data = {k: form[k] for k in ("name", "queue_timeout_s", "operator_timeout_s", "strategy")
            if k in form}
    if "name" not in data:
        data["name"] = ""

    async def run() -> str:
        project_id = await create_project(services_of(request), current_user(request), data)
        return f"/projects/{project_id}?tab=project&ok=created"

    return await form_post(request, run, lambda e: _list_failed(request, e))


async def _edit_context(request: web.Request, project: Project, tab: str) -> dict[str, Any]:
    services = services_of(request)
    user = current_user(request)
    db = services.db
    details = await project_details(services, project)
    groups = await db.groups.list()
    if user.role != "admin":
        allowed = set(project.group_ids)
        for mine in await db.projects.list(supervisor_id=user.id):
            allowed |= set(mine.group_ids)
        groups = [g for g in groups if g.id in allowed]
    return {
        "project": project, "details": details, "tab": tab, "tabs": TAB_ORDER,
        "trunks": await db.trunks.list(), "statuses": await _status_choices(services, project),
        "sound_files": await db.files.sound_files(),
        "groups": groups, "time_zones": time_zones(), "strategies": STRATEGY_KEYS,
        "dial_modes": DIAL_MODE_KEYS, "retry_kinds": RETRY_KINDS, "weekdays": WEEKDAYS,
        "fixed_fields": FIXED_CARD_FIELDS,
        "notice": _dedupe_notice(request) or notice(request, "projects.ok"),
        "intervals_by_day": {d: [i for i in details["intervals"] if i["weekday"] == d]
                             for d in range(7)},
        **await _people(request, user),
    }


async def _status_choices(services: Services, project: Project) -> list[Status]:
    """The statuses the queue and integration tabs offer (§4.3.2): the active ones, and those
    the project already uses though deactivated since (shown as such, so that saving the
    tab does not drop them unasked)."""
    rules = await services.db.projects.task_rules(project.id)
    used = {*project.status_ids, project.crm_status_id, *(r.status_id for r in rules)}
    return [s for s in await services.db.statuses.list() if s.active or s.id in used]


def _tab(value: str) -> str:
    return value if value in TAB_ORDER else "project"


async def project_page(request: web.Request) -> web.Response:
    """A project's settings tabs (§5.2)."""
    project = await project_for(services_of(request), current_user(request), path_id(request))
    tab = _tab(request.query.get("tab", "project"))
    return await render(request, "projects/edit.html", await _edit_context(request, project, tab))


async def project_save(request: web.Request) -> web.Response:
    services = services_of(request)
    user = current_user(request)
    project_id = path_id(request)
    project = await project_for(services, user, project_id)
    form = await request.post()
    tab = str(form.get("tab", "project"))

    async def run() -> str:
        await update_project(services, user, project_id, form_settings(form, tab))
        return f"/projects/{project_id}?tab={_tab(tab)}&ok=saved"

    async def failed(error: ApiError) -> web.Response:
        # The form comes back with what the user typed, not with the stored values.
        typed = form_settings(form, tab) if tab in TABS else {}
        context = await _edit_context(request, project, _tab(tab))
        context["project"] = AsTyped(project, {
            k: v for k, v in typed.items() if k in SHOWN_AS_TYPED and isinstance(v, (str, bool))})
        if isinstance(typed.get("card_fields"), list):
            context["details"]["card_fields"] = typed["card_fields"]
        if isinstance(typed.get("intervals"), list):
            context["intervals_by_day"] = {d: [i for i in typed["intervals"]
                                               if str(i["weekday"]) == str(d)]
                                           for d in range(7)}
        context.update(error=error_text(request, error), error_field=error.field,
                       notice=None)
        return await render(request, "projects/edit.html", context, status=error.status)

    return await form_post(request, run, failed)


async def project_launch(request: web.Request) -> web.Response:
    services = services_of(request)
    user = current_user(request)
    project_id = path_id(request)
    form = await request.post()
    back = str(form.get("back", ""))

    async def run() -> str:
        if "call_from_end" in form or back == "edit":
            await set_launched(services, user, project_id, launched="launched" in form,
                               call_from_end="call_from_end" in form)
        else:
            await set_launched(services, user, project_id, launched="launched" in form)
        if back == "edit":
            return f"/projects/{project_id}?ok=saved"
        return "/projects?ok=saved"

    return await form_post(request, run, lambda e: _list_failed(request, e))


async def project_copy(request: web.Request) -> web.Response:
    async def run() -> str:
        new_id = await copy_project(services_of(request), current_user(request), path_id(request))
        return f"/projects/{new_id}?ok=copied"

    return await form_post(request, run, lambda e: _list_failed(request, e))


async def project_delete(request: web.Request) -> web.Response:
    async def run() -> str:
        await delete_project(services_of(request), current_user(request), path_id(request))
        return "/projects?ok=deleted"

    return await form_post(request, run, lambda e: _list_failed(request, e))


async def project_remove_duplicates(request: web.Request) -> web.Response:
    """«Проверка на дубли номеров в проекте» from the project's page."""
    services = services_of(request)
    project_id = path_id(request)

    async def run() -> str:
        await project_for(services, current_user(request), project_id)
        report = await remove_duplicates(services.db, project_id,
                                         in_use=lambda: in_use_now(services))
        return (f"/projects/{project_id}?ok=deduped&removed={report.removed}"
                f"&numbers={report.numbers}&dialling={report.dialling}")

    return await form_post(request, run, lambda e: _list_failed(request, e))


async def api_remove_duplicates(request: web.Request) -> web.Response:
    """«Проверка на дубли номеров в проекте»: delete the contacts whose number another
    contact of the project has, keeping the one with the most history (calls, comments,
    tasks) or the oldest, which takes over the others' history; never a number one of whose
    contacts is in a call or on an operator's card.  Each number is merged whole in one
    transaction; answers how many were removed."""
    services = services_of(request)
    await project_for(services, current_user(request), path_id(request))
    return json_ok(asdict(await remove_duplicates(services.db, path_id(request),
                                                  in_use=lambda: in_use_now(services))))


def _dedupe_notice(request: web.Request) -> str | None:
    """The report of a duplicate check the page was sent back with."""
    if request.query.get("ok") != "deduped":
        return None

    def count(name: str) -> int:
        value = request.query.get(name, "")
        return int(value) if value.isdigit() and len(value) < 10 else 0

    language = language_of(request)
    text = Text("projects.deduped", removed=count("removed"), numbers=count("numbers"))
    if count("dialling"):
        text = joined([text, Text("projects.deduped_dialling", dialling=count("dialling"))])
    return text.render(language)


async def api_script_file(request: web.Request) -> web.Response:
    """Load an operator script from a .txt or .html file (multipart field ``file``): its HTML
    for the script editor, sanitised like every script; nothing is saved."""
    await project_for(services_of(request), current_user(request), path_id(request))
    if request.content_type != "multipart/form-data":
        raise BadRequest(Text("projects.error.script_file"), field="file")
    upload = (await request.post()).get("file")
    if not isinstance(upload, web.FileField) or not upload.filename:
        raise Invalid(Text("projects.error.script_file"), field="file")
    try:
        html = script_from_file(upload.filename, upload.file.read(MAX_FILE_BYTES + 1))
    except ScriptFileError as exc:
        raise Invalid(exc.message, field="file") from None
    return json_ok({"html": html})


def setup_routes(app: web.Application) -> None:
    route(app, "GET", "/projects", projects_page, roles=STAFF, name="projects",
          query=("name", "group_id", "from", "to"))
    route(app, "POST", "/projects", project_create, roles=STAFF)
    route(app, "GET", f"/projects/{_ID}", project_page, roles=STAFF, query=("tab",))
    route(app, "POST", f"/projects/{_ID}", project_save, roles=STAFF)
    route(app, "POST", f"/projects/{_ID}/launch", project_launch, roles=STAFF)
    route(app, "POST", f"/projects/{_ID}/copy", project_copy, roles=STAFF)
    route(app, "POST", f"/projects/{_ID}/delete", project_delete, roles=STAFF)
    route(app, "POST", f"/projects/{_ID}/remove-duplicates", project_remove_duplicates,
          roles=STAFF)
    route(app, "POST", f"/api/v1/projects/{_ID}/contacts/remove-duplicates",
          api_remove_duplicates, roles=STAFF, api=True, response_schema={
              "type": "object", "properties": {
                  "removed": {"type": "integer", "description": "contacts deleted"},
                  "numbers": {"type": "integer", "description": "numbers that had duplicates"},
                  "dialling": {"type": "integer",
                               "description": "numbers left: a contact of theirs is dialled"}}})
    route(app, "POST", f"/api/v1/projects/{_ID}/script/file", api_script_file, roles=STAFF,
          api=True, request_media="multipart/form-data",
          request_schema={"type": "object", "required": ["file"], "properties": {
              "file": {"type": "string", "format": "binary",
                       "description": "a .txt or .html file (UTF-8 or Windows-1251)"}}},
          response_schema={"type": "object", "properties": {"html": {"type": "string"}}})
    projects_api.setup_routes(app)


__all__ = ["FIXED_CARD_FIELDS", "TAB_ORDER", "form_settings", "setup_routes"]
