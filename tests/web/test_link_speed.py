"""«Скорость соединения» in the header: measured by the browser from a real download."""

from __future__ import annotations

import re

from test_browser import load_driver, sign_in, until
from webtools import Site

from sipspeak.web.linkspeed import PAYLOAD


async def test_the_payload_is_random_bytes_for_signed_in_users_only(staff: Site) -> None:
    anonymous = staff.browser()
    assert (await anonymous.get("/api/v1/link-speed")).status == 401
    operator = await staff.signed_in("oper@test.ru")
    response = await operator.get("/api/v1/link-speed")
    assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
    body = await response.read()
    assert body == PAYLOAD and len(body) == 512 * 1024
    assert len(set(body)) > 200  # random: a compressing proxy cannot shrink it
    page = await (await operator.get("/profile/devices")).text()
    assert 'id="link-speed" hidden data-text="Скорость соединения: ≈{mbps}\u00a0Мбит/с"' in page


async def test_the_browser_shows_the_speed_it_measured(staff: Site) -> None:
    driver = load_driver()
    base = staff.base.rstrip("/")
    async with driver.ChromiumDriver.launch() as browser:
        await sign_in(browser, base, "oper@test.ru")
        await browser.navigate(f"{base}/profile/devices")
        speed = await browser.wait_for("#link-speed")

        async def shown() -> bool:
            return bool(await browser.execute(
                "return !document.getElementById('link-speed').hidden;"))

        await until(shown, "the measured speed")
        text = await browser.text(speed)
        # WebDriver reads the no-break space before the unit as a space.
        found = re.fullmatch(r"\| Скорость соединения: ≈(\d+(?:\.\d)?)\sМбит/с", text.strip())
        assert found is not None, text
        assert float(found.group(1)) > 0
        kept = await browser.execute("return JSON.parse(localStorage.getItem('sipspeak.speed'));")
        assert kept["mbps"] > 0
        assert [e for e in await browser.console_logs() if e.get("level") == "SEVERE"] == []
