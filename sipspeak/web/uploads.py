"""Загрузка базы телефонных номеров (§5.5): upload, column mapping, import, counters, exports.

The page flow: ``POST /projects/{id}/upload`` stages the file and redirects to the mapping
screen (``?file=<token>``); ``POST /projects/{id}/upload/import`` starts the import and
redirects to its progress (``?upload=<id>``), which polls ``/api/v1/uploads/{id}/progress``
and shows the result with the rejected rows.  The API offers the same steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

from ..crm.contact_fields import IGNORE
from ..crm.contacts_import import ImportOptions, clean_tags, rejected_rows_csv
from ..i18n import Text
from ..i18n import render as in_language
from ..storage.models import Project, User
from .auth import STAFF, current_user, route
from .errors import ApiError, BadRequest, Invalid, json_ok
from .forms import json_object
from .layout import language_of, render
from .pages import error_text, form_post, notice, path_id, services_of
from .projects_service import project_for
from .uploads_service import (
    EXPORT_STATES,
    ImportJob,
    ImportJobs,
    StagedFile,
    StagingArea,
    check_mapping,
    contacts_csv,
    export_csv,
    export_xlsx,
    mapping_targets,
    result_json,
    temp_csv,
)

_ID = r"{id:\d+}"
IMPORT_JOBS: web.AppKey[ImportJobs] = web.AppKey("import_jobs", ImportJobs)
STAGING: web.AppKey[StagingArea] = web.AppKey("import_staging", StagingArea)
MAX_TAGS = 20


def _jobs(request: web.Request) -> ImportJobs:
    return request.app[IMPORT_JOBS]


def _staging(request: web.Request) -> StagingArea:
    return request.app[STAGING]


async def _project(request: web.Request) -> tuple[Project, User]:
    user = current_user(request)
    return await project_for(services_of(request), user, path_id(request)), user


async def _upload_scope(request: web.Request) -> tuple[int, ImportJob | None]:
    """The upload id of the path, its job if one ran here, after the project scope check."""
    upload_id = path_id(request)
    job = _jobs(request).get(upload_id)
    project_id = job.project_id if job else (
        await services_of(request).db.uploads.get(upload_id)).project_id
    await project_for(services_of(request), current_user(request), project_id)
    return upload_id, job


# -- services shared by pages and API ---------------------------------------------------


async def stage_upload(request: web.Request, project: Project, user: User) -> StagedFile:
    if request.content_type != "multipart/form-data":
        raise BadRequest(Text("uploads.error.multipart"), field="file")
    form = await request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        raise Invalid(Text("uploads.error.choose_file"), field="file")
    return await _staging(request).stage(project_id=project.id, user_id=user.id,
                                         filename=upload.filename, source=upload.file)


def _tags(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    tags: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise Invalid(Text("uploads.error.tags_strings"), field="tags")
        tags += item.split(",")
    cleaned = clean_tags(tags)
    if len(cleaned) > MAX_TAGS or any(len(t) > 100 for t in cleaned):
        raise Invalid(Text("uploads.error.tags_many", max=MAX_TAGS), field="tags")
    return cleaned


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raise Invalid(Text("uploads.error.flag", name=name), field=name)


async def start_import(request: web.Request, project: Project, user: User,
                       data: dict[str, Any]) -> ImportJob:
    """Start importing a staged file: ``file``, ``mapping`` (None = the guess), ``tags``,
    ``check_duplicates``, ``skip_blacklisted``."""
    token = data.get("file")
    if not isinstance(token, str):
        raise Invalid(Text("uploads.error.no_file"), field="file")
    staging = _staging(request)
    staged = staging.get(project.id, token)
    mapping_in = data.get("mapping")
    if mapping_in is None:
        mapping = check_mapping(staged.mapping, staged)
    elif isinstance(mapping_in, list) and all(isinstance(m, str) for m in mapping_in):
        mapping = check_mapping(mapping_in, staged)
    else:
        raise Invalid(Text("uploads.error.mapping_list"), field="mapping")
    options = ImportOptions(
        mapping=mapping, header_row=staged.header_row, tags=_tags(data.get("tags", [])),
        skip_project_duplicates=_flag(data.get("check_duplicates", True), "check_duplicates"),
        skip_blacklisted=_flag(data.get("skip_blacklisted", True), "skip_blacklisted"))
    # While it is imported, the file cannot be imported a second time; a failed import gives
    # it back (to try another mapping), a successful one removes it.
    staging.claim(staged)
    try:
        return await _jobs(request).start(
            project_id=project.id, user_id=user.id, path=staging.data_path(staged),
            filename=staged.filename, options=options,
            on_success=lambda: staging.discard(staged),
            on_failure=lambda: staging.release(staged))
    except BaseException:
        staging.release(staged)
        raise


async def import_json_contacts(request: web.Request, project: Project, user: User,
                               data: dict[str, Any]) -> ImportJob:
    root = services_of(request).config.data_dir / "imports"
    path = await asyncio.to_thread(temp_csv, root)
    try:
        mapping = await asyncio.to_thread(contacts_csv, data.get("contacts"), path)
        options = ImportOptions(
            mapping=mapping, header_row=1, tags=_tags(data.get("tags", [])),
            skip_project_duplicates=_flag(data.get("check_duplicates", True),
                                          "check_duplicates"),
            skip_blacklisted=_flag(data.get("skip_blacklisted", True), "skip_blacklisted"))
        return await _jobs(request).run_now(project_id=project.id, user_id=user.id, path=path,
                                            filename="API", options=options)
    finally:
        path.unlink(missing_ok=True)


async def uploads_overview(request: web.Request, project: Project) -> dict[str, Any]:
    db = services_of(request).db
    uploads = await db.uploads.list(project.id)
    items = []
    for upload in uploads:
        job = _jobs(request).get(upload.id)
        items.append({"id": upload.id, "filename": upload.filename,
                      "created_at": upload.created_at, "rows_total": upload.rows_total,
                      "rows_accepted": upload.rows_accepted,
                      "rows_rejected": upload.rows_rejected,
                      "state": job.state if job else "done",
                      "counters": await db.uploads.counters(project_id=project.id,
                                                            upload_id=upload.id)})
    return {"project_id": project.id,
            "counters": await db.uploads.counters(project_id=project.id), "uploads": items}


async def _export(request: web.Request, project: Project) -> web.StreamResponse:
    kind = request.query.get("kind", "not_called")
    fmt = request.query.get("format", "csv")
    if kind not in EXPORT_STATES:
        raise Invalid(Text("uploads.error.kind"), field="kind")
    if fmt not in ("csv", "xlsx"):
        raise Invalid(Text("uploads.error.format"), field="format")
    db = services_of(request).db
    name = f"project-{project.id}-{kind}.{fmt}"
    response = web.StreamResponse(headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})
    if fmt == "csv":
        response.content_type = "text/csv"
        response.charset = "utf-8"
        await response.prepare(request)
        async for chunk in export_csv(db, project.id, kind):
            await response.write(chunk)
        await response.write_eof()
        return response
    response.content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    handle, temp = tempfile.mkstemp(suffix=".xlsx")
    path = Path(temp)
    try:
        os.close(handle)
        await export_xlsx(db, project.id, kind, path)
        await response.prepare(request)
        source = await asyncio.to_thread(path.open, "rb")
        try:
            while chunk := await asyncio.to_thread(source.read, 1 << 16):
                await response.write(chunk)
        finally:
            source.close()
        await response.write_eof()
    finally:
        path.unlink(missing_ok=True)
    return response


# -- pages ------------------------------------------------------------------------------


async def _page_context(request: web.Request, project: Project) -> dict[str, Any]:
    db = services_of(request).db
    upload = request.query.get("upload", "")
    job = _jobs(request).get(int(upload)) if upload.isdigit() else None
    if job is not None:
        # The import runs on while this page awaits the database: render the moment before
        # the first read, so a job that ends meanwhile is not shown done beside older counts.
        job = copy.copy(job)
        if job.error is not None:
            job.error = in_language(job.error, language_of(request))
    context: dict[str, Any] = {"project": project, "notice": notice(request, "uploads.ok"),
                               **await uploads_overview(request, project),
                               "all_tags": await db.tags.list()}
    token = request.query.get("file", "")
    if token:
        try:
            staged = _staging(request).get(project.id, token)
        except ApiError as error:
            context["error"] = error_text(request, error)
        else:
            card = [f.name for f in await db.projects.card_fields(project.id)]
            base = mapping_targets(card)
            columns = []
            for index, header in enumerate(staged.headers):
                guess = staged.mapping[index] if index < len(staged.mapping) else IGNORE
                options = base if guess in base else [*base[:-1], guess, IGNORE]
                columns.append({"header": header, "guess": guess, "options": options})
            context.update(staged=staged, columns=columns)
    if upload.isdigit():
        if job is None:
            # An import of before a restart: its counts are in the upload row.
            stored = next((u for u in await db.uploads.list(project.id)
                           if u.id == int(upload)), None)
            if stored is not None:
                job = ImportJob(upload_id=stored.id, project_id=project.id,
                                filename=stored.filename, state="done",
                                rows_done=stored.rows_total, accepted=stored.rows_accepted,
                                rejected=stored.rows_rejected)
        if job is not None and job.project_id == project.id:
            counts = await db.uploads.counters(project_id=project.id, upload_id=job.upload_id)
            result = result_json(job, job.upload_id, counts, language_of(request))
            result.setdefault("accepted", job.accepted)
            result.setdefault("rejected_count", job.rejected)
            context.update(job=job, result=result)
    return context


async def upload_page(request: web.Request) -> web.Response:
    """Base upload of a project: file, mapping screen, progress, result, counters."""
    project, _ = await _project(request)
    return await render(request, "uploads/upload.html", await _page_context(request, project))


async def _failed(request: web.Request, project: Project, error: ApiError) -> web.Response:
    context = await _page_context(request, project)
    context.update(error=error_text(request, error), error_field=error.field,
                   notice=None)
    return await render(request, "uploads/upload.html", context, status=error.status)


async def upload_file(request: web.Request) -> web.Response:
    project, user = await _project(request)

    async def run() -> str:
        staged = await stage_upload(request, project, user)
        return f"/projects/{project.id}/upload?file={staged.token}"

    return await form_post(request, run, lambda e: _failed(request, project, e))


def _import_form(form: MultiDictProxy[Any]) -> dict[str, Any]:
    tags = [t for t in form.getall("tags", []) if isinstance(t, str)]
    tags.append(str(form.get("new_tags", "")))
    return {"file": str(form.get("file", "")),
            "mapping": [m for m in form.getall("mapping", []) if isinstance(m, str)],
            "tags": tags, "check_duplicates": "check_duplicates" in form,
            "skip_blacklisted": "skip_blacklisted" in form}


async def upload_import(request: web.Request) -> web.Response:
    project, user = await _project(request)
    form = await request.post()

    async def run() -> str:
        job = await start_import(request, project, user, _import_form(form))
        return f"/projects/{project.id}/upload?upload={job.upload_id}"

    return await form_post(request, run, lambda e: _failed(request, project, e))


async def remove_blacklisted_page(request: web.Request) -> web.Response:
    project, _ = await _project(request)

    async def run() -> str:
        removed = await services_of(request).db.contacts.delete_blacklisted(project.id)
        return f"/projects/{project.id}/upload?ok=removed&removed={removed}"

    return await form_post(request, run, lambda e: _failed(request, project, e))


# -- API --------------------------------------------------------------------------------




async def api_file(request: web.Request) -> web.Response:
    """Upload a base file (multipart field ``file``, .xlsx or .csv); answers its preview."""
    project, user = await _project(request)
    staged = await stage_upload(request, project, user)
    return json_ok(staged.preview_json(language_of(request)), status=201)


async def api_preview(request: web.Request) -> web.Response:
    """The preview of an uploaded file: headers, first rows, guessed mapping."""
    project, _ = await _project(request)
    token = (await json_object(request)).get("file")
    if not isinstance(token, str):
        raise Invalid(Text("uploads.error.no_file"), field="file")
    return json_ok(_staging(request).get(project.id, token).preview_json(language_of(request)))


async def api_import(request: web.Request) -> web.Response:
    """Import an uploaded file with a mapping; runs in the background (poll progress)."""
    project, user = await _project(request)
    job = await start_import(request, project, user, await json_object(request))
    return json_ok(job.progress_json(language_of(request)), status=202)


async def api_contacts(request: web.Request) -> web.Response:
    """Add contacts sent as a JSON list (same checks as a file); answers the result."""
    project, user = await _project(request)
    job = await import_json_contacts(request, project, user, await json_object(request))
    if job.state != "done":
        raise Invalid(job.error or Text("uploads.error.failed"), field="contacts")
    counts = await services_of(request).db.uploads.counters(project_id=project.id,
                                                            upload_id=job.upload_id)
    return json_ok(result_json(job, job.upload_id, counts, language_of(request)), status=201)


async def api_uploads(request: web.Request) -> web.Response:
    """The project's uploads with the counters (all, called, no answer, busy, error, new)."""
    project, _ = await _project(request)
    return json_ok(await uploads_overview(request, project))


