"""Base upload (§5.5): staged files, import jobs owned by the app, exports of contacts.

1. :class:`StagingArea` keeps an uploaded file (copied from aiohttp's spooled temporary file
   in a thread, chunk by chunk, under a size limit) with its preview, under a random token.
2. :class:`ImportJobs` runs one import per upload as a task it owns (cancelled on shutdown):
   the upload row is created first so its id names the job, the contacts are written by
   :func:`~sipspeak.crm.contacts_import.import_contacts` in one transaction, and a failed
   import leaves neither contacts nor the upload behind.
3. :func:`export_csv` / :func:`export_xlsx` stream the not-answered / not-called contacts.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import os
import secrets
import tempfile
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from openpyxl import Workbook

from ..crm.contact_fields import (
    CUSTOM_PREFIX,
    IGNORE,
    STANDARD_FIELDS,
    validate_mapping,
)
from ..crm.contact_reader import ImportFileError
from ..crm.contact_rows import ContactRecord
from ..crm.contacts_import import (
    ImportOptions,
    ImportProgress,
    ImportResult,
    import_contacts,
    preview_file,
)
from ..crm.spreadsheet import formula_safe
from ..i18n import Message, Text, joined, message_of, render
from ..storage import Database
from ..storage.models import Contact
from .errors import ApiError, Invalid

if TYPE_CHECKING:
    from ..app import Services

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
SUFFIXES = (".xlsx", ".csv")
STAGED_TTL_S = 24 * 3600
KEPT_JOBS = 100
RESULT_ROWS_SHOWN = 1000
MAX_API_CONTACTS = 10_000
_TOKEN_CHARS = frozenset("0123456789abcdef")
#: "Неотвеченные": called, no conversation yet; "Непрозвоненные": never called.
EXPORT_STATES: dict[str, tuple[str, ...]] = {
    "not_answered": ("no_answer", "busy", "machine", "lost"),
    "not_called": ("new",),
}
EXPORT_HEADER = ("Телефон", "ФИО", "E-mail", "Город", "Регион", "Часовой пояс", "Оператор связи",
                 "Состояние", "Попыток")


class UploadTooLarge(ApiError):
    def __init__(self) -> None:
        super().__init__(413, "too_large",
                         Text("uploads.error.too_large", mb=MAX_UPLOAD_BYTES // (1024 * 1024)),
                         field="file")


# -- staged files -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StagedFile:
    token: str
    project_id: int
    user_id: int
    filename: str
    suffix: str
    size: int
    created: float
    header_row: int | None
    headers: list[str]
    mapping: list[str]
    rows: list[list[str]]
    total_rows_estimate: int | None

    def preview_json(self, language: str) -> dict[str, Any]:
        return {"file": self.token, "filename": self.filename, "size": self.size,
                "header_row": self.header_row, "headers": self.headers,
                "mapping": self.mapping, "rows": self.rows,
                "total_rows_estimate": self.total_rows_estimate,
                "problems": [p.render(language) for p in validate_mapping(self.mapping)]}


def _copy_limited(source: IO[bytes], target: Path, limit: int) -> int:
    size = 0
    source.seek(0)
    with target.open("wb") as out:
        while chunk := source.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise UploadTooLarge()
            out.write(chunk)
    return size


class StagingArea:
    """Uploaded files waiting for their column mapping, under ``data_dir/imports``."""

    def __init__(self, root: Path, *, max_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def _meta(self, token: str) -> Path:
        return self.root / f"{token}.json"

    async def stage(self, *, project_id: int, user_id: int, filename: str,
                    source: IO[bytes]) -> StagedFile:
        name = Path(filename or "").name[:200]
        suffix = Path(name).suffix.lower()
        if suffix not in SUFFIXES:
            raise Invalid(Text("uploads.error.type"), field="file")
        await asyncio.to_thread(self._prepare)
        token = secrets.token_hex(16)
        data, meta = self.root / f"{token}{suffix}", self._meta(token)
        try:
            size = await asyncio.to_thread(_copy_limited, source, data, self.max_bytes)
            if size == 0:
                raise Invalid(Text("uploads.error.empty"), field="file")
            preview = await asyncio.to_thread(preview_file, data)
        except ImportFileError as exc:
            data.unlink(missing_ok=True)
            raise Invalid(message_of(exc), field="file") from None
        except BaseException:
            data.unlink(missing_ok=True)
            raise
        staged = StagedFile(token=token, project_id=project_id, user_id=user_id, filename=name,
                            suffix=suffix, size=size, created=time.time(),
                            header_row=preview.header_row, headers=preview.headers,
                            mapping=preview.mapping, rows=preview.rows,
                            total_rows_estimate=preview.total_rows_estimate)
        await asyncio.to_thread(meta.write_text, json.dumps(asdict(staged), ensure_ascii=False),
                                encoding="utf-8")
        return staged

    def _prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - STAGED_TTL_S
        for path in self.root.iterdir():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()

    def get(self, project_id: int, token: str) -> StagedFile:
        """The staged file of this project, or 422 on the field ``file``."""
        if len(token) != 32 or not set(token) <= _TOKEN_CHARS:
            raise Invalid(Text("uploads.error.staged_missing"), field="file")
        try:
            staged = StagedFile(**json.loads(self._meta(token).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            raise Invalid(Text("uploads.error.staged_missing"), field="file") from None
        if staged.project_id != project_id or not self.data_path(staged).exists():
            raise Invalid(Text("uploads.error.staged_missing"), field="file")
        return staged

    def data_path(self, staged: StagedFile) -> Path:
        return self.root / f"{staged.token}{staged.suffix}"

    def claim(self, staged: StagedFile) -> None:
        """Take the file for an import: until released, :meth:`get` does not find it."""
        try:
            self._meta(staged.token).rename(self._claimed(staged.token))
        except FileNotFoundError:
            raise Invalid(Text("uploads.error.staged_missing"), field="file") from None

    def release(self, staged: StagedFile) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._claimed(staged.token).rename(self._meta(staged.token))

    def _claimed(self, token: str) -> Path:
        return self.root / f"{token}.json.importing"

    def discard(self, staged: StagedFile) -> None:
        self.data_path(staged).unlink(missing_ok=True)
        self._meta(staged.token).unlink(missing_ok=True)
        self._claimed(staged.token).unlink(missing_ok=True)


# -- import jobs ------------------------------------------------------------------------


@dataclass(slots=True)
class ImportJob:
    upload_id: int
    project_id: int
    filename: str
    state: str = "running"  # running → done | failed
    rows_done: int = 0
    total_estimate: int | None = None
    accepted: int = 0
    rejected: int = 0
    error: Message | None = None
    result: ImportResult | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def progress_json(self, language: str) -> dict[str, Any]:
        percent = None
        if self.state == "done":
            percent = 100
        elif self.total_estimate:
            percent = min(99, int(self.rows_done * 100 / self.total_estimate))
        return {"upload_id": self.upload_id, "state": self.state, "rows_done": self.rows_done,
                "total_estimate": self.total_estimate, "accepted": self.accepted,
                "rejected": self.rejected, "percent": percent,
                "error": None if self.error is None else render(self.error, language)}


class _Session:
    """Writes of one import into a prepared upload (``finish`` completes the upload)."""

    def __init__(self, db: Database, project_id: int, upload_id: int) -> None:
        self._db = db
        self._project_id = project_id
        self._upload_id = upload_id

    async def create_upload(self, *, filename: str, tags: Sequence[str]) -> int:
        return self._upload_id

    async def insert_contacts(self, *, upload_id: int, contacts: Sequence[ContactRecord],
                              tags: Sequence[str]) -> int:
        return await self._db.contacts.insert_many(project_id=self._project_id,
                                                   upload_id=upload_id, contacts=contacts,
                                                   tags=tags)

    async def finish(self, result: ImportResult) -> None:
        await self._db.uploads.set_counts(result.upload_id, total=result.rows,
                                          accepted=result.accepted,
                                          rejected=result.rejected_count)


class PreparedUploadTarget:
    """The import target of a project whose upload row already exists."""

    def __init__(self, db: Database, project_id: int, upload_id: int) -> None:
        self._db = db
        self._project_id = project_id
        self._upload_id = upload_id

    async def existing_phones(self) -> set[str]:
        return await self._db.contacts.existing_phones(self._project_id)

    async def blacklisted_phones(self) -> set[str]:
        return await self._db.blacklist.phones()

    def session(self) -> AbstractAsyncContextManager[_Session]:
        return self._session()

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[_Session]:
        # Batches commit one by one (other writers never wait for a whole import) while the
        # upload is 'importing': the dialer skips it, and a failure removes it with every
        # contact written so far, so nothing half-imported remains.
        try:
            yield _Session(self._db, self._project_id, self._upload_id)
        except BaseException:
            await asyncio.shield(self._db.uploads.remove_with_contacts(self._upload_id))
            raise


class ImportJobs:
    """The running and recent imports, one per upload; the app cancels them on shutdown."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._jobs: OrderedDict[int, ImportJob] = OrderedDict()
        # Imports into one project run one after the other, so that the duplicate check of
        # the second one sees the numbers of the first.
        self._project_locks: dict[int, asyncio.Lock] = {}

    def get(self, upload_id: int) -> ImportJob | None:
        return self._jobs.get(upload_id)

    async def start(self, *, project_id: int, user_id: int, path: Path, filename: str,
                    options: ImportOptions, on_success: Callable[[], None] | None = None,
                    on_failure: Callable[[], None] | None = None) -> ImportJob:
        db = self._services.db
        upload_id = await db.uploads.create(project_id=project_id, filename=filename,
                                            tags=list(options.tags), created_by=user_id,
                                            importing=True)
        job = ImportJob(upload_id=upload_id, project_id=project_id, filename=filename)
        self._jobs[upload_id] = job
        while len(self._jobs) > KEPT_JOBS:
            oldest = next(iter(self._jobs.values()))
            if oldest.state == "running":
                break
            self._jobs.popitem(last=False)
        job.task = asyncio.get_running_loop().create_task(
            self._run(job, path, options, on_success, on_failure),
            name=f"import-upload-{upload_id}")
        return job

    async def run_now(self, *, project_id: int, user_id: int, path: Path, filename: str,
                      options: ImportOptions) -> ImportJob:
        """Import and wait for the end (contacts sent as JSON through the API)."""
        job = await self.start(project_id=project_id, user_id=user_id, path=path,
                               filename=filename, options=options)
        if job.task is not None:
            await asyncio.shield(job.task)
        return job

    async def _run(self, job: ImportJob, path: Path, options: ImportOptions,
                   on_success: Callable[[], None] | None,
                   on_failure: Callable[[], None] | None) -> None:
        db = self._services.db

        def progress(p: ImportProgress) -> None:
            job.rows_done, job.total_estimate = p.rows_done, p.total_estimate
            job.accepted, job.rejected = p.accepted, p.rejected

        lock = self._project_locks.setdefault(job.project_id, asyncio.Lock())
        try:
            async with lock:
                result = await import_contacts(
                    path, PreparedUploadTarget(db, job.project_id, job.upload_id),
                    options=options, filename=job.filename, progress=progress)
        except ImportFileError as exc:
            job.state, job.error = "failed", message_of(exc)
            await self._discard(job, on_failure)
        except asyncio.CancelledError:
            job.state, job.error = "failed", Text("uploads.error.interrupted")
            await asyncio.shield(self._discard(job, on_failure))
            raise
        except Exception:
            log.exception("import of upload %s failed", job.upload_id)
            job.state, job.error = "failed", Text("uploads.error.internal")
            await self._discard(job, on_failure)
        else:
            job.result = result
            job.rows_done, job.accepted, job.rejected = (result.rows, result.accepted,
                                                         result.rejected_count)
            job.state = "done"
            if on_success is not None:
                on_success()

    async def _discard(self, job: ImportJob, on_failure: Callable[[], None] | None) -> None:
        """A failed import leaves no upload behind (its contacts were rolled back)."""
        if on_failure is not None:
            on_failure()
        try:
            await self._services.db.uploads.discard(job.upload_id)
        except Exception:
            log.exception("could not remove the failed upload %s", job.upload_id)

    async def close(self) -> None:
        running = [(j, j.task) for j in self._jobs.values() if j.task is not None and not j.task.done()]
        for _, task in running:
            task.cancel()
        for job, task in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            if job.state == "running":
                # Cancelled before it began: nothing ran to remove its upload.
                job.state, job.error = "failed", Text("uploads.error.interrupted")
            if job.state != "done":
                # The task's own clean-up may still be under way behind a shield when the task
                # returns; removing here as well (it is idempotent) leaves nothing once we return.
                await self._services.db.uploads.remove_with_contacts(job.upload_id)


