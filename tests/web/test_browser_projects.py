"""Headless Chromium: a group, a status, a trunk and a project through the real pages, then a
base uploaded through the mapping screen and its contacts counted; no console errors."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import openpyxl
from webtools import PASSWORD, Site

DRIVER_PATH = Path(__file__).parent.parent / "media" / "chromium_driver.py"


def load_driver() -> ModuleType:
    name = "sipspeak_test_chromium_driver"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, DRIVER_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def base_file(path: Path) -> None:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("База")
    for row in (["phone", "full_name", "ИНН"], ["+79220000001", "Иванов Иван", "123"],
                ["89220000002", "Петров Пётр", "456"], ["79220000003", "Сидоров", "789"],
                ["12345", "Неверный номер", ""]):
        sheet.append(row)
    book.save(path)


class Page:
    """The browser plus the console errors of every page it visited."""

    def __init__(self, browser: Any, base: str) -> None:
        self.browser = browser
        self.base = base
        self.errors: list[Any] = []

    async def collect(self) -> None:
        logs = await self.browser.console_logs()
        self.errors += [e for e in logs if e.get("level") == "SEVERE"]

    async def open(self, path: str) -> None:
        await self.collect()
        await self.browser.navigate(self.base + path)

    async def type(self, css: str, text: str) -> None:
        await self.browser.type_text(await self.browser.wait_for(css), text)

    async def click(self, css: str) -> None:
        await self.browser.click(await self.browser.wait_for(css))

    async def url(self) -> str:
        return str(await self.browser.current_url())

    async def at(self, path: str) -> bool:
        return await self.url() == self.base + path

    async def choose(self, css: str, *values: str) -> None:
        """Select option values of a (multi-)select, as a user's clicks would."""
        await self.browser.execute(
            "const s = document.querySelector(arguments[0]);"
            "for (const o of s.options) { o.selected = arguments[1].includes(o.value); }"
            "s.dispatchEvent(new Event('change', {bubbles: true}));", css, list(values))


async def test_project_and_base_upload_in_the_browser(staff: Site, tmp_path: Path) -> None:
    driver = load_driver()
    db = staff.db
    xlsx = tmp_path / "база.xlsx"
    base_file(xlsx)
    async with driver.ChromiumDriver.launch() as browser:
        page = Page(browser, staff.base.rstrip("/"))
        await page.open("/login")
        await page.type('input[name="email"]', "admin@test.ru")
        await page.type('input[name="password"]', PASSWORD)
        await page.click('form button[type="submit"]')
        await until(lambda: page.at("/"), "the dashboard")

        await page.open("/settings/groups")
        await page.type('#group-add input[name="name"]', "ТЕСТ")
        await page.click('#group-add button[type="submit"]')
        await until(lambda: page.at("/settings/groups?ok=created"), "the group")
        await page.open("/settings/statuses")
        await page.type('#status-add input[name="name"]', "Перезвон")
        await page.click('#status-add button[type="submit"]')
        await until(lambda: page.at("/settings/statuses?ok=created"), "the status")
        await page.open("/settings/trunks")
        await page.type('#trunk-add input[name="name"]', "zadarma")
        await page.type('#trunk-add input[name="host"]', "sip:117049@zadarma.com")
        await page.click('#trunk-add button[type="submit"]')
        await until(lambda: page.at("/settings/trunks?ok=created"), "the trunk")
        group = (await db.groups.list())[0].id
        status = (await db.statuses.list())[0].id
        trunk = (await db.trunks.list())[0].id

        await page.open("/projects")
        await page.click("#project-create summary")
        await page.type('#project-add input[name="name"]', "Тестовый проект")
        await page.choose('#project-add select[name="strategy"]', "longest_idle")
        await page.click('#project-add button[type="submit"]')

        async def created() -> bool:
            return bool(await db.projects.list())

        await until(created, "the project")
        project = (await db.projects.list())[0]
        pid = project.id
        assert (project.name, project.strategy) == ("Тестовый проект", "longest_idle")
        await until(lambda: page.at(f"/projects/{pid}?tab=project&ok=created"), "its tabs")

        await page.choose('#project-settings select[name="trunk_id"]', str(trunk))
        await page.click("#settings-save")
        await until(lambda: page.at(f"/projects/{pid}?tab=project&ok=saved"), "saved tab")
        assert (await db.projects.get(pid)).trunk_id == trunk

        await page.click("#tab-queue")
        await page.choose('#project-settings select[name="group_ids"]', str(group))
        await page.choose('#project-settings select[name="status_ids"]', str(status))
        await page.click("#settings-save")
        await until(lambda: page.at(f"/projects/{pid}?tab=queue&ok=saved"), "the queue")
        saved = await db.projects.get(pid)
        assert (saved.group_ids, saved.status_ids) == ((group,), (status,))

        await page.click("#tab-card")
        await page.type("#new-card-field", "ИНН")
        await page.click("#add-card-field")
        await page.click("#settings-save")
        await until(lambda: page.at(f"/projects/{pid}?tab=card&ok=saved"), "the card")
        assert [f.name for f in await db.projects.card_fields(pid)] == ["ИНН"]

        await page.click("#tab-schedule")
        await page.click('[data-add-interval="2"]')
        await page.click("#settings-save")
        await until(lambda: page.at(f"/projects/{pid}?tab=schedule&ok=saved"), "the days")
        intervals = await db.projects.intervals(pid)
        assert [(i.weekday, i.start_time, i.end_time) for i in intervals] == [(2, "09:00", "18:00")]

        await page.click("#tab-script")
        await page.click("#script-editor")
        await page.click('.toolbar [data-cmd="bold"]')
        await page.type("#script-editor", "Добрый день")
        await page.click("#settings-save")
        await until(lambda: page.at(f"/projects/{pid}?tab=script&ok=saved"), "the script")
        script = (await db.projects.get(pid)).script_html
        assert "<b>Добрый день</b>" in script, script

        await page.open("/projects")
        await page.click(f'#project-{pid} input[name="launched"]')

        async def launched() -> bool:
            return (await db.projects.get(pid)).launched

        await until(launched, "the launch switch")

        await page.open(f"/projects/{pid}/upload")
        await page.type('#upload-form input[type="file"]', str(xlsx))
        await page.click('#upload-form button[type="submit"]')
        await page.browser.wait_for("#mapping-form")
        headers = await browser.execute(
            "return Array.from(document.querySelectorAll('#mapping select'))"
            ".map(s => s.value);")
        assert headers == ["phone", "full_name", "custom:ИНН"]
        await page.type('#mapping-form input[name="new_tags"]', "Тег 1")
        await page.click("#import-start")
        accepted = await browser.text(await browser.wait_for("#import-accepted", timeout=30))
        assert "Загружено: 3" in accepted and "Отклонено: 1" in accepted
        counted = await browser.text(await browser.find('[data-counter="all"] .tile-value'))
        assert counted == "3"
        assert "12345" in await browser.text(await browser.find("#rejected"))
        assert await db.contacts.count(project_id=pid) == 3
        await page.collect()
    assert page.errors == [], page.errors
