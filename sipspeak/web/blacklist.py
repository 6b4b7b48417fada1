"""Черный список (§9): add a number, upload a list, search, remove, download as CSV.

Numbers are stored in E.164 as the CRM's normaliser (:mod:`sipspeak.crm.phones`) writes
them, so ``8 (922) 871-13-45`` and ``+7 922 871 13 45`` are one entry.  A list is a CSV,
XLSX or TXT file; the first non-empty cell of each row is the number, a header row without
digits is skipped, every rejected row is counted and the first ones are reported.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from ..crm.contact_reader import ImportFileError, open_reader
from ..crm.phones import InvalidPhoneError, normalize_phone
from ..i18n import Text, message_of
from ..storage import Conflict, NotFound
from ..storage.models import BlacklistEntry
from .auth import STAFF, current_user, route
from .errors import ApiError, BadRequest, Invalid, json_ok
from .forms import Fields
from .layout import language_of, render
from .pages import error_text, form_post, notice, services_of, tr

PAGE_SIZE = 50
MAX_ROWS = 1_000_000
MAX_REPORTED = 20
ENTRY_OUT: dict[str, Any] = {"type": "object", "properties": {
    "phone": {"type": "string"}, "comment": {"type": "string"}, "created_at": {"type": "integer"}}}


@dataclass(slots=True)
class ImportResult:
    added: int = 0
    known: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def errors_in(self, language: str) -> list[dict[str, Any]]:
        """The reported rows, their reasons said in ``language``."""
        return [{**e, "reason": e["reason"].render(language)} for e in self.errors]

    def as_json(self, language: str) -> dict[str, Any]:
        return {"added": self.added, "known": self.known, "rejected": self.rejected,
                "errors": self.errors_in(language)}


def normalise(value: object, *, field_name: str = "phone") -> str:
    try:
        return normalize_phone(value)
    except InvalidPhoneError as exc:
        raise Invalid(Text("blacklist.error.phone", value=str(value), reason=exc.reason),
                      field=field_name) from None


def read_numbers(path: Path) -> tuple[list[str], ImportResult]:
    """Phones of a CSV / XLSX / TXT file (blocking: run it in a thread)."""
    result = ImportResult()
    phones: list[str] = []
    try:
        reader = open_reader(path)
    except ImportFileError as exc:
        raise Invalid(message_of(exc), field="file") from None
    try:
        for number, cells in reader.rows():
            value = next((c for c in cells if c is not None and str(c).strip() != ""), None)
            if value is None:
                continue
            if number == 1 and not any(ch.isdigit() for ch in str(value)):
                continue  # a header row
            try:
                phones.append(normalize_phone(value))
            except InvalidPhoneError as exc:
                result.rejected += 1
                if len(result.errors) < MAX_REPORTED:
                    result.errors.append({"row": number, "value": str(value)[:100],
                                          "reason": exc.reason})
            if len(phones) + result.rejected > MAX_ROWS:
                raise Invalid(Text("blacklist.error.too_many", max=MAX_ROWS), field="file")
    except ImportFileError as exc:
        raise Invalid(message_of(exc), field="file") from None
    finally:
        reader.close()
    return phones, result


class Blacklist:
    def __init__(self, request: web.Request) -> None:
        self.db = services_of(request).db
        self.actor = current_user(request)

    async def add(self, phone: str, comment: str = "") -> str:
        normalised = normalise(phone)
        if len(comment) > 500:
            raise Invalid(Text("blacklist.error.comment_long"), field="comment")
        if not await self.db.blacklist.add([normalised], comment=comment,
                                           created_by=self.actor.id):
            raise Conflict(Text("blacklist.error.already"), field="phone")
        return normalised

    async def import_file(self, filename: str, source: Any) -> ImportResult:
        suffix = Path(filename).suffix.lower()
        if suffix not in (".csv", ".xlsx", ".txt"):
            raise Invalid(Text("blacklist.error.file_type"), field="file")
        handle, name = tempfile.mkstemp(suffix=suffix)
        path = Path(name)
        try:
            with os.fdopen(handle, "wb") as out:
                await asyncio.to_thread(_copy, source, out)
            phones, result = await asyncio.to_thread(read_numbers, path)
        finally:
            path.unlink(missing_ok=True)
        unique = list(dict.fromkeys(phones))
        result.added = await self.db.blacklist.add(unique, created_by=self.actor.id)
        result.known = len(unique) - result.added
        return result

    async def remove(self, phone: str) -> str:
        normalised = normalise(phone)
        if not await self.db.blacklist.remove([normalised]):
            raise NotFound(Text("blacklist.error.not_listed", phone=normalised))
        return normalised

    async def search(self, query: str, *, limit: int, offset: int) -> list[BlacklistEntry]:
        digits = "".join(c for c in query if c.isdigit())[:20]
        return await self.db.blacklist.list(search=digits, limit=limit, offset=offset)

    async def export_rows(self, *, chunk: int = 5000) -> AsyncIterator[bytes]:
        """The whole list as CSV (``;``, UTF-8 with BOM for Excel), a chunk of rows at a time."""
        yield "\ufeffphone;comment;created_at\r\n".encode()
        offset = 0
        while True:
            entries = await self.db.blacklist.list(limit=chunk, offset=offset)
            if not entries:
                return
            out = io.StringIO()
            writer = csv.writer(out, delimiter=";")
            for e in entries:
                stamp = datetime.fromtimestamp(e.created_at / 1000, tz=UTC)
                writer.writerow([e.phone, _cell(e.comment), stamp.strftime("%Y-%m-%d %H:%M:%S")])
            yield out.getvalue().encode()
            offset += len(entries)


def _cell(text: str) -> str:
    # A cell starting with = + - @ would run as a formula in Excel (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _copy(source: Any, out: Any) -> None:
    source.seek(0)
    while chunk := source.read(1 << 20):
        out.write(chunk)


def entry_json(entry: BlacklistEntry) -> dict[str, Any]:
    return {"phone": entry.phone, "comment": entry.comment, "created_at": entry.created_at}


async def _upload_field(request: web.Request) -> Any:
    if request.content_type != "multipart/form-data":
        raise BadRequest(Text("uploads.error.multipart"), field="file")
    form: MultiDictProxy[Any] = await request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        raise Invalid(Text("files.error.choose_file"), field="file")
    return upload


# -- pages ------------------------------------------------------------------------------


async def _context(request: web.Request, **extra: Any) -> dict[str, Any]:
    query = request.query.get("q", "")[:40]
    raw = request.query.get("page", "1")
    page = int(raw) if raw.isdigit() and 0 < int(raw) <= 100_000 else 1
    entries = await Blacklist(request).search(query, limit=PAGE_SIZE + 1,
                                              offset=(page - 1) * PAGE_SIZE)
    return {"entries": entries[:PAGE_SIZE], "q": query, "page": page,
            "has_next": len(entries) > PAGE_SIZE, "notice": notice(request, "blacklist"),
            **extra}


async def blacklist_page(request: web.Request) -> web.Response:
    """Blacklist: add, upload, search, remove, download."""
    return await render(request, "blacklist.html", await _context(request))


async def _failed(request: web.Request, error: ApiError) -> web.Response:
    context = await _context(request, error=error_text(request, error))
    return await render(request, "blacklist.html", context, status=error.status)


async def blacklist_add(request: web.Request) -> web.Response:
    fields = await Fields.read(request)

    async def run() -> str:
        await Blacklist(request).add(fields.text("phone", max_len=100),
                                     fields.text("comment", max_len=1000))
        return "/blacklist?ok=added"

    return await form_post(request, run, lambda e: _failed(request, e))


async def blacklist_upload(request: web.Request) -> web.Response:
    try:
        upload = await _upload_field(request)
        result = await Blacklist(request).import_file(upload.filename, upload.file)
    except ApiError as error:
        return await _failed(request, error)
    message = tr(request, "blacklist.upload_result").format(
        added=result.added, known=result.known, rejected=result.rejected)
    context = await _context(request, notice=message,
                             import_errors=result.errors_in(language_of(request)))
    return await render(request, "blacklist.html", context)


async def blacklist_delete(request: web.Request) -> web.Response:
    fields = await Fields.read(request)

    async def run() -> str:
        await Blacklist(request).remove(fields.text("phone", max_len=100))
        return "/blacklist?ok=removed"

    return await form_post(request, run, lambda e: _failed(request, e))


async def blacklist_download(request: web.Request) -> web.StreamResponse:
    """Download the blacklist as CSV."""
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": 'attachment; filename="blacklist.csv"'})
    await response.prepare(request)
    async for chunk in Blacklist(request).export_rows():
        await response.write(chunk)
    await response.write_eof()
    return response


# -- API --------------------------------------------------------------------------------


async def api_list(request: web.Request) -> web.Response:
    """Search the blacklist (query: q = digits, limit, offset)."""
    fields = Fields.of(dict(request.query))
    entries = await Blacklist(request).search(
        fields.text("q", max_len=40), limit=fields.integer("limit", 100, low=1, high=1000),
        offset=fields.integer("offset", 0, high=10**9))
    return json_ok({"items": [entry_json(e) for e in entries]})


async def api_add(request: web.Request) -> web.Response:
    """Add one number (409 when it is already listed)."""
    fields = await Fields.read(request)
    phone = await Blacklist(request).add(fields.text("phone", max_len=100),
                                         fields.text("comment", max_len=1000))
    return json_ok({"phone": phone}, status=201)


async def api_import(request: web.Request) -> web.Response:
    """Upload a list of numbers: multipart field ``file`` (CSV, XLSX or TXT)."""
    upload = await _upload_field(request)
    result = await Blacklist(request).import_file(upload.filename, upload.file)
    return json_ok(result.as_json(language_of(request)))


async def api_delete(request: web.Request) -> web.Response:
    """Remove one number."""
    phone = await Blacklist(request).remove(request.match_info["phone"])
    return json_ok({"phone": phone, "deleted": True})


def setup_routes(app: web.Application) -> None:
    route(app, "GET", "/blacklist", blacklist_page, roles=STAFF, name="blacklist")
    route(app, "POST", "/blacklist", blacklist_add, roles=STAFF)
    route(app, "POST", "/blacklist/upload", blacklist_upload, roles=STAFF)
    route(app, "POST", "/blacklist/delete", blacklist_delete, roles=STAFF)
    route(app, "GET", "/blacklist.csv", blacklist_download, roles=STAFF)
    route(app, "GET", "/api/v1/blacklist", api_list, roles=STAFF, api=True,
          query=("q", "limit", "offset"),
          response_schema={"type": "object", "properties": {
              "items": {"type": "array", "items": ENTRY_OUT}}})
    route(app, "POST", "/api/v1/blacklist", api_add, roles=STAFF, api=True,
          request_schema={"type": "object", "required": ["phone"], "properties": {
              "phone": {"type": "string"}, "comment": {"type": "string"}}})
    route(app, "POST", "/api/v1/blacklist/import", api_import, roles=STAFF, api=True,
          request_media="multipart/form-data",
          request_schema={"type": "object", "required": ["file"], "properties": {
              "file": {"type": "string", "format": "binary"}}},
          response_schema={"type": "object", "properties": {
              "added": {"type": "integer"}, "known": {"type": "integer"},
              "rejected": {"type": "integer"}, "errors": {"type": "array"}}})
    route(app, "GET", "/api/v1/blacklist/export.csv", blacklist_download, roles=STAFF,
          api=True, summary="Download the blacklist as CSV")
    route(app, "DELETE", "/api/v1/blacklist/{phone}", api_delete, roles=STAFF, api=True)
