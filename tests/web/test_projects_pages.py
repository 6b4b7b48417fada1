"""Project pages: list with filters, create, each tab's form, launch switch, copy, delete."""

from __future__ import annotations

import re

from webtools import Site

from sipspeak.storage.models import TaskRule, WeekdayInterval
from sipspeak.web.sanitize import sanitize_html


async def test_create_then_the_tabs_open(staff: Site) -> None:
    b = await staff.signed_in("admin@test.ru")
    page = await b.get("/projects")
    assert page.status == 200
    text = await page.text()
    assert "Создать проект" in text and "Вызвать того оператора, который дольше всех" in text
    created = await b.form("/projects", {"name": "Тестовый проект", "queue_timeout_s": "44",
                                         "operator_timeout_s": "12", "strategy": "linear"})
    assert created.status == 303
    location = created.headers["Location"]
    project_id = int(re.match(r"/projects/(\d+)\?tab=project", location).group(1))  # type: ignore[union-attr]
    project = await staff.db.projects.get(project_id)
    assert (project.queue_timeout_s, project.operator_timeout_s, project.strategy) == (
        44, 12, "linear")
    tabs = await (await b.get(location)).text()
    assert "Проект создан" in tabs
    for label in ("Шаблон карточки клиента", "Дни недели и время звонка", "Очередь",
                  "Попытки и тип набора", "Скрипт оператора", "Интеграция систем",
                  "Проект запущен", "Звонить базу с конца"):
        assert label in tabs
    for tab in ("card", "schedule", "queue", "attempts", "script", "integration"):
        assert (await b.get(f"/projects/{project_id}?tab={tab}")).status == 200


async def test_create_with_a_negative_timeout_shows_the_error(staff: Site) -> None:
    b = await staff.signed_in("admin@test.ru")
    response = await b.form("/projects", {"name": "X", "queue_timeout_s": "-1",
                                          "operator_timeout_s": "12", "strategy": "ring_all"})
    assert response.status == 422
    assert "Таймаут очереди: значение не может быть отрицательным" in await response.text()
    assert await staff.db.projects.list() == []


async def test_tab_forms_save_what_they_show(staff: Site) -> None:
    db = staff.db
    oper = staff.users["oper@test.ru"]
    sup = staff.users["sup@test.ru"]
    group = await db.groups.create("ТЕСТ")
    status = await db.statuses.create("Перезвон", "#00ff00")
    trunk = await db.trunks.create(name="zadarma", host="sip:zadarma.com")
    pid = await db.projects.create("П", show_numbers=True, music_on_hold=True)
    b = await staff.signed_in("admin@test.ru")

    async def save(tab: str, data: list[tuple[str, str]]) -> None:
        response = await b.form(f"/projects/{pid}", [("tab", tab), *data])
        assert response.status == 303, await response.text()
        assert response.headers["Location"] == f"/projects/{pid}?tab={tab}&ok=saved"

    # unchecked boxes are absent from a form: show_numbers goes off
    await save("project", [("name", "П2"), ("amd_enabled", "1"), ("starts_on", "2026-01-01"),
                           ("ends_on", "2026-02-01"), ("timezone", "Europe/Samara"),
                           ("client_time_from", "08:00"), ("client_time_to", "20:00"),
                           ("caller_id", "213345"), ("trunk_id", str(trunk)),
                           ("amd_params", '{"greeting": 1500}')])
    project = await db.projects.get(pid)
    assert (project.name, project.show_numbers, project.amd_enabled, project.timezone,
            project.trunk_id) == ("П2", False, True, "Europe/Samara", trunk)
    await save("card", [("card_fields", "ИНН"), ("card_fields", "Доп. информация")])
    assert [f.name for f in await db.projects.card_fields(pid)] == ["ИНН", "Доп. информация"]
    await save("schedule", [("interval_weekday", "0"), ("interval_start", "00:30"),
                            ("interval_end", "23:30"), ("interval_weekday", "6"),
                            ("interval_start", "08:00"), ("interval_end", "21:00")])
    assert await db.projects.intervals(pid) == [WeekdayInterval(0, "00:30", "23:30"),
                                               WeekdayInterval(6, "08:00", "21:00")]
    await save("queue", [("group_ids", str(group)), ("queue_timeout_s", "44"),
                         ("operator_timeout_s", "12"), ("strategy", "fewest_calls"),
                         ("operator_auto_answer", "1"), ("supervisor_id", str(sup)),
                         ("status_ids", str(status)), ("operator_tasks_enabled", "1"),
                         ("rule_operator", str(oper)), ("rule_status", str(status))])
    project = await db.projects.get(pid)
    assert project.group_ids == (group,) and project.status_ids == (status,)
    assert project.music_on_hold is False and project.operator_auto_answer is True
    assert await db.projects.task_rules(pid) == [TaskRule(oper, status)]
    await save("attempts", [("dial_timeout_s", "30"), ("global_timeout_s", "40"),
                            ("max_concurrent_calls", "40"), ("dial_mode", "unlimited"),
                            ("predictive_percent", "3"), ("max_attempts", "5"),
                            ("retry_busy_intervals", "15;60;1440;60"),
                            ("retry_busy_attempts", "5"),
                            ("retry_no_answer_intervals", "240;1380;162"),
                            ("retry_no_answer_attempts", "3"),
                            ("retry_machine_intervals", "3360;1440;120"),
                            ("retry_machine_attempts", "3"),
                            ("retry_lost_intervals", "1;2;4;6"), ("retry_lost_attempts", "4")])
    assert (await db.projects.get(pid)).dial_mode == "unlimited"
    await save("script", [("script_html", '<p>Добрый день<img src=x onerror="alert(1)"></p>')])
    assert (await db.projects.get(pid)).script_html == "<p>Добрый день</p>"
    await save("integration", [("crm_status_id", str(status)), ("bitrix_host", "b24.ru"),
                               ("bitrix_password", ""), ("sms_template", "Привет")])
    project = await db.projects.get(pid)
    assert (project.crm_status_id, project.bitrix_host, project.sms_template) == (
        status, "b24.ru", "Привет")
    queue = await (await b.get(f"/projects/{pid}?tab=queue")).text()
    assert f'<option value="{group}" selected>ТЕСТ</option>' in queue


