"""Contact import into a real SQLite database: counts, enrichment, duplicates, failures."""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from types import ModuleType

import openpyxl
import pytest

from sipspeak.crm.contacts_import import ImportFileError, ImportOptions, ImportProgress
from sipspeak.crm.contacts_store import import_into_project
from sipspeak.storage import Database

TODAY = date(2026, 11, 26)
BENCH = Path(__file__).resolve().parents[2] / "bench" / "import_base_generator.py"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_base_generator", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "sipspeak.sqlite3")
    try:
        yield database
    finally:
        await database.close()


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


HEADER: list[object] = [
    "phone",
    "email",
    "full_name",
    "birth_date",
    "position",
    "city",
    "address",
    "description",
]


async def test_generated_base_counts_match_the_generator(
    db: Database, tmp_path: Path
) -> None:
    generator = load_generator()
    path = tmp_path / "base.xlsx"
    made = generator.generate_base(path, rows=3000, seed=7)
    project = await db.projects.create(name="Проект")
    seen: list[ImportProgress] = []
    result = await import_into_project(
        db,
        project,
        path,
        options=ImportOptions(tags=["Тег 1"], batch_size=500),
        progress=seen.append,
    )
    assert result.rows == made.rows
    assert result.invalid == made.invalid
    assert result.duplicates_in_file == made.duplicates
    assert result.accepted == made.accepted
    assert (
        result.rejected_count == made.invalid + made.duplicates == len(result.rejected)
    )
    stored = await db.contacts.existing_phones(project)
    assert len(stored) == made.accepted
    assert all(p.startswith("+") for p in stored)
    upload = await db.uploads.get(result.upload_id)
    assert upload.tags == ("Тег 1",)
    assert (upload.rows_total, upload.rows_accepted, upload.rows_rejected) == (
        made.rows,
        made.accepted,
        made.invalid + made.duplicates,
    )
    assert [p.rows_done for p in seen] == sorted(p.rows_done for p in seen)
    assert seen[-1].rows_done == made.rows
    assert len(seen) >= made.rows // 500
    rows_rejected = [r.row for r in result.rejected]
    assert rows_rejected == sorted(rows_rejected) and rows_rejected[0] >= 2


async def test_enrichment_and_fields_are_stored(db: Database, tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "three.xlsx",
        [
            ["Тел.", "E-mail", "ФИО", "Дата рожд.", "Источник"],
            ["8 (922) 871-13-45", "a@b.ru", "Петров Пётр", "17-05-1980", "выставка"],
            [79171959395, None, "Анна", "17.05.1980", None],
            ["+7 (913) 506-86-81", None, None, 29358, "сайт"],
            ["+44 20 7946 0958", None, "Smith", None, None],
        ],
    )
    project = await db.projects.create(name="Проект")
    result = await import_into_project(db, project, path)
    assert result.accepted == 4 and result.rejected_count == 0
    contacts = {c.phone: c for c in await db.contacts.list(project_id=project)}
    megafon = contacts["+79228711345"]
    assert megafon.region == "Оренбургская обл."
    assert megafon.timezone == "Asia/Yekaterinburg"
    assert megafon.carrier is not None and "мегафон" in megafon.carrier.lower()
    assert megafon.birth_date == "1980-05-17"
    assert megafon.email == "a@b.ru"
    assert "выставка" in megafon.custom
    assert contacts["+79171959395"].timezone == "Europe/Astrakhan"
    assert contacts["+79171959395"].birth_date == "1980-05-17"
    assert (
        contacts["+79135068681"].birth_date == "1980-05-17"
    )  # Excel day 29358 = 25569 + 3789
    assert contacts["+442079460958"].timezone == "Europe/London"


async def test_invalid_fields_are_listed_with_row_and_reason(
    db: Database, tmp_path: Path
) -> None:
    path = write_xlsx(
        tmp_path / "bad.xlsx",
        [
            HEADER,
            ["9228711345", "not-an-email", None, None],
            ["9171959395", None, None, "31.02.1990"],
            ["12345", None, None, None],
            [None, "x@y.ru", "Без номера", None],
            ["9135068681", None, None, "2099-01-01"],
            ["9135068682", "ok@mail.ru", None, "1990-02-03"],
        ],
    )
    project = await db.projects.create(name="Проект")
    result = await import_into_project(db, project, path, today=TODAY)
    reasons = {r.row: str(r.reason) for r in result.rejected}
    assert reasons == {
        2: "неверный e-mail: not-an-email",
        3: "неверная дата рождения: 31.02.1990",
        4: "слишком короткий номер",
        5: "нет номера телефона",
        6: "неверная дата рождения: 2099-01-01",
    }
    assert result.accepted == 1
    assert await db.contacts.existing_phones(project) == {"+79135068682"}


