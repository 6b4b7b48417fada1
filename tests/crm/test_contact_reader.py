"""Reading contact files: XLSX (shared and inline strings, dates), CSV, layout, preview."""

from __future__ import annotations

import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipspeak.crm.contact_fields import guess_field, guess_mapping, validate_mapping
from sipspeak.crm.contact_reader import ImportFileError, OpenedTable, open_reader
from sipspeak.crm.contacts_import import preview_file
from sipspeak.crm.xlsx_stream import XlsxSheetReader

ROWS: list[list[object]] = [
    [
        "Тел.",
        "E-mail",
        "ФИО",
        "Дата рожд.",
        "Должность",
        "Город",
        "Адрес",
        "Описание",
        "Источник",
    ],
    [
        "8 (922) 871-13-45",
        "a@b.ru",
        "Петров Пётр",
        datetime(1980, 5, 17),
        "инженер",
        "Оренбург",
        "ул. Ленина, 1",
        "тест",
        "выставка",
    ],
    [79171959395, None, "Анна", "17.05.1980", None, "Астрахань", None, None, None],
    [
        "+7 913 506 86 81",
        "c@d.ru",
        "Иван & Co <b>",
        "1980-05-17",
        None,
        None,
        None,
        "x",
        "сайт",
    ],
]


def write_xlsx(
    path: Path, rows: list[list[object]], *, write_only: bool = False
) -> Path:
    workbook = openpyxl.Workbook(write_only=write_only)
    sheet = workbook.create_sheet("Контакты") if write_only else workbook.active
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def read_all(path: Path) -> list[tuple[int, list[object]]]:
    with OpenedTable(path) as reader:
        return list(reader.rows())


@pytest.mark.parametrize("write_only", [False, True])
def test_xlsx_values_match_openpyxl(tmp_path: Path, write_only: bool) -> None:
    path = write_xlsx(tmp_path / "base.xlsx", ROWS, write_only=write_only)
    expected = [
        list(r)
        for r in openpyxl.load_workbook(path, read_only=True).active.iter_rows(
            values_only=True
        )
    ]
    rows = read_all(path)
    assert [n for n, _ in rows] == [1, 2, 3, 4]
    for (_, got), want in zip(rows, expected, strict=True):
        assert got + [None] * (len(want) - len(got)) == want


def test_xlsx_reader_sees_gaps_and_sparse_rows(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet["A1"] = "phone"
    sheet["C5"] = "9228711345"
    sheet["A5"] = 79228711345
    sheet["AB5"] = "far"
    workbook.save(tmp_path / "sparse.xlsx")
    rows = dict(read_all(tmp_path / "sparse.xlsx"))
    assert rows[1] == ["phone"]
    assert rows[5][0] == 79228711345
    assert rows[5][2] == "9228711345"
    assert rows[5][27] == "far"
    assert 2 not in rows  # rows missing in the file are not invented


def test_xlsx_reads_date_and_boolean_cells(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["phone", "birth_date", "flag", "score"])
    sheet.append(["9228711345", date(1990, 1, 2), True, 1.5])
    sheet["B2"].number_format = "DD.MM.YYYY"
    workbook.save(tmp_path / "dates.xlsx")
    row = dict(read_all(tmp_path / "dates.xlsx"))[2]
    assert row[1] == datetime(1990, 1, 2)
    assert row[2] is True
    assert row[3] == 1.5


def test_xlsx_estimate_and_pieces_for_many_rows(tmp_path: Path) -> None:
    rows = [["phone", "note"]] + [[f"9{i:09d}", "x" * 200] for i in range(12_000)]
    path = write_xlsx(tmp_path / "big.xlsx", rows, write_only=True)
    reader = XlsxSheetReader(path)
    try:
        assert reader.total_rows_estimate is not None
        assert 8_000 < reader.total_rows_estimate < 16_000
        numbers = [n for n, _ in reader.rows()]
    finally:
        reader.close()
    assert numbers == list(range(1, 12_002))  # pieces are cut at row boundaries only


def test_corrupt_xlsx_is_rejected(tmp_path: Path) -> None:
    good = write_xlsx(tmp_path / "good.xlsx", ROWS)
    truncated = tmp_path / "truncated.xlsx"
    truncated.write_bytes(good.read_bytes()[:700])
    with pytest.raises(ImportFileError, match="повреждён"):
        read_all(truncated)
    not_zip = tmp_path / "fake.xlsx"
    not_zip.write_bytes(b"this is not a workbook")
    with pytest.raises(ImportFileError):
        read_all(not_zip)


def test_broken_sheet_xml_fails_while_reading(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xlsx"
    with (
        zipfile.ZipFile(write_xlsx(tmp_path / "good.xlsx", ROWS)) as src,
        zipfile.ZipFile(broken, "w") as dst,
    ):
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"</row>", b"</rwo>", 2)
            dst.writestr(item, data)
    with pytest.raises(ImportFileError, match="повреждён"):
        read_all(broken)


def test_old_xls_and_empty_files_get_clear_errors(tmp_path: Path) -> None:
    xls = tmp_path / "old.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    with pytest.raises(ImportFileError, match="XLS"):
        open_reader(xls)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ImportFileError, match="пуст"):
        open_reader(empty)


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [("utf-8-sig", ";"), ("cp1251", ";"), ("utf-8", ","), ("cp1251", "\t")],
)
def test_csv_encoding_and_delimiter_are_detected(
    tmp_path: Path, encoding: str, delimiter: str
) -> None:
    lines = [
        "Телефон;ФИО;Город",
        '89228711345;"Петров; Пётр";Оренбург',
        "9171959395;Анна;Астрахань",
    ]
    text = "\r\n".join(
        line.replace(";", delimiter) if delimiter != ";" else line for line in lines
    )
    path = tmp_path / "base.csv"
    path.write_bytes(text.encode(encoding))
    rows = read_all(path)
    assert rows[0] == (1, ["Телефон", "ФИО", "Город"])
    assert rows[1][1][2] == "Оренбург"
    assert rows[2] == (3, ["9171959395", "Анна", "Астрахань"])


