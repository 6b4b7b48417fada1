"""The contacts' «Удалить» (``DELETE /api/v1/contacts``) on the real site: a contact in a call
or on the card of an operator in wrap-up is never deleted — the whole request is refused with
409 naming it, and nothing of it is deleted; the rule the duplicate check follows."""

from __future__ import annotations

import asyncio
from typing import Any

from fake_calls import StartDialer, talk_with_free_operator, until
from webtools import Browser, Site

from sipspeak.dialer.ports import CallEnded, CallOutcome
from sipspeak.storage import now_ms
from sipspeak.storage.models import NewContact


async def remaining(site: Site, project_id: int) -> set[int]:
    return {c.id for c in await site.db.contacts.list(project_id=project_id)}


async def test_a_contact_in_a_call_or_on_the_wrapping_operators_card_is_not_deleted(
        staff: Site, start_dialer: StartDialer) -> None:
    """The real dialer over the site's storage: the operator talks to a contact, the call
    ends and he is «В карточке»; another contact of the base is an inbound caller whose call
    goes on.  Neither is deleted, nor anything asked for with them, until the card is saved
    and the inbound call ends."""
    db = staff.db
    operator_id = staff.users["oper@test.ru"]
    trunk = await db.trunks.create(name="t", host="sip:127.0.0.1:5999")
    sales = await db.projects.create(
        "Продажи", trunk_id=trunk, caller_id="74950001122", dial_mode="progressive",
        client_time_from="00:00", client_time_to="00:00", launched=True,
        supervisor_id=staff.users["sup@test.ru"])
    group = await db.groups.create("Смена")
    await db.groups.add_members(group, [operator_id])
    await db.projects.set_groups(sales, [group])
    await db.contacts.insert_many(project_id=sales, upload_id=None, contacts=[
        NewContact(phone=p) for p in ("+79220000001", "+79220000002", "+79220000003",
                                      "+79220000004")])
    dialled, caller, plain, spare = sorted(await remaining(staff, sales))
    for other in (caller, plain, spare):  # only the first is due
        await db.contacts.update(other, dial_state="called")
    inbound = await db.calls.open(direction="inbound", kind="inbound", started_at=now_ms(),
                                  project_id=sales, contact_id=caller,
                                  contact_phone="+79220000002")
    # A project the supervisor does not see, with its own caller in a call.
    polls = await db.projects.create("Опросы")
    await db.contacts.insert_many(project_id=polls, upload_id=None,
                                  contacts=[NewContact(phone="+79220000009")])
    [stranger] = await remaining(staff, polls)
    await db.calls.open(direction="inbound", kind="inbound", started_at=now_ms(),
                        project_id=polls, contact_id=stranger, contact_phone="+79220000009")

    admin = await staff.signed_in("admin@test.ru")

    async def delete(ids: list[int], browser: Browser = admin) -> tuple[int, Any]:
        response = await browser.api("DELETE", "/api/v1/contacts", {"ids": ids})
        return response.status, await response.json()

    everything = {dialled, caller, plain, spare}
    status, body = await delete([plain, caller])
    assert status == 409 and body["error"]["code"] == "in_use"
    assert body["error"]["message"] == \
        f"Контакт {caller} сейчас в звонке: его нельзя удалить, ничего не удалено"
    assert await remaining(staff, sales) == everything  # plain stays too

    # The dialer calls the first contact; the operator answers: its call row is open.
    runtime, calls = await start_dialer()
    call_id, contact = await talk_with_free_operator(runtime, calls, operator_id)
    assert contact.contact_id == dialled
    cdr = await db.calls.open(direction="outbound", started_at=now_ms(), project_id=sales,
                              contact_id=dialled, contact_phone="+79220000001",
                              operator_id=operator_id)
    status, body = await delete([spare, dialled])
    assert status == 409
    assert body["error"]["message"] == \
        f"Контакт {dialled} сейчас в звонке: его нельзя удалить, ничего не удалено"
    # The call ends and its outcome is written: he is «В карточке» with its card.
    runtime.on_call_event(CallEnded(call_id, runtime.now_ms(), CallOutcome.ANSWERED))
    await db.calls.update(cdr, ended_at=now_ms())
    assert runtime.agent_line(operator_id).state.value == "wrap_up"
    for _ in range(500):
        if (await db.contacts.get(dialled)).dial_state != "dialing":
            break
        await asyncio.sleep(0.01)
    assert (await db.contacts.get(dialled)).dial_state == "done"  # no claim left
    status, body = await delete([spare, dialled])
    assert status == 409
    assert body["error"]["message"] == (
        f"Контакт {dialled} открыт в карточке у оператора, который обрабатывает звонок"
        " («В карточке»): его нельзя удалить, ничего не удалено")
    assert await remaining(staff, sales) == everything
    # In English for a reader who chose it.
    await db.users.update(staff.users["admin@test.ru"], language="en")
    status, body = await delete([dialled])
    assert status == 409 and body["error"]["message"] == (
        f"Contact {dialled} is open on the card of an operator in wrap-up: it cannot be"
        " deleted, nothing was deleted")

    # Another's contact in a call is neither named nor deleted: his own go.
    sup = await staff.signed_in("sup@test.ru")
    status, body = await delete([stranger, spare], sup)
    assert status == 200 and body == {"deleted": 1, "dialing": 0, "skipped": 1,
                                      "ids": [spare]}
    assert await remaining(staff, polls) == {stranger}

    # His card saves and ends the wrap-up; the inbound call ends: both may go now.
    operator = await staff.signed_in("oper@test.ru")
    saved = await operator.api("PATCH", f"/api/v1/contacts/{dialled}/card",
                               {"description": "договорились", "finish_wrap_up": True})
    assert saved.status == 200, await saved.text()
    await until(lambda: runtime.agent_line(operator_id).state.value != "wrap_up",
                "the wrap-up ends")
    status, body = await delete([dialled, caller], sup)
    assert status == 409 and str(caller) in str(body["error"]["message"])
    await db.calls.update(inbound, ended_at=now_ms())
    status, body = await delete([dialled, caller, plain], sup)
    assert status == 200 and body == {"deleted": 3, "dialing": 0, "skipped": 0,
                                      "ids": sorted([dialled, caller, plain])}
    assert await remaining(staff, sales) == set()
