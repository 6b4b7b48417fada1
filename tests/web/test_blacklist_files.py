"""Blacklist (§9) and file manager (§10) through the API and the pages."""

from __future__ import annotations

import csv
import io
from urllib.parse import unquote

import aiohttp
import openpyxl
import pytest
from webtools import Browser, Site

from sipspeak.web.filemanager import FileLimits, content_disposition


def upload(name: str, data: bytes, **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData(quote_fields=False)  # raw UTF-8 names, as browsers send them
    for key, value in fields.items():
        form.add_field(key, value)
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    return form


def raw_upload(name: str, data: bytes) -> tuple[bytes, dict[str, str]]:
    """A multipart body written by hand: control characters a client library would refuse."""
    boundary = "sipspeak-test-boundary"
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')  # RFC 7230 quoted-string
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{quoted}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


async def api_for(site: Site, email: str) -> Browser:
    return site.browser(bearer=await site.token_for(email))


async def test_blacklist_add_normalises_and_refuses_duplicates(staff: Site) -> None:
    api = await api_for(staff, "sup@test.ru")
    added = await api.api("POST", "/api/v1/blacklist", {"phone": "8 (922) 871-13-45",
                                                        "comment": "просил не звонить"})
    assert added.status == 201
    assert (await added.json())["phone"] == "+79228711345"
    again = await api.api("POST", "/api/v1/blacklist", {"phone": "+7 922 871 13 45"})
    assert again.status == 409 and (await again.json())["error"]["field"] == "phone"
    bad = await api.api("POST", "/api/v1/blacklist", {"phone": "12ab"})
    assert bad.status == 422 and (await bad.json())["error"]["field"] == "phone"
    assert await staff.db.blacklist.contains("+79228711345")
    found = await (await api.get("/api/v1/blacklist?q=922871")).json()
    assert [e["phone"] for e in found["items"]] == ["+79228711345"]
    assert (await (await api.get("/api/v1/blacklist?q=000000")).json())["items"] == []
    oper = await api_for(staff, "oper@test.ru")
    assert (await oper.get("/api/v1/blacklist")).status == 403


@pytest.mark.parametrize("name, make", [
    ("list.txt", lambda: "89228711345\n+7 922 871 13 46\nмусор\n\n89228711345\n".encode()),
    ("list.csv", lambda: "Телефон;Имя\n89228711345;Иван\n+79228711346;Пётр\nмусор;x\n".encode("cp1251")),
    ("list.xlsx", None),
])
async def test_blacklist_upload_formats(staff: Site, name: str, make: object) -> None:
    if make is None:
        book = openpyxl.Workbook()
        sheet = book.active
        for row in (["Телефон"], [79228711345], ["8 922 871-13-46"], ["мусор"]):
            sheet.append(row)
        buffer = io.BytesIO()
        book.save(buffer)
        data = buffer.getvalue()
    else:
        data = make()  # type: ignore[operator]
    await staff.db.blacklist.add(["+79228711346"])
    api = await api_for(staff, "admin@test.ru")
    response = await api.request("POST", "/api/v1/blacklist/import", data=upload(name, data))
    assert response.status == 200, await response.text()
    result = await response.json()
    assert (result["added"], result["known"], result["rejected"]) == (1, 1, 1)
    assert result["errors"][0]["value"] == "мусор"
    assert await staff.db.blacklist.phones() == {"+79228711345", "+79228711346"}


async def test_blacklist_upload_of_a_wrong_file_is_422(staff: Site) -> None:
    api = await api_for(staff, "admin@test.ru")
    exe = await api.request("POST", "/api/v1/blacklist/import", data=upload("x.exe", b"MZ"))
    assert exe.status == 422 and (await exe.json())["error"]["field"] == "file"
    broken = await api.request("POST", "/api/v1/blacklist/import",
                               data=upload("x.xlsx", b"PK\x03\x04garbage"))
    assert broken.status == 422
    no_file = await api.request("POST", "/api/v1/blacklist/import", json={})
    assert no_file.status == 400


async def test_blacklist_delete_and_csv_download(staff: Site) -> None:
    await staff.db.blacklist.add(["+79228711345", "+79228711346"], comment="=HYPERLINK()")
    api = await api_for(staff, "admin@test.ru")
    gone = await api.api("DELETE", "/api/v1/blacklist/89228711345")
    assert gone.status == 200
    assert (await api.api("DELETE", "/api/v1/blacklist/89228711345")).status == 404
    download = await api.get("/api/v1/blacklist/export.csv")
    assert download.status == 200
    assert download.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO((await download.read()).decode("utf-8-sig")),
                           delimiter=";"))
    assert rows[0] == ["phone", "comment", "created_at"]
    assert [r[0] for r in rows[1:]] == ["+79228711346"]
    assert rows[1][1] == "'=HYPERLINK()"


async def test_blacklist_csv_is_complete_across_chunks(staff: Site) -> None:
    phones = [f"+7922{n:07d}" for n in range(12_345)]
    await staff.db.blacklist.add(phones)
    api = await api_for(staff, "admin@test.ru")
    body = (await (await api.get("/api/v1/blacklist/export.csv")).read()).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body), delimiter=";"))
    assert len(rows) == 12_346
    assert {r[0] for r in rows[1:]} == set(phones)