def test_csv_with_bad_bytes_after_the_sample_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    body = "phone;name\n" + "9228711345;Имя\n" * 80_000
    path.write_bytes(body.encode("utf-8") + b"9228711345;\xff\xfe\n")
    with pytest.raises(ImportFileError, match="кодировки"):
        read_all(path)


def test_header_guess_in_russian_and_english() -> None:
    assert guess_field("Тел.") == "phone"
    assert guess_field("Телефон") == "phone"
    assert guess_field("PHONE") == "phone"
    assert guess_field("E-mail") == "email"
    assert guess_field("ФИО") == "full_name"
    assert guess_field("full_name") == "full_name"
    assert guess_field("Дата рождения") == "birth_date"
    assert guess_field("Дата рожд.") == "birth_date"
    assert guess_field("Что-то своё") is None
    assert guess_field("Моб. телефон") == "phone"
    assert guess_field("Телефон 2") == "phone"
    assert guess_field("Эл. почта") == "email"
    assert guess_field("Дата рождения клиента") == "birth_date"
    assert guess_field("Комментарий менеджера") == "description"
    mapping = guess_mapping(["Телефон", "Мобильный", "ФИО", "", "Источник"])
    assert mapping == [
        "phone",
        "custom:Мобильный",
        "full_name",
        "ignore",
        "custom:Источник",
    ]
    assert validate_mapping(mapping) == []
    problems = validate_mapping(["email", "email"])
    assert [str(p) for p in problems] == [
        "Поле «E-mail» выбрано дважды.",
        "Не выбран столбец с телефоном.",
    ]
    assert [p.render("en") for p in problems] == [
        "Field “E-mail” is chosen twice.",
        "No phone column is chosen.",
    ]


def test_preview_finds_header_below_a_title(tmp_path: Path) -> None:
    rows: list[list[object]] = [["База на апрель"], [], *ROWS]
    preview = preview_file(write_xlsx(tmp_path / "titled.xlsx", rows), limit=2)
    assert preview.header_row == 3
    assert preview.mapping[:8] == [
        "phone",
        "email",
        "full_name",
        "birth_date",
        "position",
        "city",
        "address",
        "description",
    ]
    assert preview.mapping[8] == "custom:Источник"
    assert preview.rows[0][0] == "8 (922) 871-13-45"
    assert preview.rows[1][0] == "79171959395"
    assert len(preview.rows) == 2
    assert preview.problems == []


def test_preview_without_header_finds_the_phone_column(tmp_path: Path) -> None:
    path = tmp_path / "bare.csv"
    path.write_text("Петров;89228711345\nАнна;+7 917 195-93-95\n", encoding="utf-8")
    preview = preview_file(path)
    assert preview.header_row is None
    assert preview.headers == ["Столбец A", "Столбец B"]
    assert preview.mapping == ["ignore", "phone"]
    assert preview.rows == [["Петров", "89228711345"], ["Анна", "+7 917 195-93-95"]]


def test_preview_of_file_without_phone_reports_it(tmp_path: Path) -> None:
    path = tmp_path / "names.csv"
    path.write_text("ФИО;Город\nПетров;Омск\n", encoding="utf-8")
    preview = preview_file(path)
    assert preview.header_row == 1
    assert "Не выбран столбец с телефоном." in [str(p) for p in preview.problems]


