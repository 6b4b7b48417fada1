"""Task reminders («Дата оповещения», §6.1.1) over a real SQLite file with a fake clock: sent
when due, once, to the right person in his language, surviving a restart; then the asyncio
shell over the same storage."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sipspeak.crm.card import CardService
from sipspeak.crm.reminders import RECHECK_MS, Reminder, TaskReminders, next_timer
from sipspeak.crm.reminders_aio import ReminderService
from sipspeak.events import EventBus
from sipspeak.storage import Database
from sipspeak.storage.db import migrations
from sipspeak.storage.models import NewContact

T0 = 1_800_000_000_000
MINUTE = 60_000
TODAY = date(2027, 1, 15)


class Published:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, topic: str, **data: Any) -> None:
        self.events.append((topic, data))


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "reminders.sqlite3")
    try:
        yield database
    finally:
        await database.close()


async def world(db: Database) -> dict[str, Any]:
    """«Продажи» (numbers hidden from operators) with Иван; the operator works in it; a
    supervisor who speaks English."""
    oper = await db.users.create(role="operator", full_name="Оператор", email="o@t.ru",
                                 password_hash="x")
    sup = await db.users.create(role="supervisor", full_name="Sup", email="s@t.ru",
                                password_hash="x", language="en")
    sales = await db.projects.create("Продажи", show_numbers=False)
    shift = await db.groups.create("Смена")
    await db.groups.add_members(shift, [oper])
    await db.projects.set_groups(sales, [shift])
    await db.contacts.insert_many(project_id=sales, upload_id=None, contacts=[
        NewContact(phone="+79228711345", full_name="Иван Петров")])
    ivan = (await db.contacts.list(project_id=sales))[0].id
    return {"oper": await db.users.get(oper), "sup": await db.users.get(sup), "ivan": ivan}


async def add_task(db: Database, w: dict[str, Any], *, author: str, due: int,
                   **data: Any) -> int:
    return await CardService(db).add_task(w["ivan"], {"text": "", "due_at": due, **data},
                                          visible=None, author=w[author], now_ms=T0)


async def unread(db: Database, user: Any) -> list[str]:
    return [n.text for n in await db.notifications.unread(user.id)]


def test_the_next_look_is_the_earliest_reminder_or_the_recheck() -> None:
    assert next_timer(None, T0) == T0 + RECHECK_MS
    assert next_timer(T0 + 5, T0) == T0 + 5
    assert next_timer(T0 - MINUTE, T0) == T0  # overdue: now
    assert next_timer(T0 + 10 * RECHECK_MS, T0) == T0 + RECHECK_MS


async def test_a_reminder_goes_to_the_operator_when_due_and_once(db: Database) -> None:
    w = await world(db)
    oper = w["oper"]
    bus = Published()
    reminders = TaskReminders(db, bus)
    call = await add_task(db, w, author="oper", due=T0 + 10 * MINUTE, text="уточнить тариф")
    later = await add_task(db, w, author="oper", due=T0 + 30 * MINUTE, auto_call=True)
    assert await reminders.get_timer(T0) == T0 + RECHECK_MS  # nothing due within the recheck
    assert await reminders.handle_timer(T0 + 9 * MINUTE) == []
    assert await reminders.get_timer(T0 + 9 * MINUTE + 50_000) == T0 + 10 * MINUTE
    assert await reminders.handle_timer(T0 + 10 * MINUTE) == [Reminder(call, oper.id)]
    # Numbers are hidden from operators in «Продажи»: the bell masks it too.
    assert await unread(db, oper) == [
        ("Напоминание по задаче: уточнить тариф. Клиент: Иван Петров, +792******45, "
        "проект «Продажи»")]
    assert bus.events == [("task.reminder", {
        "task_id": call, "contact_id": w["ivan"], "project_id": (await db.contacts.get(
            w["ivan"])).project_id, "operator_id": oper.id, "user_id": oper.id,
        "due_at": T0 + 10 * MINUTE})]
    # Once: the same time again, or later, sends nothing more for it.
    assert await reminders.handle_timer(T0 + 10 * MINUTE) == []
    assert await reminders.handle_timer(T0 + 29 * MINUTE) == []
    assert len(await unread(db, oper)) == 1
    # An automatic call without text reminds of the call.
    assert await reminders.handle_timer(T0 + 31 * MINUTE) == [Reminder(later, oper.id)]
    assert (await unread(db, oper))[0].startswith(
        "Напоминание по задаче: перезвонить клиенту. Клиент: Иван Петров")
    assert await reminders.get_timer(T0 + 31 * MINUTE) == T0 + 31 * MINUTE + RECHECK_MS


async def test_done_tasks_are_not_reminded_and_a_task_for_nobody_reminds_its_author(
        db: Database) -> None:
    w = await world(db)
    bus = Published()
    reminders = TaskReminders(db, bus)
    done = await add_task(db, w, author="oper", due=T0 + MINUTE, text="сделано")
    await db.tasks.complete(done)
    mine = await add_task(db, w, author="sup", due=T0 + MINUTE, text="проверить договор")
    nobody = await add_task(db, w, author="sup", due=T0 + MINUTE, text="общая",
                            operator_id=None)
    gone = await add_task(db, w, author="oper", due=T0 + MINUTE, text="уволен")
    await db.users.soft_delete(w["oper"].id)
    sent = await reminders.handle_timer(T0 + MINUTE)
    # The supervisor is no operator: his task is for nobody and comes back to him, in English
    # and with the number (staff see numbers).
    assert sorted(sent, key=lambda r: r.task_id) == [
        Reminder(mine, w["sup"].id), Reminder(nobody, w["sup"].id), Reminder(gone, None)]
    assert sorted(await unread(db, w["sup"])) == [
        "Task reminder: общая. Client: Иван Петров, +79228711345, project «Продажи»",
        ("Task reminder: проверить договор. Client: Иван Петров, +79228711345, "
        "project «Продажи»")]
    assert all(data["task_id"] != done for _, data in bus.events)
    assert await reminders.handle_timer(T0 + 2 * MINUTE) == []


async def test_a_reminder_due_while_the_service_was_down_goes_out_at_start(
        tmp_path: Path) -> None:
    path = tmp_path / "restart.sqlite3"
    db = await Database.open(path)
    w = await world(db)
    task = await add_task(db, w, author="oper", due=T0 + MINUTE, text="перезвонить")
    early = await add_task(db, w, author="oper", due=T0 - MINUTE, text="раньше")
    assert await TaskReminders(db, Published()).handle_timer(T0) == [Reminder(early, w["oper"].id)]
    await db.close()  # the service stops; the task's time passes meanwhile
    db = await Database.open(path)
    try:
        again = TaskReminders(db, Published())
        assert await again.get_timer(T0 + 5 * MINUTE) == T0 + 5 * MINUTE  # overdue: now
        assert await again.handle_timer(T0 + 5 * MINUTE) == [Reminder(task, w["oper"].id)]
        assert await TaskReminders(db, Published()).handle_timer(T0 + 6 * MINUTE) == []
        assert len(await unread(db, w["oper"])) == 2
    finally:
        await db.close()


async def test_the_shell_sends_what_is_due_on_its_clock(db: Database) -> None:
    w = await world(db)
    bus = EventBus()
    events = bus.subscribe("task.")
    clock = [T0]
    service = ReminderService(db, bus, clock=lambda: clock[0])
    overdue = await add_task(db, w, author="oper", due=T0 - MINUTE, text="просрочена")
    later = await add_task(db, w, author="oper", due=T0 + 3 * MINUTE, text="потом")
    await service.start()
    try:
        first = await asyncio.wait_for(events.get(), 10)
        assert (first.topic, first.data["task_id"]) == ("task.reminder", overdue)
        clock[0] = T0 + 3 * MINUTE  # the clock jumps: the service is told to look again
        service.wake()
        second = await asyncio.wait_for(events.get(), 10)
        assert second.data["task_id"] == later
        assert len(await unread(db, w["oper"])) == 2
    finally:
        await service.aclose()


async def test_tasks_due_before_the_upgrade_are_not_reminded_all_at_once(
        tmp_path: Path) -> None:
    path = tmp_path / "upgraded.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                 " applied_at INTEGER NOT NULL)")
    for version, name, sql in migrations():
        if version < 11:  # the schema before task reminders
            conn.executescript(sql)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (version, name))
    conn.execute("INSERT INTO users(role, full_name, email, password_hash, created_at,"
                 " updated_at) VALUES ('operator', 'Оператор', 'o@t.ru', 'x', 0, 0)")
    conn.execute("INSERT INTO projects(name, created_at, updated_at) VALUES ('P', 0, 0)")
    conn.execute("INSERT INTO contacts(project_id, phone, created_at, updated_at)"
                 " VALUES (1, '+79990000001', 0, 0)")
    # One task long overdue when this version arrives, one for next century.
    conn.executemany("INSERT INTO tasks(contact_id, operator_id, text, due_at, created_at)"
                     " VALUES (1, 1, ?, ?, 0)", [("давно", 1_600_000_000_000),
                                                 ("потом", 4_100_000_000_000)])
    conn.commit()
    conn.close()
    db = await Database.open(path)
    try:
        sent = await TaskReminders(db, Published()).handle_timer(4_200_000_000_000)
        assert sent == [Reminder(2, 1)]
    finally:
        await db.close()
