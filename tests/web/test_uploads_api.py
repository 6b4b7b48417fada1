"""Base upload through /api/v1 (§5.5): file, preview, mapping, background import, result,
counters, exports, blacklist; bad files; permissions."""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import openpyxl
from webtools import Browser, Site

from sipspeak.web.uploads import IMPORT_JOBS, STAGING

HEADER = ["Телефон", "ФИО", "E-mail", "Город", "ИНН"]


def xlsx_bytes(rows: list[list[Any]], tmp: Path) -> bytes:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("База")
    for row in rows:
        sheet.append(row)
    path = tmp / "base.xlsx"
    book.save(path)
    return path.read_bytes()


def form(name: str, data: bytes) -> aiohttp.FormData:
    body = aiohttp.FormData()
    body.add_field("file", data, filename=name,
                   content_type="application/octet-stream")
    return body


async def world(site: Site) -> dict[str, int]:
    db = site.db
    ids = {"sup": site.users["sup@test.ru"]}
    ids["sup2"] = await site.user("supervisor", "sup2@test.ru")
    ids["mine"] = await db.projects.create("Продажи", supervisor_id=ids["sup"])
    ids["other"] = await db.projects.create("Чужой", supervisor_id=ids["sup2"])
    await db.projects.set_card_fields(ids["mine"], ["ИНН"])
    return ids


