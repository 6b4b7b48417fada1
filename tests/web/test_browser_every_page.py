"""Every page of the route table renders in headless Chromium with no console errors.

The route table is walked, not a hand-made list, so a page added later is checked too: each
GET page route is opened as the admin with real rows behind its ids (a user, a project on
each of its tabs, its upload page, a file), and the browser's console must hold no error.
"""

from __future__ import annotations

import re
from pathlib import Path

from test_browser import load_driver, sign_in
from webtools import Site

from sipspeak.web.auth import ROUTE_TABLE
from sipspeak.web.projects_service import TABS

_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


async def _pages(site: Site, tmp_path: Path) -> list[str]:
    db = site.db
    user_id = site.users["oper@test.ru"]
    project_id = await db.projects.create("Страницы")
    group = await db.groups.create("Все страницы")
    await db.groups.add_members(group, [user_id])
    await db.statuses.create("Перезвон", "#33aa55")
    await db.trunks.create(name="провайдер", host="sip:127.0.0.1:5999", username="u", password="p")
    await db.blacklist.add(["+79990000001"])
    stored = "page-test-file"
    files_dir = site.services.config.files_dir
    files_dir.mkdir(parents=True, exist_ok=True)
    (files_dir / stored).write_bytes(b"hello")
    file_id = await db.files.add_file(name="скрипт.txt", stored_name=stored, size=5)
    ids = {"/settings/users/": user_id, "/projects/": project_id, "/files/": file_id}

    pages: list[str] = []
    for spec in site.server.app[ROUTE_TABLE]:
        if spec.method != "GET" or spec.api or "admin" not in spec.roles:
            continue
        path = spec.path
        if path.endswith((".csv", ".xlsx", "/download", "/recording")):
            continue  # downloads, not pages
        if _PARAM.search(path):
            prefix = next((p for p in ids if path.startswith(p)), None)
            assert prefix is not None, f"no row for the page {path}: extend this test"
            path = _PARAM.sub(str(ids[prefix]), path)
        pages.append(path)
        if re.fullmatch(r"/projects/\d+", path):
            pages += [f"{path}?tab={tab}" for tab in TABS if tab != "launch"]
    return pages


async def test_every_page_renders_without_console_errors(staff: Site, tmp_path: Path) -> None:
    driver = load_driver()
    base = staff.base.rstrip("/")
    pages = await _pages(staff, tmp_path)
    assert len(pages) >= 12
    async with driver.ChromiumDriver.launch() as browser:
        await sign_in(browser, base, "admin@test.ru")
        problems: list[str] = []
        for page in pages:
            await browser.navigate(base + page)
            await browser.wait_for("main")
            state = await browser.execute(
                "return [document.readyState, document.querySelector('main h1') ?"
                " document.querySelector('main h1').textContent.trim() : '',"
                " location.pathname];")
            if state[2] == "/login":
                problems.append(f"{page}: sent back to the login page")
            if not state[1]:
                problems.append(f"{page}: no page heading")
            for entry in await browser.console_logs():
                if entry.get("level") == "SEVERE":
                    problems.append(f"{page}: {entry.get('message')}")
        assert problems == []
