"""Leads for a project's Bitrix24 (manual §5.2.7): the fields and the answers (sans-IO), and
the outbox against a Bitrix stand-in — a real HTTP server on 127.0.0.1 that speaks the lead
import's form and answers — over a real SQLite file."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from buslog import BusLog
from crm_standin import Crm

from sipspeak.events import EventBus
from sipspeak.integrations.bitrix import (
    RETRY_DELAYS_MS,
    lead_fields,
    lead_request,
    read_answer,
    retry_delay_ms,
)
from sipspeak.integrations.outbox import LeadOutbox
from sipspeak.storage import Database
from sipspeak.storage.models import NewContact


async def _project_and_contact(db: Database, host: str, **settings: Any) -> tuple[Any, Any]:
    values: dict[str, Any] = {"bitrix_host": host, "bitrix_title": "Заявка с обзвона",
                              "bitrix_login": "crm-bot", "bitrix_password": "pa&ss=word",
                              "bitrix_source_id": "CALL", "bitrix_assigned_by_id": "17"}
    values.update(settings)
    project_id = await db.projects.create("Продажи", **values)
    await db.contacts.insert_many(project_id=project_id, upload_id=None, contacts=[NewContact(
        phone="+79161234567", full_name="Иванов Иван Иванович", email="ivan@example.ru",
        birth_date="1990-02-01", position="Директор", city="Оренбург", address="ул. Мира, 1",
        description="Хочет тариф «Бизнес»", region="Оренбургская обл.")])
    return (await db.projects.get(project_id),
            (await db.contacts.list(project_id=project_id))[0])


# -- sans-IO -----------------------------------------------------------------------------------


async def test_the_card_becomes_the_leads_fields(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "b.db")
    try:
        project, contact = await _project_and_contact(db, "crm.example.ru")
        fields = lead_fields(project, contact, notes=[("Тариф", "Бизнес"), ("Статус", "Лид"),
                                                      ("Пусто", "")])
        assert fields == {
            "TITLE": "Заявка с обзвона", "LAST_NAME": "Иванов", "NAME": "Иван",
            "SECOND_NAME": "Иванович", "PHONE_MOBILE": "+79161234567",
            "EMAIL_WORK": "ivan@example.ru", "POST": "Директор", "ADDRESS": "ул. Мира, 1",
            "ADDRESS_CITY": "Оренбург", "ADDRESS_PROVINCE": "Оренбургская обл.",
            "BIRTHDATE": "01.02.1990", "SOURCE_ID": "CALL", "ASSIGNED_BY_ID": "17",
            "COMMENTS": "Хочет тариф «Бизнес»\nТариф: Бизнес\nСтатус: Лид"}
        request = lead_request(project, fields)
        assert request.url == "https://crm.example.ru/crm/configs/import/lead.php"
        assert request.form[:2] == (("LOGIN", "crm-bot"), ("PASSWORD", "pa&ss=word"))
        assert dict(request.form)["TITLE"] == "Заявка с обзвона"
        # A host with its scheme keeps it; no title: the project's name and the number.
        bare = replace(project, bitrix_host="http://10.0.0.5:8080/", bitrix_title="")
        assert lead_request(bare, {}).url == "http://10.0.0.5:8080/crm/configs/import/lead.php"
        assert lead_fields(bare, replace(contact, full_name="Иван", description=None))[
            "TITLE"] == "Продажи: +79161234567"
    finally:
        await db.close()


def test_the_answers_of_the_lead_import() -> None:
    created = read_answer(200, "{'error':'201','ID':'4021','error_message':'Лид добавлен'}")
    assert (created.created, created.crm_id, created.message) == (True, "4021", "Лид добавлен")
    refused = read_answer(200, "{'error':'403','ID':'','error_message':'Ошибка авторизации'}")
    assert not refused.created and refused.permanent and refused.message == "Ошибка авторизации"
    for status, body in ((500, "Internal Server Error"), (200, "<html>maintenance</html>"),
                         (200, "")):
        answer = read_answer(status, body)
        assert not answer.created and not answer.permanent, (status, body)
    assert [retry_delay_ms(n) for n in range(1, len(RETRY_DELAYS_MS) + 2)] == [
        *RETRY_DELAYS_MS, None]


# -- the outbox against a stand-in CRM -----------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_780_000_000_000

    def __call__(self) -> int:
        return self.now


async def test_a_lead_is_stored_then_sent_and_retried_until_the_crm_takes_it(
        tmp_path: Path, crm: tuple[Crm, str]) -> None:
    stand_in, host = crm
    db = await Database.open(tmp_path / "o.db")
    bus = EventBus()
    log = BusLog(bus)
    clock = Clock()
    outbox = LeadOutbox(db, bus, clock=clock)
    await outbox.start()
    try:
        project, contact = await _project_and_contact(db, host)
        stand_in.replies = [(503, "busy"), (200, "{'error':'201','ID':'501','error_message':'ok'}")]
        lead_id = await outbox.submit(project, contact, user_id=None, notes=[("Статус", "Лид")])
        pending = await log.wait("crm.lead", lead_id=lead_id, state="pending")
        assert pending.data["error"] == "http 503: busy"
        [row] = await db.crm_leads.list(contact_id=contact.id)
        assert (row.state, row.attempts, row.next_attempt_at) == (
            "pending", 1, clock.now + RETRY_DELAYS_MS[0])
        # Not before its time, whatever wakes the outbox.
        outbox.wake()
        await asyncio.sleep(0.2)
        assert len(stand_in.forms) == 1
        clock.now += RETRY_DELAYS_MS[0]
        outbox.wake()
        await log.wait("crm.lead", lead_id=lead_id, state="sent")
        [row] = await db.crm_leads.list(contact_id=contact.id)
        assert (row.state, row.crm_id, row.attempts, row.sent_at) == ("sent", "501", 2, clock.now)
        form = stand_in.forms[-1]
        assert (form["LOGIN"], form["PASSWORD"], form["PHONE_MOBILE"], form["NAME"]) == (
            "crm-bot", "pa&ss=word", "+79161234567", "Иван")
        assert form["COMMENTS"].endswith("Статус: Лид")
    finally:
        await outbox.aclose()
        await db.close()


async def test_a_refused_lead_fails_at_once_and_the_staff_is_told(
        tmp_path: Path, crm: tuple[Crm, str]) -> None:
    stand_in, host = crm
    db = await Database.open(tmp_path / "r.db")
    bus = EventBus()
    log = BusLog(bus)
    outbox = LeadOutbox(db, bus)
    await outbox.start()
    try:
        admin = await db.users.create(role="admin", full_name="А", email="a@x.test",
                                      password_hash="x", language="en")
        sup = await db.users.create(role="supervisor", full_name="С", email="s@x.test",
                                    password_hash="x")
        oper = await db.users.create(role="operator", full_name="О", email="o@x.test",
                                     password_hash="x")
        project, contact = await _project_and_contact(db, host, supervisor_id=sup)
        stand_in.replies = [(200, "{'error':'403','ID':'','error_message':'Ошибка авторизации'}")]
        lead_id = await outbox.submit(project, contact, user_id=oper)
        failed = await log.wait("crm.lead", lead_id=lead_id, state="failed")
        assert "Ошибка авторизации" in failed.data["error"]
        assert len(stand_in.forms) == 1  # not tried again
        [to_admin] = await db.notifications.unread(admin)
        assert to_admin.text == ("Lead not sent to the CRM: project «Продажи», number "
                                 "+79161234567: the CRM did not accept the lead "
                                 "(403: Ошибка авторизации)")
        [to_sup] = await db.notifications.unread(sup)
        assert to_sup.text.startswith("Лид не отправлен в CRM: проект «Продажи»")
        assert await db.notifications.unread(oper) == []
        # A project without CRM settings fails its lead without calling anyone.
        bare = await db.projects.create("Без CRM")
        lead_id = await outbox.submit(await db.projects.get(bare), contact, user_id=oper)
        failed = await log.wait("crm.lead", lead_id=lead_id, state="failed")
        assert "не настроена" in failed.data["error"] and len(stand_in.forms) == 1
    finally:
        await outbox.aclose()
        await db.close()


async def test_a_pending_lead_survives_a_restart_and_a_crm_that_is_gone(
        tmp_path: Path, crm: tuple[Crm, str]) -> None:
    stand_in, host = crm
    db = await Database.open(tmp_path / "s.db")
    bus = EventBus()
    log = BusLog(bus)
    clock = Clock()
    try:
        # Nobody listens where the CRM should be: a network failure, tried again later.
        project, contact = await _project_and_contact(db, "http://127.0.0.1:9")
        first = LeadOutbox(db, bus, clock=clock, timeout_s=2)
        await first.start()
        lead_id = await first.submit(project, contact, user_id=None)
        pending = await log.wait("crm.lead", lead_id=lead_id, state="pending")
        assert pending.data["error"].startswith("network")
        await first.aclose()
        # The service restarts with the CRM back (its address fixed in the project).
        await db.projects.update(project.id, bitrix_host=host)
        clock.now += RETRY_DELAYS_MS[0]
        second = LeadOutbox(db, bus, clock=clock)
        await second.start()
        try:
            await log.wait("crm.lead", lead_id=lead_id, state="sent")
        finally:
            await second.aclose()
        assert len(stand_in.forms) == 1
    finally:
        await db.close()
