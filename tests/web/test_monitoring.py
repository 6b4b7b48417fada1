"""«Мониторинг» (§7): the queues and their operators through the API, the page and the push.

The dialer's runtime is the real one over the site's SQLite file and bus; only the call
layer under it records what it is asked (tests/fake_calls.py) — except for the call on hold,
where the whole service runs over real call control with sipp and baresip peers
(:func:`test_workspace.call_site`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fake_calls import FakeCallLayer, StartDialer, until
from test_browser import load_driver, sign_in
from test_browser import until as browser_until
from test_workspace import call_site, rtp_party, spawn, world  # noqa: F401  (fixtures)
from webtools import Site

from sipspeak.dialer.ports import CallAnswered, OperatorAnswered
from sipspeak.dialer.runtime import CampaignRuntime
from sipspeak.storage.models import NewContact

sys.path.insert(0, str(Path(__file__).parents[1] / "calls"))
from callworld import World, free_port, start_provider  # noqa: E402
from test_bridge_e2e import command  # noqa: E402


@pytest.fixture
async def dialer(staff: Site, start_dialer: StartDialer,
                 ) -> tuple[Site, CampaignRuntime, FakeCallLayer]:
    """Two launched projects: «Продажи» supervised by sup@, with the operator (Оператор) and
    a second one who never signs in (Иванова); «Опросы» of nobody's group, supervised by
    nobody."""
    db = staff.db
    trunk = await db.trunks.create(name="t", host="sip:127.0.0.1:5999", username="u",
                                   password="p")
    common: dict[str, Any] = {"trunk_id": trunk, "caller_id": "74950001122",
                              "dial_mode": "progressive", "client_time_from": "00:00",
                              "client_time_to": "00:00", "launched": True}
    sales = await db.projects.create("Продажи", supervisor_id=staff.users["sup@test.ru"],
                                     strategy="round_robin", **common)
    await db.projects.create("Опросы", strategy="linear", **common)
    second = await staff.user("operator", "ivanova@test.ru", full_name="Иванова")
    group = await db.groups.create("Смена")
    await db.groups.add_members(group, [staff.users["oper@test.ru"], second])
    await db.projects.set_groups(sales, [group])
    await db.contacts.insert_many(project_id=sales, upload_id=None,
                                  contacts=[NewContact(phone="79000000001")])
    runtime, calls = await start_dialer()
    return staff, runtime, calls


async def picture(site: Site, email: str) -> tuple[int, dict[str, Any]]:
    status, body = await site.api_get(email, "/api/v1/monitoring")
    return status, body


async def test_without_the_dialer_the_page_says_so_and_the_api_answers_503(staff: Site) -> None:
    status, body = await picture(staff, "admin@test.ru")
    assert status == 503 and body["error"]["message"] == "дозвон не запущен"
    page = await (await (await staff.signed_in("admin@test.ru")).get("/monitoring")).text()
    assert "Дозвон не запущен: мониторинг недоступен" in page
    assert '<script type="application/json" id="monitoring-initial">null</script>' in page


async def test_each_role_sees_the_queues_it_may(dialer: tuple[Site, CampaignRuntime,
                                                             FakeCallLayer]) -> None:
    site, runtime, _ = dialer
    status, admin = await picture(site, "admin@test.ru")
    assert status == 200
    assert [(q["project"], q["strategy"]) for q in admin["queues"]] == [
        ("Продажи", "round_robin"), ("Опросы", "linear")]
    sales = admin["queues"][0]
    assert sales["strategy_label"] == "По кругу, после того, кто ответил последним"
    assert [(o["name"], o["state"], o["state_label"], o["since_ms"])
            for o in sales["operators"]] == [("Оператор", "offline", "Не в системе", None),
                                             ("Иванова", "offline", "Не в системе", None)]
    assert (sales["waiting"], sales["oldest_waiting_since_ms"]) == (0, None)
    # No phone registrar in this test: every operator's phone counts as offline.
    assert (sales["phones_online"], sales["phones_offline"]) == (0, 2)
    assert admin["now_ms"] <= runtime.now_ms()
    status, sup = await picture(site, "sup@test.ru")
    assert status == 200 and [q["project"] for q in sup["queues"]] == ["Продажи"]
    status, _ = await picture(site, "oper@test.ru")
    assert status == 403


async def test_the_page_is_pushed_every_change(dialer: tuple[Site, CampaignRuntime,
                                                            FakeCallLayer]) -> None:
    site, runtime, calls = dialer
    browser = await site.signed_in("sup@test.ru")
    page = await (await browser.get("/monitoring")).text()
    assert '"project": "Продажи"' in page and "Опросы" not in page

    async with browser.session.ws_connect("/api/v1/monitoring") as socket:
        async def next_picture() -> dict[str, Any]:
            message = await socket.receive(timeout=10)
            assert message.type is aiohttp.WSMsgType.TEXT, message
            return json.loads(message.data)

        first = await next_picture()
        assert first["queues"][0]["operators"][0]["state"] == "offline"
        operator = site.users["oper@test.ru"]
        site.services.bus.publish("agent.state", user_id=operator, state="available", at=0)
        # The operator is free, the progressive dialer calls for him, the customer answers
        # and waits while his phone rings: each step reaches the page without asking.
        seen: list[str] = []
        while not seen or seen[-1] != "ringing":
            queue = (await next_picture())["queues"][0]
            line = queue["operators"][0]
            seen.append(line["state"])
            if line["state"] == "available":
                await until(lambda: bool(calls.originated), "a dial for the free operator")
                runtime.on_call_event(CallAnswered(calls.originated[0][0], runtime.now_ms()))
        assert seen[0] == "available" and len(calls.rings) == 1
        assert line["state_label"] == "Ожидание ответа" and line["since_ms"] is not None
        assert queue["waiting"] == 1 and queue["oldest_waiting_since_ms"] <= runtime.now_ms()


async def test_each_queue_tells_what_its_dialling_came_to(
        dialer: tuple[Site, CampaignRuntime, FakeCallLayer]) -> None:
    site, runtime, calls = dialer
    status, body = await picture(site, "admin@test.ru")
    sales = next(q for q in body["queues"] if q["project"] == "Продажи")
    assert status == 200 and (sales["dial_mode"], sales["dial_mode_label"]) == (
        "progressive", "Прогрессивный набор")
    assert (sales["dialling"], sales["persons"], sales["abandoned"]) == (0, 0, 0)
    operator = site.users["oper@test.ru"]
    site.services.bus.publish("agent.state", user_id=operator, state="available", at=0)
    await until(lambda: bool(calls.originated), "a dial for the free operator")

    async def queue() -> dict[str, Any]:
        _, body = await picture(site, "admin@test.ru")
        return next(q for q in body["queues"] if q["project"] == "Продажи")

    assert (await queue())["dialling"] == 1  # ringing
    runtime.on_call_event(CallAnswered(calls.originated[0][0], runtime.now_ms()))
    await until(lambda: bool(calls.rings), "the operator rung")
    runtime.on_operator_event(OperatorAnswered(calls.rings[0][0], operator, runtime.now_ms()))
    after = await queue()
    assert (after["dialling"], after["persons"], after["abandoned"], after["abandon_rate"]) == (
        0, 1, 0, 0.0)


async def test_a_page_of_another_site_cannot_open_the_push(
        dialer: tuple[Site, CampaignRuntime, FakeCallLayer]) -> None:
    site, _, _ = dialer
    browser = await site.signed_in("admin@test.ru")
    port = site.server.port
    for origin in ("https://evil.example", f"http://127.0.0.1:{port + 1}", "null"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await browser.session.ws_connect("/api/v1/monitoring", headers={"Origin": origin})
        assert refused.value.status == 403, origin
    # Behind a proxy with its own name (the configured public URL), its pages are ours.
    site.services.config = site.services.config.with_overrides(
        {("web", "public_url"): "https://cc.example.ru"})
    async with browser.session.ws_connect(
            "/api/v1/monitoring", headers={"Origin": "https://cc.example.ru"}) as socket:
        assert (await socket.receive(timeout=10)).type is aiohttp.WSMsgType.TEXT
    async with browser.session.ws_connect(
            "/api/v1/monitoring", headers={"Origin": site.base.rstrip("/")}) as socket:
        message = await socket.receive(timeout=10)
        assert [q["project"] for q in json.loads(message.data)["queues"]] == [
            "Продажи", "Опросы"]


async def test_the_page_in_chromium_follows_the_operators_live(
        dialer: tuple[Site, CampaignRuntime, FakeCallLayer]) -> None:
    site, _, _ = dialer
    driver = load_driver()
    base = site.base.rstrip("/")
    async with driver.ChromiumDriver.launch() as browser:
        await sign_in(browser, base, "admin@test.ru")
        await browser.navigate(f"{base}/monitoring")
        operator = site.users["oper@test.ru"]
        cell = f'section[data-project] tr[data-operator="{operator}"] td.state'

        async def shows(text: str) -> bool:
            found = await browser.execute(
                f"var c = document.querySelector('{cell}'); return c ? c.textContent : null;")
            return bool(found == text)

        await browser_until(lambda: shows("Не в системе"), "the operator signed out")
        site.services.bus.publish("agent.state", user_id=operator, state="pause", at=0)
        # Pushed over the WebSocket: no reload, no polling by the page.
        await browser_until(lambda: shows("Пауза"), "the pause pushed to the page")
        since = f'section[data-project] tr[data-operator="{operator}"] td.since'

        async def counting() -> bool:
            text = await browser.execute(
                f"return document.querySelector('{since}').textContent;")
            return bool(text) and text not in ("", "00:00")

        await browser_until(counting, "«Время» counting on in the page")
        assert await browser.execute(
            "return document.getElementById('monitoring-link').hidden;") is True
        severe = [e for e in await browser.console_logs() if e.get("level") == "SEVERE"]
        assert severe == []
        # Talking, he gets «Слушать»; here no call control runs, and the page says so.
        runtime, calls = dialer[1], dialer[2]
        site.services.bus.publish("agent.state", user_id=operator, state="available", at=0)
        await until(lambda: bool(calls.originated), "a dial for the free operator")
        runtime.on_call_event(CallAnswered(calls.originated[0][0], runtime.now_ms()))
        await until(lambda: bool(calls.rings), "the operator rung")
        runtime.on_operator_event(OperatorAnswered(calls.rings[0][0], operator,
                                                   runtime.now_ms()))
        listen = f'tr[data-operator="{operator}"] button[data-listen]'

        async def listen_shown() -> bool:
            return bool(await browser.execute(f"return !!document.querySelector('{listen}');"))

        await browser_until(listen_shown, "«Слушать» beside the talking operator")
        dialling = await browser.execute(
            "return document.querySelector('section[data-project] p.dialling').textContent;")
        assert dialling == ("Прогрессивный набор · Набирается: 0 · С запуска: ответили 1,"
                            " сброшено 0 (0,0 %)"), dialling
        await browser.execute(f"document.querySelector('{listen}').click();")

        async def refused() -> bool:
            text = await browser.execute(
                "return document.getElementById('monitoring-note').textContent;")
            return bool(text)

        await browser_until(refused, "the answer to «Слушать» shown")
        # Signed out elsewhere: the push ends and the page says so instead of retrying.
        await browser.execute("window.sipspeak.postJson('/logout', {});")

        async def signed_out() -> bool:
            text = await browser.execute(
                "var l = document.getElementById('monitoring-link');"
                " return l.hidden ? '' : l.textContent;")
            return bool(text == "Сеанс завершён: войдите снова")

        await browser_until(signed_out, "the page told it is signed out")


async def test_names_cannot_break_out_of_the_embedded_picture(
        dialer: tuple[Site, CampaignRuntime, FakeCallLayer]) -> None:
    site, runtime, _ = dialer
    name = '<!--<script></script><b>&amp;'
    sales = next(p.id for p in await site.db.projects.list() if p.name == "Продажи")
    await site.db.projects.update(sales, name=name)
    page = await (await (await site.signed_in("admin@test.ru")).get("/monitoring")).text()
    start = page.index('<script type="application/json" id="monitoring-initial">')
    body = page[start:page.index("</script>", start)].split(">", 1)[1]
    assert "<" not in body and ">" not in body and "&" not in body
    assert json.loads(body)["queues"][0]["project"] == name
    assert runtime.board().queues


async def test_the_push_ends_with_the_sign_in_and_at_shutdown(
        dialer: tuple[Site, CampaignRuntime, FakeCallLayer]) -> None:
    site, _, _ = dialer
    browser = await site.signed_in("sup@test.ru")
    async with browser.session.ws_connect("/api/v1/monitoring") as socket:
        assert (await socket.receive(timeout=10)).type is aiohttp.WSMsgType.TEXT
        assert (await browser.form("/logout", {})).status in (302, 303)
        # The next change finds the session gone: the server ends the push.
        site.services.bus.publish("agent.state", user_id=site.users["oper@test.ru"],
                                  state="available", at=0)
        message = await socket.receive(timeout=10)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
    admin = await site.signed_in("admin@test.ru")
    async with admin.session.ws_connect("/api/v1/monitoring") as socket:
        assert (await socket.receive(timeout=10)).type is aiohttp.WSMsgType.TEXT
        await site.server.app.shutdown()  # what the service does when it stops
        message = await socket.receive(timeout=10)
        assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 1001


async def test_listen_answers_who_may_and_what_is_missing(
        dialer: tuple[Site, CampaignRuntime, FakeCallLayer]) -> None:
    site, _, _ = dialer
    operator = site.users["oper@test.ru"]
    sup = await site.signed_in("sup@test.ru")
    answer = await sup.api("POST", "/api/v1/monitoring/listen", {})
    assert answer.status == 422
    # Not an operator of his queues: as if there were none.
    stranger = await site.user("operator", "nobody@test.ru")
    answer = await sup.api("POST", "/api/v1/monitoring/listen", {"operator_id": stranger})
    assert answer.status == 404
    # His operator, but no call control runs here.
    answer = await sup.api("POST", "/api/v1/monitoring/listen", {"operator_id": operator})
    assert answer.status == 503
    operator_browser = await site.signed_in("oper@test.ru")
    answer = await operator_browser.api("POST", "/api/v1/monitoring/listen",
                                        {"operator_id": operator})
    assert answer.status == 403  # operators do not listen to each other


async def test_an_operator_holding_his_call_shows_on_hold_with_its_time(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    """The real dialer calls the project's contact through sipp (the provider), the customer
    answers, the operator's baresip phone (auto-answer) takes the call; he puts it on hold
    from the phone and resumes.  The push, the API and the page in Chromium follow."""
    customer = rtp_party(1000.0)
    _, port = await start_provider(spawn, "provider.xml", rtp_port=customer.port)
    trunk_id = await world.add_trunk(port)
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="registered")
    project_id = await world.add_project(trunk_id, launched=True, dial_mode="progressive",
                                         client_time_from="00:00", client_time_to="00:00")
    await world.db.contacts.insert_many(project_id=project_id, upload_id=None,
                                        contacts=[NewContact(phone="79030001122")])
    operator_id = await world.add_operator(trunk_id, project_id)
    console = free_port()
    await world.start_phone(spawn, tmp_path / "phone", console_port=console)
    driver = load_driver()
    async with call_site(world, tmp_path) as site, driver.ChromiumDriver.launch() as chromium:
        await site.user("admin", "admin@test.ru")
        base = site.base.rstrip("/")
        await sign_in(chromium, base, "admin@test.ru")
        await chromium.navigate(f"{base}/monitoring")
        row = f'section[data-project="{project_id}"] tr[data-operator="{operator_id}"]'

        async def cell(name: str) -> str:
            found = await chromium.execute(
                f"var c = document.querySelector('{row} td.{name}');"
                " return c ? c.textContent : null;")
            return str(found)

        async def state_shown(text: str) -> bool:
            return await cell("state") == text

        admin = await site.signed_in("admin@test.ru")
        async with admin.session.ws_connect("/api/v1/monitoring") as socket:
            async def line_until(state: str, on_hold: bool) -> dict[str, Any]:
                while True:
                    message = await socket.receive(timeout=30)
                    assert message.type is aiohttp.WSMsgType.TEXT, message
                    picture = json.loads(message.data)
                    for queue in picture["queues"]:
                        for line in queue["operators"]:
                            if line["id"] == operator_id and line["state"] == state \
                                    and line["on_hold"] is on_hold:
                                return dict(line)

            assert site.services.campaigns is not None
            site.services.campaigns.set_agent_status(operator_id, "available")
            bridged = await world.log.wait("call.bridged", timeout=30)
            talking = await line_until("talking", False)
            assert (talking["held_by"], talking["hold_since_ms"]) == ([], None)
            await browser_until(lambda: state_shown("В разговоре"), "talking on the page")

            await command(console, "/hold")  # his phone re-INVITEs a=sendonly
            hold = await world.log.wait("call.hold", call_id=bridged.data["call_id"],
                                        on_hold=True, timeout=20)
            held = await line_until("talking", True)
            assert held["held_by"] == ["operator"]
            assert held["hold_since_ms"] == hold.data["at"]
            assert held["since_ms"] == talking["since_ms"]  # still talking underneath
            status, body = await site.api_get("admin@test.ru", "/api/v1/monitoring")
            assert status == 200
            [asked] = [o for q in body["queues"] for o in q["operators"]
                       if o["id"] == operator_id]
            assert (asked["on_hold"], asked["hold_since_ms"]) == (True, held["hold_since_ms"])
            await browser_until(lambda: state_shown("На удержании"), "the hold on the page")

            async def counting() -> bool:
                return await cell("since") not in ("", "None", "00:00")

            await browser_until(counting, "«Время» of the hold counting on")

            await command(console, "/resume")
            await world.log.wait("call.hold", call_id=bridged.data["call_id"],
                                 on_hold=False, timeout=20)
            resumed = await line_until("talking", False)
            assert (resumed["held_by"], resumed["hold_since_ms"]) == ([], None)
            await browser_until(lambda: state_shown("В разговоре"), "the hold's end on the page")
            severe = [e for e in await chromium.console_logs() if e.get("level") == "SEVERE"]
            assert severe == []
        world.runtime.calls.hang_up(bridged.data["call_id"])
        await world.log.wait("call.ended", call_id=bridged.data["call_id"], timeout=20)
