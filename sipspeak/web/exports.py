"""Report downloads: CSV and XLSX of a table that arrives in batches, and keyset batching.

A table is an async iterator of line lists whose first item is the header; every cell passes
:func:`~sipspeak.crm.spreadsheet.formula_safe`.  The first item is read before the answer
starts, so a filter refused while reading it still answers its 4xx.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

from aiohttp import web
from openpyxl import Workbook

from ..crm.spreadsheet import formula_safe

__all__ = ["Lines", "csv_download", "keyset_batches", "one_table", "xlsx_download"]

Lines = list[list[Any]]
T = TypeVar("T")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


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


async def xlsx_download(filename: str, sheet_title: str,
                        table: AsyncIterator[Lines]) -> web.Response:
    """The table as an XLSX workbook (openpyxl's write-only sheet, filled off the loop)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(sheet_title[:31])

    def append(lines: Lines) -> None:
        for line in _safe(lines):
            sheet.append(line)

    async for lines in table:
        await asyncio.to_thread(append, lines)
    out = io.BytesIO()
    await asyncio.to_thread(book.save, out)
    return web.Response(body=out.getvalue(), content_type=XLSX, headers=_attachment(filename))
