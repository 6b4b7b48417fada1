"""Build a :class:`NumberingIndex` from the regulator's CSV extracts.

Input: ``ABC-3xx.csv``, ``ABC-4xx.csv``, ``ABC-8xx.csv``, ``DEF-9xx.csv`` as published by
Минцифры (UTF-8 with BOM, ``;``; older extracts are cp1251 and lack ``Территория ГАР`` and
sometimes ``ИНН``), or the normalised copy with the header
``code;from;to;capacity;operator;region;gar_territory;inn``. Columns are found by header name.

Every row is checked: ``capacity == to - from + 1`` and no two ranges overlap. Region strings
are resolved to IANA zones with ``regions.csv`` (``region;tz;note``); ``-`` in ``Регион`` means
"use ``Территория ГАР``". Strings missing from the table get a zone by a keyword match on the
subject name ("Оренбургская" → the zone every known "Оренбургская …" string has) and are
reported, so that a person can add them to the table.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sipspeak.crm.numbering import IndexEntry, NumberingIndex, Operator, Region

FIELDS = (
    "code",
    "from",
    "to",
    "capacity",
    "operator",
    "region",
    "gar_territory",
    "inn",
)
REQUIRED = ("code", "from", "to", "operator")
PLACEHOLDER = "-"
MAX_REPORTED_ERRORS = 20


class NumberingSourceError(ValueError):
    """A source file cannot be used; the message lists the offending rows."""


def decode_source(data: bytes) -> str:
    """UTF-8 (with or without BOM), falling back to cp1251 for older extracts."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1251")


def _header_field(name: str) -> str | None:
    key = re.sub(r"\s+", "", name.strip().lower().replace("ё", "е"))
    if key in FIELDS:
        return key
    rules = (
        ("gar_territory", ("территория", "гар", "territory")),
        ("capacity", ("емкость", "capacity")),
        ("operator", ("оператор", "operator")),
        ("region", ("регион", "region")),
        ("inn", ("инн", "inn")),
        ("code", ("def", "abc", "авс", "авс/def", "код")),
    )
    for fieldname, words in rules:
        if any(word in key for word in words):
            return fieldname
    if key in ("от", "from"):
        return "from"
    if key in ("до", "to"):
        return "to"
    return None


@dataclass(frozen=True, slots=True)
class SourceRow:
    first: int
    last: int
    operator: str
    region: str
    gar_territory: str
    inn: str
    origin: str


def parse_source(text: str, *, origin: str) -> Iterator[SourceRow]:
    """Rows of one extract; raises :class:`NumberingSourceError` listing the bad rows."""
    lines = io.StringIO(text)
    first_line = lines.readline()
    delimiter = ";" if ";" in first_line else ("\t" if "\t" in first_line else ",")
    header = next(csv.reader([first_line], delimiter=delimiter), [])
    columns: dict[str, int] = {}
    for i, name in enumerate(header):
        fieldname = _header_field(name)
        if fieldname is not None and fieldname not in columns:
            columns[fieldname] = i
    missing = [f for f in REQUIRED if f not in columns]
    if missing:
        raise NumberingSourceError(
            f"{origin}: в заголовке нет столбцов {', '.join(missing)}"
        )
    errors: list[str] = []
    reader = csv.reader(lines, delimiter=delimiter)
    for cells in reader:
        line_no = reader.line_num + 1  # the header line was read before the reader
        if not any(c.strip() for c in cells):
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            i = columns.get(name)
            return cells[i].strip() if i is not None and i < len(cells) else ""

        try:
            code, start, end = int(cell("code")), int(cell("from")), int(cell("to"))
        except ValueError:
            errors.append(f"{origin}:{line_no}: код или границы диапазона не числа")
            continue
        if not (100 <= code <= 999 and 0 <= start <= end <= 9_999_999):
            errors.append(f"{origin}:{line_no}: неверный диапазон {code} {start}-{end}")
            continue
        capacity = cell("capacity")
        if capacity and (not capacity.isdigit() or int(capacity) != end - start + 1):
            errors.append(
                f"{origin}:{line_no}: ёмкость {capacity} не равна {end - start + 1}"
            )
            continue
        yield SourceRow(
            first=code * 10_000_000 + start,
            last=code * 10_000_000 + end,
            operator=cell("operator"),
            region=cell("region"),
            gar_territory=cell("gar_territory"),
            inn=cell("inn"),
            origin=f"{origin}:{line_no}",
        )
    if errors:
        more = len(errors) - MAX_REPORTED_ERRORS
        tail = [f"… и ещё {more} строк с ошибками"] if more > 0 else []
        raise NumberingSourceError("\n".join(errors[:MAX_REPORTED_ERRORS] + tail))