async def test_project_duplicates_and_blacklist(db: Database, tmp_path: Path) -> None:
    project = await db.projects.create(name="Проект")
    first = write_xlsx(
        tmp_path / "first.xlsx", [["phone"], ["9228711345"], ["9171959395"]]
    )
    assert (await import_into_project(db, project, first)).accepted == 2
    await db.blacklist.add(["+79135068681"])
    second = write_xlsx(
        tmp_path / "second.xlsx",
        [
            ["phone"],
            ["8 922 871 13 45"],
            ["+7 913 506 86 81"],
            ["9000000001"],
            ["9000000001"],
        ],
    )
    result = await import_into_project(db, project, second)
    assert (result.accepted, result.duplicates_in_project, result.blacklisted) == (
        1,
        1,
        1,
    )
    assert result.duplicates_in_file == 1
    assert [str(r.reason) for r in result.rejected] == [
        "номер уже есть в проекте",
        "номер в черном списке",
        "дубль номера в файле (строка 4)",
    ]
    relaxed = await import_into_project(
        db,
        project,
        second,
        options=ImportOptions(skip_project_duplicates=False, skip_blacklisted=False),
    )
    assert relaxed.accepted == 3
    assert relaxed.duplicates_in_file == 1
    other = await db.projects.create(name="Другой")
    assert (await import_into_project(db, other, first)).accepted == 2


async def test_mapping_chosen_by_user(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_bytes(
        "Клиент;Номер клиента;Заметка\nПетров;89228711345;звонить утром\n".encode(
            "cp1251"
        )
    )
    project = await db.projects.create(name="Проект")
    options = ImportOptions(
        mapping=["full_name", "phone", "custom:Заметка"], tags=["CSV", " CSV "]
    )
    result = await import_into_project(db, project, path, options=options)
    assert result.accepted == 1 and result.rows == 1
    (contact,) = await db.contacts.list(project_id=project)
    assert contact.full_name == "Петров"
    assert "звонить утром" in contact.custom
    assert (await db.uploads.get(result.upload_id)).tags == ("CSV",)


async def nothing_written(db: Database, project: int) -> None:
    assert await db.contacts.existing_phones(project) == set()
    assert await db.uploads.list(project) == []


async def test_file_without_phone_column_writes_nothing(
    db: Database, tmp_path: Path
) -> None:
    path = write_xlsx(tmp_path / "names.xlsx", [["ФИО", "Город"], ["Петров", "Омск"]])
    project = await db.projects.create(name="Проект")
    with pytest.raises(ImportFileError, match="нет столбца с телефоном"):
        await import_into_project(db, project, path)
    await nothing_written(db, project)


async def test_empty_and_header_only_files_write_nothing(
    db: Database, tmp_path: Path
) -> None:
    project = await db.projects.create(name="Проект")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ImportFileError, match="пуст"):
        await import_into_project(db, project, empty)
    header_only = write_xlsx(tmp_path / "header.xlsx", [["phone", "email"]])
    with pytest.raises(ImportFileError, match="нет строк с данными"):
        await import_into_project(db, project, header_only)
    await nothing_written(db, project)


async def test_corrupt_xlsx_writes_nothing(db: Database, tmp_path: Path) -> None:
    good = write_xlsx(tmp_path / "good.xlsx", [["phone"], ["9228711345"]])
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(good.read_bytes()[:500])
    project = await db.projects.create(name="Проект")
    with pytest.raises(ImportFileError, match="повреждён"):
        await import_into_project(db, project, bad)
    await nothing_written(db, project)


async def test_damage_late_in_the_file_rolls_back_earlier_batches(
    db: Database, tmp_path: Path
) -> None:
    note = "примечание " * 30  # makes the sheet a few megabytes: several pieces
    rows: list[list[object]] = [["phone", "description"]] + [
        [f"9{i:09d}", note] for i in range(6000)
    ]
    good = write_xlsx(tmp_path / "good.xlsx", rows)
    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                cut = data.index(b'<row r="5990"')
                data = data[:cut] + b"<row><c><v>1</c></row>" + data[cut:]
                assert len(data) > 3 << 20
            dst.writestr(item, data)
    project = await db.projects.create(name="Проект")
    progress: list[ImportProgress] = []
    with pytest.raises(ImportFileError, match="повреждён"):
        await import_into_project(
            db,
            project,
            broken,
            options=ImportOptions(batch_size=1000),
            progress=progress.append,
        )
    assert (
        progress and progress[-1].accepted >= 1000
    )  # batches were written before the damage
    await nothing_written(db, project)


