"""Task reminders on the real site (§6.1.1 «Дата оповещения»): a task added on the client card
reaches its operator's bell when its time comes, once, and his workspace push hears of it."""

from __future__ import annotations

import json

import aiohttp
from buslog import BusLog
from webtools import Site

from sipspeak.crm.reminders_aio import ReminderService
from sipspeak.storage import now_ms
from sipspeak.storage.models import NewContact


async def test_the_operator_hears_of_his_task_in_the_bell_and_the_workspace(
        staff: Site) -> None:
    db = staff.db
    oper = staff.users["oper@test.ru"]
    project = await db.projects.create("Продажи")
    group = await db.groups.create("Смена")
    await db.groups.add_members(group, [oper])
    await db.projects.set_groups(project, [group])
    await db.contacts.insert_many(project_id=project, upload_id=None, contacts=[
        NewContact(phone="+79228711345", full_name="Иван Петров")])
    ivan = (await db.contacts.list(project_id=project))[0].id
    browser = await staff.signed_in("oper@test.ru")
    due = now_ms() + 1500
    answer = await browser.api("POST", f"/api/v1/contacts/{ivan}/tasks",
                               {"text": "уточнить тариф", "due_at": due})
    assert answer.status == 201
    task = (await answer.json())["id"]
    log = BusLog(staff.services.bus)
    held: list[int | None] = [due - 1000]  # the clock held before the task's time, then real
    service = ReminderService(db, staff.services.bus,
                              clock=lambda: held[0] if held[0] is not None else now_ms())
    async with browser.session.ws_connect("/api/v1/workspace") as socket:
        first = json.loads((await socket.receive(timeout=10)).data)
        assert [t["id"] for t in first["tasks"]] == [task]
        await service.start()
        try:
            # Not yet: nothing in the bell.
            _, bell = await staff.api_get("oper@test.ru", "/api/v1/notifications")
            assert bell["items"] == []
            held[0] = None
            service.wake()
            event = await log.wait("task.reminder", task_id=task)
            assert event.data["user_id"] == oper and event.data["contact_id"] == ivan
            # The workspace's push (it follows his task.* events) shows the task due.
            for _ in range(20):
                message = await socket.receive(timeout=10)
                assert message.type is aiohttp.WSMsgType.TEXT
                picture = json.loads(message.data)
                if picture["tasks"] and picture["tasks"][0]["due"]:
                    break
            else:
                raise AssertionError("no picture with the task due")
            # Once: a later look sends nothing more.
            assert await service.core.handle_timer(due + 60_000) == []
        finally:
            await service.aclose()
    status, bell = await staff.api_get("oper@test.ru", "/api/v1/notifications")
    assert status == 200
    assert [n["text"] for n in bell["items"]] == [
        ("Напоминание по задаче: уточнить тариф. Клиент: Иван Петров, +79228711345, "
        "проект «Продажи»")]
    page = await (await browser.get("/workspace")).text()
    assert "Напоминание по задаче: уточнить тариф" in page
    # Nobody else was told.
    _, others = await staff.api_get("admin@test.ru", "/api/v1/notifications")
    assert others["items"] == []
