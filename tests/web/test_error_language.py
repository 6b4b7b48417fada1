"""Errors reach the user in his language: the API's JSON message and the page's form error.

Each case makes the same request as the same user twice, with his language set to Russian and
to English: the Russian text is the one the services always gave, the English one is its
translation, field labels and numbers included.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from webtools import Browser, Site

from sipspeak.accounts import MIN_PASSWORD
from sipspeak.web.projects_service import INT_FIELDS

LANGUAGES = ("ru", "en")


async def speaks(site: Site, email: str, language: str) -> None:
    await site.db.users.update(site.users[email], language=language)


async def api_error(response: aiohttp.ClientResponse) -> dict[str, Any]:
    body = await response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    error: dict[str, Any] = body["error"]
    return error


async def bearer(site: Site, email: str) -> Browser:
    return site.browser(bearer=await site.token_for(email))


async def test_a_settings_value_out_of_range_names_the_field_in_the_api(staff: Site) -> None:
    pid = await staff.db.projects.create("Продажи")
    api = await bearer(staff, "admin@test.ru")
    low, high = INT_FIELDS["queue_timeout_s"]
    expected = {"ru": f"Таймаут очереди: допустимо от {low} до {high}",
                "en": f"Queue timeout: allowed from {low} to {high}"}
    for language in LANGUAGES:
        await speaks(staff, "admin@test.ru", language)
        response = await api.api("PATCH", f"/api/v1/projects/{pid}",
                                 {"queue_timeout_s": high + 1})
        assert response.status == 422
        assert await api_error(response) == {
            "code": "invalid", "message": expected[language], "field": "queue_timeout_s"}


async def test_a_rejected_project_form_says_why_in_the_page_language(staff: Site) -> None:
    browser = await staff.signed_in("admin@test.ru")
    expected = {"ru": "Таймаут очереди: значение не может быть отрицательным",
                "en": "Queue timeout: the value cannot be negative"}
    for language in LANGUAGES:
        await speaks(staff, "admin@test.ru", language)
        response = await browser.form("/projects", {
            "name": "X", "queue_timeout_s": "-1", "operator_timeout_s": "12",
            "strategy": "ring_all"})
        assert response.status == 422
        page = await response.text()
        assert f'<p class="error" role="alert">{expected[language]}</p>' in page
        assert 'data-error-field="queue_timeout_s"' in page
    assert await staff.db.projects.list() == []


async def test_an_account_error_in_the_api_and_on_the_users_page(staff: Site) -> None:
    api = await bearer(staff, "admin@test.ru")
    browser = await staff.signed_in("admin@test.ru")
    expected = {"ru": f"пароль короче {MIN_PASSWORD} символов",
                "en": f"the password is shorter than {MIN_PASSWORD} characters"}
    user = {"role": "operator", "full_name": "Ахматова Анна", "email": "anna@test.ru",
            "password": "123"}
    for language in LANGUAGES:
        await speaks(staff, "admin@test.ru", language)
        response = await api.api("POST", "/api/v1/users", user)
        assert response.status == 422
        assert await api_error(response) == {
            "code": "invalid", "message": expected[language], "field": "password"}
        page = await browser.form("/settings/users", user)
        assert page.status == 422
        assert f'<p class="error" role="alert">{expected[language]}</p>' in await page.text()
    assert await staff.db.users.by_email("anna@test.ru") is None


async def test_forbidden_in_the_api_and_on_the_error_page(staff: Site) -> None:
    other = await staff.db.projects.create("Чужой")
    api = await bearer(staff, "sup@test.ru")
    browser = await staff.signed_in("sup@test.ru")
    expected = {"ru": "проект вне вашей зоны ответственности",
                "en": "the project is outside your area of responsibility"}
    role = {"ru": "недостаточно прав для этого действия",
            "en": "your role does not allow this action"}
    operator = await bearer(staff, "oper@test.ru")
    for language in LANGUAGES:
        await speaks(staff, "sup@test.ru", language)
        await speaks(staff, "oper@test.ru", language)
        response = await api.get(f"/api/v1/projects/{other}")
        assert response.status == 403
        assert await api_error(response) == {
            "code": "forbidden", "message": expected[language], "field": None}
        page = await browser.get(f"/projects/{other}")
        assert page.status == 403 and expected[language] in await page.text()
        denied = await operator.get("/api/v1/projects")
        assert denied.status == 403
        assert (await api_error(denied))["message"] == role[language]


async def test_not_found_and_conflict(staff: Site) -> None:
    api = await bearer(staff, "admin@test.ru")
    browser = await staff.signed_in("admin@test.ru")
    missing = {"ru": "проект 9999 не найден", "en": "project 9999 not found"}
    taken = {"ru": "пользователь с таким e-mail уже есть",
             "en": "a user with this e-mail already exists"}
    duplicate = {"role": "operator", "full_name": "X", "email": "oper@test.ru",
                 "password": "111222333"}
    for language in LANGUAGES:
        await speaks(staff, "admin@test.ru", language)
        response = await api.get("/api/v1/projects/9999")
        assert response.status == 404
        assert await api_error(response) == {
            "code": "not_found", "message": missing[language], "field": None}
        conflict = await api.api("POST", "/api/v1/users", duplicate)
        assert conflict.status == 409
        assert await api_error(conflict) == {
            "code": "conflict", "message": taken[language], "field": "email"}
        page = await browser.form("/settings/users", duplicate)
        assert page.status == 409
        text = await page.text()
        assert f'<p class="error" role="alert">{taken[language]}</p>' in text
        assert 'data-error-field="email"' in text


def upload_form(data: bytes, *, csrf: str = "") -> aiohttp.FormData:
    form = aiohttp.FormData()
    if csrf:
        form.add_field("csrf", csrf)
    form.add_field("file", data, filename="base.xlsx", content_type="application/octet-stream")
    return form


async def test_a_broken_xlsx_upload(staff: Site) -> None:
    pid = await staff.db.projects.create("Продажи")
    api = await bearer(staff, "admin@test.ru")
    browser = await staff.signed_in("admin@test.ru")
    broken = b"PK\x03\x04 this is not a workbook"
    expected = {"ru": "Файл повреждён или это не XLSX: файл не является ZIP-архивом XLSX.",
                "en": "The file is damaged or not an XLSX: the file is not an XLSX ZIP archive."}
    for language in LANGUAGES:
        await speaks(staff, "admin@test.ru", language)
        response = await api.request("POST", f"/api/v1/projects/{pid}/uploads/files",
                                     data=upload_form(broken))
        assert response.status == 422
        assert await api_error(response) == {
            "code": "invalid", "message": expected[language], "field": "file"}
        page = await browser.request("POST", f"/projects/{pid}/upload",
                                     data=upload_form(broken, csrf=browser.csrf))
        assert page.status == 422
        assert f'<p class="error" role="alert">{expected[language]}</p>' in await page.text()
    assert await staff.db.uploads.list(pid) == []


@pytest.mark.parametrize(("language", "reason"), [
    ("ru", "слишком короткий номер"), ("en", "number too short")])
async def test_rejected_rows_give_their_reason_in_the_reader_language(
        staff: Site, language: str, reason: str) -> None:
    pid = await staff.db.projects.create("Продажи")
    api = await bearer(staff, "admin@test.ru")
    await speaks(staff, "admin@test.ru", language)
    csv = "phone;full_name\n79221234567;Петров\n12345;Сидоров\n".encode()
    contacts = aiohttp.FormData()
    contacts.add_field("file", csv, filename="base.csv", content_type="text/csv")
    sent = await api.request("POST", f"/api/v1/projects/{pid}/uploads/files", data=contacts)
    assert sent.status == 201, await sent.text()
    started = await api.api("POST", f"/api/v1/projects/{pid}/uploads",
                            {"file": (await sent.json())["file"]})
    assert started.status == 202, await started.text()
    upload_id = (await started.json())["upload_id"]
    for _ in range(1200):
        progress = await (await api.get(f"/api/v1/uploads/{upload_id}/progress")).json()
        if progress["state"] != "running":
            break
        await asyncio.sleep(0.05)
    assert progress["state"] == "done", progress
    result = await (await api.get(f"/api/v1/uploads/{upload_id}/result")).json()
    assert result["rejected"] == [{"row": 3, "phone": "12345", "reason": reason}]
