"""The campaign runtime's dialling step: which contacts to call now, claimed, then originated.

It runs on the runtime's storage worker (one pick at a time), in this order on every pacing
pass of a running project:

1. **Operator tasks** (manual §5.2.4 «Задача на оператора», §6.1.1 «Задачи» with «Совершать
   звонок автоматически»): for every operator of the project who is available and has a task
   due, his task's contact is dialled *for him*. The operator is reserved first
   (:meth:`~sipspeak.dialer.acd.AcdQueue.reserve`: «Слушает гудки», so no queue offers him
   another call), then the contact is dialled; when it answers and passes AMD the queue rings
   that operator alone. This is how a call center runs agent callbacks: the customer who
   answers never waits for an operator, and the operator who promised the call makes it. An
   operator who is not available holds his task until he is: it never goes to someone else.
   These dials are outside the pacer's count (they bring their own operator) but within the
   project's line limit.
2. **The pacer's count**, filled with callbacks first — tasks with automatic calling assigned to
   nobody, earliest due first, answered by the queue's strategy — then the base in upload order
   (:func:`~sipspeak.dialer.selection.pick_contacts`). A contact with an open automatic-call
   task is left to its task, never dialled as part of the base.

A task is done when its call is answered and bridged to an operator; a failed attempt (busy, no
answer, a machine, abandoned) is written like any dial and the task is due again when the
contact's retry rules say so (see ``TasksRepo.due_auto_calls``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sipspeak.dialer.agents import AgentRoster, AgentState
from sipspeak.dialer.campaign import Campaign, Dial, attempt_history
from sipspeak.dialer.ports import CallControl, DialContact
from sipspeak.dialer.selection import ContactKind, DueContact, pick_contacts
from sipspeak.events import EventBus
from sipspeak.storage import Database, NotFound
from sipspeak.storage.models import Contact

__all__ = ["CampaignDialler"]

log = logging.getLogger(__name__)


class CampaignDialler:
    """See the module docstring. ``dialling()`` says whether the process still places calls."""

    def __init__(self, *, db: Database, bus: EventBus, calls: CallControl,
                 roster: AgentRoster, clock: Callable[[], int],
                 dialling: Callable[[], bool]) -> None:
        self._db = db
        self._bus = bus
        self._calls = calls
        self._roster = roster
        self._clock = clock
        self._dialling = dialling

    def _may_dial(self, campaign: Campaign) -> bool:
        return (campaign.switch.running and self._dialling()
                and campaign.dial_settings is not None)

    def _lines_free(self, campaign: Campaign) -> int:
        lines = sum(1 for d in campaign.dials.values() if d.contact_id is not None)
        return campaign.max_lines - lines

    def _available(self, operator_id: int) -> bool:
        return (operator_id in self._roster
                and self._roster.state(operator_id) is AgentState.AVAILABLE)

    # --- operator tasks -----------------------------------------------------------------------

    async def dial_tasks(self, campaign: Campaign) -> int:
        """Dial the due tasks of the project's available operators; return how many."""
        if not self._may_dial(campaign) or self._lines_free(campaign) <= 0:
            return 0
        free = [op for op in campaign.operator_ids if self._available(op)]
        if not free:
            return 0
        now = self._clock()
        tasks = await self._db.tasks.due_auto_calls(
            project_id=campaign.project_id, now=now, operator_ids=free, limit=4 * len(free))
        placed = 0
        served: set[int] = set()
        for task in tasks:
            operator_id = task.operator_id
            if operator_id is None or operator_id in served:
                continue
            contact = await self._contact(task.contact_id)
            if contact is None or not campaign.allows(self._clock(), contact.timezone):
                continue
            attempts, outcomes = await self._db.contacts.dial_history(contact.id)
            if not await self._db.contacts.claim_for_task(contact.id, now=self._clock()):
                continue
            # Storage answered: is he still free, may the project still dial, is a line left?
            settings = campaign.dial_settings
            if (settings is None or not self._may_dial(campaign)
                    or not self._available(operator_id) or self._lines_free(campaign) <= 0):
                await self._give_back(contact)
                continue
            try:
                call_id = self._calls.originate(DialContact(contact.id, contact.phone), settings)
            except Exception:
                log.exception("project %s: originate to contact %s for task %s failed",
                              campaign.project_id, contact.id, task.id)
                await self._give_back(contact)
                continue
            now = self._clock()
            campaign.queue.reserve(call_id, operator_id, now)
            campaign.dials[call_id] = Dial(
                call_id=call_id, project_id=campaign.project_id, started_ms=now,
                contact_id=contact.id, history=attempt_history(attempts, outcomes),
                task_id=task.id, for_operator=operator_id)
            served.add(operator_id)
            placed += 1
            self._bus.publish("task.dialling", task_id=task.id, operator_id=operator_id,
                              contact_id=contact.id, project_id=campaign.project_id,
                              call_id=call_id)
            log.info("project %s: task %s of operator %s: dialling contact %s (%s) as %s",
                     campaign.project_id, task.id, operator_id, contact.id, contact.phone,
                     call_id)
        return placed

    async def _contact(self, contact_id: int) -> Contact | None:
        try:
            return await self._db.contacts.get(contact_id)
        except NotFound:
            return None

    async def _give_back(self, contact: Contact) -> None:
        await self._db.contacts.release_claim(contact.id, dial_state=contact.dial_state,
                                              next_attempt_at=contact.next_attempt_at)

    # --- the pacer's count: callbacks, then the base ------------------------------------------

    async def dial_pool(self, campaign: Campaign, count: int) -> None:
        """Place up to ``count`` calls for the project's queue."""
        contacts = self._db.contacts
        now = self._clock()
        rows: dict[int, Contact] = {}
        task_of: dict[int, int] = {}
        due: list[DueContact] = []
        for task in await self._db.tasks.due_auto_calls(
                project_id=campaign.project_id, now=now, operator_ids=None, limit=count):
            callback = await self._contact(task.contact_id)
            if callback is None or callback.id in task_of:
                continue
            rows[callback.id] = callback
            task_of[callback.id] = task.id
            due.append(campaign.due_contact(callback.id, callback.phone, callback.timezone,
                                            task.due_at, ContactKind.CALLBACK))
        # Only zones where the client window is open now: contacts that may not be called yet
        # must not hide, by upload order, the ones that may.
        zones = [z for z in await contacts.due_zones(project_id=campaign.project_id, now=now)
                 if campaign.allows(now, z)]
        base = await contacts.due_for_dialling(
            project_id=campaign.project_id, now=now, limit=count * 4 + 8,
            newest_first=campaign.from_end, zones=zones) if zones else []
        tasked = await self._db.tasks.open_auto_call_contacts(row.id for row in base)
        for row in base:
            if row.id in tasked or row.id in rows:
                continue
            rows[row.id] = row
            due.append(campaign.due_contact(row.id, row.phone, row.timezone,
                                            row.next_attempt_at or 0))
        if not due:
            return
        blacklisted = await self._db.blacklist.among([row.phone for row in rows.values()])
        picked = pick_contacts(due, now_ms=now, count=count, schedule=campaign.schedule,
                               blacklist=blacklisted, switch=campaign.switch,
                               from_end=campaign.from_end)
        claimed = set(await contacts.claim_for_dialling(
            [c.contact_id for c in picked if c.kind is ContactKind.BASE], now=now))
        for pick in picked:
            if pick.kind is not ContactKind.BASE and await contacts.claim_for_task(
                    pick.contact_id, now=now):
                claimed.add(pick.contact_id)
        for pick in picked:
            if pick.contact_id in claimed:
                await self._originate(campaign, rows[pick.contact_id],
                                      task_of.get(pick.contact_id))

    async def _originate(self, campaign: Campaign, row: Contact, task_id: int | None) -> None:
        settings = campaign.dial_settings
        if settings is None or not self._may_dial(campaign):
            # Stopped while storage answered: the contact is given back untouched.
            await self._give_back(row)
            return
        attempts, outcomes = await self._db.contacts.dial_history(row.id)
        history = attempt_history(attempts, outcomes)
        try:
            call_id = self._calls.originate(DialContact(row.id, row.phone), settings)
        except Exception:
            log.exception("project %s: originate to contact %s failed",
                          campaign.project_id, row.id)
            await self._give_back(row)
            return
        campaign.dials[call_id] = Dial(call_id=call_id, project_id=campaign.project_id,
                                       started_ms=self._clock(), contact_id=row.id,
                                       history=history, task_id=task_id)
        log.info("project %s: dialling contact %s (%s) as %s%s", campaign.project_id, row.id,
                 row.phone, call_id, f" for task {task_id}" if task_id is not None else "")
