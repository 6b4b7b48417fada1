"""«Рабочее место»: the operator's state, calls and last call through the API, the push and
the page.  The dialer's runtime is the real one over the site's SQLite file and bus; the call
layer under it records what it is asked (tests/fake_calls.py).  Live calls of the real call
layer are followed end to end in tests/calls/test_workspace_sipp.py, and here for a call on
hold (:func:`call_site`: the whole service over the call tests' world, sipp and baresip)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from fake_calls import FakeCallLayer, StartDialer, until
from test_browser import load_driver, sign_in
from test_browser import until as browser_until
from webtools import Browser, Site, make_config, password_hash

from sipspeak.app import Services, start_campaigns, stop_campaigns
from sipspeak.dialer.ports import CallAnswered, CallEnded, CallOutcome, OperatorAnswered
from sipspeak.dialer.runtime import CampaignRuntime
from sipspeak.storage.models import NewContact
from sipspeak.web.app import create_app

# The call tests' world: real call control over SQLite, sipp providers, baresip phones.
sys.path.insert(0, str(Path(__file__).parents[1] / "calls"))
from callworld import World, free_port, rtp_party, spawn, world  # noqa: E402,F401  (fixtures)
from test_inbound_sipp import run_uac  # noqa: E402


@pytest.fixture
async def dialer(staff: Site, start_dialer: StartDialer,
                 ) -> tuple[Site, CampaignRuntime, FakeCallLayer]:
    """«Продажи», progressive, launched, with the operator in its group and one contact."""
    db = staff.db
    trunk = await db.trunks.create(name="t", host="sip:127.0.0.1:5999", username="u",
                                   password="p")
    sales = await db.projects.create(
        "Продажи", trunk_id=trunk, caller_id="74950001122", dial_mode="progressive",
        client_time_from="00:00", client_time_to="00:00", launched=True)
    group = await db.groups.create("Смена")
    await db.groups.add_members(group, [staff.users["oper@test.ru"]])
    await db.projects.set_groups(sales, [group])
    await db.contacts.insert_many(project_id=sales, upload_id=None,
                                  contacts=[NewContact(phone="79000000001")])
    runtime, calls = await start_dialer()
    return staff, runtime, calls


async def next_picture(socket: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await socket.receive(timeout=10)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    picture: dict[str, Any] = json.loads(message.data)
    return picture


async def pictures_until(socket: aiohttp.ClientWebSocketResponse, state: str,
                         ) -> dict[str, Any]:
    for _ in range(20):
        picture = await next_picture(socket)
        if picture["state"] == state:
            return picture
    raise AssertionError(f"no picture in state {state}")


async def test_without_telephony_and_dialer_the_picture_says_so(staff: Site) -> None:
    status, body = await staff.api_get("oper@test.ru", "/api/v1/workspace")
    assert status == 200
    assert (body["status"], body["state"], body["state_label"]) == (
        "offline", "offline", "Не в системе")
    assert (body["telephony"], body["dialer"], body["calls"], body["last_call"]) == (
        False, False, [], None)
    assert body["phone"] == "offline"  # he has an extension, no registrar runs
    status, admin = await staff.api_get("admin@test.ru", "/api/v1/workspace")
    assert status == 200 and admin["phone"] == "none" and admin["user_id"] != body["user_id"]
    # Without the dialer the chosen status still shows.
    operator = await staff.signed_in("oper@test.ru")
    assert (await operator.api("POST", "/api/v1/agent/state", {"state": "pause"})).status == 200
    status, body = await staff.api_get("oper@test.ru", "/api/v1/workspace")
    assert (body["status"], body["state"], body["state_label"]) == ("pause", "paused", "Пауза")


async def test_a_call_walks_the_operator_through_talk_and_wrap_up_to_the_saved_card(
        dialer: tuple[Site, CampaignRuntime, FakeCallLayer]) -> None:
    site, runtime, calls = dialer
    operator_id = site.users["oper@test.ru"]
    browser = await site.signed_in("oper@test.ru")
    async with browser.session.ws_connect("/api/v1/workspace") as socket:
        first = await next_picture(socket)
        assert first["state"] == "offline" and first["dialer"] is True
        assert (await browser.api("POST", "/api/v1/agent/state",
                                  {"state": "available"})).status == 200
        free = await pictures_until(socket, "available")
        assert free["status"] == "available" and free["since_ms"] <= runtime.now_ms()
        # The progressive dialer calls for him; the customer answers, his phone rings.
        await until(lambda: bool(calls.originated), "a dial for the free operator")
        call_id, contact, _ = calls.originated[0]
        runtime.on_call_event(CallAnswered(call_id, runtime.now_ms()))
        ringing = await pictures_until(socket, "ringing")
        assert ringing["state_label"] == "Ожидание ответа"
        ring_id = calls.rings[0][0]
        runtime.on_operator_event(OperatorAnswered(ring_id, operator_id, runtime.now_ms()))
        talking = await pictures_until(socket, "talking")
        assert talking["status"] == "available"
        # The call ends; its CDR row (the call layer's) names him: the card of that call
        # stays during wrap-up.
        project = (await site.db.projects.list())[0]
        cdr = await site.db.calls.open(direction="outbound", started_at=runtime.now_ms(),
                                       project_id=project.id, contact_id=contact.contact_id,
                                       contact_phone=contact.phone, operator_id=operator_id)
        runtime.on_call_event(CallEnded(call_id, runtime.now_ms(), CallOutcome.ANSWERED))
        wrap = await pictures_until(socket, "wrap_up")
        assert wrap["state_label"] == "В карточке"
        # It ends by itself at the service's wrap-up limit (30 s): the page counts down.
        assert wrap["wrap_up_ends_ms"] == wrap["since_ms"] + 30_000
        assert talking["wrap_up_ends_ms"] is None
        assert wrap["last_call"]["cdr_id"] == cdr
        assert (wrap["last_call"]["contact_id"], wrap["last_call"]["phone"],
                wrap["last_call"]["project"]) == (contact.contact_id, "79000000001", "Продажи")
        # Saving the card ends the wrap-up: he is free again.
        answer = await browser.api("POST", "/api/v1/agent/state", {"state": "card_saved"})
        assert answer.status == 200 and (await answer.json())["state"] == "available"
        await pictures_until(socket, "available")
    # Another operator's events do not concern him, and he only ever sees himself.
    status, other = await site.api_get("admin@test.ru", "/api/v1/workspace")
    assert status == 200 and other["last_call"] is None and other["state"] == "offline"


async def test_card_saved_is_not_a_status_of_its_own(staff: Site) -> None:
    operator = await staff.signed_in("oper@test.ru")
    answer = await operator.api("POST", "/api/v1/agent/state", {"state": "card_saved"})
    assert answer.status == 200 and (await answer.json())["state"] == "offline"
    rows = await staff.db.intervals.between(start=0, end=2**62,
                                            user_id=staff.users["oper@test.ru"])
    assert [r.state for r in rows] == []  # nothing written: not a status
    answer = await operator.api("POST", "/api/v1/agent/state", {"state": "sleeping"})
    assert answer.status == 422


async def test_the_push_is_the_callers_own_and_refuses_other_sites(
        dialer: tuple[Site, CampaignRuntime, FakeCallLayer]) -> None:
    site, _, _ = dialer
    browser = await site.signed_in("oper@test.ru")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await browser.session.ws_connect("/api/v1/workspace",
                                         headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    async with browser.session.ws_connect("/api/v1/workspace") as socket:
        assert (await next_picture(socket))["user_id"] == site.users["oper@test.ru"]
        assert (await browser.form("/logout", {})).status in (302, 303)
        site.services.bus.publish("agent.state", user_id=site.users["oper@test.ru"],
                                  state="available", at=0)
        message = await socket.receive(timeout=10)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message


async def menu_of(browser: Browser) -> str:
    return await (await browser.get("/workspace")).text()


async def test_the_page_in_chromium_follows_the_operator(
        dialer: tuple[Site, CampaignRuntime, FakeCallLayer]) -> None:
    site, runtime, calls = dialer
    page = await menu_of(await site.signed_in("oper@test.ru"))
    assert 'href="/workspace"' in page and "Рабочее место" in page
    driver = load_driver()
    base = site.base.rstrip("/")
    async with driver.ChromiumDriver.launch() as chromium:
        await sign_in(chromium, base, "oper@test.ru")
        await chromium.navigate(f"{base}/workspace")

        async def text_of(element_id: str) -> str:
            found = await chromium.execute(
                f"var e = document.getElementById('{element_id}');"
                " return e ? e.textContent : null;")
            return str(found)

        async def shows(element_id: str, text: str) -> bool:
            return text in await text_of(element_id)

        await browser_until(lambda: shows("ws-state", "Не в системе"), "signed out state")
        assert await shows("ws-calls", "Звонков нет")
        runtime.set_agent_status(site.users["oper@test.ru"], "available")
        await browser_until(lambda: shows("ws-state", "Свободен"), "pushed without reload")
        await until(lambda: bool(calls.originated), "a dial for the free operator")
        runtime.on_call_event(CallAnswered(calls.originated[0][0], runtime.now_ms()))
        await browser_until(lambda: shows("ws-state", "Ожидание ответа"), "ringing pushed")
        hidden = await chromium.execute("return document.getElementById('ws-finish').hidden;")
        assert hidden is True
        operator_id = site.users["oper@test.ru"]
        call_id, contact, _ = calls.originated[0]
        runtime.on_operator_event(OperatorAnswered(calls.rings[0][0], operator_id,
                                                   runtime.now_ms()))
        await browser_until(lambda: shows("ws-state", "В разговоре"), "talking pushed")

        async def card_of() -> Any:
            return await chromium.execute(
                "var c = document.querySelector('#ws-card .sipcard');"
                " return c ? Number(c.getAttribute('data-card')) : null;")

        # (No call layer runs here, so the call itself is not in the picture: the card pops
        # up with its CDR row at the wrap-up; tests/calls/test_workspace_sipp.py has the call.)
        project = (await site.db.projects.list())[0]
        await site.db.calls.open(direction="outbound", started_at=runtime.now_ms(),
                                 project_id=project.id, contact_id=contact.contact_id,
                                 contact_phone=contact.phone, operator_id=operator_id)
        runtime.on_call_event(CallEnded(call_id, runtime.now_ms(), CallOutcome.ANSWERED))
        await browser_until(lambda: shows("ws-state", "В карточке"), "wrap-up pushed")
        assert await chromium.execute(
            "return document.getElementById('ws-finish').hidden;") is False
        assert await chromium.execute(
            "return document.getElementById('ws-wrap-up').hidden;") is False
        assert await shows("ws-wrap-up-left", "00:")  # counting down to the limit
        await browser_until(lambda: _equal(card_of(), contact.contact_id), "the card popped up")
        # He fills the card in and saves it: the wrap-up ends, he is free again.
        await chromium.execute(
            "var i = document.querySelector('#ws-card [data-field=full_name]');"
            " i.value = 'Пётр Петров';"
            " document.querySelector('#ws-card .sipcard-save').click();")
        await browser_until(lambda: shows("ws-state", "Свободен"), "saving ended the wrap-up")
        saved = await site.db.contacts.get(contact.contact_id)
        assert saved.full_name == "Пётр Петров"
        severe = [e for e in await chromium.console_logs() if e.get("level") == "SEVERE"]
        assert severe == []
        # Signed out elsewhere: the push ends and the page says so instead of retrying.
        await chromium.execute("window.sipspeak.postJson('/logout', {});")
        await browser_until(lambda: shows("ws-link", "Сеанс завершён"), "told it is signed out")


async def _equal(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def test_his_open_tasks_earliest_first(staff: Site) -> None:
    db = staff.db
    me, admin = staff.users["oper@test.ru"], staff.users["admin@test.ru"]
    sales = await db.projects.create("Продажи")
    await db.contacts.insert_many(project_id=sales, upload_id=None, contacts=[
        NewContact(phone="+79000000001", full_name="Иван"), NewContact(phone="+79000000002")])
    first, second = sorted(c.id for c in await db.contacts.list(project_id=sales))
    later = await db.tasks.add(contact_id=second, operator_id=me, text="перезвонить",
                               due_at=4_000_000_000_000, auto_call=True)
    overdue = await db.tasks.add(contact_id=first, operator_id=me, text="", due_at=1000)
    done = await db.tasks.add(contact_id=first, operator_id=me, text="x", due_at=500)
    await db.tasks.complete(done)
    await db.tasks.add(contact_id=first, operator_id=admin, text="не его", due_at=10)
    status, body = await staff.api_get("oper@test.ru", "/api/v1/workspace")
    assert status == 200
    assert [(t["id"], t["contact_id"], t["phone"], t["name"], t["due"], t["auto_call"])
            for t in body["tasks"]] == [
        (overdue, first, "+79000000001", "Иван", True, False),
        (later, second, "+79000000002", None, False, True)]
    assert body["tasks"][1]["text"] == "перезвонить"


async def test_hidden_numbers_stay_hidden_from_the_operator(staff: Site) -> None:
    db = staff.db
    me, admin = staff.users["oper@test.ru"], staff.users["admin@test.ru"]
    hidden = await db.projects.create("Скрытые номера", show_numbers=False)
    await db.contacts.insert_many(project_id=hidden, upload_id=None, contacts=[
        NewContact(phone="+79000000001")])
    [contact] = await db.contacts.list(project_id=hidden)
    for user in (me, admin):
        await db.tasks.add(contact_id=contact.id, operator_id=user, text="", due_at=1000)
        await db.calls.open(direction="outbound", started_at=1000, project_id=hidden,
                            contact_id=contact.id, contact_phone=contact.phone,
                            operator_id=user)
    _, mine = await staff.api_get("oper@test.ru", "/api/v1/workspace")
    assert mine["tasks"][0]["phone"] == mine["last_call"]["phone"] == "+790******01"
    # Staff see numbers whole, as on the card.
    _, theirs = await staff.api_get("admin@test.ru", "/api/v1/workspace")
    assert theirs["tasks"][0]["phone"] == theirs["last_call"]["phone"] == "+79000000001"


@asynccontextmanager
async def call_site(world: World, tmp_path: Path) -> AsyncIterator[Site]:
    """The service as it runs, over the call world's storage, bus and call control: the
    campaign runtime started and attached as the application does it (its ACD takes the
    inbound calls), and the web application on 127.0.0.1."""
    services = Services(config=make_config(tmp_path), db=world.db, bus=world.bus,
                        call_runtime=world.runtime)
    await start_campaigns(services)
    server = TestServer(create_app(services), host="127.0.0.1", port=0)
    await server.start_server()
    site = Site(server=server, services=services, db=world.db,
                base=str(server.make_url("/")), browsers=[], users={})
    try:
        yield site
    finally:
        for browser in site.browsers:
            await browser.close()
        await server.close()
        await stop_campaigns(services)
        if services.campaigns is not None:
            await services.campaigns.aclose()


async def test_a_call_the_customer_holds_shows_on_hold_until_resumed(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    """sipp delivers an inbound call, talks, holds it (re-INVITE ``a=sendonly``) for five
    seconds and resumes; baresip is the operator's phone (auto-answer).  The push, the API
    and his page in Chromium follow."""
    caller = rtp_party(1000.0)
    provider_port = free_port()
    trunk_id, project_id = await world.inbound_project(provider_port)
    operator_id = await world.add_operator(trunk_id, project_id)
    await world.db.users.update(operator_id, password_hash=password_hash())
    operator = await world.db.users.get(operator_id)
    await world.start_phone(spawn, tmp_path / "phone")
    driver = load_driver()
    async with call_site(world, tmp_path) as site, driver.ChromiumDriver.launch() as chromium:
        base = site.base.rstrip("/")
        await sign_in(chromium, base, operator.email)
        await chromium.navigate(f"{base}/workspace")

        async def hold_shown() -> str:
            found = await chromium.execute(
                "var h = document.querySelector('#ws-calls .ws-hold');"
                " return h ? h.textContent : '';")
            return str(found)

        async def shown(element_id: str) -> str:
            found = await chromium.execute(
                f"var e = document.getElementById('{element_id}');"
                " return e ? e.textContent : '';")
            return str(found)

        await browser_until(lambda: _equal(shown("ws-calls"), "Звонков нет"), "no call yet")
        assert site.services.campaigns is not None
        site.services.campaigns.set_agent_status(operator_id, "available")
        operator_browser = await site.signed_in(operator.email)
        async with operator_browser.session.ws_connect("/api/v1/workspace") as socket:
            assert (await next_picture(socket))["calls"] == []
            provider = asyncio.create_task(run_uac(
                spawn, world, "inbound_hold.xml", port=provider_port, service="117049",
                rtpport=str(caller.port), pause_ms=3000))

            async def call_until(on_hold: bool) -> dict[str, Any]:
                while True:
                    calls = (await next_picture(socket))["calls"]
                    if calls and calls[0]["phase"] == "bridged" and \
                            calls[0]["on_hold"] is on_hold:
                        return dict(calls[0])

            talking = await call_until(False)
            assert (talking["held_by"], talking["hold_since_ms"]) == ([], None)
            held = await call_until(True)
            assert held["id"] == talking["id"] and held["held_by"] == ["customer"]
            assert held["hold_since_ms"] >= held["bridged_ms"]
            # Asked once, the API answers the same hold.
            status, body = await site.api_get(operator.email, "/api/v1/workspace")
            assert status == 200
            [asked] = body["calls"]
            assert (asked["on_hold"], asked["held_by"], asked["hold_since_ms"]) == (
                True, ["customer"], held["hold_since_ms"])

            async def hold_counting() -> bool:
                text = await hold_shown()
                return text.startswith(" · На удержании ") and text[-5:] not in ("", "00:00")

            await browser_until(hold_counting, "«На удержании» counting on in his page")
            # The customer resumes: the same call, no longer on hold.
            resumed = await call_until(False)
            assert resumed["id"] == held["id"]
            assert (resumed["held_by"], resumed["hold_since_ms"]) == ([], None)
            async def talking_again() -> bool:
                return bool(await chromium.execute(
                    "return !!document.querySelector('#ws-calls .ws-call')"
                    " && !document.querySelector('#ws-calls .ws-hold');"))

            await browser_until(talking_again, "the call, no longer on hold, on his page")
            code, out = await provider
            assert code == 0, out[-2000:]
        severe = [e for e in await chromium.console_logs() if e.get("level") == "SEVERE"]
        assert severe == []
