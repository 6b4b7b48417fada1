"""The order of a group's members (§4.2, §5.2.4 «Вызываются все операторы по списку") on the
real site: moved up and down on the page, set whole through the API, refused when it does not
name every member once, and followed by the real campaign runtime's queue."""

from __future__ import annotations

import re

from fake_calls import StartDialer, until
from webtools import Site

from sipspeak.dialer.ports import CallAnswered
from sipspeak.storage.models import NewContact


def members_on_page(page: str, group_id: int) -> list[int]:
    row = re.search(rf'<tr id="group-{group_id}">(.*?)</tr>', page, re.DOTALL)
    assert row is not None
    return [int(m) for m in re.findall(r'data-member="(\d+)"', row.group(1))]


async def three(staff: Site) -> tuple[int, list[int]]:
    """«Смена» with the operator, Анна and Борис, in the order they were added."""
    anna = await staff.user("operator", "anna@test.ru", full_name="Анна", extension="334")
    boris = await staff.user("operator", "boris@test.ru", full_name="Борис", extension="335")
    group = await staff.db.groups.create("Смена")
    members = [staff.users["oper@test.ru"], anna, boris]
    await staff.db.groups.add_members(group, members)
    return group, members


async def test_the_page_moves_a_member_up_and_down(staff: Site) -> None:
    group, (oper, anna, boris) = await three(staff)
    admin = await staff.signed_in("admin@test.ru")
    page = await (await admin.get("/settings/groups")).text()
    assert members_on_page(page, group) == [oper, anna, boris]
    assert "Выше в списке" in page and "Ниже в списке" in page
    moved = await admin.form(f"/settings/groups/{group}/members/{boris}/move",
                             {"direction": "up"})
    assert moved.status == 303
    assert (await staff.db.groups.get(group)).member_ids == (oper, boris, anna)
    await admin.form(f"/settings/groups/{group}/members/{oper}/move", {"direction": "down"})
    page = await (await admin.get("/settings/groups")).text()
    assert members_on_page(page, group) == [boris, oper, anna]
    # At the top nothing moves further up; a wrong direction is said, not guessed.
    await admin.form(f"/settings/groups/{group}/members/{boris}/move", {"direction": "up"})
    assert (await staff.db.groups.get(group)).member_ids == (boris, oper, anna)
    wrong = await admin.form(f"/settings/groups/{group}/members/{boris}/move",
                             {"direction": "left"})
    assert wrong.status == 422 and "Направление: up (выше) или down (ниже)" in await wrong.text()
    stranger = await staff.user("operator", "x@test.ru")
    missing = await admin.form(f"/settings/groups/{group}/members/{stranger}/move",
                               {"direction": "up"})
    assert missing.status == 404
    assert (await staff.db.groups.get(group)).member_ids == (boris, oper, anna)


