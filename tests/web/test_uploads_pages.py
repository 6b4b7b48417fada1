"""The base upload pages: file → mapping screen → progress → result, counters, blacklist."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import openpyxl
from webtools import Browser, Site

from sipspeak.web.uploads import IMPORT_JOBS


def xlsx(tmp: Path) -> bytes:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    for row in (["phone", "email", "full_name", "birth_date", "position"],
                ["7911123456", "", "Петров", "", ""],
                ["79111234567", "p@test.ru", "Сидоров", "01.01.1991", "Директор"],
                ["79111234568", "", "Иванов", "", ""]):
        sheet.append(row)
    path = tmp / "b.xlsx"
    book.save(path)
    return path.read_bytes()


async def send_file(b: Browser, project: int, name: str, data: bytes) -> aiohttp.ClientResponse:
    body = aiohttp.FormData()
    body.add_field("csrf", b.csrf)
    body.add_field("file", data, filename=name, content_type="application/octet-stream")
    return await b.request("POST", f"/projects/{project}/upload", data=body)


async def test_upload_map_import_and_see_the_result(staff: Site, tmp_path: Path) -> None:
    db = staff.db
    pid = await db.projects.create("Продажи", supervisor_id=staff.users["sup@test.ru"])
    await db.projects.set_card_fields(pid, ["Должность клиента"])
    await db.tags.ensure(["Старый тег"])
    b = await staff.signed_in("sup@test.ru")
    page = await (await b.get(f"/projects/{pid}/upload")).text()
    assert "Скачать неотвеченные контакты CSV" in page and "Удалить номера (черный список)" in page
    sent = await send_file(b, pid, "база.xlsx", xlsx(tmp_path))
    assert sent.status == 303, await sent.text()
    mapping_url = sent.headers["Location"]
    assert re.fullmatch(rf"/projects/{pid}/upload\?file=[0-9a-f]{{32}}", mapping_url)
    screen = await (await b.get(mapping_url)).text()
    assert "Сопоставление полей" in screen and "Игнорировать" in screen
    assert "Должность клиента (доп. поле)" in screen and "Старый тег" in screen
    assert "Проверка на дубли номеров в проекте" in screen and "Сидоров" in screen
    token = mapping_url.rsplit("=", 1)[1]
    started = await b.form(f"/projects/{pid}/upload/import", [
        ("file", token), ("mapping", "phone"), ("mapping", "ignore"), ("mapping", "full_name"),
        ("mapping", "birth_date"), ("mapping", "custom:Должность клиента"),
        ("tags", "Старый тег"), ("new_tags", "Тег 1"), ("check_duplicates", "1"),
        ("skip_blacklisted", "1")])
    assert started.status == 303, await started.text()
    result_url = started.headers["Location"]
    upload_id = int(result_url.rsplit("=", 1)[1])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        text = await (await b.get(result_url)).text()
        if 'id="import-progress"' not in text:
            break
        assert loop.time() < deadline, "the import did not end"
        await asyncio.sleep(0.05)
    assert "Загружено: <strong>2</strong>" in text and "Отклонено: <strong>1</strong>" in text
    assert re.search(r"<td>2</td><td>7911123456</td><td>[^<]+</td>", text)
    assert f"/api/v1/uploads/{upload_id}/rejected.csv" in text
    assert re.search(r'data-counter="all"><span class="tile-value">2<', text)
    contacts = await db.contacts.list(project_id=pid)
    saved = await db.contacts.get(contacts[0].id)
    assert saved.full_name == "Сидоров" and saved.birth_date == "1991-01-01"
    assert saved.email is None and '"Должность клиента": "Директор"' in saved.custom
    assert set(saved.tags) == {"Старый тег", "Тег 1"}
    csv_text = await (await b.get(f"/api/v1/uploads/{upload_id}/rejected.csv")).text()
    assert "7911123456" in csv_text
    # after a restart the jobs are gone: the page shows the counts the upload row keeps
    staff.server.app[IMPORT_JOBS]._jobs.clear()
    later = await (await b.get(result_url)).text()
    assert "Загружено: <strong>2</strong>" in later and "Отклонено: <strong>1</strong>" in later


async def test_page_errors_come_back_on_the_page(staff: Site, tmp_path: Path) -> None:
    pid = await staff.db.projects.create("П")
    b = await staff.signed_in("admin@test.ru")
    corrupt = await send_file(b, pid, "b.xlsx", b"PK\x03\x04garbage")
    assert corrupt.status == 422
    assert "повреждён" in await corrupt.text()
    sent = await send_file(b, pid, "b.xlsx", xlsx(tmp_path))
    token = sent.headers["Location"].rsplit("=", 1)[1]
    no_phone = await b.form(f"/projects/{pid}/upload/import", [
        ("file", token), *[("mapping", "ignore")] * 5])
    assert no_phone.status == 422
    assert "Не выбран столбец с телефоном" in await no_phone.text()
    stale = await (await b.get(f"/projects/{pid}/upload?file={'f' * 32}")).text()
    assert "Файл не найден: загрузите его снова" in stale
    assert await staff.db.uploads.list(pid) == []


async def test_remove_blacklisted_numbers_from_the_page(staff: Site) -> None:
    db = staff.db
    pid = await db.projects.create("П")
    api = staff.browser(bearer=await staff.token_for("admin@test.ru"))
    await api.api("POST", f"/api/v1/projects/{pid}/contacts", {
        "contacts": [{"phone": "+79220000001"}, {"phone": "+79220000002"}]})
    await db.blacklist.add(["+79220000002"])
    b = await staff.signed_in("admin@test.ru")
    response = await b.form(f"/projects/{pid}/upload/remove-blacklisted", {})
    assert response.status == 303
    assert [c.phone for c in await db.contacts.list(project_id=pid)] == ["+79220000001"]
    text = await (await b.get(response.headers["Location"])).text()
    assert "Номера из черного списка удалены из проекта" in text
