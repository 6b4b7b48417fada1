"""Report downloads: CSV and XLSX of a table that arrives in batches, and keyset batching.

A table is an async iterator of line lists whose first item is the header; every cell passes
:func:`~sipspeak.crm.spreadsheet.formula_safe`.  The first item is read before the answer
starts, so a filter refused while reading it still answers its 4xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from openpyxl import Workbook

from ..crm.spreadsheet import formula_safe
from ..i18n import Text
from .errors import Invalid

__all__ = ["EVERY_ROW", "Lines", "csv_download", "keyset_batches", "one_table",
           "refuse_beyond_a_sheet", "xlsx_download"]

Lines = list[list[Any]]
T = TypeVar("T")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_MAX_ROWS = 1_000_000
"""An XLSX sheet holds 1,048,576 rows: a larger export is refused (CSV has no limit)."""


async def keyset_batches(fetch: Callable[[int, tuple[int, int] | None], Awaitable[list[T]]],
                         key: Callable[[T], tuple[int, int]], *, batch: int,
                         limit: int) -> AsyncIterator[list[T]]:
    """Rows ``fetch(count, after)`` gives, batch after batch, each read on from the sort key
    (value, id) of the last row before — rows added meanwhile neither repeat nor shift the
    batches; at most ``limit`` rows in all."""
    last: tuple[int, int] | None = None
    done = 0
    while done < limit:
        rows = await fetch(min(batch, limit - done), last)
        if not rows:
            return
        done += len(rows)
        last = key(rows[-1])
        yield rows


async def one_table(lines: Lines) -> AsyncIterator[Lines]:
    """A table already at hand, as the downloads take it."""
    yield lines


EVERY_ROW = 2**62
"""keyset_batches' limit for a download of every row (CSV is streamed batch by batch)."""


def refuse_beyond_a_sheet(rows: int) -> None:
    """An XLSX of more rows than a sheet holds is refused up front, never cut silently."""
    if rows > XLSX_MAX_ROWS:
        raise Invalid(Text("reports.error.xlsx_rows", rows=rows, limit=XLSX_MAX_ROWS))


def _safe(lines: Iterable[list[Any]]) -> Lines:
    return [[formula_safe(cell) for cell in line] for line in lines]


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


async def csv_download(request: web.Request, filename: str,
                       table: AsyncIterator[Lines]) -> web.StreamResponse:
    """The table as CSV (``;``, UTF-8 with BOM: Excel in Russian locales opens it directly),
    streamed batch by batch."""
    first = await anext(table)
    response = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8",
                                           **_attachment(filename)})
    await response.prepare(request)

    def encode(lines: Lines) -> bytes:
        out = io.StringIO()
        csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(_safe(lines))
        return out.getvalue().encode()

    await response.write(b"\xef\xbb\xbf" + encode(first))
    async for lines in table:
        await response.write(encode(lines))
    await response.write_eof()
    return response


async def xlsx_download(request: web.Request, filename: str, sheet_title: str,
                        table: AsyncIterator[Lines]) -> web.StreamResponse:
    """The table as an XLSX workbook: openpyxl's write-only sheet filled off the loop, the
    workbook saved to a temporary file and streamed from it, so a large export costs disk,
    not memory."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(sheet_title[:31])

    def append(lines: Lines) -> None:
        for line in _safe(lines):
            sheet.append(line)

    try:
        async for lines in table:
            await asyncio.to_thread(append, lines)
    except BaseException:
        _discard(sheet)  # the rows openpyxl had spooled to its own temporary file
        raise
    with tempfile.TemporaryDirectory(prefix="sipspeak-xlsx-") as folder:
        path = Path(folder) / "export.xlsx"
        await asyncio.to_thread(book.save, path)
        response = web.StreamResponse(headers={"Content-Type": XLSX, **_attachment(filename)})
        response.content_length = path.stat().st_size
        await response.prepare(request)
        with path.open("rb") as source:
            while chunk := await asyncio.to_thread(source.read, 256 * 1024):
                await response.write(chunk)
        await response.write_eof()
    return response


def _discard(sheet: Any) -> None:
    """Remove a write-only sheet's spool file when its workbook will never be saved."""
    spool = getattr(getattr(sheet, "_writer", None), "out", None)
    with contextlib.suppress(Exception):
        sheet.close()  # ends the rows' XML and closes the spool
    if isinstance(spool, str):
        with contextlib.suppress(OSError):
            os.remove(spool)
