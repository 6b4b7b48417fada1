"""Storage: migrations on empty and existing databases, every repository's round trip."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sipspeak.storage import Conflict, Database, NotFound, StorageError
from sipspeak.storage.db import migrations
from sipspeak.storage.models import NewContact, TaskRule, WeekdayInterval


@pytest.fixture
async def db(tmp_path: Path):
    database = await Database.open(tmp_path / "data" / "sipspeak.db")
    yield database
    await database.close()


async def test_migrations_on_empty_and_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    db = await Database.open(path)
    assert await db.schema_version() == len(migrations())
    journal = await db.fetchone("PRAGMA journal_mode")
    assert journal is not None and journal[0] == "wal"
    await db.users.create(role="admin", full_name="A", email="a@x.ru", password_hash="h")
    await db.close()
    db = await Database.open(path)  # existing database: nothing applied twice, data kept
    assert await db.migrate() == []
    assert (await db.users.by_email("a@x.ru")) is not None
    await db.close()


async def test_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    await (await Database.open(path)).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="newer"):
        await Database.open(path)


async def test_transaction_is_all_or_nothing(db: Database) -> None:
    project = await db.projects.create("P")
    with pytest.raises(RuntimeError):
        async with db.transaction():
            upload = await db.uploads.create(project_id=project, filename="a.xlsx", tags=["T"])
            await db.contacts.insert_many(project_id=project, upload_id=upload,
                                          contacts=[NewContact(phone="+79990000001")])
            raise RuntimeError("import failed half-way")
    assert await db.contacts.count(project_id=project) == 0
    assert await db.uploads.list(project) == []


async def test_users_round_trip_conflicts_and_soft_delete(db: Database) -> None:
    uid = await db.users.create(role="operator", full_name="Анна", email="Anna@x.ru",
                                password_hash="h", phone="4455", extension="101",
                                sip_password="secret12")
    user = await db.users.get(uid)
    assert (user.role, user.full_name, user.email, user.extension) == ("operator", "Анна", "Anna@x.ru", "101")
    assert (await db.users.by_email("anna@X.ru")).id == uid  # e-mail login ignores case
    with pytest.raises(Conflict) as dup_email:
        await db.users.create(role="admin", full_name="B", email="ANNA@x.ru", password_hash="h")
    assert dup_email.value.field == "email"
    with pytest.raises(Conflict) as dup_ext:
        await db.users.create(role="operator", full_name="C", email="c@x.ru", password_hash="h",
                              extension="101")
    assert dup_ext.value.field == "extension"
    await db.users.update(uid, full_name="Анна А.", phone="1")
    assert (await db.users.get(uid)).full_name == "Анна А."
    await db.users.soft_delete(uid)
    with pytest.raises(NotFound):
        await db.users.get(uid)
    assert (await db.users.get(uid, include_deleted=True)).deleted
    assert [u.id for u in await db.users.list(include_deleted=True)] == [uid]
    assert await db.users.list() == []
    # A removed user's e-mail and extension can be given to someone new.
    await db.users.create(role="operator", full_name="D", email="anna@x.ru", password_hash="h",
                          extension="101", sip_password="secret12")


async def test_groups_statuses_trunks(db: Database) -> None:
    a = await db.users.create(role="operator", full_name="A", email="a@x.ru", password_hash="h")
    b = await db.users.create(role="operator", full_name="B", email="b@x.ru", password_hash="h")
    g1, g2 = await db.groups.create("ТЕСТ"), await db.groups.create("test2")
    await db.groups.add_members(g1, [a, b])
    await db.groups.add_members(g2, [a])  # one operator in several groups
    assert (await db.groups.get(g1)).member_ids == (a, b)
    assert [g.name for g in await db.users.groups_of(a)] == ["test2", "ТЕСТ"]
    await db.groups.remove_member(g1, a)
    assert (await db.groups.get(g1)).member_ids == (b,)
    with pytest.raises(Conflict):
        await db.groups.create("тест")  # names are unique ignoring case

    s = await db.statuses.create("Перезвон", "#ff0000")
    await db.statuses.update(s, active=False)
    assert not (await db.statuses.get(s)).active
    assert await db.statuses.list(only_active=True) == []
    with pytest.raises(ValueError):
        await db.statuses.create("x", "red")

    t = await db.trunks.create(name="zadarma", host="sip:117049@zadarma.com", username="117049",
                               password="pw")
    await db.trunks.update(t, active=False, host="sip:zadarma.com:5060")
    trunk = await db.trunks.get(t)
    assert (trunk.active, trunk.host, trunk.username) == (False, "sip:zadarma.com:5060", "117049")


async def test_projects_every_tab_and_copy(db: Database) -> None:
    sup = await db.users.create(role="supervisor", full_name="Sup", email="sup@x.ru", password_hash="h")
    op = await db.users.create(role="operator", full_name="Op", email="op@x.ru", password_hash="h")
    group = await db.groups.create("G")
    await db.groups.add_members(group, [op])
    status = await db.statuses.create("Отказ")
    trunk = await db.trunks.create(name="t", host="sip:127.0.0.1")
    pid = await db.projects.create("Тестовый проект", strategy="fewest_calls", queue_timeout_s=44,
                                   operator_timeout_s=12)
    await db.projects.update(pid, show_numbers=False, amd_enabled=True, starts_on="2026-01-01",
                             ends_on="2026-12-31", timezone="Asia/Yekaterinburg",
                             client_time_from="00:30", client_time_to="23:30", caller_id="213345",
                             trunk_id=trunk, supervisor_id=sup, dial_mode="predictive",
                             predictive_percent=3, retry_busy_intervals="15;60;1440;60",
                             script_html="<p>Здравствуйте</p>", bitrix_host="sipspeak",
                             launched=True, call_from_end=True)
    await db.projects.set_groups(pid, [group])
    await db.projects.set_statuses(pid, [status])
    await db.projects.set_card_fields(pid, ["Дополнительная информация"])
    await db.projects.set_intervals(pid, [WeekdayInterval(0, "00:30", "23:30"),
                                          WeekdayInterval(2, "08:00", "21:00")])
    await db.projects.set_task_rules(pid, [TaskRule(op, status)])
    p = await db.projects.get(pid)
    assert (p.strategy, p.queue_timeout_s, p.dial_mode, p.launched, p.show_numbers) == (
        "fewest_calls", 44, "predictive", True, False)
    assert p.group_ids == (group,) and p.status_ids == (status,)
    assert await db.projects.operator_ids(pid) == [op]
    copy = await db.projects.get(await db.projects.copy(pid))
    assert copy.name == "Тестовый проект копия" and not copy.launched
    assert copy.timezone == "Asia/Yekaterinburg" and copy.group_ids == (group,)
    assert await db.projects.intervals(copy.id) == await db.projects.intervals(pid)
    assert [f.name for f in await db.projects.card_fields(copy.id)] == ["Дополнительная информация"]
    with pytest.raises(ValueError):
        await db.projects.update(pid, strategy="random")
    with pytest.raises(ValueError):
        await db.projects.set_intervals(pid, [WeekdayInterval(1, "21:00", "08:00")])
    await db.projects.delete(pid)
    assert [x.id for x in await db.projects.list()] == [copy.id]


async def test_contacts_uploads_comments_tasks_blacklist(db: Database) -> None:
    pid = await db.projects.create("P")
    async with db.transaction():
        up = await db.uploads.create(project_id=pid, filename="base.xlsx", tags=["ТЕГ1"])
        await db.contacts.insert_many(
            project_id=pid, upload_id=up, tags=["ТЕГ1"],
            contacts=[NewContact(phone="+79228711345", full_name="Иванов", region="Оренбургская обл.",
                                 timezone="Asia/Yekaterinburg", carrier="МегаФон",
                                 custom={"Доп": "1"}),
                      NewContact(phone="+79171959395")])
    contacts = await db.contacts.list(project_id=pid)
    first = await db.contacts.get(contacts[0].id)
    assert (first.phone, first.region, first.tags, first.dial_state) == (
        "+79228711345", "Оренбургская обл.", ("ТЕГ1",), "new")
    assert await db.contacts.existing_phones(pid) == {"+79228711345", "+79171959395"}
    await db.contacts.update(contacts[1].id, dial_state="busy", attempts=1, next_attempt_at=1000)
    assert await db.uploads.counters(project_id=pid) == {
        "all": 2, "called": 1, "no_answer": 0, "busy": 1, "error": 0, "new": 1}
    assert [c.id for c in await db.contacts.due(project_id=pid, now=999, limit=10)] == [contacts[0].id]
    assert len(await db.contacts.due(project_id=pid, now=1000, limit=10)) == 2
    assert await db.blacklist.add(["+79228711345", "+79228711345"]) == 1
    assert [c.phone for c in await db.contacts.due(project_id=pid, now=1000, limit=10)] == ["+79171959395"]
    assert await db.contacts.delete_blacklisted(pid) == 1
    cid = contacts[1].id
    await db.comments.add(contact_id=cid, user_id=None, text="перезвонить")
    assert [c.text for c in await db.comments.list(cid)] == ["перезвонить"]
    task = await db.tasks.add(contact_id=cid, operator_id=None, text="звонок", due_at=500, auto_call=True)
    assert [t.id for t in await db.tasks.due(now=600)] == [task]
    await db.tasks.complete(task)
    assert await db.tasks.due(now=600) == []
    assert await db.blacklist.remove(["+79228711345"]) == 1


async def test_calls_intervals_files_notifications_tokens(db: Database) -> None:
    uid = await db.users.create(role="operator", full_name="O", email="o@x.ru", password_hash="h")
    call = await db.calls.open(direction="outbound", started_at=1000, contact_phone="+79990000000",
                               operator_id=uid)
    await db.calls.update(call, ended_at=5000, talk_ms=3000, result="answered", price_kopecks=150)
    row = await db.calls.get(call)
    assert (row.talk_ms, row.result, row.price_kopecks) == (3000, "answered", 150)
    open_call = await db.calls.open(direction="inbound", started_at=2000)
    assert await db.calls.close_dangling(now=9000) == 1
    dangling = await db.calls.get(open_call)
    assert (dangling.ended_at, dangling.result, dangling.duration_ms) == (9000, "lost", 7000)

    await db.intervals.start(user_id=uid, state="available", at=0)
    await db.intervals.start(user_id=uid, state="talking", at=60_000)
    await db.intervals.close_open(at=90_000)
    got = [(i.state, i.started_at, i.ended_at) for i in await db.intervals.between(start=0, end=10**6)]
    assert got == [("available", 0, 60_000), ("talking", 60_000, 90_000)]

    folder = await db.files.create_folder("Папка 2")
    sub = await db.files.create_folder("вложенная", parent_id=folder)
    f = await db.files.add_file(name="скрипт.docx", stored_name="abc123", size=10, folder_id=sub)
    with pytest.raises(Conflict):
        await db.files.add_file(name="скрипт.docx", stored_name="abc124", size=1, folder_id=sub)
    for bad in ("../etc", "a/b", "..", ""):
        with pytest.raises(ValueError):
            await db.files.create_folder(bad)
    await db.files.rename_file(f, "script.docx")
    assert await db.files.delete_folder(folder) == ["abc123"]
    with pytest.raises(NotFound):
        await db.files.file(f)

    await db.notifications.add(text="Транк не зарегистрирован", level="warning")
    assert [n.text for n in await db.notifications.unread(uid)] == ["Транк не зарегистрирован"]

    token = await db.tokens.create(user_id=uid, token_hash="digest")
    assert (await db.tokens.by_hash("digest")).id == token
    await db.users.soft_delete(uid)  # removing a user revokes his tokens
    assert await db.tokens.by_hash("digest") is None


async def test_unfinished_upload_is_invisible_to_the_dialer_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    db = await Database.open(path)
    pid = await db.projects.create("P")
    done = await db.uploads.create(project_id=pid, filename="old.xlsx")
    await db.contacts.insert_many(project_id=pid, upload_id=done,
                                  contacts=[NewContact(phone="+79990000001")])
    running = await db.uploads.create(project_id=pid, filename="new.xlsx", importing=True)
    await db.contacts.insert_many(project_id=pid, upload_id=running,
                                  contacts=[NewContact(phone="+79990000002")])
    assert [c.phone for c in await db.contacts.due(project_id=pid, now=0, limit=10)] == ["+79990000001"]
    await db.close()
    # The process stopped mid-import: the next start removes the half-written upload.
    db = await Database.open(path)
    assert await db.uploads.remove_unfinished() == 1
    assert [u.id for u in await db.uploads.list(pid)] == [done]
    assert await db.contacts.existing_phones(pid) == {"+79990000001"}
    await db.close()


async def test_upgrade_from_the_first_schema_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    first = migrations()[0]
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                 " applied_at INTEGER NOT NULL)")
    conn.executescript(first[2])
    conn.execute("INSERT INTO schema_migrations VALUES (1, ?, 0)", (first[1],))
    conn.execute("INSERT INTO projects(name, created_at, updated_at) VALUES ('P', 0, 0)")
    conn.execute("INSERT INTO uploads(project_id, filename, created_at) VALUES (1, 'old.xlsx', 0)")
    conn.execute("INSERT INTO contacts(project_id, upload_id, phone, created_at, updated_at)"
                 " VALUES (1, 1, '+79990000001', 0, 0)")
    conn.commit()
    conn.close()
    db = await Database.open(path)
    try:
        assert await db.schema_version() == len(migrations())
        upload = await db.uploads.get(1)
        assert (upload.filename, upload.state) == ("old.xlsx", "done")
        assert [c.phone for c in await db.contacts.due(project_id=1, now=0, limit=5)] == ["+79990000001"]
    finally:
        await db.close()



async def test_a_call_of_a_contact_deleted_meanwhile_is_stored_without_it(db: Database) -> None:
    project = await db.projects.create("P")
    await db.contacts.insert_many(project_id=project, upload_id=None,
                                  contacts=[NewContact(phone="+79160000001")])
    [contact] = await db.contacts.list(project_id=project)
    await db.contacts.delete([contact.id])
    # Looked up before the delete, the call starts after it: no foreign-key failure.
    call_id = await db.calls.open(direction="outbound", started_at=2, project_id=project,
                                  contact_id=contact.id)
    assert (await db.calls.get(call_id)).contact_id is None