def read_region_zones(text: str) -> dict[str, str | None]:
    """``regions.csv`` → {region string: IANA zone or None}."""
    zones: dict[str, str | None] = {}
    reader = csv.reader(io.StringIO(text), delimiter=";")
    for i, cells in enumerate(reader):
        if i == 0 or not cells:
            continue
        zones[cells[0].strip()] = (cells[1].strip() if len(cells) > 1 else "") or None
    return zones


# Words that name the kind of subject, not the subject: they must not drive the keyword match.
_GENERIC_STEMS = frozenset(
    {
        "облас",
        "обл",
        "край",
        "респу",
        "автон",
        "округ",
        "город",
        "народ",
        "федер",
        "росси",
        "г.о.",
    }
)


def _stems(name: str) -> set[str]:
    words = re.findall(r"[а-яёa-z]+", name.lower().replace("ё", "е"))
    stems = {w[:5] for w in words if len(w) >= 4}
    return stems - _GENERIC_STEMS


class ZoneResolver:
    """Region string → zone, with the keyword fallback for strings the table does not have."""

    def __init__(self, zones: Mapping[str, str | None]) -> None:
        self._zones = dict(zones)
        self._by_stem: dict[str, set[str]] = defaultdict(set)
        for name, tz in zones.items():
            if tz:
                for stem in _stems(name):
                    self._by_stem[stem].add(tz)
        self.guessed: dict[str, str | None] = {}

    def known(self, name: str) -> bool:
        return name in self._zones

    def zone(self, name: str) -> str | None:
        if not name or name == PLACEHOLDER:
            return None
        if name in self._zones:
            return self._zones[name]
        if name not in self.guessed:
            found: set[str] = set()
            for stem in _stems(name):
                found |= self._by_stem.get(stem, set())
            self.guessed[name] = found.pop() if len(found) == 1 else None
        return self.guessed[name]


def _quoted_part(name: str) -> str:
    match = re.search(r"[\"«](.+)[\"»]", name)
    return match.group(1) if match else name


def display_operator_name(spellings: Mapping[str, int]) -> str:
    """One display name per INN: prefer a spelling in mixed case, then the most used one.

    ``ПАО "МТС"`` / ``ПАО "Мобильные ТелеСистемы"`` → ``ПАО «Мобильные ТелеСистемы»``.
    """

    def rank(item: tuple[str, int]) -> tuple[bool, int, int]:
        name, count = item
        quoted = _quoted_part(name)
        return (quoted != quoted.upper(), count, len(name))

    best = max(spellings.items(), key=rank)[0]
    return re.sub(r"\"([^\"]+)\"", r"«\1»", best)


@dataclass(slots=True)
class BuildReport:
    rows: int = 0
    ranges: int = 0
    operators: int = 0
    regions: int = 0
    missing_regions: dict[str, str | None] = field(default_factory=dict)
    no_zone_rows: int = 0


def geographic_prefixes() -> dict[str, str]:
    """National prefix → Russian region name of geographic numbers, from phonenumbers' geocoder.

    Only +7 3xx/4xx/8xx prefixes (``"3532"`` → ``"Оренбургская обл."``); +7 6xx/7xx belong to
    Kazakhstan. Importing the geocoder costs about 100 MB, so it happens only here, at build
    time, and the few dozen prefixes travel inside the index.
    """
    from phonenumbers.geodata import GEOCODE_DATA

    prefixes: dict[str, str] = {}
    for key, names in GEOCODE_DATA.items():
        name = names.get("ru")
        if key.startswith("7") and len(key) > 1 and key[1] in "348" and name:
            prefixes[key[1:]] = name.replace(
                "\u0301", ""
            )  # stress marks in a few names
    return prefixes