async def test_header_row_chosen_by_user(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "bare.csv"
    path.write_text("Петров;89228711345\nАнна;9171959395\n", encoding="utf-8")
    project = await db.projects.create(name="Проект")
    every_row = ImportOptions(mapping=["full_name", "phone"], header_row=None)
    assert (
        await import_into_project(db, project, path, options=every_row)
    ).accepted == 2
    other = await db.projects.create(name="Другой")
    first_is_header = ImportOptions(mapping=["full_name", "phone"], header_row=1)
    result = await import_into_project(db, other, path, options=first_is_header)
    assert result.accepted == 1
    assert await db.contacts.existing_phones(other) == {"+79171959395"}


async def test_failing_progress_callback_rolls_back(
    db: Database, tmp_path: Path
) -> None:
    rows: list[list[object]] = [["phone"]] + [[f"9{i:09d}"] for i in range(3000)]
    path = write_xlsx(tmp_path / "base.xlsx", rows)
    project = await db.projects.create(name="Проект")

    def progress(p: ImportProgress) -> None:
        if p.accepted >= 1000:
            raise RuntimeError("экран закрыт")

    with pytest.raises(RuntimeError, match="экран закрыт"):
        await import_into_project(
            db, project, path, options=ImportOptions(batch_size=500), progress=progress
        )
    await nothing_written(db, project)
    # the database is usable afterwards: the write lock was released
    assert (await import_into_project(db, project, path)).accepted == 3000


async def test_cancelled_import_rolls_back(db: Database, tmp_path: Path) -> None:
    import asyncio

    rows: list[list[object]] = [["phone"]] + [[f"9{i:09d}"] for i in range(3000)]
    path = write_xlsx(tmp_path / "base.xlsx", rows)
    project = await db.projects.create(name="Проект")
    started = asyncio.Event()

    def progress(p: ImportProgress) -> None:
        started.set()

    task = asyncio.create_task(
        import_into_project(
            db, project, path, options=ImportOptions(batch_size=200), progress=progress
        )
    )
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await nothing_written(db, project)


async def test_rejected_rows_download(db: Database, tmp_path: Path) -> None:
    import csv
    import io

    from sipspeak.crm.contacts_import import rejected_rows_csv

    path = tmp_path / "bad.csv"  # a CSV: openpyxl would store "=…" as a formula
    path.write_text(
        'phone\n12345\n"=HYPERLINK(""http://x"")"\n+7 922 871\n9228711345\n',
        encoding="utf-8",
    )
    project = await db.projects.create(name="Проект")
    result = await import_into_project(db, project, path)
    text = rejected_rows_csv(result.rejected)
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[0] == ["Строка", "Телефон", "Причина"]
    assert rows[1] == ["2", "12345", "слишком короткий номер"]
    assert rows[2][0] == "3" and rows[2][1].startswith("'=")  # not run as a formula
    assert rows[3] == ["4", "+7 922 871", "слишком короткий номер"]
    assert len(rows) == 4


def test_details_give_offset_for_the_instant() -> None:
    from datetime import UTC, datetime

    from sipspeak.crm.enrichment import default_enricher

    details = default_enricher().details(
        "+79135068681", datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert details.region == "Красноярский край"
    assert details.utc_offset == "+07:00"
    assert details.carrier == "ПАО «Мобильные ТелеСистемы»"


async def test_other_writes_proceed_while_the_file_is_read(
    db: Database, tmp_path: Path
) -> None:
    import asyncio

    rows: list[list[object]] = [["phone"]] + [[f"9{i:09d}"] for i in range(6000)]
    path = write_xlsx(tmp_path / "base.xlsx", rows)
    project = await db.projects.create(name="Проект")
    events: list[str] = []
    writes: list[asyncio.Task[int]] = []

    async def other_write() -> int:
        added = await db.blacklist.add(["+79990000000"])
        events.append("other write done")
        return added

    def progress(p: ImportProgress) -> None:
        events.append(p.stage)
        if not writes:
            writes.append(asyncio.create_task(other_write()))

    result = await import_into_project(
        db, project, path, options=ImportOptions(batch_size=100), progress=progress
    )
    assert await writes[0] == 1
    assert result.accepted == 6000
    assert events.index("other write done") < events.index("writing")
    assert events[-1] == "writing"
