"""Файловый менеджер (§10): a folder tree shared by every role; upload, rename, delete, download.

Files are written under opaque random names in the configured ``files_dir``; the name a user
sees lives only in the database and is checked by
:func:`sipspeak.storage.repositories.files.check_name` (no separators, no ``..``, no control
characters), so no user input ever becomes part of a path.  Each file has a size limit and
all files together a quota.  Downloads name the file with RFC 6266 / RFC 5987 ``filename*``.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from ..i18n import Message, Text, message_of
from ..storage import NotFound
from ..storage.models import Folder, StoredFile
from ..storage.repositories.files import check_name
from .auth import ALL_ROLES, current_user, redirect, route
from .errors import ApiError, BadRequest, Invalid, json_ok
from .forms import Fields
from .layout import language_of, render
from .pages import error_text, form_post, notice, path_id, services_of, tr

if TYPE_CHECKING:
    from ..app import Services

_ID = r"{id:\d+}"
_STORED = re.compile(r"^[0-9a-f]{32}$")
MiB = 1024 * 1024
UPLOAD_SCHEMA: dict[str, Any] = {"type": "object", "required": ["file"], "properties": {
    "file": {"type": "string", "format": "binary"}, "folder_id": {"type": "integer"}}}


@dataclass(frozen=True, slots=True)
class FileLimits:
    max_file_bytes: int = 50 * MiB
    quota_bytes: int = 5 * 1024 * MiB


class TooLarge(ApiError):
    def __init__(self, message: Message, *, code: str = "too_large") -> None:
        super().__init__(413, code, message, field="file")


def limits_of(services: Services) -> FileLimits:
    limits = getattr(services, "file_limits", None)
    return limits if isinstance(limits, FileLimits) else FileLimits()


def _name(value: str) -> str:
    try:
        return check_name(value)
    except ValueError as exc:
        raise Invalid(message_of(exc), field="name") from None


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback and the exact UTF-8 name (RFC 5987 ``filename*``)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


class FileManager:
    def __init__(self, services: Services, user_id: int) -> None:
        self.db = services.db
        self.root = services.config.files_dir
        self.limits = limits_of(services)
        self.user_id = user_id

    def _path(self, stored_name: str) -> Path:
        if not _STORED.match(stored_name):
            raise NotFound(Text("files.error.not_found"))
        return self.root / stored_name

    async def folder(self, folder_id: int | None) -> Folder | None:
        return None if folder_id is None else await self.db.files.folder(folder_id)

    async def tree(self) -> list[dict[str, Any]]:
        """Nested folders: ``[{"id", "name", "children": [...]}, ...]``."""
        folders = await self.db.files.folders()
        children: dict[int | None, list[Folder]] = {}
        for f in folders:
            children.setdefault(f.parent_id, []).append(f)

        def build(parent: int | None, depth: int) -> list[dict[str, Any]]:
            if depth > 64:
                return []
            return [{"id": f.id, "name": f.name, "children": build(f.id, depth + 1)}
                    for f in sorted(children.get(parent, []), key=lambda f: f.name.lower())]

        return build(None, 0)

    async def listing(self, folder_id: int | None) -> tuple[list[Folder], list[StoredFile]]:
        await self.folder(folder_id)
        folders = [f for f in await self.db.files.folders() if f.parent_id == folder_id]
        return folders, await self.db.files.files_in(folder_id)

    async def create_folder(self, name: str, parent_id: int | None) -> int:
        if parent_id is not None:
            await self.db.files.folder(parent_id)
        return await self.db.files.create_folder(_name(name), parent_id=parent_id,
                                                 created_by=self.user_id)

    async def rename_folder(self, folder_id: int, name: str) -> None:
        await self.db.files.rename_folder(folder_id, _name(name))

    async def delete_folder(self, folder_id: int) -> None:
        for stored in await self.db.files.delete_folder(folder_id):
            self._path(stored).unlink(missing_ok=True)

    async def rename_file(self, file_id: int, name: str) -> None:
        await self.db.files.rename_file(file_id, _name(name))

    async def delete_file(self, file_id: int) -> None:
        stored = await self.db.files.delete_file(file_id)
        self._path(stored).unlink(missing_ok=True)

    async def upload(self, folder_id: int | None, filename: str, source: Any) -> int:
        name = _name(filename)
        if folder_id is not None:
            await self.db.files.folder(folder_id)
        size = await asyncio.to_thread(_size_of, source)
        if size > self.limits.max_file_bytes:
            raise TooLarge(Text("files.error.too_large", size=_human(self.limits.max_file_bytes)))
        if await self.db.files.total_size() + size > self.limits.quota_bytes:
            raise TooLarge(Text("files.error.quota", size=_human(self.limits.quota_bytes)),
                           code="quota")
        stored = secrets.token_hex(16)
        path = self._path(stored)
        await asyncio.to_thread(_write, source, path)
        try:
            return await self.db.files.add_file(name=name, stored_name=stored, size=size,
                                                folder_id=folder_id, created_by=self.user_id)
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    async def open(self, file_id: int) -> tuple[StoredFile, Path]:
        record = await self.db.files.file(file_id)
        path = self._path(record.stored_name)
        if not path.is_file():
            raise NotFound(Text("files.error.missing", id=file_id))
        return record, path

    async def usage(self) -> int:
        return await self.db.files.total_size()


def _size_of(source: Any) -> int:
    source.seek(0, os.SEEK_END)
    size = int(source.tell())
    source.seek(0)
    return size


def _write(source: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    source.seek(0)
    # O_EXCL: never overwrite; 0o600: files are read through the web only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(1 << 20):
            out.write(chunk)


def _human(size: int) -> Text:
    """A size in bytes, KB, MB or GB, said in the reader's language."""
    if size < 1024:
        return Text("files.unit.b", n=f"{size:.0f}")
    value = size / 1024
    if value < 1024:
        return Text("files.unit.kb", n=f"{value:.1f}")
    value /= 1024
    if value < 1024:
        return Text("files.unit.mb", n=f"{value:.1f}")
    return Text("files.unit.gb", n=f"{value / 1024:.1f}")