def mapping_targets(card_fields: Sequence[str]) -> list[str]:
    """What a column may become: the standard fields, the project's card fields, ignore."""
    return [*STANDARD_FIELDS, *(CUSTOM_PREFIX + n for n in card_fields), IGNORE]


def check_mapping(mapping: Sequence[str], staged: StagedFile) -> list[str]:
    if len(mapping) != len(staged.headers):
        raise Invalid(Text("uploads.error.mapping_columns", count=len(staged.headers)),
                      field="mapping")
    problems = validate_mapping(mapping)
    if problems:
        raise Invalid(joined(problems), field="mapping")
    return list(mapping)


def result_json(job: ImportJob | None, upload_id: int, counts: dict[str, int],
                language: str) -> dict[str, Any]:
    """The end of an import: counts and the rejected rows with reasons (the first 1000)."""
    error = render(job.error, language) if job and job.error is not None else None
    out: dict[str, Any] = {"upload_id": upload_id, "state": job.state if job else "done",
                           "error": error, **counts}
    result = job.result if job else None
    if result is not None:
        out.update(rows=result.rows, accepted=result.accepted, inserted=result.inserted,
                   rejected_count=result.rejected_count, invalid=result.invalid,
                   duplicates_in_file=result.duplicates_in_file,
                   duplicates_in_project=result.duplicates_in_project,
                   blacklisted=result.blacklisted,
                   rejected=[{"row": r.row, "phone": r.phone,
                              "reason": render(r.reason, language)}
                             for r in result.rejected[:RESULT_ROWS_SHOWN]])
    else:
        out.setdefault("rejected", [])
    return out