_CELL = st.one_of(
    st.none(),
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs", "Cc")
        ),  # no surrogates/controls
        min_size=1,
        max_size=40,
    ).filter(lambda s: not s.startswith("=")),  # "=…" would be stored as a formula
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.lists(st.lists(_CELL, min_size=1, max_size=6), min_size=1, max_size=8),
    shared=st.booleans(),
)
def test_xlsx_reader_agrees_with_openpyxl(
    tmp_path: Path, rows: list[list[object]], shared: bool
) -> None:
    path = write_xlsx(tmp_path / "any.xlsx", rows, write_only=not shared)
    expected = [
        list(r)
        for r in openpyxl.load_workbook(path, read_only=True).active.iter_rows(
            values_only=True
        )
    ]
    got = dict(read_all(path))
    for number, want in enumerate(expected, start=1):
        have = got.get(number, [])
        have = have + [None] * (len(want) - len(have))
        assert have == want


def test_pieces_cut_anywhere_give_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sipspeak.crm import xlsx_stream

    rows: list[list[object]] = [["phone", "note"]] + [
        [f"9{i:09d}", f"строка <{i}> & «кавычки»"] for i in range(300)
    ]
    for write_only in (False, True):
        path = write_xlsx(
            tmp_path / f"rows{write_only}.xlsx", rows, write_only=write_only
        )
        whole = read_all(path)
        for chunk in (7, 64, 333):
            monkeypatch.setattr(xlsx_stream, "_CHUNK_BYTES", chunk)
            assert read_all(path) == whole
        monkeypatch.undo()
        assert [v for _, v in whole] == rows


def test_csv_sep_line_and_multiline_values(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_text(
        'sep=,\r\nphone,description\r\n9228711345,"две\r\nстроки"\r\n9171959395,одна\r\n',
        encoding="utf-8-sig",
    )
    rows = read_all(path)
    assert rows == [
        (1, ["phone", "description"]),
        (2, ["9228711345", "две\r\nстроки"]),
        (3, ["9171959395", "одна"]),
    ]


def test_blank_rows_above_the_table_are_skipped(tmp_path: Path) -> None:
    rows: list[list[object]] = [[None]] * 40 + [
        ["Телефон", "ФИО"],
        ["89228711345", "Петров"],
    ]
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for number, row in enumerate(rows, start=1):
        for column, value in enumerate(row, start=1):
            sheet.cell(
                row=number, column=column, value=value if value is not None else ""
            )
    path = tmp_path / "blank-top.xlsx"
    workbook.save(path)
    preview = preview_file(path)
    assert preview.header_row == 41
    assert preview.mapping == ["phone", "full_name"]
    assert preview.rows == [["89228711345", "Петров"]]


def test_chart_sheet_before_the_table_is_skipped(tmp_path: Path) -> None:
    from openpyxl.chart import BarChart, Reference

    workbook = openpyxl.Workbook()
    table = workbook.active
    table.append(["phone", "calls"])
    table.append(["9228711345", 3])
    chart_sheet = workbook.create_chartsheet("Диаграмма", 0)
    chart = BarChart()
    chart.add_data(
        Reference(table, min_col=2, min_row=1, max_row=2), titles_from_data=True
    )
    chart_sheet.add_chart(chart)
    path = tmp_path / "chart-first.xlsx"
    workbook.save(path)
    assert read_all(path) == [(1, ["phone", "calls"]), (2, ["9228711345", 3])]


def test_endless_row_is_refused_without_eating_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sipspeak.crm import xlsx_stream

    good = write_xlsx(tmp_path / "good.xlsx", [["phone"], ["9228711345"]])
    hostile = tmp_path / "hostile.xlsx"
    with (
        zipfile.ZipFile(good) as src,
        zipfile.ZipFile(hostile, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                cells = b"<c><v>1</v></c>" * 200_000  # one row, never closed
                data = data.replace(b"<sheetData>", b"<sheetData><row>" + cells)
            dst.writestr(item.filename, data)
    monkeypatch.setattr(xlsx_stream, "MAX_ITEM_BYTES", 1 << 20)
    with pytest.raises(ImportFileError, match="длиннее"):
        read_all(hostile)


@pytest.mark.parametrize(
    ("old", "new"),
    [(b'<row r="2"', b'<row r="two"'), (b'<c r="A2"', b'<c r="2A"')],
)
def test_garbage_attributes_are_a_damaged_file(
    tmp_path: Path, old: bytes, new: bytes
) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["phone"])
    sheet.append([79228711345])
    good = tmp_path / "good.xlsx"
    workbook.save(good)
    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                assert old in data
                data = data.replace(old, new)
            dst.writestr(item, data)
    with pytest.raises(ImportFileError, match="повреждён"):
        read_all(broken)
