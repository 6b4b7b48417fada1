"""Contact base import (manual §5.5): preview, column mapping, validation, enrichment, storage.

Flow for the web layer::

    preview = await asyncio.to_thread(preview_file, path)       # first rows + guessed mapping
    result = await import_contacts(path, target, options=ImportOptions(mapping=..., tags=...),
                                   progress=callback)           # all rows, or none

Two stages, so that the database's single writer is held only for the writing:

1. *reading* — a worker thread parses, validates, enriches and de-duplicates the rows and
   spools the accepted contacts, batch by batch, to an anonymous temporary file; the event
   loop keeps serving calls, memory stays bounded (one batch), and progress is reported;
2. *writing* — the spooled batches are inserted through the target's session (about a tenth
   of the time of the whole import); the database target commits batch by batch under an
   upload marked as importing, so other writers are not kept waiting.

A damaged file, a missing phone column or an empty file raise :class:`ImportFileError` during
the first stage, before anything is written; any failure in the second has the target undo
every batch it wrote.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import csv
import io
import pickle
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date
from itertools import islice
from pathlib import Path
from typing import IO, Literal, Protocol

from sipspeak.crm.contact_fields import (
    IGNORE,
    PHONE,
    guess_mapping,
    guess_phone_column,
    is_header_row,
    validate_mapping,
)
from sipspeak.crm.contact_reader import CellValue, ImportFileError, OpenedTable, Row
from sipspeak.crm.contact_rows import (
    ContactRecord,
    RejectedRow,
    RowRejectedError,
    RowValidator,
    cell_text,
)
from sipspeak.crm.enrichment import Enricher, default_enricher
from sipspeak.crm.spreadsheet import formula_safe
from sipspeak.i18n import Message, Text, joined

__all__ = [
    "FilePreview",
    "ImportFileError",
    "ImportOptions",
    "ImportProgress",
    "ImportResult",
    "ImportSession",
    "ImportTarget",
    "import_contacts",
    "preview_file",
    "rejected_rows_csv",
]

LAYOUT_SAMPLE_ROWS = 20
HEADER_SEARCH_ROWS = 10
SAMPLE_SCAN_ROWS = 1000  # blank rows above the table that are skipped while sampling
DEFAULT_BATCH = 2000
MAX_REJECTED_LISTED = 100_000
_QUEUE_DEPTH = 2
_PUT_POLL_S = 0.2

DUPLICATE_IN_PROJECT = Text("crm.error.duplicate_in_project")
BLACKLISTED = Text("crm.error.blacklisted")


def column_name(index: int) -> str:
    """0 → ``A``, 27 → ``AB``: how Excel names a column."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def _is_empty(values: Sequence[CellValue]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


