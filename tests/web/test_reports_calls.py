"""«Звонки» (§6.2): every call with the manual's columns, filters, roles, downloads and the
recording, over real CDR rows in the site's SQLite file."""

from __future__ import annotations

import csv
import io
import wave
from datetime import UTC, datetime
from typing import Any

import aiohttp
import openpyxl
import pytest
from webtools import Site

from sipspeak.storage.models import NewContact

DAY = "from=2026-03-02&to=2026-03-02"


def at_msk(day: int, hour: int) -> int:
    return int(datetime(2026, 3, day, hour - 3, 0, tzinfo=UTC).timestamp() * 1000)


async def calls(site: Site) -> dict[str, Any]:
    """Three calls on 2 March 2026 (Moscow) and one on the 3rd: «Продажи» (the supervisor's)
    has an answered auto-dialled call (of a contact tagged «vip») with a recording and a busy
    one; «Опросы» an inbound call dropped in the queue."""
    db = site.db
    oper = site.users["oper@test.ru"]
    sales = await db.projects.create("Продажи", supervisor_id=site.users["sup@test.ru"])
    polls = await db.projects.create("Опросы")
    await db.contacts.insert_many(project_id=sales, upload_id=None, tags=["vip"], contacts=[
        NewContact(phone="79030001122", full_name="Иван Петров")])
    contact = (await db.contacts.list(project_id=sales))[0].id
    recordings = site.services.config.recordings_dir
    recordings.mkdir(parents=True, exist_ok=True)
    wav = recordings / "1-answered.wav"
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x01\x00\x02\x00" * 800)

    async def call(project: int, started: int, **values: Any) -> int:
        call_id = await db.calls.open(direction=values.pop("direction", "outbound"),
                                      started_at=started, project_id=project)
        await db.calls.update(call_id, ended_at=started + values.get("duration_ms", 0),
                              **values)
        return call_id

    answered = await call(
        sales, at_msk(2, 9), kind="auto", contact_id=contact, operator_id=oper,
        contact_phone="79030001122", from_number="74950001122", to_number="79030001122",
        duration_ms=21_000, billing_ms=19_000, dial_ms=2_000, wait_ms=1_000, talk_ms=18_000,
        client_status="Клиент ответил", operator_status="Оператор ответил", result="answered",
        price_kopecks=150, recording_path=str(wav), region="Москва",
        timezone="Europe/Moscow")
    busy = await call(sales, at_msk(2, 10), kind="auto", contact_phone="79030009999",
                      to_number="79030009999", duration_ms=3_000, dial_ms=3_000,
                      client_status="Занято", result="busy")
    dropped = await call(polls, at_msk(2, 11), direction="inbound", kind="inbound",
                         contact_phone="79161234567", from_number="79161234567",
                         to_number="117049", duration_ms=30_000, billing_ms=30_000,
                         wait_ms=30_000, client_status="Клиент положил трубку в очереди",
                         result="abandoned", recording_path="/etc/passwd")
    await call(sales, at_msk(3, 9), kind="auto", contact_phone="79030001122",
               result="answered")
    return {"answered": answered, "busy": busy, "dropped": dropped, "sales": sales,
            "oper": oper, "wav": wav}


async def report(site: Site, email: str, query: str) -> tuple[int, Any]:
    return await site.api_get(email, f"/api/v1/reports/calls?{query}")


async def test_the_period_the_filters_and_the_roles(staff: Site) -> None:
    ids = await calls(staff)
    status, body = await report(staff, "admin@test.ru", DAY)
    assert status == 200 and body["count"] == 3 and body["page"] == 1
    assert [c["id"] for c in body["items"]] == [ids["dropped"], ids["busy"], ids["answered"]]
    first = body["items"][2]
    assert (first["project"], first["contact"], first["operator"], first["recording"]) == (
        "Продажи", "Иван Петров", "Оператор", True)
    for query, expected in ((f"project_id={ids['sales']}", ["busy", "answered"]),
                            ("direction=inbound", ["dropped"]),
                            ("result=busy", ["busy"]),
                            ("phone=+7 (903) 000-11", ["answered"]),
                            (f"operator_id={ids['oper']}", ["answered"])):
        _, found = await report(staff, "admin@test.ru", f"{DAY}&{query}")
        assert [c["id"] for c in found["items"]] == [ids[k] for k in expected], query
        assert found["count"] == len(expected)
    status, sup = await report(staff, "sup@test.ru", DAY)
    assert status == 200 and sup["count"] == 2 and ids["dropped"] not in [
        c["id"] for c in sup["items"]]
    status, own = await report(staff, "oper@test.ru", DAY)
    assert status == 200 and [c["id"] for c in own["items"]] == [ids["answered"]]
    for query, field in (("direction=sideways", "direction"), ("result=won", "result"),
                         ("from=2026-03-09&to=2026-03-02", "to")):
        status, body = await report(staff, "admin@test.ru", query)
        assert status == 422 and body["error"]["field"] == field, query
    _, empty = await report(staff, "admin@test.ru", DAY + "&page=2")
    assert empty["count"] == 3 and empty["items"] == []


