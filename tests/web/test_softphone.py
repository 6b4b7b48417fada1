"""The softphone's page and signalling socket without call control (the web tests' site):
every signed-in user may open them, the widget's texts follow his language, a page of
another site cannot open the socket, the socket says call control is unavailable, answers
anything it gets with an error, and ends when the sign-in does."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import aiohttp
import pytest
from webtools import Site

from sipspeak.i18n import CATALOGUE, LANGUAGES
from sipspeak.web.softphone import WIDGET_TEXTS


def test_every_widget_text_is_in_every_language() -> None:
    for language in LANGUAGES:
        assert [n for n in WIDGET_TEXTS if f"softphone.{n}" not in CATALOGUE[language]] == []


async def test_page_and_status_for_each_role(staff: Site) -> None:
    for email in ("admin@test.ru", "sup@test.ru", "oper@test.ru"):
        browser = await staff.signed_in(email)
        page = await (await browser.get("/softphone")).text()
        assert 'data-softphone' in page and "/static/softphone.js" in page
        texts = re.search(r'data-texts="([^"]*)"', page)
        assert texts is not None  # the widget's texts, in the page
        assert json.loads(html.unescape(texts.group(1)))["ready"] == "Готов принимать звонки"
        status, body = await staff.api_get(email, "/api/v1/softphone")
        assert status == 200
        assert (body["available"], body["connected"]) == (False, 0)
        assert body["texts"]["answer"] == "Ответить"
    oper = staff.users["oper@test.ru"]
    await staff.db.users.update(oper, language="en")
    status, body = await staff.api_get("oper@test.ru", "/api/v1/softphone")
    assert body["texts"]["answer"] == "Answer" and body["texts"]["hangup"] == "Hang up"
    anonymous = staff.browser()
    assert (await anonymous.get("/api/v1/softphone")).status == 401


async def test_socket_checks_origin_answers_errors_and_ends_with_the_session(
        staff: Site) -> None:
    browser = await staff.signed_in("oper@test.ru")
    port = staff.server.port
    for origin in ("https://evil.example", f"http://127.0.0.1:{port + 1}", "null"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await browser.session.ws_connect("/api/v1/softphone", headers={"Origin": origin})
        assert refused.value.status == 403, origin
    async with browser.session.ws_connect(
            "/api/v1/softphone", headers={"Origin": staff.base.rstrip("/")}) as socket:
        async def reply() -> dict[str, Any]:
            message = await socket.receive(timeout=10)
            assert message.type is aiohttp.WSMsgType.TEXT, message
            return dict(json.loads(message.data))

        assert await reply() == {"type": "hello", "available": False}
        await socket.send_str('{"type": "ping"}')
        assert (await reply())["error"] == "unavailable"
        await socket.send_bytes(b"\x00")
        assert (await reply())["error"] == "not_text"
        # Signed out elsewhere: the next message finds the session gone and the socket ends.
        assert (await browser.form("/logout", {})).status in (302, 303)
        await socket.send_str('{"type": "ping"}')
        closing = await socket.receive(timeout=10)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_a_sign_out_or_a_removal_ends_the_socket_without_waiting_for_a_message(
        staff: Site) -> None:
    # The socket re-checks its sign-in every RECHECK_S (30 s) anyway; a logout elsewhere or
    # the administrator removing the operator must end it at once: it could be rung meanwhile.
    origin = {"Origin": staff.base.rstrip("/")}
    browser = await staff.signed_in("oper@test.ru")
    other_tab = await staff.signed_in("oper@test.ru")  # another session stays signed in
    async with browser.session.ws_connect("/api/v1/softphone", headers=origin) as socket:
        assert json.loads((await socket.receive(timeout=10)).data)["type"] == "hello"
        async with other_tab.session.ws_connect("/api/v1/softphone", headers=origin) as kept:
            assert json.loads((await kept.receive(timeout=10)).data)["type"] == "hello"
            assert (await browser.form("/logout", {})).status in (302, 303)
            closing = await socket.receive(timeout=10)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            # The other tab's session lives on: its socket stays open.
            await kept.send_str('{"type": "ping"}')
            assert json.loads((await kept.receive(timeout=10)).data)["type"] == "error"
            admin = await staff.signed_in("admin@test.ru")
            removed = await admin.api("DELETE", f"/api/v1/users/{staff.users['oper@test.ru']}")
            assert removed.status == 200
            closing = await kept.receive(timeout=10)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
