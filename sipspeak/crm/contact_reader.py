"""Streaming readers for contact files: XLSX (openpyxl read-only) and CSV.

Rows come out one at a time as ``(row_number, values)`` with the row number as the user sees
it in Excel (1-based, header included), so that rejected rows can be pointed at. Neither
reader holds more than one row (plus a small sample) in memory.

XLSX: see :mod:`sipspeak.crm.xlsx_stream`. CSV: the encoding is ``utf-8-sig`` unless the first megabyte does not decode, then ``cp1251``
(what Excel on Russian Windows writes); the delimiter is ``;`` or ``,`` (or a tab), whichever
splits the first lines into the same number of cells.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Protocol

from sipspeak.crm.xlsx_stream import XlsxFormatError, XlsxSheetReader
from sipspeak.i18n import Message, Text, message_of

CellValue = object
Row = tuple[int, list[CellValue]]

SAMPLE_BYTES = 1 << 20
_CSV_DELIMITERS = (";", ",", "\t")
MAX_CELL_CHARS = 32_767  # Excel's own limit for a cell


class ImportFileError(ValueError):
    """The file cannot be read as a table; the message is shown to the user."""

    def __init__(self, message: Message) -> None:
        super().__init__(message)


class TableReader(Protocol):
    """Rows of the first sheet of a file."""

    @property
    def total_rows_estimate(self) -> int | None: ...

    def rows(self) -> Iterator[Row]: ...

    def close(self) -> None: ...


class XlsxReader:
    """First worksheet of an XLSX workbook, streamed by :class:`XlsxSheetReader`."""

    def __init__(self, path: Path) -> None:
        try:
            self._sheet = XlsxSheetReader(path)
        except XlsxFormatError as exc:
            raise ImportFileError(
                Text("crm.error.not_xlsx_detail", detail=message_of(exc))
            ) from exc

    @property
    def total_rows_estimate(self) -> int | None:
        return self._sheet.total_rows_estimate

    def rows(self) -> Iterator[Row]:
        try:
            yield from self._sheet.rows()
        except XlsxFormatError as exc:
            raise ImportFileError(
                Text("crm.error.damaged_detail", detail=message_of(exc))
            ) from exc
        except ValueError as exc:  # a number attribute that is not a number, e.g. r="x"
            raise ImportFileError(Text("crm.error.damaged_data")) from exc
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise ImportFileError(Text("crm.error.damaged_unzip")) from exc

    def close(self) -> None:
        self._sheet.close()


def detect_encoding(sample: bytes) -> str:
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        decoder.decode(sample, final=False)
    except UnicodeDecodeError:
        return "cp1251"
    return "utf-8-sig"


def detect_delimiter(lines: list[str]) -> str:
    """The delimiter that gives the same, largest cell count on the first lines."""
    best, best_score = ";", (False, 0)
    for delimiter in _CSV_DELIMITERS:
        counts = [
            len(cells) for cells in csv.reader(lines, delimiter=delimiter) if cells
        ]
        if not counts:
            continue
        score = (min(counts) > 1 and len(set(counts)) == 1, min(counts))
        if score > best_score:
            best, best_score = delimiter, score
    return best


class CsvReader:
    """A CSV file decoded and split as it is read."""

    def __init__(self, path: Path) -> None:
        try:
            self._file = path.open("rb")
            sample = self._file.read(SAMPLE_BYTES)
            self._size = os.fstat(self._file.fileno()).st_size
        except OSError as exc:
            raise ImportFileError(Text("crm.error.cannot_open")) from exc
        if b"\x00" in sample:
            self._file.close()
            raise ImportFileError(Text("crm.error.not_csv"))
        self.encoding = detect_encoding(sample)
        text = sample.decode(self.encoding, errors="ignore")
        first_lines = text.splitlines()[:20]
        if len(sample) == SAMPLE_BYTES and len(first_lines) > 1:
            first_lines = first_lines[:-1]  # the last line of the sample may be cut
        # Excel writes and honours a first line "sep=;" naming the delimiter; it is not a row.
        self._skip_sep_line = bool(
            first_lines
            and len(first_lines[0]) == 5
            and first_lines[0].lower().startswith("sep=")
        )
        if self._skip_sep_line:
            self.delimiter = first_lines[0][4]
        else:
            self.delimiter = detect_delimiter(first_lines)
        sample_lines = max(1, len(text.splitlines()))
        self._estimate = (
            max(1, round(self._size * sample_lines / max(1, len(sample))))
            if sample
            else 0
        )
        self._file.seek(0)

    @property
    def total_rows_estimate(self) -> int | None:
        return self._estimate

    def rows(self) -> Iterator[Row]:
        text = io.TextIOWrapper(self._file, encoding=self.encoding, newline="")
        if self._skip_sep_line:
            text.readline()
        reader = csv.reader(text, delimiter=self.delimiter)
        number = 0  # records, as Excel numbers the rows of a CSV (a quoted value may span lines)
        try:
            for cells in reader:
                number += 1
                values: list[CellValue] = list(cells)
                yield number, values
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                Text("crm.error.encoding", row=number, encoding=self.encoding)
            ) from exc
        except csv.Error as exc:
            raise ImportFileError(
                Text("crm.error.csv_format", row=number, detail=str(exc))
            ) from exc
        finally:
            text.detach()

    def close(self) -> None:
        self._file.close()


class OpenedTable:
    """``with OpenedTable(path) as table:`` — the right reader for the file's content."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reader: TableReader = open_reader(path)

    def __enter__(self) -> TableReader:
        return self.reader

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.reader.close()


def open_reader(path: Path) -> TableReader:
    """XLSX or CSV, told apart by content (XLSX is a ZIP), not only by the name."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise ImportFileError(Text("crm.error.cannot_open")) from exc
    if not head:
        raise ImportFileError(Text("crm.error.empty_file"))
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError(Text("crm.error.xls"))
    if head.startswith(b"PK"):
        return XlsxReader(path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        raise ImportFileError(Text("crm.error.not_xlsx"))
    return CsvReader(path)
