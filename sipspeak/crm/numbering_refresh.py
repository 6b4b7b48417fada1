"""``sipspeak numbering refresh``: rebuild the shipped numbering index from the regulator's CSV.

    sipspeak numbering refresh DEF-9xx.csv [ABC-3xx.csv ...] [--output PATH] [--regions PATH]
    sipspeak numbering refresh --url https://opendata.digital.gov.ru/downloads/
    sipspeak numbering refresh DEF-9xx.csv --add-regions   # also extend regions.csv

With ``--url`` the four extracts (``ABC-3xx.csv``, ``ABC-4xx.csv``, ``ABC-8xx.csv``,
``DEF-9xx.csv``) are downloaded from that base address; a URL ending in ``.csv`` is fetched
alone. The open-data site may present a certificate of the Russian Trusted Root CA, which must
then be installed in the system trust store. The new index replaces the old one only when every
file has been read and checked.
"""

from __future__ import annotations

import argparse
import sys
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from sipspeak.crm.numbering import shipped_index_path, shipped_regions_path
from sipspeak.crm.numbering_build import (
    NumberingSourceError,
    build_index,
    country_names,
    decode_source,
    geographic_prefixes,
    read_region_zones,
    read_sources,
)

DEFAULT_URL = "https://opendata.digital.gov.ru/downloads/"
EXTRACT_NAMES = ("ABC-3xx.csv", "ABC-4xx.csv", "ABC-8xx.csv", "DEF-9xx.csv")
DOWNLOAD_TIMEOUT_S = 120.0


def download_sources(
    url: str, *, timeout: float = DOWNLOAD_TIMEOUT_S
) -> list[tuple[str, str]]:
    urls = (
        [url]
        if url.lower().endswith(".csv")
        else [url.rstrip("/") + "/" + n for n in EXTRACT_NAMES]
    )
    sources = []
    for address in urls:
        with urllib.request.urlopen(address, timeout=timeout) as response:
            sources.append((address.rsplit("/", 1)[-1], decode_source(response.read())))
    return sources


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sipspeak numbering refresh",
        description="Пересобрать индекс нумерации (оператор, регион, часовой пояс) из выписки реестра.",
    )
    parser.add_argument(
        "files",
        nargs="*",
        type=Path,
        help="CSV-файлы выписки (ABC-3xx.csv, DEF-9xx.csv …)",
    )
    parser.add_argument(
        "--url",
        nargs="?",
        const=DEFAULT_URL,
        default=None,
        help=f"скачать выписку (по умолчанию {DEFAULT_URL})",
    )
    parser.add_argument(
        "--regions",
        type=Path,
        default=None,
        help="таблица регион → часовой пояс (region;tz;note)",
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="куда записать индекс"
    )
    parser.add_argument(
        "--add-regions",
        action="store_true",
        help="дописать новые названия регионов в таблицу (с поясом, подобранным по названию)",
    )
    return parser


def append_regions(path: Path, missing: dict[str, str | None]) -> int:
    """Append new region strings to ``regions.csv``, marked for review; returns how many."""
    known = read_region_zones(path.read_text(encoding="utf-8-sig"))
    lines = [
        f"{name};{tz or ''};добавлено при обновлении: "
        f"{'пояс по ключевому слову' if tz else 'пояс не найден'}, проверьте\n"
        for name, tz in sorted(missing.items())
        if name not in known and ";" not in name
    ]
    if lines:
        text = path.read_text(encoding="utf-8-sig")
        sep = "" if text.endswith("\n") else "\n"
        path.write_text(text + sep + "".join(lines), encoding="utf-8")
    return len(lines)


def main(argv: Sequence[str], *, out: TextIO | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 1 bad data, 2 bad arguments)."""
    stream = out if out is not None else sys.stdout
    parser = _parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    if not args.files and args.url is None:
        print("Укажите CSV-файлы выписки или --url.", file=stream)
        return 2
    regions_path: Path = args.regions or shipped_regions_path()
    output: Path = args.output or shipped_index_path()
    try:
        zones = read_region_zones(regions_path.read_text(encoding="utf-8-sig"))
        sources = read_sources(args.files)
        if args.url is not None:
            print(f"Скачиваю выписку: {args.url}", file=stream)
            sources += download_sources(args.url)
        note = f"{', '.join(name for name, _ in sources)}; собран {datetime.now(UTC):%Y-%m-%d}"
        index, report = build_index(
            sources,
            zones,
            source_note=note,
            prefixes=geographic_prefixes(),
            countries=country_names(),
        )
    except (OSError, NumberingSourceError, UnicodeDecodeError) as exc:
        print(f"Индекс не обновлён: {exc}", file=stream)
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    index.save(output)
    print(
        f"Записан {output}: строк {report.rows}, диапазонов {report.ranges}, "
        f"операторов {report.operators}, регионов {report.regions}, "
        f"без часового пояса {report.no_zone_rows} строк.",
        file=stream,
    )
    if report.missing_regions:
        print(
            f"Новые названия регионов, которых нет в {regions_path.name} "
            "(добавьте их в таблицу; пояс подобран по названию субъекта):",
            file=stream,
        )
        for name, tz in sorted(report.missing_regions.items()):
            print(
                f"{name};{tz or ''};{'по ключевому слову' if tz else 'пояс не найден'}",
                file=stream,
            )
        if args.add_regions:
            added = append_regions(regions_path, report.missing_regions)
            print(f"Добавлено в {regions_path}: {added}.", file=stream)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
