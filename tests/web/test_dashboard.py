"""«Дашборд» (§8): the period's statistics of operators, contacts and calls, each role seeing
its own share, through the API and the start page."""

from __future__ import annotations

from typing import Any

from test_reports import DAY, MINUTE, history
from test_reports_calls import at_msk
from webtools import Site

from sipspeak.storage.models import NewContact


async def world(site: Site) -> dict[str, Any]:
    """The reports' status history (Оператор, Иванова in the supervisor's «Продажи», Чужой
    outside), contacts in two projects and calls on 2 and 3 March 2026 (Moscow)."""
    ids = await history(site)
    db = site.db
    sales = next(p.id for p in await db.projects.list() if p.name == "Продажи")
    polls = await db.projects.create("Опросы")
    await db.contacts.insert_many(project_id=sales, upload_id=None, contacts=[
        NewContact(phone=f"7903000000{i}") for i in range(4)])
    await db.contacts.insert_many(project_id=polls, upload_id=None, contacts=[
        NewContact(phone="79160000000")])
    first, second, *_ = await db.contacts.list(project_id=sales)
    await db.contacts.update(first.id, dial_state="done", operator_id=ids["oper"])
    await db.contacts.update(second.id, dial_state="busy")

    async def call(project: int, started: int, result: str, operator: int | None = None,
                   **ms: int) -> None:
        call_id = await db.calls.open(direction="outbound", started_at=started,
                                      project_id=project, operator_id=operator)
        await db.calls.update(call_id, result=result, **ms)

    await call(sales, at_msk(2, 9), "answered", ids["oper"], dial_ms=2_000, wait_ms=1_000,
               talk_ms=60_000)
    await call(sales, at_msk(2, 10), "busy", dial_ms=3_000)
    await call(polls, at_msk(2, 23) + 30 * MINUTE, "no_answer", dial_ms=30_000)  # 23:30 MSK
    await call(sales, at_msk(3, 9), "answered", ids["ivanova"], talk_ms=120_000)
    return ids


async def figures(site: Site, email: str, query: str) -> dict[str, Any]:
    status, body = await site.api_get(email, f"/api/v1/dashboard?{query}")
    assert status == 200, body
    return dict(body)


async def test_the_administrator_sees_everything_day_by_day(staff: Site) -> None:
    await world(staff)
    data = await figures(staff, "admin@test.ru", "from=2026-03-02&to=2026-03-03")
    assert [(d["day"], d["count"], d["by_result"]) for d in data["calls"]] == [
        ("2026-03-02", 3, {"answered": 1, "busy": 1, "no_answer": 1}),
        ("2026-03-03", 1, {"answered": 1})]
    second = data["calls"][0]
    assert (second["dial_ms"], second["wait_ms"], second["talk_ms"]) == (35_000, 1_000, 60_000)
    assert data["contacts"] == {"new": 3, "done": 1, "busy": 1}
    operators = {o["name"]: o for o in data["operators"]}
    assert set(operators) == {"Оператор", "Иванова", "Чужой"}
    assert operators["Оператор"]["on_line_ms"] == (20 + 3 + 1 + 5 + 1 + 1) * MINUTE
    # In Vladivostok (UTC+10) the 23:30 Moscow call falls on the 3rd at 06:30.
    east = await figures(staff, "admin@test.ru", DAY + "&tz=Asia/Vladivostok")
    assert [(d["day"], d["by_result"]) for d in east["calls"]] == [
        ("2026-03-02", {"answered": 1, "busy": 1})]


async def test_a_supervisor_sees_his_projects_and_an_operator_only_himself(staff: Site) -> None:
    ids = await world(staff)
    sup = await figures(staff, "sup@test.ru", DAY)
    assert sup["calls"][0]["by_result"] == {"answered": 1, "busy": 1}
    assert sup["contacts"] == {"new": 2, "done": 1, "busy": 1}
    assert sorted(o["name"] for o in sup["operators"]) == ["Иванова", "Оператор"]
    oper = await figures(staff, "oper@test.ru", DAY)
    assert oper["calls"][0]["by_result"] == {"answered": 1}
    assert oper["contacts"] == {"done": 1}
    assert [o["user_id"] for o in oper["operators"]] == [ids["oper"]]
    assert oper["operators"][0]["available_ms"] == 20 * MINUTE


async def test_the_start_page_draws_the_four_statistics(staff: Site) -> None:
    ids = await world(staff)
    page = await (await (await staff.signed_in("admin@test.ru")).get(f"/?{DAY}")).text()
    for section in ("chart-operators", "chart-contacts", "chart-call-time", "chart-call-count"):
        assert f'id="{section}"' in page
    assert f'data-operator="{ids["oper"]}" data-on-line="{31 * MINUTE}"' in page
    assert 'data-state="new" data-count="3"' in page
    assert 'data-day="2026-03-02" data-count="3" data-answered="1"' in page
    assert "Статистика звонков (кол-во)" in page
    bad = await (await staff.signed_in("admin@test.ru")).get("/?from=2026-03-09&to=2026-03-01")
    assert bad.status == 422 and "период кончается раньше, чем начинается" in await bad.text()
