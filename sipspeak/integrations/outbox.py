"""The leads outbox: every lead for a project's CRM is stored first, then delivered.

:meth:`LeadOutbox.submit` stores the lead (``crm_leads``) and wakes the sender; the sender
delivers what is due, one lead at a time, over HTTP (:mod:`sipspeak.integrations.bitrix`
builds the request and reads the answer).  A lead the CRM created is marked sent with the
CRM's id; a failure that may pass (the CRM down, a timeout, an unexpected answer) is tried
again later (:func:`~sipspeak.integrations.bitrix.retry_delay_ms`); a refusal that cannot
pass (wrong login, bad fields), a project without CRM settings or the last retry marks it
failed and tells the administrators and the project's supervisor (notifications, in each
one's language).  Stored first, a lead survives a restart and a CRM that is down for hours.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence

import aiohttp

from sipspeak.events import EventBus
from sipspeak.i18n import Text
from sipspeak.storage import Database, NotFound, StorageError, now_ms
from sipspeak.storage.models import Contact, CrmLead, Project

from .bitrix import (
    LeadAnswer,
    configured,
    lead_fields,
    lead_request,
    read_answer,
    retry_delay_ms,
)

__all__ = ["LeadOutbox"]

log = logging.getLogger(__name__)

IDLE_CHECK_S = 60.0
"""Without a wake-up the outbox looks for due leads this often (a retry's time came)."""


class LeadOutbox:
    def __init__(self, db: Database, bus: EventBus, *, timeout_s: float = 15.0,
                 clock: Callable[[], int] = now_ms) -> None:
        self._db = db
        self._bus = bus
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="crm-leads")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def wake(self) -> None:
        """Look for due leads now (a lead was stored, or the clock was moved on)."""
        self._wake.set()

    async def submit(self, project: Project, contact: Contact, *, user_id: int | None,
                     notes: Sequence[tuple[str, str]] = ()) -> int:
        """Store a lead for the contact's card and have it sent; its id in the outbox."""
        fields = lead_fields(project, contact, notes=notes)
        lead_id = await self._db.crm_leads.add(
            project_id=project.id, contact_id=contact.id, user_id=user_id,
            fields=json.dumps(fields, ensure_ascii=False), now=self._clock())
        self._wake.set()
        return lead_id

    # -- the sender ----------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                due = await self._db.crm_leads.due(now=self._clock())
                for lead in due:
                    await self._deliver(lead)
                if due:
                    continue  # more may be due
                wait = IDLE_CHECK_S
                next_at = await self._db.crm_leads.next_due_at()
                if next_at is not None:
                    wait = min(wait, max(0.0, (next_at - self._clock()) / 1000))
            except StorageError as exc:
                log.error("CRM leads outbox: %s", exc)
                wait = IDLE_CHECK_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()

    async def _deliver(self, lead: CrmLead) -> None:
        project = None
        if lead.project_id is not None:
            with contextlib.suppress(NotFound):
                project = await self._db.projects.get(lead.project_id)
        if project is None or not configured(project):
            await self._fail(lead, project, Text("crm.error.not_configured"))
            return
        request = lead_request(project, json.loads(lead.fields))
        answer = await self._post(request.url, request.form)
        if answer.created:
            await self._db.crm_leads.sent(lead.id, crm_id=answer.crm_id, at=self._clock())
            log.info("lead %s created in the CRM of project %s as %s", lead.id, project.id,
                     answer.crm_id)
            self._bus.publish("crm.lead", lead_id=lead.id, contact_id=lead.contact_id,
                              state="sent", crm_id=answer.crm_id)
            return
        reason = f"{answer.code}: {answer.message}" if answer.message else answer.code
        delay = None if answer.permanent else retry_delay_ms(lead.attempts + 1)
        if delay is None:
            await self._fail(lead, project, Text("crm.error.refused", reason=reason))
            return
        log.warning("lead %s not delivered (%s); next attempt in %d s", lead.id, reason,
                    delay // 1000)
        await self._db.crm_leads.retry(lead.id, error=reason,
                                       next_attempt_at=self._clock() + delay)
        self._bus.publish("crm.lead", lead_id=lead.id, contact_id=lead.contact_id,
                          state="pending", error=reason)

    async def _post(self, url: str, form: Sequence[tuple[str, str]]) -> LeadAnswer:
        assert self._session is not None, "start() the outbox first"
        try:
            async with self._session.post(url, data=list(form)) as response:
                body = await response.text(errors="replace")
                return read_answer(response.status, body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return LeadAnswer(created=False, crm_id="", code="network",
                              message=str(exc) or type(exc).__name__)

    async def _fail(self, lead: CrmLead, project: Project | None, why: Text) -> None:
        await self._db.crm_leads.failed(lead.id, error=str(why))
        log.warning("lead %s failed: %s", lead.id, why)
        phone = json.loads(lead.fields).get("PHONE_MOBILE", "")
        name = project.name if project is not None else ""
        recipients = {u.id: u for u in await self._db.users.list(role="admin")}
        if project is not None and project.supervisor_id is not None:
            with contextlib.suppress(NotFound):
                recipients[project.supervisor_id] = await self._db.users.get(
                    project.supervisor_id)
        note = Text("crm.note.failed", project=name, phone=phone, reason=why)
        for user in recipients.values():
            await self._db.notifications.add(text=note.render(user.language), user_id=user.id,
                                             level="error")
        self._bus.publish("crm.lead", lead_id=lead.id, contact_id=lead.contact_id,
                          state="failed", error=str(why))
