"""Task reminders («Дата оповещения» of a task, manual §6.1.1), with time as a parameter.

When an open task's reminder time comes, its operator gets a notification in the bell (in his
language; the number masked where the project hides numbers from operators) and ``task.reminder``
on the bus (the operator's workspace follows it); a task for nobody reminds the user who created
it.  Once: the reminder is marked sent in the same transaction that writes the notification,
so a restart, or two runners, never send it twice, and a reminder whose time passed while the
service was down goes out at the next :meth:`TaskReminders.handle_timer`.  A done task is
never reminded, nor a removed user.

Nothing here reads a clock or sleeps: :meth:`TaskReminders.handle_timer` sends what is due at
``now_ms``, :meth:`TaskReminders.get_timer` says when to call it next
(:mod:`.reminders_aio` is the asyncio shell that does).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sipspeak.crm.phones import shown_phone
from sipspeak.i18n import Text
from sipspeak.storage import Database, NotFound
from sipspeak.storage.models import Contact, Project, User
from sipspeak.storage.repositories.card_items import TaskReminder

__all__ = ["BATCH", "RECHECK_MS", "Reminder", "TaskReminders", "next_timer", "reminder_text"]

RECHECK_MS = 20_000
"""Without a reminder due sooner, storage is looked at again this often: a task added or
moved meanwhile (the card does not tell this service) is reminded at most this late."""
BATCH = 200
"""Reminders sent per storage read."""

Publish = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Reminder:
    """One reminder sent: the task, and who got it (None: nobody to tell)."""

    task_id: int
    user_id: int | None


def next_timer(next_due_ms: int | None, now_ms: int) -> int:
    """When to look again: the earliest reminder waiting, at the latest ``RECHECK_MS`` on."""
    latest = now_ms + RECHECK_MS
    return latest if next_due_ms is None else max(now_ms, min(next_due_ms, latest))


def reminder_text(task: TaskReminder, contact: Contact, project: Project | None,
                  reader: User) -> Text:
    """The bell's line for ``reader``: the task's text (or «перезвонить», for an automatic
    call without one), the client and the project."""
    phone = shown_phone(contact.phone, show_numbers=project is None or project.show_numbers,
                        role=reader.role)
    client = f"{contact.full_name}, {phone}" if contact.full_name else phone
    what: Text | str = task.text or Text("tasks.note.call_back")
    return Text("tasks.note.reminder", text=what, client=client,
                project=project.name if project is not None else "")


class TaskReminders:
    """See the module docstring.  ``publish`` is the bus's (``topic, **data``)."""

    def __init__(self, db: Database, publish: Publish) -> None:
        self._db = db
        self._publish = publish

    async def handle_timer(self, now_ms: int) -> list[Reminder]:
        """Send every reminder due at ``now_ms`` not sent yet; what was sent."""
        sent: list[Reminder] = []
        while True:
            due = await self._db.tasks.due_reminders(now=now_ms, limit=BATCH)
            for task in due:
                reminder = await self._send(task, now_ms)
                if reminder is not None:
                    sent.append(reminder)
            if len(due) < BATCH:
                return sent

    async def get_timer(self, now_ms: int) -> int:
        """When :meth:`handle_timer` should run next (epoch ms, never before ``now_ms``)."""
        return next_timer(await self._db.tasks.next_reminder_at(), now_ms)

    async def _send(self, task: TaskReminder, now_ms: int) -> Reminder | None:
        db = self._db
        try:
            contact = await db.contacts.get(task.contact_id)
        except NotFound:  # deleted with its tasks meanwhile
            return None
        project = None
        with contextlib.suppress(NotFound):
            project = await db.projects.get(contact.project_id, include_deleted=True)
        reader = await self._reader(task)
        async with db.transaction():
            if not await db.tasks.mark_reminded(task.id, at=now_ms):
                return None  # done or reminded meanwhile
            if reader is not None:
                text = reminder_text(task, contact, project, reader)
                await db.notifications.add(text=text.render(reader.language),
                                           user_id=reader.id, level="info")
        self._publish("task.reminder", task_id=task.id, contact_id=contact.id,
                      project_id=contact.project_id, operator_id=task.operator_id,
                      user_id=reader.id if reader is not None else None, due_at=task.due_at)
        return Reminder(task_id=task.id, user_id=reader.id if reader is not None else None)

    async def _reader(self, task: TaskReminder) -> User | None:
        """The task's operator, else its author; nobody removed."""
        for user_id in (task.operator_id, task.created_by):
            if user_id is None:
                continue
            try:
                return await self._db.users.get(user_id)
            except NotFound:  # removed: his reminders go nowhere
                return None
        return None