async def wait_done(api: Browser, upload_id: int, timeout: float = 60.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        progress = await (await api.get(f"/api/v1/uploads/{upload_id}/progress")).json()
        if progress["state"] != "running":
            return progress  # type: ignore[no-any-return]
        if loop.time() > deadline:
            raise AssertionError(f"import {upload_id} still running: {progress}")
        await asyncio.sleep(0.05)


async def upload(api: Browser, project: int, name: str, data: bytes) -> aiohttp.ClientResponse:
    return await api.request("POST", f"/api/v1/projects/{project}/uploads/files",
                             data=form(name, data))


async def test_xlsx_upload_preview_import_result_and_counters(staff: Site, tmp_path: Path) -> None:
    ids = await world(staff)
    api = staff.browser(bearer=await staff.token_for("sup@test.ru"))
    await staff.db.blacklist.add(["+79220000004"])
    rows = [HEADER,
            ["+7 922 000-00-01", "Иванов Иван", "ivanov@test.ru", "Оренбург", "123"],
            ["89220000002", "Петров", "", "", ""],
            ["12345", "Плохой номер", "", "", ""],
            ["79220000003", "Плохая почта", "not-an-email", "", ""],
            ["+79220000001", "Дубль", "", "", ""],
            ["+79220000004", "Из черного списка", "", "", ""],
            [None, "Без номера", "", "", ""]]
    sent = await upload(api, ids["mine"], "база.xlsx", xlsx_bytes(rows, tmp_path))
    assert sent.status == 201, await sent.text()
    preview = await sent.json()
    assert preview["headers"] == HEADER
    assert preview["mapping"] == ["phone", "full_name", "email", "city", "custom:ИНН"]
    assert preview["rows"][0][:2] == ["+7 922 000-00-01", "Иванов Иван"]
    again = await api.api("POST", f"/api/v1/projects/{ids['mine']}/uploads/preview",
                          {"file": preview["file"]})
    assert (await again.json())["headers"] == HEADER
    started = await api.api("POST", f"/api/v1/projects/{ids['mine']}/uploads", {
        "file": preview["file"], "mapping": ["phone", "full_name", "email", "ignore",
                                             "custom:ИНН"],
        "tags": ["Тег 1", "Новый тег"], "check_duplicates": True, "skip_blacklisted": True})
    assert started.status == 202, await started.text()
    upload_id = (await started.json())["upload_id"]
    assert (await wait_done(api, upload_id))["state"] == "done"
    result = await (await api.get(f"/api/v1/uploads/{upload_id}/result")).json()
    assert result["accepted"] == 2 and result["rejected_count"] == 5
    reasons = {r["row"]: r["reason"] for r in result["rejected"]}
    assert set(reasons) == {4, 5, 6, 7, 8}
    assert reasons[5].startswith("неверный e-mail")
    assert reasons[6].startswith("дубль номера в файле")
    assert reasons[7] == "номер в черном списке"
    assert reasons[8] == "нет номера телефона"
    assert result["all"] == 2 and result["new"] == 2
    rejected_csv = await (await api.get(f"/api/v1/uploads/{upload_id}/rejected.csv")).text()
    assert rejected_csv.lstrip("\ufeff").startswith("Строка;Телефон;Причина")
    assert "12345" in rejected_csv
    contacts = await staff.db.contacts.list(project_id=ids["mine"])
    assert sorted(c.phone for c in contacts) == ["+79220000001", "+79220000002"]
    first = await staff.db.contacts.get(min(c.id for c in contacts))
    assert first.city is None and '"ИНН": "123"' in first.custom
    assert set(first.tags) == {"Тег 1", "Новый тег"}
    overview = await (await api.get(f"/api/v1/projects/{ids['mine']}/uploads")).json()
    assert overview["counters"] == {"all": 2, "called": 0, "no_answer": 0, "busy": 0,
                                    "error": 0, "new": 2}
    assert overview["uploads"][0]["id"] == upload_id
    # the staged file is gone after a successful import
    assert (await api.api("POST", f"/api/v1/projects/{ids['mine']}/uploads",
                          {"file": preview["file"]})).status == 422


async def test_duplicates_in_the_project_only_when_asked(staff: Site, tmp_path: Path) -> None:
    ids = await world(staff)
    api = staff.browser(bearer=await staff.token_for("admin@test.ru"))
    data = xlsx_bytes([["phone"], ["79220000001"], ["79220000002"]], tmp_path)
    for check, accepted in ((True, 2), (True, 0), (False, 2)):
        preview = await (await upload(api, ids["mine"], "b.xlsx", data)).json()
        started = await api.api("POST", f"/api/v1/projects/{ids['mine']}/uploads",
                                {"file": preview["file"], "check_duplicates": check})
        upload_id = (await started.json())["upload_id"]
        await wait_done(api, upload_id)
        result = await (await api.get(f"/api/v1/uploads/{upload_id}/result")).json()
        assert result["accepted"] == accepted, (check, result)
    assert await staff.db.contacts.count(project_id=ids["mine"]) == 4


async def test_csv_in_cp1251_with_semicolons(staff: Site) -> None:
    ids = await world(staff)
    api = staff.browser(bearer=await staff.token_for("admin@test.ru"))
    data = "Тел.;ФИО\r\n79220000001;Иванов\r\n79220000002;Петров\r\n".encode("cp1251")
    preview = await (await upload(api, ids["mine"], "base.csv", data)).json()
    assert preview["mapping"] == ["phone", "full_name"]
    started = await api.api("POST", f"/api/v1/projects/{ids['mine']}/uploads",
                            {"file": preview["file"]})
    await wait_done(api, (await started.json())["upload_id"])
    names = sorted(c.full_name or "" for c in await staff.db.contacts.list(project_id=ids["mine"]))
    assert names == ["Иванов", "Петров"]


async def test_bad_files_leave_nothing(staff: Site, tmp_path: Path) -> None:
    ids = await world(staff)
    api = staff.browser(bearer=await staff.token_for("admin@test.ru"))
    mine = ids["mine"]
    corrupt = await upload(api, mine, "b.xlsx", b"PK\x03\x04 this is not a workbook")
    assert corrupt.status == 422
    error = (await corrupt.json())["error"]
    assert error["field"] == "file" and "повреждён" in error["message"]
    wrong = await upload(api, mine, "b.exe", b"MZ")
    assert wrong.status == 422 and "xlsx" in (await wrong.json())["error"]["message"]
    empty = await upload(api, mine, "b.csv", b"")
    assert empty.status == 422
    staff.server.app[STAGING].max_bytes = 100
    big = await upload(api, mine, "b.csv", b"7922000000;x\n" * 20)
    assert big.status == 413
    staff.server.app[STAGING].max_bytes = 50 * 1024 * 1024
    no_phone = xlsx_bytes([["ФИО", "Город"], ["Иванов", "Москва"], ["Петров", "Омск"]],
                          tmp_path)
    preview = await (await upload(api, mine, "b.xlsx", no_phone)).json()
    assert "Не выбран столбец с телефоном." in preview["problems"]
    refused = await api.api("POST", f"/api/v1/projects/{mine}/uploads",
                            {"file": preview["file"]})
    assert refused.status == 422
    assert (await refused.json())["error"]["field"] == "mapping"
    wrong_width = await api.api("POST", f"/api/v1/projects/{mine}/uploads",
                                {"file": preview["file"], "mapping": ["phone"]})
    assert wrong_width.status == 422
    unknown = await api.api("POST", f"/api/v1/projects/{mine}/uploads",
                            {"file": "0" * 32, "mapping": ["phone"]})
    assert unknown.status == 422 and (await unknown.json())["error"]["field"] == "file"
    foreign = await api.api("POST", f"/api/v1/projects/{ids['other']}/uploads",
                            {"file": preview["file"]})
    assert foreign.status == 422  # a file staged for another project is not found there
    assert await staff.db.uploads.list(mine) == []
    assert await staff.db.contacts.count(project_id=mine) == 0


def _truncate_sheet(data: bytes) -> bytes:
    """The same workbook with its sheet XML cut in the middle (a damaged download)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename.startswith("xl/worksheets/sheet"):
                content = content[: len(content) * 2 // 3]
            target.writestr(item, content)
    return out.getvalue()


async def test_damaged_sheet_midway_imports_nothing(staff: Site, tmp_path: Path) -> None:
    ids = await world(staff)
    api = staff.browser(bearer=await staff.token_for("admin@test.ru"))
    rows: list[list[Any]] = [["phone", "full_name"]]
    rows += [[f"7922{i:07d}", f"Клиент {i}"] for i in range(4500)]
    data = _truncate_sheet(xlsx_bytes(rows, tmp_path))
    sent = await upload(api, ids["mine"], "b.xlsx", data)
    assert sent.status == 201, await sent.text()  # the first rows read well
    preview = await sent.json()
    started = await api.api("POST", f"/api/v1/projects/{ids['mine']}/uploads",
                            {"file": preview["file"]})
    upload_id = (await started.json())["upload_id"]
    progress = await wait_done(api, upload_id)
    assert progress["state"] == "failed" and "повреждён" in progress["error"]
    result = await (await api.get(f"/api/v1/uploads/{upload_id}/result")).json()
    assert result["state"] == "failed"
    # the file is given back after a failure: it can be mapped again
    again = await api.api("POST", f"/api/v1/projects/{ids['mine']}/uploads/preview",
                          {"file": preview["file"]})
    assert again.status == 200
    assert await staff.db.contacts.count(project_id=ids["mine"]) == 0
    assert await staff.db.uploads.list(ids["mine"]) == []


async def test_contacts_as_a_json_list(staff: Site) -> None:
    ids = await world(staff)
    api = staff.browser(bearer=await staff.token_for("sup@test.ru"))
    response = await api.api("POST", f"/api/v1/projects/{ids['mine']}/contacts", {
        "contacts": [{"phone": "+79220000001", "full_name": "Иванов; Иван",
                      "custom": {"ИНН": "77"}},
                     {"phone": "89220000002", "email": "a@b.ru"},
                     {"phone": "000", "full_name": "Плохой"}],
        "tags": ["API"]})
    assert response.status == 201, await response.text()
    result = await response.json()
    assert result["accepted"] == 2 and result["rejected_count"] == 1
    assert result["rejected"][0]["phone"] == "000"
    contacts = await staff.db.contacts.list(project_id=ids["mine"])
    first = await staff.db.contacts.get(contacts[0].id)
    assert first.full_name == "Иванов; Иван" and first.tags == ("API",)
    bad = await api.api("POST", f"/api/v1/projects/{ids['mine']}/contacts",
                        {"contacts": [{"phone": "1", "nickname": "x"}]})
    assert bad.status == 422 and (await bad.json())["error"]["field"] == "contacts"
    assert (await api.api("POST", f"/api/v1/projects/{ids['mine']}/contacts",
                          {"contacts": []})).status == 422


async def test_exports_and_blacklist_removal(staff: Site) -> None:
    ids = await world(staff)
    db = staff.db
    api = staff.browser(bearer=await staff.token_for("sup@test.ru"))
    await api.api("POST", f"/api/v1/projects/{ids['mine']}/contacts", {
        "contacts": [{"phone": f"+7922000000{i}", "full_name": f"=Клиент {i}"}
                     for i in range(1, 6)]})
    contacts = await db.contacts.list(project_id=ids["mine"])
    await db.contacts.update(contacts[0].id, dial_state="no_answer", attempts=1)
    await db.contacts.update(contacts[1].id, dial_state="busy", attempts=2)
    await db.contacts.update(contacts[2].id, dial_state="done", attempts=1)
    base = f"/api/v1/projects/{ids['mine']}/contacts/export"
    answered = await api.get(f"{base}?kind=not_answered&format=csv")
    assert answered.status == 200 and "attachment" in answered.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO((await answered.text()).lstrip("\ufeff")),
                            delimiter=";"))
    assert table[0][0] == "Телефон"
    assert sorted(r[0] for r in table[1:]) == ["+79220000001", "+79220000002"]
    assert table[1][1] == "'=Клиент 1"  # no formula in a spreadsheet
    xlsx = await api.get(f"{base}?kind=not_called&format=xlsx")
    assert xlsx.status == 200
    book = openpyxl.load_workbook(io.BytesIO(await xlsx.read()), read_only=True)
    values = [list(r) for r in book.active.iter_rows(values_only=True)]
    assert [r[0] for r in values[1:]] == ["+79220000004", "+79220000005"]
    assert (await api.get(f"{base}?kind=everything")).status == 422
    counters = (await (await api.get(f"/api/v1/projects/{ids['mine']}/uploads")).json())
    assert counters["counters"] == {"all": 5, "called": 3, "no_answer": 1, "busy": 1,
                                    "error": 0, "new": 2}
    await db.blacklist.add(["+79220000004", "+79220000005"])
    removed = await api.api("POST", f"/api/v1/projects/{ids['mine']}/contacts/remove-blacklisted")
    assert await removed.json() == {"removed": 2}
    assert await db.contacts.count(project_id=ids["mine"]) == 3


async def test_upload_permissions(staff: Site, tmp_path: Path) -> None:
    ids = await world(staff)
    sup = staff.browser(bearer=await staff.token_for("sup@test.ru"))
    data = xlsx_bytes([["phone"], ["79220000001"]], tmp_path)
    preview = await (await upload(sup, ids["mine"], "b.xlsx", data)).json()
    started = await sup.api("POST", f"/api/v1/projects/{ids['mine']}/uploads",
                            {"file": preview["file"]})
    upload_id = (await started.json())["upload_id"]
    await wait_done(sup, upload_id)
    sup2 = staff.browser(bearer=await staff.token_for("sup2@test.ru"))
    oper = staff.browser(bearer=await staff.token_for("oper@test.ru"))
    anonymous = staff.browser()
    mine = ids["mine"]
    gets = [f"/api/v1/uploads/{upload_id}/progress", f"/api/v1/uploads/{upload_id}/result",
            f"/api/v1/uploads/{upload_id}/rejected.csv", f"/api/v1/projects/{mine}/uploads",
            f"/api/v1/projects/{mine}/contacts/export"]
    for path in gets:
        assert (await sup2.get(path)).status == 403, path
        assert (await oper.get(path)).status == 403, path
        assert (await anonymous.get(path)).status == 401, path
    assert (await upload(sup2, mine, "b.xlsx", data)).status == 403
    assert (await upload(oper, mine, "b.xlsx", data)).status == 403
    assert (await sup2.api("POST", f"/api/v1/projects/{mine}/contacts",
                           {"contacts": [{"phone": "79220000009"}]})).status == 403
    assert (await sup2.api("POST", f"/api/v1/projects/{mine}/contacts/remove-blacklisted")
            ).status == 403
    admin = staff.browser(bearer=await staff.token_for("admin@test.ru"))
    assert (await admin.get(f"/api/v1/uploads/{upload_id}/result")).status == 200
    assert (await admin.get("/api/v1/uploads/999999/progress")).status == 404


async def test_shutdown_cancels_a_running_import_and_leaves_nothing(staff: Site,
                                                                    tmp_path: Path) -> None:
    ids = await world(staff)
    api = staff.browser(bearer=await staff.token_for("admin@test.ru"))
    rows: list[list[Any]] = [["phone"], *([f"7922{i:07d}"] for i in range(3000))]
    preview = await (await upload(api, ids["mine"], "b.xlsx", xlsx_bytes(rows, tmp_path))).json()
    started = await api.api("POST", f"/api/v1/projects/{ids['mine']}/uploads",
                            {"file": preview["file"]})
    upload_id = (await started.json())["upload_id"]
    job = staff.server.app[IMPORT_JOBS].get(upload_id)
    assert job is not None and job.state == "running"
    twice = await api.api("POST", f"/api/v1/projects/{ids['mine']}/uploads",
                          {"file": preview["file"]})
    assert twice.status == 422  # the file is being imported already
    await staff.server.close()  # the app's cleanup cancels the imports it owns
    assert job.task is not None and job.task.done()
    assert (job.state, str(job.error)) == ("failed", "импорт прерван остановкой сервера")
    assert await staff.db.contacts.count(project_id=ids["mine"]) == 0
    assert await staff.db.uploads.list(ids["mine"]) == []
