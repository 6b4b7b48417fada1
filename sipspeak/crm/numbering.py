"""Russian numbering plan index: national number → operator, region, IANA zone.

The regulator (Минцифры, "Выписка из реестра Российской системы и плана нумерации") publishes
ranges ``DEF/ABC; from; to`` with the holder and the region the range was allocated to. The
shipped index keeps only what a lookup needs:

* ``starts`` / ``ends`` — sorted, non-overlapping ranges as 10-digit national numbers
  (``code * 10**7 + from``); adjacent ranges with identical attributes are merged;
* ``operator_ids`` / ``region_ids`` — indexes into two small string tables.

File layout (``numbering.bin``, zlib-compressed as a whole)::

    b"SSNUM1\\n" | u32 LE length of JSON | JSON header | starts (i64 LE) | ends (i64 LE)
    | operator ids (u16 LE) | region ids (u16 LE)

The header holds the tables, the row count, a free-form ``source`` note and ``prefixes``:
national prefixes of geographic numbers (``3532`` → Оренбургская обл.) for when the ABC
ranges are absent from the extract, and ``countries``: ISO region code → Russian name. A lookup is one ``bisect`` over ``starts``. Ported numbers (MNP) are not visible here: the index names the
holder of the range, not the current operator.
"""

from __future__ import annotations

import json
import struct
import sys
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

MAGIC = b"SSNUM1\n"
_HEADER_LEN = struct.Struct("<I")
NATIONAL_DIGITS = 10


class NumberingFormatError(ValueError):
    """The index file is not a numbering index or is damaged."""


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    inn: str


@dataclass(frozen=True, slots=True)
class Region:
    name: str
    timezone: str | None