def country_names() -> dict[str, str]:
    """ISO region code → country name in Russian (``GB`` → ``Соединенное Королевство``)."""
    from phonenumbers.geodata.locale import LOCALE_DATA

    return {code: names["ru"] for code, names in LOCALE_DATA.items() if names.get("ru")}


def _zone_of_prefix(national_prefix: str) -> str | None:
    """The single zone phonenumbers gives a Russian prefix, or None when it gives several."""
    from phonenumbers import parse
    from phonenumbers.timezone import time_zones_for_geographical_number

    number = parse("+7" + national_prefix.ljust(10, "0"))
    zones = [
        z for z in time_zones_for_geographical_number(number) if z != "Etc/Unknown"
    ]
    return zones[0] if len(zones) == 1 else None


def build_index(
    sources: Iterable[tuple[str, str]],
    zones: Mapping[str, str | None],
    *,
    source_note: str = "",
    prefixes: Mapping[str, str] | None = None,
    countries: Mapping[str, str] | None = None,
) -> tuple[NumberingIndex, BuildReport]:
    """Index from ``(origin, text)`` extracts; raises :class:`NumberingSourceError`.

    ``prefixes``: national prefix → region name of geographic numbers (see
    :func:`geographic_prefixes`); their zones come from the region table, else phonenumbers.
    """
    """Index from ``(origin, text)`` extracts; raises :class:`NumberingSourceError`."""
    rows: list[SourceRow] = []
    for origin, text in sources:
        rows.extend(parse_source(text, origin=origin))
    if not rows:
        raise NumberingSourceError("в файлах нет ни одного диапазона")
    rows.sort(key=lambda r: r.first)
    overlaps = [
        f"{b.origin}: диапазон перекрывает {a.origin}"
        for a, b in itertools.pairwise(rows)
        if b.first <= a.last
    ]
    if overlaps:
        raise NumberingSourceError("\n".join(overlaps[:MAX_REPORTED_ERRORS]))

    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        spellings[row.inn or row.operator.upper()][row.operator] += 1
    operator_keys = sorted(spellings)
    operators = [
        Operator(
            name=display_operator_name(spellings[key]), inn=key if key.isdigit() else ""
        )
        for key in operator_keys
    ]
    operator_id = {key: i for i, key in enumerate(operator_keys)}

    resolver = ZoneResolver(zones)
    report = BuildReport(rows=len(rows))
    region_id: dict[tuple[str, str | None], int] = {}
    entries: list[IndexEntry] = []
    for row in rows:
        named = row.region if row.region and row.region != PLACEHOLDER else ""
        display = named or row.gar_territory
        tz = resolver.zone(named) or resolver.zone(row.gar_territory)
        for name in (named, row.gar_territory):
            if name and name != PLACEHOLDER and not resolver.known(name):
                report.missing_regions[name] = resolver.zone(name)
        if tz is None:
            report.no_zone_rows += 1
        key = (display, tz)
        if key not in region_id:
            region_id[key] = len(region_id)
        entries.append(
            IndexEntry(
                first=row.first,
                last=row.last,
                operator=operator_id[row.inn or row.operator.upper()],
                region=region_id[key],
            )
        )
    prefix_ids: dict[str, int] = {}
    for prefix, name in sorted((prefixes or {}).items()):
        tz = resolver.zone(name) or _zone_of_prefix(prefix)
        key = (name, tz)
        if key not in region_id:
            region_id[key] = len(region_id)
        prefix_ids[prefix] = region_id[key]
    regions = [Region(name=name, timezone=tz) for name, tz in region_id]
    index = NumberingIndex.from_entries(
        entries,
        operators=operators,
        regions=regions,
        source=source_note,
        prefixes=prefix_ids,
        countries=dict(countries or {}),
    )
    report.ranges = len(index)
    report.operators = len(operators)
    report.regions = len(regions)
    return index, report


def read_sources(paths: Sequence[Path]) -> list[tuple[str, str]]:
    return [(path.name, decode_source(path.read_bytes())) for path in paths]