async def test_the_page_in_both_languages(staff: Site) -> None:
    ids = await calls(staff)
    browser = await staff.signed_in("admin@test.ru")
    page = await (await browser.get(f"/reports/calls?{DAY}")).text()
    assert '<p id="calls-count">Количество: <strong>3</strong></p>' in page
    row = page[page.index(f'<tr data-call="{ids["answered"]}">'):]
    row = row[:row.index("</tr>")]
    for text in ("02-03-2026 09:00:00", "Исходящий", "Автонабор", "Клиент ответил",
                 "Оператор ответил", "Иван Петров", "Разговор", "1.50", "Москва"):
        assert text in row, text
    assert f'src="/reports/calls/{ids["answered"]}/recording"' in row
    await staff.db.users.update(staff.users["admin@test.ru"], language="en")
    page = await (await browser.get(f"/reports/calls?{DAY}")).text()
    assert "Count: <strong>3</strong>" in page
    for text in ("Outbound", "Auto-dial", "Client answered", "Talk", "Dropped in the queue",
                 "Client hung up in the queue"):
        assert text in page, text


async def test_downloads_hold_every_call_of_the_filters(staff: Site) -> None:
    ids = await calls(staff)
    browser = await staff.signed_in("sup@test.ru")
    await staff.user("operator", "far@test.ru", full_name="Дальний")  # not in his projects
    await staff.db.groups.add_members(await staff.db.groups.create("Смена"),
                                      [staff.users["oper@test.ru"]])
    await staff.db.projects.set_groups(ids["sales"], [
        g.id for g in await staff.db.groups.list() if g.name == "Смена"])
    page = await (await browser.get(f"/reports/calls?{DAY}")).text()
    assert ">Оператор</option>" in page and "Дальний" not in page
    response = await browser.get(f"/reports/calls.csv?{DAY}")
    assert response.status == 200
    assert "calls-2026-03-02-2026-03-02.csv" in response.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO((await response.read()).decode("utf-8-sig")),
                            delimiter=";"))
    assert table[0][:5] == ["Проект", "id", "Дата", "Направление", "Тип"]
    assert table[0][-1] == "Цена" and len(table) == 3
    assert table[2] == ["Продажи", str(ids["answered"]), "02-03-2026 09:00:00", "Исходящий",
                        "Автонабор", "79030001122", "74950001122", "79030001122", "21", "19",
                        "2", "1", "18", "Клиент ответил", "Оператор ответил", "Иван Петров",
                        "Оператор", "Москва", "Europe/Moscow", "Разговор", "", "", "1.50"]
    response = await browser.get(f"/reports/calls.xlsx?{DAY}")
    book = openpyxl.load_workbook(io.BytesIO(await response.read()), read_only=True)
    cells = [["" if c is None else str(c) for c in row]
             for row in book.active.iter_rows(values_only=True)]
    assert cells == table


async def test_a_recording_is_served_only_from_the_recordings_and_only_to_its_readers(
        staff: Site) -> None:
    ids = await calls(staff)
    sup = await staff.signed_in("sup@test.ru")
    response = await sup.get(f"/reports/calls/{ids['answered']}/recording")
    assert response.status == 200 and response.headers["Content-Type"] == "audio/wav"
    assert await response.read() == ids["wav"].read_bytes()
    response = await sup.get(f"/reports/calls/{ids['answered']}/recording?download=1")
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="call-{ids["answered"]}.wav"')
    # Another project's call is not his to hear.
    assert (await sup.get(f"/reports/calls/{ids['dropped']}/recording")).status == 404
    admin = await staff.signed_in("admin@test.ru")
    # A stored path outside the recordings directory is never served, nor a missing file.
    assert (await admin.get(f"/reports/calls/{ids['dropped']}/recording")).status == 404
    assert (await admin.get(f"/reports/calls/{ids['busy']}/recording")).status == 404
    ids["wav"].unlink()
    assert (await admin.get(f"/reports/calls/{ids['answered']}/recording")).status == 404