@dataclass(frozen=True, slots=True)
class NumberingRange:
    """One range of the index, as a lookup returns it."""

    first: int
    last: int
    operator: Operator
    region: Region


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One range to be written; ``first``/``last`` are 10-digit national numbers."""

    first: int
    last: int
    operator: int
    region: int


def _little_endian(values: array) -> bytes:  # type: ignore[type-arg]
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _from_little_endian(typecode: str, data: bytes) -> array:  # type: ignore[type-arg]
    values = array(typecode)
    values.frombytes(data)
    if sys.byteorder == "big":
        values.byteswap()
    return values


class NumberingIndex:
    """Sorted ranges with bisect lookup. Build with :meth:`from_entries` or :meth:`load`."""

    __slots__ = (
        "_ends",
        "_operator_ids",
        "_region_ids",
        "_starts",
        "countries",
        "operators",
        "prefixes",
        "regions",
        "source",
    )

    def __init__(
        self,
        *,
        starts: array,  # type: ignore[type-arg]
        ends: array,  # type: ignore[type-arg]
        operator_ids: array,  # type: ignore[type-arg]
        region_ids: array,  # type: ignore[type-arg]
        operators: Sequence[Operator],
        regions: Sequence[Region],
        source: str = "",
        prefixes: dict[str, int] | None = None,
        countries: dict[str, str] | None = None,
    ) -> None:
        count = len(starts)
        if not (len(ends) == len(operator_ids) == len(region_ids) == count):
            raise NumberingFormatError("массивы индекса нумерации разной длины")
        self._starts = starts
        self._ends = ends
        self._operator_ids = operator_ids
        self._region_ids = region_ids
        self.operators = tuple(operators)
        self.regions = tuple(regions)
        self.source = source
        self.prefixes = dict(prefixes or {})
        self.countries = dict(countries or {})
        if any(not 0 <= i < len(self.regions) for i in self.prefixes.values()):
            raise NumberingFormatError("префикс ссылается на несуществующий регион")

    def __len__(self) -> int:
        return len(self._starts)

    @classmethod
    def from_entries(
        cls,
        entries: Sequence[IndexEntry],
        *,
        operators: Sequence[Operator],
        regions: Sequence[Region],
        source: str = "",
        prefixes: dict[str, int] | None = None,
        countries: dict[str, str] | None = None,
    ) -> NumberingIndex:
        """Index sorted, non-overlapping entries, merging neighbours that say the same thing."""
        starts: array[int] = array("q")
        ends: array[int] = array("q")
        op_ids: array[int] = array("H")
        region_ids: array[int] = array("H")
        previous_last = -1
        for entry in entries:
            if entry.first > entry.last:
                raise NumberingFormatError(f"диапазон {entry.first}-{entry.last} пуст")
            if entry.first <= previous_last:
                raise NumberingFormatError(
                    f"диапазон {entry.first}-{entry.last} перекрывает предыдущий"
                )
            if not (
                0 <= entry.operator < len(operators)
                and 0 <= entry.region < len(regions)
            ):
                raise NumberingFormatError(
                    f"диапазон {entry.first}-{entry.last}: неверная ссылка"
                )
            if (
                starts
                and ends[-1] + 1 == entry.first
                and op_ids[-1] == entry.operator
                and region_ids[-1] == entry.region
            ):
                ends[-1] = entry.last
            else:
                starts.append(entry.first)
                ends.append(entry.last)
                op_ids.append(entry.operator)
                region_ids.append(entry.region)
            previous_last = entry.last
        return cls(
            starts=starts,
            ends=ends,
            operator_ids=op_ids,
            region_ids=region_ids,
            operators=operators,
            regions=regions,
            source=source,
            prefixes=prefixes,
            countries=countries,
        )

    def lookup(self, national: int) -> NumberingRange | None:
        """The range holding a 10-digit national number (``9228711345``), or None."""
        i = bisect_right(self._starts, national) - 1
        if i < 0 or national > self._ends[i]:
            return None
        return NumberingRange(
            first=self._starts[i],
            last=self._ends[i],
            operator=self.operators[self._operator_ids[i]],
            region=self.regions[self._region_ids[i]],
        )

    def lookup_ids(self, national: int) -> tuple[int, int] | None:
        """Operator and region table indexes for a national number; the allocation-free path."""
        i = bisect_right(self._starts, national) - 1
        if i < 0 or national > self._ends[i]:
            return None
        return self._operator_ids[i], self._region_ids[i]

    def prefix_region(self, national: str) -> Region | None:
        """Region of a geographic number by its longest known national prefix."""
        for length in range(min(6, len(national)), 0, -1):
            region_id = self.prefixes.get(national[:length])
            if region_id is not None:
                return self.regions[region_id]
        return None

    def to_bytes(self) -> bytes:
        header = json.dumps(
            {
                "count": len(self._starts),
                "operators": [[o.name, o.inn] for o in self.operators],
                "regions": [[r.name, r.timezone] for r in self.regions],
                "source": self.source,
                "prefixes": self.prefixes,
                "countries": self.countries,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        raw = b"".join(
            (
                MAGIC,
                _HEADER_LEN.pack(len(header)),
                header,
                _little_endian(self._starts),
                _little_endian(self._ends),
                _little_endian(self._operator_ids),
                _little_endian(self._region_ids),
            )
        )
        return zlib.compress(raw, 9)

    @classmethod
    def from_bytes(cls, data: bytes) -> NumberingIndex:
        try:
            raw = zlib.decompress(data)
        except zlib.error as exc:
            raise NumberingFormatError("файл индекса нумерации повреждён") from exc
        if not raw.startswith(MAGIC):
            raise NumberingFormatError("это не файл индекса нумерации")
        pos = len(MAGIC)
        (header_len,) = _HEADER_LEN.unpack_from(raw, pos)
        pos += _HEADER_LEN.size
        try:
            header = json.loads(raw[pos : pos + header_len].decode("utf-8"))
            count = int(header["count"])
            operators = [
                Operator(name=str(n), inn=str(i)) for n, i in header["operators"]
            ]
            regions = [
                Region(name=str(n), timezone=tz or None) for n, tz in header["regions"]
            ]
            prefixes = {str(p): int(i) for p, i in header.get("prefixes", {}).items()}
            countries = {str(c): str(n) for c, n in header.get("countries", {}).items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise NumberingFormatError("заголовок индекса нумерации повреждён") from exc
        pos += header_len
        expected = pos + count * (8 + 8 + 2 + 2)
        if len(raw) != expected:
            raise NumberingFormatError(
                "длина индекса нумерации не совпадает с заголовком"
            )
        starts = _from_little_endian("q", raw[pos : pos + 8 * count])
        pos += 8 * count
        ends = _from_little_endian("q", raw[pos : pos + 8 * count])
        pos += 8 * count
        op_ids = _from_little_endian("H", raw[pos : pos + 2 * count])
        pos += 2 * count
        region_ids = _from_little_endian("H", raw[pos : pos + 2 * count])
        return cls(
            starts=starts,
            ends=ends,
            operator_ids=op_ids,
            region_ids=region_ids,
            operators=operators,
            regions=regions,
            source=str(header.get("source", "")),
            prefixes=prefixes,
            countries=countries,
        )

    def save(self, path: Path) -> None:
        """Write atomically: a reader never sees a half-written index."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self.to_bytes())
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> NumberingIndex:
        return cls.from_bytes(path.read_bytes())


def shipped_index_path() -> Path:
    return Path(str(resources.files("sipspeak.crm").joinpath("data/numbering.bin")))


def shipped_regions_path() -> Path:
    return Path(str(resources.files("sipspeak.crm").joinpath("data/regions.csv")))


_index_file: Path | None = None


def use_index_file(path: Path | None) -> None:
    """Load the index from ``path`` from now on (a refreshed index in the data directory,
    which a reinstall of the package does not overwrite); ``None`` returns to the shipped one."""
    global _index_file
    _index_file = path
    default_index.cache_clear()


@lru_cache(maxsize=1)
def default_index() -> NumberingIndex:
    """The index in use, loaded once per process: a refreshed one if set, else the shipped one."""
    return NumberingIndex.load(_index_file if _index_file is not None else shipped_index_path())