def manager(request: web.Request) -> FileManager:
    return FileManager(services_of(request), current_user(request).id)


def folder_json(folder: Folder) -> dict[str, Any]:
    return {"id": folder.id, "parent_id": folder.parent_id, "name": folder.name,
            "created_at": folder.created_at}


def file_json(item: StoredFile) -> dict[str, Any]:
    return {"id": item.id, "folder_id": item.folder_id, "name": item.name, "size": item.size,
            "created_at": item.created_at}


async def _upload_field(request: web.Request) -> tuple[Any, int | None]:
    if request.content_type != "multipart/form-data":
        raise BadRequest(Text("uploads.error.multipart"), field="file")
    form = await request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        raise Invalid(Text("files.error.choose_file"), field="file")
    folder = Fields({"folder_id": list(form.getall("folder_id", []))},
                    from_json=False).optional_int("folder_id", low=1)
    return upload, folder


# -- pages ------------------------------------------------------------------------------


def _folder_param(request: web.Request) -> int | None:
    raw = request.query.get("folder", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


async def _context(request: web.Request, folder_id: int | None, **extra: Any) -> dict[str, Any]:
    files = manager(request)
    folders, items = await files.listing(folder_id)
    lang = language_of(request)
    usage = tr(request, "files.usage").format(
        used=_human(await files.usage()).render(lang),
        quota=_human(files.limits.quota_bytes).render(lang))
    return {"tree": await files.tree(), "folder": await files.folder(folder_id),
            "folders": folders, "items": items, "usage": usage,
            "human": lambda size: _human(size).render(lang),
            "notice": notice(request, "files"), **extra}


async def files_page(request: web.Request) -> web.Response:
    """File manager: folders and files."""
    return await render(request, "files.html", await _context(request, _folder_param(request)))


def _back(folder_id: int | None) -> str:
    return f"/files?folder={folder_id}" if folder_id else "/files"


async def _page_post(request: web.Request, folder_id: int | None, run: Any) -> web.Response:
    async def failed(error: ApiError) -> web.Response:
        context = await _context(request, folder_id,
                                 error=error_text(request, error))
        return await render(request, "files.html", context, status=error.status)

    return await form_post(request, run, failed)


async def folder_create(request: web.Request) -> web.Response:
    fields = await Fields.read(request)
    parent = fields.optional_int("parent_id", low=1)

    async def run() -> str:
        folder_id = await manager(request).create_folder(fields.text("name", max_len=300), parent)
        return _back(folder_id)

    return await _page_post(request, parent, run)


async def folder_rename(request: web.Request) -> web.Response:
    fields = await Fields.read(request)
    folder_id = path_id(request)

    async def run() -> str:
        await manager(request).rename_folder(folder_id, fields.text("name", max_len=300))
        return _back(folder_id)

    return await _page_post(request, folder_id, run)


async def folder_delete(request: web.Request) -> web.Response:
    files = manager(request)
    folder = await files.db.files.folder(path_id(request))

    async def run() -> str:
        await files.delete_folder(folder.id)
        return _back(folder.parent_id)

    return await _page_post(request, folder.parent_id, run)


async def file_upload(request: web.Request) -> web.Response:
    folder_id = _folder_param(request)
    try:
        upload, folder_id = await _upload_field(request)
        await manager(request).upload(folder_id, upload.filename, upload.file)
    except ApiError as error:
        context = await _context(request, folder_id,
                                 error=error_text(request, error))
        return await render(request, "files.html", context, status=error.status)
    return redirect(_back(folder_id) + ("&" if folder_id else "?") + "ok=uploaded")


async def file_rename(request: web.Request) -> web.Response:
    fields = await Fields.read(request)
    files = manager(request)
    item = await files.db.files.file(path_id(request))

    async def run() -> str:
        await files.rename_file(item.id, fields.text("name", max_len=300))
        return _back(item.folder_id)

    return await _page_post(request, item.folder_id, run)


async def file_delete(request: web.Request) -> web.Response:
    files = manager(request)
    item = await files.db.files.file(path_id(request))

    async def run() -> str:
        await files.delete_file(item.id)
        return _back(item.folder_id)

    return await _page_post(request, item.folder_id, run)


async def file_download(request: web.Request) -> web.StreamResponse:
    """Download a file."""
    record, path = await manager(request).open(path_id(request))
    return web.FileResponse(path, headers={
        "Content-Disposition": content_disposition(record.name),
        "Content-Type": "application/octet-stream",
        "X-Content-Type-Options": "nosniff"})


# -- API --------------------------------------------------------------------------------


async def api_tree(request: web.Request) -> web.Response:
    """The folder tree."""
    return json_ok({"folders": await manager(request).tree()})


async def api_listing(request: web.Request) -> web.Response:
    """Folders and files of one folder (query: folder_id; none = the top)."""
    folder_id = Fields.of(dict(request.query)).optional_int("folder_id", low=1)
    folders, items = await manager(request).listing(folder_id)
    return json_ok({"folders": [folder_json(f) for f in folders],
                    "files": [file_json(i) for i in items]})


async def api_folder_create(request: web.Request) -> web.Response:
    """Create a folder (parent_id: none = the top)."""
    fields = await Fields.read(request)
    files = manager(request)
    folder_id = await files.create_folder(fields.text("name", max_len=300),
                                          fields.optional_int("parent_id", low=1))
    return json_ok(folder_json(await files.db.files.folder(folder_id)), status=201)


async def api_folder_rename(request: web.Request) -> web.Response:
    """Rename a folder."""
    fields = await Fields.read(request)
    files = manager(request)
    await files.rename_folder(path_id(request), fields.text("name", max_len=300))
    return json_ok(folder_json(await files.db.files.folder(path_id(request))))


async def api_folder_delete(request: web.Request) -> web.Response:
    """Delete a folder with everything in it."""
    await manager(request).delete_folder(path_id(request))
    return json_ok({"id": path_id(request), "deleted": True})


async def api_upload(request: web.Request) -> web.Response:
    """Upload a file: multipart fields ``file`` and optional ``folder_id``."""
    upload, folder_id = await _upload_field(request)
    files = manager(request)
    file_id = await files.upload(folder_id, upload.filename, upload.file)
    return json_ok(file_json(await files.db.files.file(file_id)), status=201)


async def api_file_rename(request: web.Request) -> web.Response:
    """Rename a file."""
    fields = await Fields.read(request)
    files = manager(request)
    await files.rename_file(path_id(request), fields.text("name", max_len=300))
    return json_ok(file_json(await files.db.files.file(path_id(request))))


async def api_file_delete(request: web.Request) -> web.Response:
    """Delete a file."""
    await manager(request).delete_file(path_id(request))
    return json_ok({"id": path_id(request), "deleted": True})


def setup_routes(app: web.Application) -> None:
    r = ALL_ROLES
    route(app, "GET", "/files", files_page, roles=r, name="files")
    route(app, "POST", "/files/folders", folder_create, roles=r)
    route(app, "POST", f"/files/folders/{_ID}/rename", folder_rename, roles=r)
    route(app, "POST", f"/files/folders/{_ID}/delete", folder_delete, roles=r)
    route(app, "POST", "/files/upload", file_upload, roles=r)
    route(app, "POST", f"/files/{_ID}/rename", file_rename, roles=r)
    route(app, "POST", f"/files/{_ID}/delete", file_delete, roles=r)
    route(app, "GET", f"/files/{_ID}/download", file_download, roles=r)
    name_in = {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "maxLength": 255}, "parent_id": {"type": ["integer", "null"]}}}
    route(app, "GET", "/api/v1/files/tree", api_tree, roles=r, api=True)
    route(app, "GET", "/api/v1/files", api_listing, roles=r, api=True, query=("folder_id",))
    route(app, "POST", "/api/v1/files", api_upload, roles=r, api=True,
          request_media="multipart/form-data", request_schema=UPLOAD_SCHEMA)
    route(app, "PATCH", f"/api/v1/files/{_ID}", api_file_rename, roles=r, api=True,
          request_schema=name_in)
    route(app, "DELETE", f"/api/v1/files/{_ID}", api_file_delete, roles=r, api=True)
    route(app, "GET", f"/api/v1/files/{_ID}/download", file_download, roles=r, api=True)
    route(app, "POST", "/api/v1/files/folders", api_folder_create, roles=r, api=True,
          request_schema=name_in)
    route(app, "PATCH", f"/api/v1/files/folders/{_ID}", api_folder_rename, roles=r, api=True,
          request_schema=name_in)
    route(app, "DELETE", f"/api/v1/files/folders/{_ID}", api_folder_delete, roles=r, api=True)
