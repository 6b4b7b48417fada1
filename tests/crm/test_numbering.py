"""Numbering index: building from the regulator's CSV, the file format, the shipped index."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sipspeak.crm.enrichment import Enricher, utc_offset
from sipspeak.crm.numbering import (
    NumberingFormatError,
    NumberingIndex,
    default_index,
    shipped_index_path,
)
from sipspeak.crm.numbering_build import (
    NumberingSourceError,
    build_index,
    display_operator_name,
    read_region_zones,
)
from sipspeak.crm.numbering_refresh import main as refresh_main

ORIGINAL_HEADER = "АВС/ DEF;От;До;Емкость;Оператор;Регион;Территория ГАР;ИНН"
ZONES = {
    "Оренбургская обл.": "Asia/Yekaterinburg",
    "Астраханская область": "Europe/Astrakhan",
    "Красноярский край": "Asia/Krasnoyarsk",
    "-": None,
    "Российская Федерация": None,
}


def extract(*rows: str, header: str = ORIGINAL_HEADER) -> str:
    return "\n".join((header, *rows)) + "\n"


def build(text: str, zones: dict[str, str | None] | None = None) -> NumberingIndex:
    index, _ = build_index([("DEF-9xx.csv", text)], zones or ZONES)
    return index


def test_lookup_finds_range_and_respects_bounds() -> None:
    index = build(
        extract(
            '922;8000000;8999999;1000000;ПАО "МЕГАФОН";Оренбургская обл.;Оренбургская обл.;7812014560',
            '917;1700000;1999999;300000;ПАО "МТС";-;Астраханская область;7740000076',
        )
    )
    hit = index.lookup(9228711345)
    assert hit is not None
    assert (hit.first, hit.last) == (9228000000, 9228999999)
    assert hit.region.name == "Оренбургская обл."
    assert hit.region.timezone == "Asia/Yekaterinburg"
    assert index.lookup(9227999999) is None
    assert index.lookup(9229000000) is None
    assert index.lookup(9171700000) is not None
    assert index.lookup(9171999999) is not None
    assert index.lookup(9000000000) is None


def test_placeholder_region_uses_gar_territory() -> None:
    index = build(
        extract(
            '917;1700000;1999999;300000;ПАО "МТС";-;Астраханская область;7740000076'
        )
    )
    hit = index.lookup(9171959395)
    assert hit is not None
    assert hit.region.name == "Астраханская область"
    assert hit.region.timezone == "Europe/Astrakhan"


def test_one_display_name_per_inn() -> None:
    index = build(
        extract(
            '913;4900000;5399999;500000;ПАО "Мобильные ТелеСистемы";Красноярский край;Красноярский край;7740000076',
            '917;1700000;1999999;300000;ПАО "МТС";-;Астраханская область;7740000076',
            '917;2000000;2099999;100000;ПАО "МТС";-;Астраханская область;7740000076',
        )
    )
    a, b = index.lookup(9135068681), index.lookup(9171959395)
    assert a is not None and b is not None
    assert a.operator == b.operator
    assert a.operator.inn == "7740000076"
    assert a.operator.name == "ПАО «Мобильные ТелеСистемы»"
    assert len(index.operators) == 1


def test_display_name_prefers_mixed_case_then_frequency() -> None:
    assert (
        display_operator_name({'ПАО "МЕГАФОН"': 1286, 'ПАО "МегаФон"': 121})
        == "ПАО «МегаФон»"
    )
    assert (
        display_operator_name({'ООО "МКС"': 9, 'ООО "МОБИЛЬНЫЕ СИСТЕМЫ"': 6})
        == "ООО «МКС»"
    )


def test_adjacent_ranges_with_same_attributes_are_merged() -> None:
    index = build(
        extract(
            '917;1700000;1799999;100000;ПАО "МТС";-;Астраханская область;7740000076',
            '917;1800000;1999999;200000;ПАО "МТС";-;Астраханская область;7740000076',
            '917;2000000;2099999;100000;ПАО "МТС";Оренбургская обл.;Оренбургская обл.;7740000076',
        )
    )
    assert len(index) == 2
    hit = index.lookup(9171750000)
    assert hit is not None and (hit.first, hit.last) == (9171700000, 9171999999)


def test_capacity_mismatch_is_reported_with_line() -> None:
    text = extract(
        '922;8000000;8999999;999999;ПАО "МЕГАФОН";Оренбургская обл.;Оренбургская обл.;1'
    )
    with pytest.raises(NumberingSourceError, match=r"DEF-9xx.csv:2: ёмкость 999999"):
        build(text)


def test_overlap_is_reported() -> None:
    text = extract(
        '922;8000000;8999999;1000000;ПАО "МЕГАФОН";Оренбургская обл.;Оренбургская обл.;1',
        '922;8500000;8599999;100000;ПАО "МЕГАФОН";Оренбургская обл.;Оренбургская обл.;1',
    )
    with pytest.raises(NumberingSourceError, match="перекрывает"):
        build(text)


def test_missing_columns_are_reported() -> None:
    with pytest.raises(NumberingSourceError, match="нет столбцов"):
        build("Оператор;Регион\nX;Y\n")


def test_old_cp1251_extract_without_gar_and_inn(tmp_path: Path) -> None:
    old = extract(
        "922;8000000;8999999;1000000;ОАО МегаФон;Оренбургская обл.",
        header="АВС/ DEF;От;До;Емкость;Оператор;Регион",
    )
    src = tmp_path / "DEF-9xx.csv"
    src.write_bytes(old.encode("cp1251"))
    regions = tmp_path / "regions.csv"
    regions.write_text(
        "region;tz;note\nОренбургская обл.;Asia/Yekaterinburg;\n", encoding="utf-8"
    )
    out = tmp_path / "numbering.bin"
    log = io.StringIO()
    assert (
        refresh_main(
            [str(src), "--regions", str(regions), "--output", str(out)], out=log
        )
        == 0
    )
    hit = NumberingIndex.load(out).lookup(9228711345)
    assert hit is not None
    assert hit.operator.name == "ОАО МегаФон"
    assert hit.region.timezone == "Asia/Yekaterinburg"


def test_new_region_string_gets_keyword_zone_and_is_reported(tmp_path: Path) -> None:
    src = tmp_path / "DEF-9xx.csv"
    src.write_text(
        extract(
            '922;8000000;8999999;1000000;ПАО "МЕГАФОН";Оренбургская область (новая запись);-;1',
            '923;0000000;0999999;1000000;ПАО "МЕГАФОН";Неизвестная земля;-;1',
        ),
        encoding="utf-8-sig",
    )
    regions = tmp_path / "regions.csv"
    regions.write_text(
        "region;tz;note\nОренбургская обл.;Asia/Yekaterinburg;\n", encoding="utf-8"
    )
    out = tmp_path / "numbering.bin"
    log = io.StringIO()
    assert (
        refresh_main(
            [str(src), "--regions", str(regions), "--output", str(out)], out=log
        )
        == 0
    )
    report = log.getvalue()
    assert (
        "Оренбургская область (новая запись);Asia/Yekaterinburg;по ключевому слову"
        in report
    )
    assert "Неизвестная земля;;пояс не найден" in report
    index = NumberingIndex.load(out)
    hit = index.lookup(9228711345)
    assert hit is not None and hit.region.timezone == "Asia/Yekaterinburg"
    other = index.lookup(9230000001)
    assert other is not None and other.region.timezone is None
    assert (
        refresh_main(
            [
                str(src),
                "--regions",
                str(regions),
                "--output",
                str(out),
                "--add-regions",
            ],
            out=log,
        )
        == 0
    )
    table = read_region_zones(regions.read_text(encoding="utf-8"))
    assert table["Оренбургская область (новая запись)"] == "Asia/Yekaterinburg"
    assert table["Неизвестная земля"] is None
    assert table["Оренбургская обл."] == "Asia/Yekaterinburg"
    again = io.StringIO()
    assert (
        refresh_main(
            [str(src), "--regions", str(regions), "--output", str(out)], out=again
        )
        == 0
    )
    assert "Новые названия" not in again.getvalue()


def test_refresh_keeps_old_index_when_source_is_bad(tmp_path: Path) -> None:
    out = tmp_path / "numbering.bin"
    out.write_bytes(b"previous")
    src = tmp_path / "DEF-9xx.csv"
    src.write_text(
        extract('922;8000000;8999999;5;ПАО "МЕГАФОН";-;-;1'), encoding="utf-8"
    )
    log = io.StringIO()
    assert refresh_main([str(src), "--output", str(out)], out=log) == 1
    assert "Индекс не обновлён" in log.getvalue()
    assert out.read_bytes() == b"previous"


def test_refresh_without_sources_is_a_usage_error() -> None:
    assert refresh_main([], out=io.StringIO()) == 2


def test_round_trip_and_damage_detection() -> None:
    index = build(
        extract('922;8000000;8999999;1000000;ПАО "МЕГАФОН";Оренбургская обл.;-;1')
    )
    data = index.to_bytes()
    again = NumberingIndex.from_bytes(data)
    assert again.lookup(9228711345) == index.lookup(9228711345)
    with pytest.raises(NumberingFormatError):
        NumberingIndex.from_bytes(data[:-5])
    with pytest.raises(NumberingFormatError):
        NumberingIndex.from_bytes(b"not an index")


def test_region_table_parsing_keeps_empty_zones() -> None:
    zones = read_region_zones(
        "region;tz;note\n-;;placeholder\nОмская обл.;Asia/Omsk;UTC+06:00\n"
    )
    assert zones == {"-": None, "Омская обл.": "Asia/Omsk"}


# The README's check table (numbers from a product screenshot).
CHECKS = [
    ("+79228711345", "7812014560", "Оренбургская обл.", "Asia/Yekaterinburg", "+05:00"),
    ("+79171959395", "7740000076", "Астраханская обл.", "Europe/Astrakhan", "+04:00"),
    ("+79135068681", "7740000076", "Красноярский край", "Asia/Krasnoyarsk", "+07:00"),
]


@pytest.mark.parametrize(("phone", "inn", "region", "zone", "offset"), CHECKS)
def test_shipped_index_matches_readme_checks(
    phone: str, inn: str, region: str, zone: str, offset: str
) -> None:
    hit = default_index().lookup(int(phone[2:]))
    assert hit is not None
    assert hit.operator.inn == inn
    assert hit.region.name == region
    assert hit.region.timezone == zone
    info = Enricher(default_index()).info(phone)
    assert info.carrier == hit.operator.name
    assert utc_offset(info.timezone, datetime(2026, 11, 26, 12, tzinfo=UTC)) == offset


def test_shipped_index_operator_names() -> None:
    megafon = default_index().lookup(9228711345)
    mts = default_index().lookup(9171959395)
    assert megafon is not None and mts is not None
    assert "мегафон" in megafon.operator.name.lower()
    assert mts.operator.name == "ПАО «Мобильные ТелеСистемы»"


def test_shipped_index_is_compact_and_covers_the_snapshot() -> None:
    assert shipped_index_path().stat().st_size < 300_000
    index = default_index()
    assert len(index) > 10_000
    assert len(index.operators) < 200
    assert all(r.timezone for r in index.regions if r.name != "Российская Федерация")


def test_geographic_prefixes_travel_in_the_index() -> None:
    index, _ = build_index(
        [
            (
                "DEF-9xx.csv",
                extract(
                    '922;8000000;8999999;1000000;ПАО "МЕГАФОН";-;Оренбургская обл.;1'
                ),
            )
        ],
        ZONES,
        prefixes={
            "3532": "Оренбургская обл.",
            "391": "Красноярский край",
            "35": "Нигде",
        },
    )
    again = NumberingIndex.from_bytes(index.to_bytes())
    region = again.prefix_region("3532123456")
    assert region is not None and region.timezone == "Asia/Yekaterinburg"
    krsk = again.prefix_region("3912123456")
    assert krsk is not None and krsk.name == "Красноярский край"
    fallback = again.prefix_region("3512000000")
    assert fallback is not None and fallback.name == "Нигде"
    assert again.prefix_region("4951234567") is None


def test_shipped_index_has_russian_geographic_prefixes() -> None:
    index = default_index()
    moscow = index.prefix_region("4957777777")
    assert moscow is not None and moscow.timezone == "Europe/Moscow"
    assert index.prefix_region("8001234567") is None
    assert all(index.regions[i].timezone for i in index.prefixes.values())


def test_refresh_downloads_from_url(tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = extract(
        '922;8000000;8999999;1000000;ПАО "МЕГАФОН";Оренбургская обл.;Оренбургская обл.;7812014560'
    ).encode("utf-8-sig")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/downloads/DEF-9xx.csv" else 404)
            self.end_headers()
            self.wfile.write(body if self.path == "/downloads/DEF-9xx.csv" else b"")

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/downloads/DEF-9xx.csv"
        out = tmp_path / "numbering.bin"
        log = io.StringIO()
        assert refresh_main(["--url", url, "--output", str(out)], out=log) == 0
        hit = NumberingIndex.load(out).lookup(9228711345)
        assert hit is not None and hit.operator.inn == "7812014560"
        missing = f"http://127.0.0.1:{server.server_address[1]}/downloads/"
        assert refresh_main(["--url", missing, "--output", str(out)], out=log) == 1
        assert "Индекс не обновлён" in log.getvalue()
    finally:
        server.shutdown()
        server.server_close()


def test_many_bad_rows_are_summarised() -> None:
    bad = [f"922;{i:07d};{i:07d};5;X;-;-;1" for i in range(50)]
    with pytest.raises(NumberingSourceError) as info:
        build(extract(*bad))
    lines = str(info.value).splitlines()
    assert len(lines) == 21
    assert lines[-1] == "… и ещё 30 строк с ошибками"


def test_geographic_range_in_the_index_wins_over_the_prefix_table() -> None:
    index, _ = build_index(
        [
            (
                "ABC-3xx.csv",
                extract(
                    '353;2000000;2999999;1000000;ПАО "Ростелеком";Оренбургская обл.;-;7707049388'
                ),
            )
        ],
        ZONES,
        prefixes={"3532": "Оренбургская обл.", "391": "Красноярский край"},
    )
    enricher = Enricher(index)
    ranged = enricher.info("+73532123456")
    assert ranged.carrier == "ПАО «Ростелеком»"
    assert ranged.timezone == "Asia/Yekaterinburg"
    by_prefix = enricher.info("+73912123456")
    assert by_prefix.region == "Красноярский край" and by_prefix.carrier is None