async def test_blacklist_pages(staff: Site) -> None:
    b = await staff.signed_in("admin@test.ru")
    added = await b.form("/blacklist", {"phone": "9228711345", "comment": ""})
    assert added.status == 303
    page = await (await b.get("/blacklist?q=922")).text()
    assert "+79228711345" in page
    bad = await b.form("/blacklist", {"phone": "нет"})
    assert bad.status == 422 and "нет" in await bad.text()
    form = upload("l.txt", b"89228711346\n")
    form.add_field("csrf", b.csrf)
    uploaded = await b.request("POST", "/blacklist/upload", data=form)
    assert uploaded.status == 200
    assert "Добавлено: 1" in await uploaded.text()
    assert (await b.form("/blacklist/delete", {"phone": "+79228711346"})).status == 303
    assert await staff.db.blacklist.phones() == {"+79228711345"}
    csv_page = await b.get("/blacklist.csv")
    assert "+79228711345" in (await csv_page.read()).decode("utf-8-sig")


async def test_files_tree_upload_rename_download_delete(staff: Site) -> None:
    api = await api_for(staff, "oper@test.ru")
    top = await (await api.api("POST", "/api/v1/files/folders", {"name": "Папка 1"})).json()
    sub = await (await api.api("POST", "/api/v1/files/folders",
                               {"name": "Папка 2", "parent_id": top["id"]})).json()
    tree = await (await api.get("/api/v1/files/tree")).json()
    assert tree["folders"] == [{"id": top["id"], "name": "Папка 1", "children": [
        {"id": sub["id"], "name": "Папка 2", "children": []}]}]
    sent = await api.request("POST", "/api/v1/files",
                             data=upload("Скрипт продаж.txt", b"hello", folder_id=str(sub["id"])))
    assert sent.status == 201, await sent.text()
    item = await sent.json()
    stored = list(staff.services.config.files_dir.iterdir())
    assert len(stored) == 1 and "Скрипт" not in stored[0].name
    got = await api.get(f"/api/v1/files/{item['id']}/download")
    assert await got.read() == b"hello"
    disposition = got.headers["Content-Disposition"]
    assert "filename*=UTF-8''" in disposition
    assert unquote(disposition.split("''", 1)[1]) == "Скрипт продаж.txt"
    renamed = await api.api("PATCH", f"/api/v1/files/{item['id']}", {"name": "script.txt"})
    assert (await renamed.json())["name"] == "script.txt"
    dup = await api.request("POST", "/api/v1/files",
                            data=upload("script.txt", b"x", folder_id=str(sub["id"])))
    assert dup.status == 409
    listing = await (await api.get(f"/api/v1/files?folder_id={sub['id']}")).json()
    assert [f["name"] for f in listing["files"]] == ["script.txt"]
    assert (await api.api("DELETE", f"/api/v1/files/folders/{top['id']}")).status == 200
    assert list(staff.services.config.files_dir.iterdir()) == []
    assert (await api.get(f"/api/v1/files/{item['id']}/download")).status == 404


@pytest.mark.parametrize("name", ["../evil.txt", "..", "/etc/passwd", "a\\b", "x\x00y",
                                  "  ", "bad\nname"])
async def test_file_names_that_could_escape_are_refused(staff: Site, name: str) -> None:
    api = await api_for(staff, "admin@test.ru")
    folder = await api.api("POST", "/api/v1/files/folders", {"name": name})
    assert folder.status == 422, await folder.text()
    body, headers = raw_upload(name, b"data")
    sent = await api.request("POST", "/api/v1/files", data=body, headers=headers)
    assert sent.status in (400, 422), await sent.text()
    files_dir = staff.services.config.files_dir
    assert not files_dir.exists() or list(files_dir.iterdir()) == []
    assert await staff.db.files.total_size() == 0


async def test_rename_into_traversal_is_refused(staff: Site) -> None:
    api = await api_for(staff, "admin@test.ru")
    item = await (await api.request("POST", "/api/v1/files", data=upload("a.txt", b"1"))).json()
    response = await api.api("PATCH", f"/api/v1/files/{item['id']}", {"name": "../../a.txt"})
    assert response.status == 422
    assert (await staff.db.files.file(item["id"])).name == "a.txt"


async def test_file_size_limit_and_quota(staff: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    limits = FileLimits(max_file_bytes=100, quota_bytes=150)
    monkeypatch.setattr(type(staff.services), "file_limits", property(lambda self: limits),
                        raising=False)
    api = await api_for(staff, "admin@test.ru")
    big = await api.request("POST", "/api/v1/files", data=upload("big.bin", b"x" * 101))
    assert big.status == 413
    ok = await api.request("POST", "/api/v1/files", data=upload("a.bin", b"x" * 100))
    assert ok.status == 201
    over = await api.request("POST", "/api/v1/files", data=upload("b.bin", b"x" * 60))
    assert over.status == 413
    assert (await over.json())["error"]["code"] == "quota"
    assert await staff.db.files.total_size() == 100


def test_content_disposition_has_an_ascii_fallback() -> None:
    header = content_disposition('от"чёт%.xlsx')
    assert header.startswith('attachment; filename="')
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii() and '"' not in fallback
    assert "filename*=UTF-8''%D0%BE%D1%82%22%D1%87%D1%91%D1%82%25.xlsx" in header


async def test_file_manager_pages_for_an_operator(staff: Site) -> None:
    b = await staff.signed_in("oper@test.ru")
    created = await b.form("/files/folders", {"name": "Документы"})
    assert created.status == 303
    folder_id = int(created.headers["Location"].split("=")[1])
    form = upload("отчёт.txt", b"report", folder_id=str(folder_id))
    form.add_field("csrf", b.csrf)
    sent = await b.request("POST", f"/files/upload?folder={folder_id}", data=form)
    assert sent.status == 303
    page = await (await b.get(f"/files?folder={folder_id}")).text()
    assert "отчёт.txt" in page and "Документы" in page
    bad = await b.form("/files/folders", {"name": "../x", "parent_id": str(folder_id)})
    assert bad.status == 422