async def test_the_menu_opens_the_reports_on_the_calls(staff: Site) -> None:
    browser = await staff.signed_in("sup@test.ru")
    home = await (await browser.get("/")).text()
    assert 'href="/reports/calls"' in home
    page = await (await browser.get("/reports/calls")).text()
    assert 'href="/reports/operators"' in page and 'id="calls-report"' in page
    assert 'href="/reports/calls" class=active' in page


async def test_the_export_reads_on_batch_after_batch(staff: Site, monkeypatch: Any) -> None:
    ids = await calls(staff)
    monkeypatch.setattr("sipspeak.web.reports_calls.EXPORT_BATCH", 2)
    # A second call in the same millisecond as the busy one: the batches still neither
    # repeat nor skip a row (they continue from (started_at, id), not from an offset).
    twin = await staff.db.calls.open(direction="outbound", started_at=at_msk(2, 10),
                                     project_id=ids["sales"])
    browser = await staff.signed_in("admin@test.ru")
    text = (await (await browser.get(f"/reports/calls.csv?{DAY}")).read()).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert [int(row[1]) for row in table[1:]] == [ids["dropped"], twin, ids["busy"],
                                                 ids["answered"]]


async def test_an_xlsx_beyond_a_sheet_is_refused_never_cut(staff: Site,
                                                           monkeypatch: Any) -> None:
    await calls(staff)
    monkeypatch.setattr("sipspeak.web.exports.XLSX_MAX_ROWS", 2)  # a sheet of two rows
    browser = await staff.signed_in("admin@test.ru")
    response = await browser.get(f"/reports/calls.xlsx?{DAY}")
    assert response.status == 422
    assert "в выгрузке 3 строк, а лист XLSX вмещает не больше 2" in await response.text()
    # The contacts' download too.
    project = await staff.db.projects.create("База")
    await staff.db.contacts.insert_many(project_id=project, upload_id=None, contacts=[
        NewContact(phone=f"+7900000000{i}") for i in range(3)])
    response = await browser.get(f"/reports/contacts.xlsx?project_id={project}")
    assert response.status == 422 and "лист XLSX вмещает не больше 2" in await response.text()
    # CSV has no such limit: every call is in it.
    text = (await (await browser.get(f"/reports/calls.csv?{DAY}")).read()).decode("utf-8-sig")
    assert len(list(csv.reader(io.StringIO(text), delimiter=";"))) == 1 + 3


async def test_a_failure_mid_download_cuts_it_and_writes_no_error_page_into_it(
        staff: Site, monkeypatch: Any) -> None:
    await calls(staff)
    fail_after_the_first_batch(staff, monkeypatch)
    browser = await staff.signed_in("admin@test.ru")
    response = await browser.get(f"/reports/calls.csv?{DAY}")
    assert response.status == 200  # the answer had started
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()


async def test_an_xlsx_that_fails_while_filling_leaves_no_spool_behind(
        staff: Site, monkeypatch: Any) -> None:
    import glob
    import tempfile

    await calls(staff)
    fail_after_the_first_batch(staff, monkeypatch)
    spools = f"{tempfile.gettempdir()}/openpyxl.*"
    before = set(glob.glob(spools))
    browser = await staff.signed_in("admin@test.ru")
    response = await browser.get(f"/reports/calls.xlsx?{DAY}")
    assert response.status == 500  # nothing was sent yet: an error page, not a file
    assert set(glob.glob(spools)) - before == set()


def fail_after_the_first_batch(staff: Site, monkeypatch: Any) -> None:
    """Exports read one call a batch, and storage fails from the second batch on."""
    monkeypatch.setattr("sipspeak.web.reports_calls.EXPORT_BATCH", 1)
    real = staff.db.calls.report
    served = []

    async def failing(*args: Any, **kwargs: Any) -> Any:
        if served:
            raise RuntimeError("the disk went away")
        served.append(1)
        return await real(*args, **kwargs)

    monkeypatch.setattr(staff.db.calls, "report", failing)