async def api_progress(request: web.Request) -> web.Response:
    """Progress of an import: state running / done / failed, rows done, counts."""
    upload_id, job = await _upload_scope(request)
    if job is not None:
        return json_ok(job.progress_json(language_of(request)))
    upload = await services_of(request).db.uploads.get(upload_id)
    return json_ok({"upload_id": upload_id, "state": "done", "rows_done": upload.rows_total,
                    "total_estimate": upload.rows_total, "accepted": upload.rows_accepted,
                    "rejected": upload.rows_rejected, "percent": 100, "error": None})


async def api_result(request: web.Request) -> web.Response:
    """Result of an import: accepted count and rejected rows with reasons."""
    upload_id, job = await _upload_scope(request)
    db = services_of(request).db
    project_id = job.project_id if job else (await db.uploads.get(upload_id)).project_id
    counts = await db.uploads.counters(project_id=project_id, upload_id=upload_id)
    out = result_json(job, upload_id, counts, language_of(request))
    if job is None or job.result is None:
        with contextlib.suppress(Exception):
            upload = await db.uploads.get(upload_id)
            out.update(rows=upload.rows_total, accepted=upload.rows_accepted,
                       rejected_count=upload.rows_rejected)
    return json_ok(out)


async def api_rejected_csv(request: web.Request) -> web.Response:
    """Rejected rows of an import as CSV (Строка;Телефон;Причина)."""
    upload_id, job = await _upload_scope(request)
    rows = job.result.rejected if job and job.result else []
    body = rejected_rows_csv(rows).encode("utf-8-sig")
    return web.Response(body=body, content_type="text/csv", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="upload-{upload_id}-rejected.csv"'})


async def api_export(request: web.Request) -> web.StreamResponse:
    """Download not-answered or not-called contacts (kind), as CSV or XLSX (format)."""
    project, _ = await _project(request)
    return await _export(request, project)


async def api_remove_blacklisted(request: web.Request) -> web.Response:
    """Удалить номера (черный список): remove the project's blacklisted numbers."""
    project, _ = await _project(request)
    removed = await services_of(request).db.contacts.delete_blacklisted(project.id)
    return json_ok({"removed": removed})


async def _close_jobs(app: web.Application) -> None:
    await app[IMPORT_JOBS].close()


def setup_routes(app: web.Application) -> None:
    from .app import SERVICES

    services = app[SERVICES]
    app[IMPORT_JOBS] = ImportJobs(services)
    app[STAGING] = StagingArea(services.config.data_dir / "imports")
    app.on_cleanup.append(_close_jobs)
    base = f"/projects/{_ID}/upload"
    route(app, "GET", base, upload_page, roles=STAFF, query=("file", "upload"))
    route(app, "POST", base, upload_file, roles=STAFF)
    route(app, "POST", f"{base}/import", upload_import, roles=STAFF)
    route(app, "POST", f"{base}/remove-blacklisted", remove_blacklisted_page, roles=STAFF)
    api = f"/api/v1/projects/{_ID}"
    file_in = {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}}}
    import_in = {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "description": "the token the file upload answered"},
        "mapping": {"type": "array", "items": {"type": "string"},
                    "description": "one per column: phone, email, full_name, birth_date, "
                                   "position, city, address, description, custom:<name>, ignore"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "check_duplicates": {"type": "boolean", "default": True},
        "skip_blacklisted": {"type": "boolean", "default": True}}}
    contacts_in = {"type": "object", "required": ["contacts"], "properties": {
        "contacts": {"type": "array", "items": {"type": "object", "required": ["phone"],
                                                "properties": {"phone": {"type": "string"},
                                                               "custom": {"type": "object"}}}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "check_duplicates": {"type": "boolean"}, "skip_blacklisted": {"type": "boolean"}}}
    route(app, "POST", f"{api}/uploads/files", api_file, roles=STAFF, api=True,
          request_schema=file_in, request_media="multipart/form-data")
    route(app, "POST", f"{api}/uploads/preview", api_preview, roles=STAFF, api=True,
          request_schema={"type": "object", "required": ["file"],
                          "properties": {"file": {"type": "string"}}})
    route(app, "POST", f"{api}/uploads", api_import, roles=STAFF, api=True,
          request_schema=import_in)
    route(app, "GET", f"{api}/uploads", api_uploads, roles=STAFF, api=True)
    route(app, "POST", f"{api}/contacts", api_contacts, roles=STAFF, api=True,
          request_schema=contacts_in)
    route(app, "GET", f"{api}/contacts/export", api_export, roles=STAFF, api=True,
          query=("kind", "format"))
    route(app, "POST", f"{api}/contacts/remove-blacklisted", api_remove_blacklisted,
          roles=STAFF, api=True)
    route(app, "GET", f"/api/v1/uploads/{_ID}/progress", api_progress, roles=STAFF, api=True)
    route(app, "GET", f"/api/v1/uploads/{_ID}/result", api_result, roles=STAFF, api=True)
    route(app, "GET", f"/api/v1/uploads/{_ID}/rejected.csv", api_rejected_csv, roles=STAFF,
          api=True)