def _sample(rows: Iterator[Row], count: int) -> list[Row]:
    """The first ``count`` non-empty rows, looking no further than :data:`SAMPLE_SCAN_ROWS`."""
    found = (row for row in islice(rows, SAMPLE_SCAN_ROWS) if not _is_empty(row[1]))
    return list(islice(found, count))


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the data starts and which column holds what."""

    header_row: int | None
    headers: list[str]
    mapping: list[str]


def detect_layout(sample: Sequence[Row]) -> Layout:
    """Header row (in the first ten non-empty rows), or none when the data starts at once."""
    rows = [(n, v) for n, v in sample if not _is_empty(v)]
    if not rows:
        raise ImportFileError(Text("crm.error.no_data_rows"))
    width = max(len(v) for _, v in rows)
    for number, values in rows[:HEADER_SEARCH_ROWS]:
        if is_header_row(values):
            headers = [cell_text(v) for v in values] + [""] * (width - len(values))
            return Layout(
                header_row=number, headers=headers, mapping=guess_mapping(headers)
            )
    headers = [f"Столбец {column_name(i)}" for i in range(width)]
    phone_column = guess_phone_column([v for _, v in rows])
    if phone_column is not None:
        mapping = [PHONE if i == phone_column else IGNORE for i in range(width)]
        return Layout(header_row=None, headers=headers, mapping=mapping)
    first_number, first = rows[0]
    headers = [cell_text(v) for v in first] + [""] * (width - len(first))
    return Layout(
        header_row=first_number, headers=headers, mapping=guess_mapping(headers)
    )


@dataclass(frozen=True, slots=True)
class FilePreview:
    """What the mapping screen shows: headers, the first rows and the guessed mapping."""

    header_row: int | None
    headers: list[str]
    mapping: list[str]
    rows: list[list[str]]
    total_rows_estimate: int | None
    problems: list[Text]


def preview_file(path: Path, *, limit: int = 10) -> FilePreview:
    """First ``limit`` data rows and the guessed mapping; blocking, run it in a thread."""
    with OpenedTable(path) as reader:
        sample = list(
            _sample(reader.rows(), max(LAYOUT_SAMPLE_ROWS, limit + HEADER_SEARCH_ROWS))
        )
        layout = detect_layout(sample)
        data = [
            v
            for n, v in sample
            if (layout.header_row is None or n > layout.header_row) and not _is_empty(v)
        ]
        width = len(layout.headers)
        rows = [
            [cell_text(c) for c in v] + [""] * (width - len(v)) for v in data[:limit]
        ]
        return FilePreview(
            header_row=layout.header_row,
            headers=layout.headers,
            mapping=layout.mapping,
            rows=rows,
            total_rows_estimate=reader.total_rows_estimate,
            problems=validate_mapping(layout.mapping),
        )


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """What the user chose on the upload screen.

    ``mapping``: one entry per column (see :mod:`sipspeak.crm.contact_fields`), None to take
    the guess. ``header_row``: the row number of the header as :func:`preview_file` found it,
    None when the file has no header, ``"auto"`` to detect it again.
    """

    mapping: Sequence[str] | None = None
    header_row: int | None | Literal["auto"] = "auto"
    tags: Sequence[str] = ()
    skip_project_duplicates: bool = True
    skip_blacklisted: bool = True
    batch_size: int = DEFAULT_BATCH


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """``reading``: rows read so far of about ``total_estimate``; ``writing``: ``written`` of
    ``accepted`` contacts stored (``total_estimate`` is then the exact row count)."""

    rows_done: int
    total_estimate: int | None
    accepted: int
    rejected: int
    stage: Literal["reading", "writing"] = "reading"
    written: int = 0


@dataclass(slots=True)
class ImportResult:
    upload_id: int
    rows: int = 0
    accepted: int = 0
    inserted: int = 0
    rejected_count: int = 0
    invalid: int = 0
    duplicates_in_file: int = 0
    duplicates_in_project: int = 0
    blacklisted: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)


class ImportSession(Protocol):
    """Writes of one import: they all take effect, or the target undoes them all."""

    async def create_upload(self, *, filename: str, tags: Sequence[str]) -> int: ...

    async def insert_contacts(
        self, *, upload_id: int, contacts: Sequence[ContactRecord], tags: Sequence[str]
    ) -> int: ...

    async def finish(self, result: ImportResult) -> None:
        """Record the counts of the upload, which completes it."""


class ImportTarget(Protocol):
    """The project a base is imported into (see ``contacts_store.ProjectImportTarget``)."""

    async def existing_phones(self) -> set[str]: ...

    async def blacklisted_phones(self) -> set[str]: ...

    def session(self) -> AbstractAsyncContextManager[ImportSession]: ...


def rejected_rows_csv(rejected: Sequence[RejectedRow]) -> str:
    """Rejected rows for download: ``Строка;Телефон;Причина``, ``;``-separated as Excel in
    Russian locales expects (encode with ``utf-8-sig`` so that Excel detects UTF-8)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["Строка", "Телефон", "Причина"])
    for row in rejected:
        writer.writerow([row.row, formula_safe(row.phone), str(row.reason)])
    return out.getvalue()


def clean_tags(tags: Sequence[str]) -> list[str]:
    seen: dict[str, None] = {}
    for tag in tags:
        text = " ".join(str(tag).split())
        if text:
            seen.setdefault(text, None)
    return list(seen)


class _Stopped(Exception):
    """The consumer gave up; the producer thread ends quietly."""


@dataclass(slots=True)
class _Batch:
    contacts: list[ContactRecord]
    rows_done: int
    accepted: int
    rejected: int


class _RowPipeline:
    """Runs in the worker thread: rows → validated, de-duplicated batches."""

    def __init__(
        self,
        *,
        validator: RowValidator,
        start_after: int | None,
        existing: set[str],
        blacklist: set[str],
        batch_size: int,
        result: ImportResult,
    ) -> None:
        self._validator = validator
        self._start_after = start_after or 0
        self._existing = existing
        self._blacklist = blacklist
        self._batch_size = max(1, batch_size)
        self.result = result

    def _reject(self, row: int, reason: Message, values: Sequence[CellValue]) -> None:
        result = self.result
        result.rejected_count += 1
        if len(result.rejected) < MAX_REJECTED_LISTED:
            result.rejected.append(
                RejectedRow(
                    row=row, reason=reason, phone=self._validator.raw_phone(values)
                )
            )

    def batches(self, rows: Iterator[Row]) -> Iterator[_Batch]:
        result = self.result
        seen: dict[str, int] = {}
        batch: list[ContactRecord] = []
        validate = self._validator.validate
        for number, values in rows:
            if number <= self._start_after or _is_empty(values):
                continue
            result.rows += 1
            try:
                contact = validate(values)
            except RowRejectedError as exc:
                result.invalid += 1
                self._reject(number, exc.reason, values)
                continue
            phone = contact.phone
            first_row = seen.get(phone)
            if phone in self._blacklist:
                result.blacklisted += 1
                self._reject(number, BLACKLISTED, values)
            elif first_row is not None:
                result.duplicates_in_file += 1
                self._reject(number, Text("crm.error.duplicate_in_file", row=first_row), values)
            elif phone in self._existing:
                result.duplicates_in_project += 1
                self._reject(number, DUPLICATE_IN_PROJECT, values)
            else:
                batch.append(contact)
                result.accepted += 1
            if first_row is None:
                seen[phone] = number
            if len(batch) >= self._batch_size:
                yield _Batch(batch, result.rows, result.accepted, result.rejected_count)
                batch = []
        yield _Batch(batch, result.rows, result.accepted, result.rejected_count)


