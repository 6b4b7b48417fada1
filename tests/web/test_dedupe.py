"""«Проверка на дубли номеров в проекте» (§5.5) on the real site: the project page's button
and the API delete a base's duplicates and say how many; only for the project's staff."""

from __future__ import annotations

from webtools import Site

from sipspeak.storage.models import NewContact


async def base(staff: Site) -> int:
    project = await staff.db.projects.create("Продажи")
    await staff.db.contacts.insert_many(project_id=project, upload_id=None, contacts=[
        NewContact(phone=p) for p in ("+79220000001", "89220000001", "+79220000001",
                                      "+79220000002", "+79220000003", "79220000003")])
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
    busy = next(c.id for c in contacts if c.phone == "79220000003")
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