async def test_the_api_sets_the_whole_order_or_nothing(staff: Site) -> None:
    group, (oper, anna, boris) = await three(staff)
    admin = await staff.signed_in("admin@test.ru")
    answer = await admin.api("PUT", f"/api/v1/groups/{group}/members/order",
                             {"user_ids": [boris, oper, anna]})
    assert answer.status == 200
    assert (await answer.json())["member_ids"] == [boris, oper, anna]
    _, body = await staff.api_get("admin@test.ru", f"/api/v1/groups/{group}")
    assert body["member_ids"] == [boris, oper, anna]
    stranger = await staff.user("operator", "x@test.ru")
    for wrong in ([boris, oper], [boris, oper, anna, anna], [boris, oper, stranger],
                  [boris, oper, anna, stranger], []):
        answer = await admin.api("PUT", f"/api/v1/groups/{group}/members/order",
                                 {"user_ids": wrong})
        body = await answer.json()
        assert answer.status == 422, wrong
        assert body["error"]["field"] == "user_ids"
        assert body["error"]["message"].startswith("Порядок: перечислите всех пользователей")
    assert (await staff.db.groups.get(group)).member_ids == (boris, oper, anna)
    # A removed user keeps his place out of the way; the live ones are ordered.
    await staff.db.users.soft_delete(oper)
    answer = await admin.api("PUT", f"/api/v1/groups/{group}/members/order",
                             {"user_ids": [anna, boris]})
    assert answer.status == 200 and (await answer.json())["member_ids"] == [anna, boris]
    await staff.db.users.update(staff.users["admin@test.ru"], language="en")
    answer = await admin.api("PUT", f"/api/v1/groups/{group}/members/order",
                             {"user_ids": [anna]})
    assert (await answer.json())["error"]["message"].startswith("Order: list every user")
    # A supervisor orders the groups of his projects only; an operator none.
    supervisor = await staff.signed_in("sup@test.ru")
    answer = await supervisor.api("PUT", f"/api/v1/groups/{group}/members/order",
                                  {"user_ids": [boris, anna]})
    assert answer.status == 403
    project = await staff.db.projects.create("Продажи", supervisor_id=staff.users["sup@test.ru"])
    await staff.db.projects.set_groups(project, [group])
    answer = await supervisor.api("PUT", f"/api/v1/groups/{group}/members/order",
                                  {"user_ids": [boris, anna]})
    assert answer.status == 200
    operator = await staff.signed_in("anna@test.ru")
    answer = await operator.api("PUT", f"/api/v1/groups/{group}/members/order",
                                {"user_ids": [anna, boris]})
    assert answer.status == 403
    assert (await staff.db.groups.get(group)).member_ids == (boris, anna)


async def test_the_linear_queue_rings_in_the_new_order(staff: Site,
                                                        start_dialer: StartDialer) -> None:
    db = staff.db
    group, (oper, anna, boris) = await three(staff)
    trunk = await db.trunks.create(name="t", host="sip:127.0.0.1:5999", username="u",
                                   password="p")
    project = await db.projects.create(
        "Продажи", trunk_id=trunk, caller_id="74950001122", dial_mode="progressive",
        client_time_from="00:00", client_time_to="00:00", strategy="linear", launched=True,
        max_concurrent_calls=1)
    await db.projects.set_groups(project, [group])
    await db.contacts.insert_many(project_id=project, upload_id=None,
                                  contacts=[NewContact(phone="79000000001")])
    runtime, calls = await start_dialer()
    assert runtime.campaigns[project].operator_ids == (oper, anna, boris)
    # The order changes while the project runs: its queue takes it.
    admin = await staff.signed_in("admin@test.ru")
    answer = await admin.api("PUT", f"/api/v1/groups/{group}/members/order",
                             {"user_ids": [boris, anna, oper]})
    assert answer.status == 200
    await until(lambda: runtime.campaigns[project].operator_ids == (boris, anna, oper),
                "the runtime to re-read the group")
    assert runtime.campaigns[project].queue.settings.operator_ids == (boris, anna, oper)
    for user_id in (oper, anna, boris):
        staff.services.bus.publish("agent.state", user_id=user_id, state="available", at=0)
    await until(lambda: bool(calls.originated), "a dial for the free operators")
    # Reordered again while the customer's number rings: the busy campaign keeps its calls
    # and takes the new order.
    campaign = runtime.campaigns[project]
    answer = await admin.api("PUT", f"/api/v1/groups/{group}/members/order",
                             {"user_ids": [anna, oper, boris]})
    assert answer.status == 200
    await until(lambda: campaign.queue.settings.operator_ids == (anna, oper, boris),
                "the running queue to take the new order")
    assert runtime.campaigns[project] is campaign and campaign.dials
    runtime.on_call_event(CallAnswered(calls.originated[0][0], runtime.now_ms()))
    await until(lambda: bool(calls.rings), "an operator rung")
    # All three are free: «по списку» rings the first of the list, Анна.
    assert [operator for _, operator, _ in calls.rings] == [anna]
