"""«Проверка на дубли номеров в проекте» (§5.5) on the real site: the project page's button
and the API delete a base's duplicates and say how many; only for the project's staff; never
a contact in a call or on an operator's card."""

from __future__ import annotations

import asyncio

from fake_calls import StartDialer, talk_with_free_operator, until
from webtools import Site

from sipspeak.dialer.ports import CallEnded, CallOutcome
from sipspeak.storage import now_ms
from sipspeak.storage.models import NewContact


async def base(staff: Site) -> int:
    project = await staff.db.projects.create("Продажи")
    await staff.db.contacts.insert_many(project_id=project, upload_id=None, contacts=[
        NewContact(phone=p) for p in ("+79220000001", "+79220000001", "+79220000001",
                                      "+79220000002", "+79220000003", "+79220000003")])
    return project


async def test_the_page_removes_duplicates_and_reports(staff: Site) -> None:
    project = await base(staff)
    admin = await staff.signed_in("admin@test.ru")
    page = await (await admin.get(f"/projects/{project}")).text()
    assert "Проверка на дубли номеров в проекте" in page
    answer = await admin.form(f"/projects/{project}/remove-duplicates", {})
    assert answer.status == 303
    location = answer.headers["Location"]
    assert location == f"/projects/{project}?ok=deduped&removed=3&numbers=2&dialling=0"
    assert await staff.db.contacts.count(project_id=project) == 3
    shown = await (await admin.get(location)).text()
    assert "Проверка на дубли: удалено контактов — 3, номеров с дублями — 2." in shown
    assert "сейчас идет звонок" not in shown
    # The report the page shows comes from numbers only.
    odd = await (await admin.get(f"/projects/{project}?ok=deduped&removed=<b>&dialling=2"))\
        .text()
    assert "удалено контактов — 0, номеров с дублями — 0." in odd
    assert "сейчас идет звонок: 2" in odd


async def test_the_api_answers_the_counts_in_scope(staff: Site) -> None:
    project = await base(staff)
    contacts = await staff.db.contacts.list(project_id=project)
    busy = max(c.id for c in contacts if c.phone == "+79220000003")
    assert await staff.db.contacts.claim_for_task(busy, now=1)
    operator = await staff.signed_in("oper@test.ru")
    path = f"/api/v1/projects/{project}/contacts/remove-duplicates"
    assert (await operator.api("POST", path)).status == 403
    supervisor = await staff.signed_in("sup@test.ru")
    assert (await supervisor.api("POST", path)).status == 403
    assert await staff.db.contacts.count(project_id=project) == 6
    await staff.db.projects.update(project, supervisor_id=staff.users["sup@test.ru"])
    answer = await supervisor.api("POST", path)
    assert answer.status == 200
    assert await answer.json() == {"removed": 2, "numbers": 1, "dialling": 1}
    assert await staff.db.contacts.count(project_id=project) == 4
    admin = await staff.signed_in("admin@test.ru")
    assert (await admin.api("POST", "/api/v1/projects/999999/contacts/remove-duplicates")
            ).status == 404


async def test_a_contact_in_a_call_or_on_the_wrapping_operators_card_stays(
        staff: Site, start_dialer: StartDialer) -> None:
    """The real dialer over the site's storage: the operator talks to a contact, the call
    ends and its outcome is written ('called'), he is «В карточке».  That contact and one in
    an inbound call in progress are not deleted, though each has a richer twin; his card
    saves, and the next check merges the number."""
    db = staff.db
    operator_id = staff.users["oper@test.ru"]
    trunk = await db.trunks.create(name="t", host="sip:127.0.0.1:5999")
    sales = await db.projects.create(
        "Продажи", trunk_id=trunk, caller_id="74950001122", dial_mode="progressive",
        client_time_from="00:00", client_time_to="00:00", launched=True)
    group = await db.groups.create("Смена")
    await db.groups.add_members(group, [operator_id])
    await db.projects.set_groups(sales, [group])
    await db.contacts.insert_many(project_id=sales, upload_id=None, contacts=[
        NewContact(phone=p) for p in ("+79220000001", "+79220000001", "+79220000002",
                                      "+79220000002", "+79220000003", "+79220000003")])
    dialled, dialled_twin, caller, caller_twin, plain, _ = sorted(
        c.id for c in await db.contacts.list(project_id=sales))
    for twin in (dialled_twin, caller_twin):  # richer: each would be the one kept
        await db.comments.add(contact_id=twin, user_id=None, text="звонил раньше")
        await db.comments.add(contact_id=twin, user_id=None, text="просил перезвонить")
    for other in (dialled_twin, caller, caller_twin, plain, plain + 1):  # only one is due
        await db.contacts.update(other, dial_state="called")
    inbound = await db.calls.open(direction="inbound", kind="inbound", started_at=now_ms(),
                                  project_id=sales, contact_id=caller,
                                  contact_phone="+79220000002")

    runtime, calls = await start_dialer()
    call_id, contact = await talk_with_free_operator(runtime, calls, operator_id)
    assert contact.contact_id == dialled
    cdr = await db.calls.open(direction="outbound", started_at=now_ms(), project_id=sales,
                              contact_id=dialled, contact_phone="+79220000001",
                              operator_id=operator_id)
    runtime.on_call_event(CallEnded(call_id, runtime.now_ms(), CallOutcome.ANSWERED))
    await db.calls.update(cdr, ended_at=now_ms())
    assert runtime.agent_line(operator_id).state.value == "wrap_up"
    for _ in range(500):
        if (await db.contacts.get(dialled)).dial_state != "dialing":
            break
        await asyncio.sleep(0.01)
    assert (await db.contacts.get(dialled)).dial_state == "done"  # the outcome, no claim

    admin = await staff.signed_in("admin@test.ru")
    path = f"/api/v1/projects/{sales}/contacts/remove-duplicates"
    answer = await admin.api("POST", path)
    assert await answer.json() == {"removed": 1, "numbers": 1, "dialling": 2}
    left = {c.id for c in await db.contacts.list(project_id=sales)}
    assert left == {dialled, dialled_twin, caller, caller_twin, plain}
    # His card saves (what he typed is kept) and ends the wrap-up.
    operator = await staff.signed_in("oper@test.ru")
    saved = await operator.api("PATCH", f"/api/v1/contacts/{dialled}/card",
                               {"description": "договорились", "finish_wrap_up": True})
    assert saved.status == 200, await saved.text()
    await until(lambda: runtime.agent_line(operator_id).state.value != "wrap_up",
                "the wrap-up ends")
    answer = await admin.api("POST", path)
    assert await answer.json() == {"removed": 1, "numbers": 1, "dialling": 1}
    assert (await db.calls.get(cdr)).contact_id == dialled_twin  # its history went over
    await db.calls.update(inbound, ended_at=now_ms())
    answer = await admin.api("POST", path)
    assert await answer.json() == {"removed": 1, "numbers": 1, "dialling": 0}
    assert await db.contacts.count(project_id=sales) == 3