# -- contacts sent as JSON --------------------------------------------------------------


def contacts_csv(items: Any, path: Path) -> list[str]:
    """Write contacts given as JSON objects to a CSV file; returns the column mapping."""
    if not isinstance(items, list) or not items:
        raise Invalid(Text("uploads.error.contacts_list"), field="contacts")
    if len(items) > MAX_API_CONTACTS:
        raise Invalid(Text("uploads.error.contacts_many", max=MAX_API_CONTACTS),
                      field="contacts")
    custom: dict[str, None] = {}
    for item in items:
        if not isinstance(item, dict):
            raise Invalid(Text("uploads.error.contact_object"), field="contacts")
        unknown = set(item) - set(STANDARD_FIELDS) - {"custom"}
        if unknown:
            raise Invalid(Text("uploads.error.contact_fields", names=", ".join(sorted(unknown))),
                          field="contacts")
        extra = item.get("custom") or {}
        if not isinstance(extra, dict):
            raise Invalid(Text("uploads.error.contact_custom"), field="contacts")
        for key in extra:
            custom.setdefault(" ".join(str(key).split())[:64], None)
    columns = [*STANDARD_FIELDS, *custom]
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(columns)
        for item in items:
            extra = item.get("custom") or {}
            row = [_plain(item.get(f)) for f in STANDARD_FIELDS]
            row += [_plain(extra.get(k)) for k in custom]
            writer.writerow(row)
    return [*STANDARD_FIELDS, *(CUSTOM_PREFIX + k for k in custom)]


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise Invalid(Text("uploads.error.contact_values"), field="contacts")
    return " ".join(str(value).split())