async def test_a_bad_tab_value_comes_back_with_the_message(staff: Site) -> None:
    pid = await staff.db.projects.create("П", starts_on="2026-05-01")
    b = await staff.signed_in("admin@test.ru")
    response = await b.form(f"/projects/{pid}", [
        ("tab", "project"), ("name", "П"), ("starts_on", "2026-05-01"),
        ("ends_on", "2026-04-01"), ("timezone", "Europe/Moscow"),
        ("client_time_from", "09:00"), ("client_time_to", "21:00")])
    assert response.status == 422
    text = await response.text()
    assert "Дата конца проекта раньше даты начала" in text
    assert 'name="ends_on" value="2026-04-01" class=invalid' in text  # as typed
    attempts = await b.form(f"/projects/{pid}", [("tab", "attempts"),
                                                  ("retry_busy_intervals", "15,60")])
    assert attempts.status == 422
    attempts_text = await attempts.text()
    assert "положительные целые числа минут через «;»" in attempts_text
    assert 'value="15,60"' in attempts_text


async def test_launch_switch_copy_and_delete_from_the_list(staff: Site) -> None:
    sup = staff.users["sup@test.ru"]
    pid = await staff.db.projects.create("Продажи", supervisor_id=sup)
    other = await staff.db.projects.create("Чужой")
    b = await staff.signed_in("sup@test.ru")
    listing = await (await b.get("/projects")).text()
    assert "Продажи" in listing and "Чужой" not in listing
    on = await b.form(f"/projects/{pid}/launch", {"launched": "1"})
    assert on.status == 303 and (await staff.db.projects.get(pid)).launched
    on_edit = await b.form(f"/projects/{pid}/launch", {"back": "edit", "call_from_end": "1"})
    assert on_edit.headers["Location"] == f"/projects/{pid}?ok=saved"
    project = await staff.db.projects.get(pid)
    assert (project.launched, project.call_from_end) == (False, True)
    copied = await b.form(f"/projects/{pid}/copy", {})
    assert copied.status == 303
    copy_id = int(copied.headers["Location"].split("/")[2].split("?")[0])
    assert (await staff.db.projects.get(copy_id)).name == "Продажи копия"
    assert (await b.form(f"/projects/{copy_id}/delete", {})).status == 303
    assert [p.id for p in await staff.db.projects.list()] == [other, pid]
    for path in (f"/projects/{other}", f"/projects/{other}/upload"):
        assert (await b.get(path)).status == 403
    assert (await b.form(f"/projects/{other}/delete", {})).status == 403
    oper = await staff.signed_in("oper@test.ru")
    assert (await oper.get("/projects")).status == 403


async def test_list_filters(staff: Site) -> None:
    db = staff.db
    group = await db.groups.create("Смена")
    first = await db.projects.create("Альфа")
    await db.projects.create("Бета")
    await db.projects.set_groups(first, [group])
    b = await staff.signed_in("admin@test.ru")
    by_name = await (await b.get("/projects?name=Бет")).text()
    assert "Бета" in by_name and "Альфа" not in by_name
    by_group = await (await b.get(f"/projects?group_id={group}")).text()
    assert "Альфа" in by_group and "Бета" not in by_group
    later = await (await b.get("/projects?from=2999-01-01&to=2999-12-31")).text()
    assert "Альфа" not in later and "Нет данных" in later


def test_sanitiser_keeps_formatting_and_drops_the_rest() -> None:
    html = ('<h2 style="color:red">Скрипт</h2><p>Приветствие: <b>“Добрый день”</b>'
            '<a href="https://example.ru/x?a=1&b=2" onclick="steal()">ссылка</a>'
            '<a href=" JaVa\tScRiPt:alert(1)">плохая</a><a href="data:text/html,x">d</a></p>'
            '<ul><li>один<li>два</ul><script>alert("x")</script><style>p{}</style>'
            '<iframe src="https://evil"></iframe><!-- comment --><svg onload=alert(1)>svg</svg>'
            '<p><i>незакрытый')
    clean = sanitize_html(html)
    assert clean.startswith("<h2>Скрипт</h2><p>Приветствие: <b>“Добрый день”</b>")
    assert '<a href="https://example.ru/x?a=1&amp;b=2" rel="noopener noreferrer">ссылка</a>' in clean
    assert "<a>плохая</a>" in clean and "<a>d</a>" in clean
    assert "<ul><li>один<li>два</li></li></ul>" in clean  # every tag closed
    for bad in ("script", "style", "iframe", "onclick", "onload", "javascript", "data:", "svg",
                "comment", "alert"):
        assert bad not in clean.lower(), bad
    assert clean.endswith("<p><i>незакрытый</i></p>")
    assert sanitize_html("a < b & c") == "a &lt; b &amp; c"