def _prepare(
    path: Path, options: ImportOptions
) -> tuple[list[str], int | None, int | None]:
    """Mapping and header row to use, checked before anything is written."""
    with OpenedTable(path) as reader:
        sample = _sample(reader.rows(), LAYOUT_SAMPLE_ROWS)
        estimate = reader.total_rows_estimate
    layout = detect_layout(sample)
    mapping = list(options.mapping) if options.mapping is not None else layout.mapping
    header_row = (
        layout.header_row if options.header_row == "auto" else options.header_row
    )
    problems = validate_mapping(mapping)
    if PHONE not in mapping:
        raise ImportFileError(Text("crm.error.no_phone_in_file"))
    if problems:
        raise ImportFileError(joined(problems))
    return mapping, header_row, estimate


async def import_contacts(
    path: Path,
    target: ImportTarget,
    *,
    options: ImportOptions | None = None,
    filename: str | None = None,
    progress: Callable[[ImportProgress], None] | None = None,
    enricher: Enricher | None = None,
    today: date | None = None,
) -> ImportResult:
    """Import a contact file into the target's project; returns counts and rejected rows.

    Raises :class:`ImportFileError` (message in Russian) when the file cannot be imported at
    all; nothing is written then.
    """
    options = options or ImportOptions()
    tags = clean_tags(options.tags)
    mapping, header_row, estimate = await asyncio.to_thread(_prepare, path, options)
    if enricher is None:
        enricher = await asyncio.to_thread(default_enricher)
    existing = (
        await target.existing_phones() if options.skip_project_duplicates else set()
    )
    blacklist = await target.blacklisted_phones() if options.skip_blacklisted else set()
    validator = RowValidator(mapping, enricher=enricher, today=today or date.today())

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[_Batch | BaseException | None] = asyncio.Queue(_QUEUE_DEPTH)
    stop = threading.Event()
    spooled: list[int] = []  # sizes of the batches in the spool, in order

    def put(item: _Batch | BaseException | None) -> None:
        future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        while True:
            try:
                future.result(timeout=_PUT_POLL_S)
                return
            except concurrent.futures.TimeoutError:
                if stop.is_set():
                    future.cancel()
                    raise _Stopped from None

    def produce(result: ImportResult, spool: IO[bytes]) -> None:
        pipeline = _RowPipeline(
            validator=validator,
            start_after=header_row,
            existing=existing,
            blacklist=blacklist,
            batch_size=options.batch_size,
            result=result,
        )
        try:
            with OpenedTable(path) as reader:
                for batch in pipeline.batches(reader.rows()):
                    if stop.is_set():
                        return
                    if batch.contacts:
                        pickle.dump(
                            batch.contacts, spool, protocol=pickle.HIGHEST_PROTOCOL
                        )
                        spooled.append(len(batch.contacts))
                    batch.contacts = []
                    put(batch)
            put(None)
        except _Stopped:
            return
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            # The consumer may be gone already (it failed or was cancelled): never raise
            # from here, or awaiting the producer would hide the consumer's own error.
            with contextlib.suppress(_Stopped):
                put(exc)

    result = ImportResult(upload_id=0)
    with tempfile.TemporaryFile(prefix="sipspeak-import-") as spool:
        producer = loop.run_in_executor(None, produce, result, spool)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                if progress is not None:
                    progress(
                        ImportProgress(
                            item.rows_done, estimate, item.accepted, item.rejected
                        )
                    )
        finally:
            stop.set()
            while not queue.empty():
                queue.get_nowait()
            await asyncio.shield(producer)
        if result.rows == 0:
            raise ImportFileError(Text("crm.error.no_rows"))
        spool.seek(0)
        async with target.session() as session:
            result.upload_id = await session.create_upload(
                filename=filename or path.name, tags=tags
            )
            for _ in spooled:
                contacts: list[ContactRecord] = pickle.load(spool)
                result.inserted += await session.insert_contacts(
                    upload_id=result.upload_id, contacts=contacts, tags=tags
                )
                if progress is not None:
                    progress(
                        ImportProgress(
                            result.rows,
                            result.rows,
                            result.accepted,
                            result.rejected_count,
                            stage="writing",
                            written=result.inserted,
                        )
                    )
            await session.finish(result)
    return result