def temp_csv(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="api-", suffix=".csv", dir=root)
    os.close(handle)
    return Path(name)


# -- exports ----------------------------------------------------------------------------


def _export_row(contact: Contact) -> list[Any]:
    return [contact.phone, contact.full_name or "", contact.email or "", contact.city or "",
            contact.region or "", contact.timezone or "", contact.carrier or "",
            contact.dial_state, contact.attempts]


async def contact_pages(db: Database, project_id: int, kind: str,
                        *, chunk: int = 5000) -> AsyncIterator[list[Contact]]:
    states = EXPORT_STATES[kind]
    offset = 0
    while True:
        page = await db.contacts.list(project_id=project_id, dial_states=states, limit=chunk,
                                      offset=offset)
        if not page:
            return
        yield page
        offset += len(page)


async def export_csv(db: Database, project_id: int, kind: str) -> AsyncIterator[bytes]:
    """``;``-separated, UTF-8 with BOM (what Excel in Russian locales opens directly)."""
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerow(EXPORT_HEADER)
    yield ("\ufeff" + out.getvalue()).encode()
    async for page in contact_pages(db, project_id, kind):
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
        for contact in page:
            writer.writerow([formula_safe(v) for v in _export_row(contact)])
        yield out.getvalue().encode()


async def export_xlsx(db: Database, project_id: int, kind: str, target: Path) -> None:
    """Write the contacts to ``target`` with openpyxl's write-only (streaming) workbook."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Контакты")
    sheet.append(list(EXPORT_HEADER))
    async for page in contact_pages(db, project_id, kind):
        await asyncio.to_thread(_append_rows, sheet, [_export_row(c) for c in page])
    await asyncio.to_thread(book.save, target)


def _append_rows(sheet: Any, rows: list[list[Any]]) -> None:
    for row in rows:
        sheet.append([formula_safe(v) for v in row])


__all__ = [
    "EXPORT_STATES",
    "MAX_UPLOAD_BYTES",
    "ImportJob",
    "ImportJobs",
    "StagedFile",
    "StagingArea",
    "check_mapping",
    "contacts_csv",
    "export_csv",
    "export_xlsx",
    "mapping_targets",
    "result_json",
]
