"""«Скрипт можно загрузить в текстовом формате» (§5.2.6): a .txt or .html file becomes the
script editor's HTML, sanitised like every script; bad files are refused with the reason.
The conversion alone, then the API on the real site, then the page in Chromium."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from test_browser_projects import Page, load_driver, until
from webtools import PASSWORD, Browser, Site

from sipspeak.web.sanitize import MAX_SCRIPT_CHARS
from sipspeak.web.script_file import ScriptFileError, script_from_file

SCRIPT_TXT = ("Приветствие: «Добрый день, это <Имя> из компании».\r\n"
              "Я вас не отвлекаю?\r\n\r\n  \r\nВыявление потребности & уточнения.\r\n")


def test_a_text_file_becomes_paragraphs_and_lines() -> None:
    html = script_from_file("скрипт.TXT", SCRIPT_TXT.encode())
    assert html == ("<p>Приветствие: «Добрый день, это &lt;Имя&gt; из компании».<br>"
                    "Я вас не отвлекаю?</p><p>Выявление потребности &amp; уточнения.</p>")
    # Windows-1251 (Russian Windows Notepad) and a UTF-8 byte-order mark read the same.
    assert script_from_file("s.txt", SCRIPT_TXT.encode("cp1251")) == html
    assert script_from_file("s.txt", b"\xef\xbb\xbf" + SCRIPT_TXT.encode()) == html
    assert script_from_file("s.txt", "\ufeff".encode("utf-16-le") +
                            SCRIPT_TXT.encode("utf-16-le")) == html
    assert script_from_file("empty.txt", b"") == ""


def test_an_html_file_keeps_its_formatting_and_loses_everything_else() -> None:
    page = ('<html><head><title>x</title><style>p{}</style></head><body>'
            '<h2 style="color:red">Скрипт</h2><p onclick="steal()"><b>Добрый</b> день'
            '<img src=x onerror="alert(1)"></p><script>alert(2)</script>'
            '<a href="javascript:alert(3)">ссылка</a> <a href="https://example.ru">сайт</a>'
            '</body></html>')
    html = script_from_file("скрипт.html", page.encode("cp1251"))
    assert html == ('<h2>Скрипт</h2><p><b>Добрый</b> день</p><a>ссылка</a> '
                    '<a href="https://example.ru" rel="noopener noreferrer">сайт</a>')
    # Tags in a .txt file are text, shown as typed.
    assert script_from_file("s.txt", b"<b>x</b>") == "<p>&lt;b&gt;x&lt;/b&gt;</p>"


@pytest.mark.parametrize(("name", "data", "says"), [
    ("script.docx", b"PK\x03\x04", "«script.docx»"),
    ("script", b"text", "«script»"),
    ("binary.txt", b"\x00\x01\x02PNG", "не в кодировке UTF-8"),
    ("big.txt", b"a" * (4 * MAX_SCRIPT_CHARS + 1), f"длиннее {MAX_SCRIPT_CHARS} символов"),
    ("long.txt", b"a" * (MAX_SCRIPT_CHARS + 1), f"длиннее {MAX_SCRIPT_CHARS} символов"),
    ("bad.txt", b"\xef\xbb\xbf\xff\xfe", "не в кодировке UTF-8"),
])
def test_what_cannot_be_a_script_says_why(name: str, data: bytes, says: str) -> None:
    with pytest.raises(ScriptFileError) as caught:
        script_from_file(name, data)
    assert says in str(caught.value)


def upload(name: str, data: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    return form


async def post_file(browser: Browser, project: int, name: str, data: bytes,
                    ) -> aiohttp.ClientResponse:
    return await browser.request("POST", f"/api/v1/projects/{project}/script/file",
                                 data=upload(name, data),
                                 headers={"X-CSRF-Token": browser.csrf})


async def test_the_api_answers_the_html_and_saves_nothing(staff: Site) -> None:
    db = staff.db
    project = await db.projects.create("Продажи", script_html="<p>Старый скрипт</p>")
    admin = await staff.signed_in("admin@test.ru")
    answer = await post_file(admin, project, "скрипт.txt", SCRIPT_TXT.encode("cp1251"))
    assert answer.status == 200
    html = (await answer.json())["html"]
    assert html.startswith("<p>Приветствие: «Добрый день, это &lt;Имя&gt;")
    assert (await db.projects.get(project)).script_html == "<p>Старый скрипт</p>"
    bad = await post_file(admin, project, "script.pdf", b"%PDF-1.4")
    body = await bad.json()
    assert bad.status == 422 and body["error"]["field"] == "file"
    assert body["error"]["message"] == ("Скрипт загружается из файла .txt или .html, "
                                        "а «script.pdf» не такой")
    no_file = aiohttp.FormData()
    no_file.add_field("other", "x", content_type="text/plain")  # multipart, without «file»
    missing = await admin.request("POST", f"/api/v1/projects/{project}/script/file",
                                  data=no_file, headers={"X-CSRF-Token": admin.csrf})
    assert missing.status == 422
    assert (await missing.json())["error"]["message"] == "Выберите файл скрипта (.txt или .html)"
    not_multipart = await admin.api("POST", f"/api/v1/projects/{project}/script/file", {})
    assert not_multipart.status == 400
    await db.users.update(staff.users["admin@test.ru"], language="en")
    bad = await post_file(admin, project, "x.txt", b"\x00\x00")
    assert (await bad.json())["error"]["message"] == (
        "The script file is neither UTF-8 nor Windows-1251")
    # A supervisor loads scripts for his projects only; an operator for none.
    supervisor = await staff.signed_in("sup@test.ru")
    assert (await post_file(supervisor, project, "s.txt", b"x")).status == 403
    await db.projects.update(project, supervisor_id=staff.users["sup@test.ru"])
    assert (await post_file(supervisor, project, "s.txt", b"x")).status == 200
    operator = await staff.signed_in("oper@test.ru")
    assert (await post_file(operator, project, "s.txt", b"x")).status == 403
    assert (await post_file(admin, 999_999, "s.txt", b"x")).status == 404


async def test_the_editor_loads_a_file_then_saves_it(staff: Site, tmp_path: Path) -> None:
    driver = load_driver()
    db = staff.db
    project = await db.projects.create("Продажи", script_html="<p>Старый скрипт</p>")
    good = tmp_path / "скрипт.html"
    good.write_bytes('<h2>Скрипт продаж</h2><p>Добрый день!<img src=x onerror="window.hacked=1">'
                     '</p><script>window.hacked=2</script>'.encode("cp1251"))
    wrong = tmp_path / "скрипт.pdf"
    wrong.write_bytes(b"%PDF-1.4")
    async with driver.ChromiumDriver.launch() as browser:
        page = Page(browser, staff.base.rstrip("/"))
        await page.open("/login")
        await page.type('input[name="email"]', "admin@test.ru")
        await page.type('input[name="password"]', PASSWORD)
        await page.click('form button[type="submit"]')
        await until(lambda: page.at("/"), "the dashboard")
        await page.open(f"/projects/{project}?tab=script")

        async def editor_html() -> str:
            return str(await browser.execute(
                "return document.getElementById('script-editor').innerHTML;"))

        await page.type("#script-file", str(wrong))

        async def refused() -> bool:
            return bool(await browser.execute(
                "const e = document.getElementById('script-file-error');"
                "return !e.hidden && e.textContent.includes('скрипт.pdf');"))

        await until(refused, "the refusal of a PDF")
        assert await editor_html() == "<p>Старый скрипт</p>"
        await page.type("#script-file", str(good))

        async def loaded() -> bool:
            return "Скрипт продаж" in await editor_html()

        await until(loaded, "the file in the editor")
        assert await editor_html() == "<h2>Скрипт продаж</h2><p>Добрый день!</p>"
        assert await browser.execute("return window.hacked === undefined;") is True
        assert await browser.execute(
            "return document.getElementById('script-file-error').hidden;") is True
        await page.click("#settings-save")
        await until(lambda: page.at(f"/projects/{project}?tab=script&ok=saved"), "the save")
        assert (await db.projects.get(project)).script_html == (
            "<h2>Скрипт продаж</h2><p>Добрый день!</p>")
        await page.collect()
    # The refused PDF's 422 is the browser's only complaint.
    others = [e for e in page.errors
              if not (e.get("source") == "network" and "/script/file" in e["message"]
                      and "422" in e["message"])]
    assert others == [], page.errors
