"""Headless Chromium signs in and creates a group, a status and a trunk through the pages."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from webtools import PASSWORD, Site

DRIVER_PATH = Path(__file__).parent.parent / "media" / "chromium_driver.py"


def load_driver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sipspeak_test_chromium_driver", DRIVER_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def sign_in(browser: Any, base: str, email: str) -> None:
    """Sign in through the login page and wait for the dashboard."""
    await browser.navigate(f"{base}/login")
    await browser.type_text(await browser.wait_for('input[name="email"]'), email)
    await browser.type_text(await browser.find('input[name="password"]'), PASSWORD)
    await browser.click(await browser.find('form button[type="submit"]'))
    await until(lambda: _url_is(browser, f"{base}/"), "the dashboard after sign-in", timeout=60)


async def test_admin_creates_group_status_and_trunk_in_the_browser(staff: Site) -> None:
    driver = load_driver()
    base = staff.base.rstrip("/")
    db = staff.db
    async with driver.ChromiumDriver.launch() as browser:
        await sign_in(browser, base, "admin@test.ru")
        assert "Дашборд" in await browser.text(await browser.find("main h1"))

        await browser.click(await browser.find("#menu-toggle"))
        collapsed = await browser.execute(
            "return document.getElementById('shell').classList.contains('collapsed')")
        assert collapsed is True

        await browser.navigate(f"{base}/settings/groups")
        await browser.type_text(await browser.find('#group-add input[name="name"]'), "Смена 1")
        await browser.click(await browser.find('#group-add button[type="submit"]'))
        await until(lambda: _has(db.groups.list()), "the group")
        group = (await db.groups.list())[0]
        assert group.name == "Смена 1"
        oper = staff.users["oper@test.ru"]
        await until(lambda: _url_is(browser, f"{base}/settings/groups?ok=created"),
                    "the groups page again")
        await browser.click(await browser.find(f"#group-{group.id} details summary"))
        await browser.type_text(await browser.find(f"#group-{group.id} input[data-filter]"),
                                "опер")
        shown = await browser.execute(
            f"return Array.from(document.querySelectorAll('#members-{group.id} option'))"
            ".filter(o => !o.hidden).map(o => o.textContent.trim());")
        assert shown == ["Оператор (333)"]
        await browser.click(await browser.find(f'#members-{group.id} option[value="{oper}"]'))
        await browser.click(await browser.find(
            f'#group-{group.id} form[action$="/members"] button[type="submit"]'))

        async def joined() -> bool:
            return await db.groups.member_ids(group.id) == [oper]

        await until(joined, "the operator in the group")

        await browser.navigate(f"{base}/settings/statuses")
        await browser.type_text(await browser.find('#status-add input[name="name"]'), "Перезвонить")
        await browser.click(await browser.find('#status-add button[type="submit"]'))
        await until(lambda: _has(db.statuses.list()), "the status")
        status = (await db.statuses.list())[0]
        assert status.name == "Перезвонить" and status.active

        await browser.navigate(f"{base}/settings/trunks")
        for name, value in (("username", "117049"), ("password", "secret"),
                            ("name", "zadarma"), ("host", "sip:117049@zadarma.com:5060")):
            await browser.type_text(await browser.find(f'#trunk-add input[name="{name}"]'), value)
        await browser.click(await browser.find('#trunk-add button[type="submit"]'))
        await until(lambda: _has(db.trunks.list()), "the trunk")
        trunk = (await db.trunks.list())[0]
        assert (trunk.name, trunk.host, trunk.username) == (
            "zadarma", "sip:117049@zadarma.com:5060", "117049")
        await until(lambda: _url_is(browser, f"{base}/settings/trunks?ok=created"),
                    "the trunks page again")
        assert "sip:117049@zadarma.com:5060" in await browser.text(await browser.find("#trunks"))

        # The header status switcher posts to the API with the page's CSRF token.
        await browser.execute(
            "const s = document.getElementById('agent-state');"
            "s.value = 'pause'; s.dispatchEvent(new Event('change'));")
        admin_id = staff.users["admin@test.ru"]

        async def paused() -> bool:
            now = 2**62
            intervals = await db.intervals.between(start=0, end=now, user_id=admin_id)
            return any(i.state == "pause" for i in intervals)

        await until(paused, "the operator state")

        await browser.navigate(f"{base}/profile/devices")
        await browser.click(await browser.find("#test-microphone"))

        async def microphone_heard() -> bool:
            level = await browser.execute(
                "return [document.querySelectorAll('#microphones option').length,"
                " document.getElementById('mic-level').value];")
            return bool(level[0] >= 1 and level[1] > 0)

        # the fake capture device plays a beep: the level meter moves
        await until(microphone_heard, "the microphone level")
        await browser.click(await browser.find("#test-speaker"))

        async def tone_playing() -> bool:
            text = await browser.text(await browser.find("#device-status"))
            return str(text) == "Звучит проверочный сигнал"

        await until(tone_playing, "the speaker test tone")
        logs = await browser.console_logs()
        errors = [entry for entry in logs if entry.get("level") == "SEVERE"]
        assert errors == [], errors


async def _url_is(browser: object, url: str) -> bool:
    return str(await browser.current_url()) == url  # type: ignore[attr-defined]


async def _has(items: Awaitable[list[object]]) -> bool:
    return bool(await items)
