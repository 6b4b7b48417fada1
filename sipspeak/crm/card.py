"""The client card (manual §5.2.2 «Шаблон карточки клиента», §6.1.1 «Карточка клиента»).

One contact as the operator fills it in during a call: the fixed fields (ФИО, Тел., Должность,
E-mail, Город, Дата рождения as DD-MM-YYYY, Адрес, Регион, Описание, Тэги, the read-only
«Статус робота»), «Местное время» from the contact's time zone, the project's extra fields
(stored by name in ``contacts.custom``), «Статус» among the project's statuses, «Операторы»
among the operators of the project's groups, the project's operator script (§5.2.6), the
comments, the tasks («Задачи»: with «Совершать звонок автоматически» the dialer calls the
contact back for the task's operator at «Дата оповещения») and «Показать звонки».

Who sees a card: an administrator every contact, a supervisor the contacts of the projects he
supervises, an operator those of the projects of his groups; the caller passes that set of
project ids (``visible``, None = all).  Anybody else's contact is :class:`NotFound`, exactly
like a contact that does not exist.  Input is checked here, once (lengths, the e-mail's shape,
the date, a status or an operator of the project); a bad value raises :class:`CardError`
naming the field.  The clock is a parameter.  No SQL: storage's repositories write, and a
«Сохранить» is one transaction there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sipspeak.crm.contact_rows import RowRejectedError, parse_birth_date
from sipspeak.crm.phones import mask_phone, shown_phone  # noqa: F401  (mask_phone: re-exported)
from sipspeak.i18n import Text
from sipspeak.storage import Database, NotFound
from sipspeak.storage.models import Contact, Project, User

__all__ = ["Card", "CardCall", "CardComment", "CardEdit", "CardError", "CardService",
           "CardTask", "Choice", "CustomValue", "DeleteResult", "TEXT_FIELDS", "local_time",
           "parse_edit"]

TEXT_FIELDS: dict[str, int] = {"full_name": 200, "position": 200, "email": 254, "city": 100,
                               "address": 500, "description": 4000}
"""The card's free-text fields and the longest value each takes."""
EDITABLE = frozenset({*TEXT_FIELDS, "birth_date", "custom", "tags", "status_id", "operator_id"})
"""What a «Сохранить» may send."""
FIXED_ORDER = ("full_name", "phone", "position", "email", "city", "birth_date", "address",
               "region", "description")
"""The fixed fields in the order of the manual's card (Рис. 47)."""
MAX_CUSTOM = 2000
MAX_TAGS = 20
MAX_TAG = 64
MAX_COMMENT = 4000
MAX_TASK = 2000
MAX_DELETE = 10_000
LATEST_DUE_MS = 5 * 366 * 86_400_000
"""A reminder at most about five years ahead."""
EARLIEST_DUE_MS = 24 * 3600 * 1000
"""… and not more than a day in the past (a clock a little behind is no error)."""
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")
LABELS: dict[str, Text] = {
    "full_name": Text("card.full_name"), "position": Text("card.position"),
    "email": Text("card.email"), "city": Text("card.city"), "address": Text("card.address"),
    "description": Text("card.description"), "birth_date": Text("card.birth_date"),
    "status_id": Text("card.status"), "operator_id": Text("card.ui.operator"),
    "comment": Text("card.ui.comment_text"), "task": Text("card.ui.task_text")}
"""How an error names a field (the card's own labels)."""


class CardError(ValueError):
    """A value the card refuses; ``field`` names the input (``custom:<name>`` for an extra
    field)."""

    def __init__(self, message: Text, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Choice:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class CustomValue:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class CardComment:
    id: int
    text: str
    author: str
    created_at: int


@dataclass(frozen=True, slots=True)
class CardTask:
    id: int
    text: str
    due_at: int
    auto_call: bool
    operator_id: int | None
    operator_name: str
    done_at: int | None
    created_at: int


@dataclass(frozen=True, slots=True)
class CardCall:
    id: int
    started_at: int
    direction: str
    kind: str
    phone: str
    duration_ms: int
    talk_ms: int
    result: str
    client_status: str
    operator_status: str
    project_name: str
    operator_name: str
    recording: bool


@dataclass(frozen=True, slots=True)
class Card:
    contact_id: int
    project_id: int
    project_name: str
    phone: str
    fields: dict[str, str]
    """The fixed fields (``FIXED_ORDER``); the birth date as DD-MM-YYYY."""
    tags: tuple[str, ...]
    robot_status: str
    timezone: str
    local_time: str | None
    custom: tuple[CustomValue, ...]
    status_id: int | None
    statuses: tuple[Choice, ...]
    operator_id: int | None
    operators: tuple[Choice, ...]
    script_html: str
    comments: tuple[CardComment, ...]
    tasks: tuple[CardTask, ...]
    dial_state: str
    updated_at: int


@dataclass(frozen=True, slots=True)
class CardEdit:
    """One «Сохранить», checked for shape: only what was sent is changed."""

    columns: dict[str, str | None]
    custom: dict[str, str]
    tags: tuple[str, ...] | None = None
    status_id: int | None = None
    status_given: bool = False
    operator_id: int | None = None
    operator_given: bool = False


@dataclass(frozen=True, slots=True)
class DeleteResult:
    deleted: int
    dialing: int
    """Left because the dialer is calling them right now."""
    skipped: int
    """Not deleted: being dialled, already gone or not the caller's to delete."""
    ids: tuple[int, ...] = ()
    """The contacts deleted."""


def local_time(zone: str | None, now_ms: int) -> str | None:
    """«Местное время»: the time of day at the contact (HH:MM), None without a known zone."""
    if not zone:
        return None
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return datetime.fromtimestamp(now_ms / 1000, timezone.utc).astimezone(tz).strftime("%H:%M")


def _text(data: Mapping[str, Any], name: str, max_len: int) -> str:
    value = data[name]
    if value is None:
        return ""
    if not isinstance(value, str) or "\x00" in value:
        raise CardError(Text("card.error.text", field=_label(name)), field=name)
    text = value.strip()
    if len(text) > max_len:
        raise CardError(Text("card.error.too_long", field=_label(name), max=max_len), field=name)
    return text


def _label(name: str) -> Text:
    return LABELS.get(name) or Text("card.ui.field")


def _id(data: Mapping[str, Any], name: str) -> int | None:
    value = data[name]
    if value is None or value == "":
        return None
    if isinstance(value, (int, str)) and not isinstance(value, bool) and str(value).isdigit() \
            and int(value) >= 1:
        return int(value)
    raise CardError(Text("card.error.choice", field=_label(name)), field=name)


def parse_edit(data: Mapping[str, Any], *, today: date) -> CardEdit:
    """A «Сохранить» request (the JSON object the API receives) → :class:`CardEdit`.
    The number, region and robot status are not the card's to change: sending them (or any
    other unknown name) is refused rather than silently dropped."""
    for name in data:
        if name not in EDITABLE:
            raise CardError(Text("card.error.unknown", name=str(name)), field=str(name))
    columns: dict[str, str | None] = {}
    for name, max_len in TEXT_FIELDS.items():
        if name in data:
            columns[name] = _text(data, name, max_len) or None
    email = columns.get("email")
    if email and not _EMAIL.match(email):
        raise CardError(Text("card.error.email", value=email), field="email")
    if "birth_date" in data:
        raw = _text(data, "birth_date", 20)
        try:
            columns["birth_date"] = parse_birth_date(raw, today=today)
        except RowRejectedError:
            raise CardError(Text("card.error.birth_date", value=raw),
                            field="birth_date") from None
    custom: dict[str, str] = {}
    raw_custom = data.get("custom")
    if raw_custom is not None:
        if not isinstance(raw_custom, dict):
            raise CardError(Text("card.error.custom"), field="custom")
        for name, value in raw_custom.items():
            key = f"custom:{name}"
            if value is not None and (isinstance(value, bool) or "\x00" in str(value)
                                      or not isinstance(value, (str, int, float))):
                raise CardError(Text("card.error.text", field=str(name)), field=key)
            text = "" if value is None else str(value).strip()
            if len(text) > MAX_CUSTOM:
                raise CardError(Text("card.error.too_long", field=str(name), max=MAX_CUSTOM),
                                field=key)
            custom[str(name)] = text
    tags: tuple[str, ...] | None = None
    if "tags" in data:
        tags = _tags(data["tags"])
    return CardEdit(columns=columns, custom=custom, tags=tags,
                    status_id=_id(data, "status_id") if "status_id" in data else None,
                    status_given="status_id" in data,
                    operator_id=_id(data, "operator_id") if "operator_id" in data else None,
                    operator_given="operator_id" in data)


def _tags(value: object) -> tuple[str, ...]:
    """«Тэги»: a list of names or one comma-separated string."""
    items: list[object]
    if isinstance(value, str):
        items = list(value.split(","))
    elif isinstance(value, list):
        items = value
    else:
        items = [value]
    if any(isinstance(t, bool) or not isinstance(t, (str, int)) for t in items):
        raise CardError(Text("card.error.tags", count=MAX_TAGS, max=MAX_TAG), field="tags")
    names = tuple(dict.fromkeys(str(t).strip() for t in items if str(t).strip()))
    if len(names) > MAX_TAGS or any(len(n) > MAX_TAG for n in names):
        raise CardError(Text("card.error.tags", count=MAX_TAGS, max=MAX_TAG), field="tags")
    return names


def _dmy(iso: str | None) -> str:
    if not iso:
        return ""
    try:
        return date.fromisoformat(iso).strftime("%d-%m-%Y")
    except ValueError:
        return iso


class CardService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def contact(self, contact_id: int, visible: set[int] | None) -> Contact:
        """The contact if the caller may see it; NotFound otherwise (never a hint it exists)."""
        contact = await self._db.contacts.get(contact_id)
        if visible is not None and contact.project_id not in visible:
            raise NotFound(Text("storage.error.contact_not_found", id=contact_id))
        return contact

    async def _statuses(self, project: Project, current: int | None) -> tuple[Choice, ...]:
        """The statuses a card offers (§4.3.2): the project's active ones (every active one
        when it chose none), and the contact's current status even if it is no longer
        among them (deactivated or dropped from the project): it keeps showing, it is just
        not offered to anybody else."""
        everything = await self._db.statuses.list()
        chosen = set(project.status_ids)
        return tuple(Choice(s.id, s.name) for s in everything
                     if (s.active and (s.id in chosen or not chosen)) or s.id == current)

    async def _refuse_status(self, project: Project, status_id: int) -> CardError:
        """Why a card may not take ``status_id``: deactivated (named), or not the project's."""
        chosen = set(project.status_ids)
        try:
            status = await self._db.statuses.get(status_id)
        except NotFound:
            return CardError(Text("card.error.status"), field="status_id")
        if not status.active and (status.id in chosen or not chosen):
            return CardError(Text("card.error.status_inactive", name=status.name),
                             field="status_id")
        return CardError(Text("card.error.status"), field="status_id")

    async def _operators(self, project: Project, current: int | None) -> tuple[Choice, ...]:
        ids = await self._db.projects.operator_ids(project.id)
        if current is not None and current not in ids:
            ids.append(current)
        out: list[Choice] = []
        for user_id in ids:
            try:
                user = await self._db.users.get(user_id, include_deleted=True)
            except NotFound:
                continue
            out.append(Choice(user.id, user.full_name))
        return tuple(out)

    async def card(self, contact_id: int, *, visible: set[int] | None, viewer: User,
                   now_ms: int) -> Card:
        contact = await self.contact(contact_id, visible)
        project = await self._db.projects.get(contact.project_id, include_deleted=True)
        names = [f.name for f in await self._db.projects.card_fields(project.id)]
        stored = _stored_custom(contact.custom)
        fields = {
            "full_name": contact.full_name or "", "phone": self._phone(contact.phone, project,
                                                                        viewer),
            "position": contact.position or "", "email": contact.email or "",
            "city": contact.city or "", "birth_date": _dmy(contact.birth_date),
            "address": contact.address or "", "region": contact.region or "",
            "description": contact.description or ""}
        comments = await self._db.comments.newest_first(contact.id)
        tasks = await self._db.tasks.of_contact(contact.id)
        return Card(
            contact_id=contact.id, project_id=project.id, project_name=project.name,
            phone=fields["phone"], fields=fields, tags=contact.tags,
            robot_status=contact.robot_status or "", timezone=contact.timezone or "",
            local_time=local_time(contact.timezone, now_ms),
            custom=tuple(CustomValue(n, stored.get(n, "")) for n in names),
            status_id=contact.status_id,
            statuses=await self._statuses(project, contact.status_id),
            operator_id=contact.operator_id,
            operators=await self._operators(project, contact.operator_id),
            script_html=project.script_html,
            comments=tuple(CardComment(c.id, c.text, author, c.created_at)
                           for c, author in comments),
            tasks=tuple(CardTask(t.id, t.text, t.due_at, t.auto_call, t.operator_id, name,
                                 t.done_at, t.created_at) for t, name in tasks),
            dial_state=contact.dial_state, updated_at=contact.updated_at)

    @staticmethod
    def _phone(phone: str, project: Project, viewer: User) -> str:
        return shown_phone(phone, show_numbers=project.show_numbers, role=viewer.role)

    async def save(self, contact_id: int, edit: CardEdit, *,
                   visible: set[int] | None) -> tuple[int | None, int | None]:
        """«Сохранить»: check the choices against the contact's project, then write it all in
        one transaction; the status the contact had just before the write, and the one the
        write left."""
        contact = await self.contact(contact_id, visible)
        project = await self._db.projects.get(contact.project_id, include_deleted=True)
        changes: dict[str, object] = dict(edit.columns)
        known = {f.name for f in await self._db.projects.card_fields(project.id)}
        for name in edit.custom:
            if name not in known:
                raise CardError(Text("card.error.no_field", name=name), field=f"custom:{name}")
        if edit.status_given and edit.status_id != contact.status_id:
            allowed = {c.id for c in await self._statuses(project, None)}
            if edit.status_id is not None and edit.status_id not in allowed:
                raise await self._refuse_status(project, edit.status_id)
            changes["status_id"] = edit.status_id
            rule = await self._task_rule(project, edit.status_id)
            if rule is not None and not edit.operator_given:
                # «Задача на оператора» (§5.2.4): a card in this status goes to this operator.
                changes["operator_id"] = rule
        if edit.operator_given and edit.operator_id != contact.operator_id:
            if edit.operator_id is not None and edit.operator_id not in \
                    await self._db.projects.operator_ids(project.id):
                raise CardError(Text("card.error.operator"), field="operator_id")
            changes["operator_id"] = edit.operator_id
        return await self._db.contacts.save_card(contact.id, changes=changes,
                                                 custom=edit.custom, tags=edit.tags)

    async def _task_rule(self, project: Project, status_id: int | None) -> int | None:
        if not project.operator_tasks_enabled or status_id is None:
            return None
        for rule in await self._db.projects.task_rules(project.id):
            if rule.status_id == status_id:
                return rule.operator_id
        return None

    async def add_comment(self, contact_id: int, text: object, *, visible: set[int] | None,
                          author: User) -> int:
        contact = await self.contact(contact_id, visible)
        body = _text({"comment": text}, "comment", MAX_COMMENT)
        if not body:
            raise CardError(Text("card.error.comment_empty"), field="text")
        return await self._db.comments.add(contact_id=contact.id, user_id=author.id, text=body)

    async def add_task(self, contact_id: int, data: Mapping[str, Any], *,
                       visible: set[int] | None, author: User, now_ms: int) -> int:
        """«Задачи» → «Добавить»: text, «Дата оповещения» (``due_at``, epoch ms), «Совершать
        звонок автоматически» (``auto_call``) and the operator (by default the author if he
        is an operator; nobody = the project's queue calls back)."""
        contact = await self.contact(contact_id, visible)
        text = _text({"task": data.get("text")}, "task", MAX_TASK)
        due = data.get("due_at")
        if isinstance(due, bool) or not isinstance(due, int):
            raise CardError(Text("card.error.due"), field="due_at")
        if not now_ms - EARLIEST_DUE_MS <= due <= now_ms + LATEST_DUE_MS:
            raise CardError(Text("card.error.due"), field="due_at")
        auto_call = data.get("auto_call", False)
        if not isinstance(auto_call, bool):
            raise CardError(Text("card.error.auto_call"), field="auto_call")
        if not text and not auto_call:
            raise CardError(Text("card.error.task_empty"), field="text")
        if "operator_id" in data:
            operator_id = _id(data, "operator_id")
        else:
            operator_id = author.id if author.role == "operator" else None
        if operator_id is not None and operator_id not in \
                await self._db.projects.operator_ids(contact.project_id):
            raise CardError(Text("card.error.operator"), field="operator_id")
        return await self._db.tasks.add(contact_id=contact.id, operator_id=operator_id,
                                        text=text, due_at=due, auto_call=auto_call,
                                        created_by=author.id)

    async def complete_task(self, contact_id: int, task_id: int, *,
                            visible: set[int] | None) -> None:
        contact = await self.contact(contact_id, visible)
        await self._db.tasks.complete_of_contact(contact.id, task_id)

    async def calls(self, contact_id: int, *, visible: set[int] | None, viewer: User,
                    limit: int = 100) -> list[CardCall]:
        """«Показать звонки»: the calls of this contact and of its number the caller may see."""
        contact = await self.contact(contact_id, visible)
        project = await self._db.projects.get(contact.project_id, include_deleted=True)
        rows = await self._db.contacts.calls_of(contact.id, contact.phone,
                                                project_ids=visible, limit=limit)
        return [CardCall(c.id, c.started_at, c.direction, c.kind,
                         self._phone(c.contact_phone, project, viewer), c.duration_ms,
                         c.talk_ms, c.result, c.client_status, c.operator_status,
                         project_name, operator_name, bool(c.recording_path))
                for c, project_name, operator_name in rows]

    async def delete(self, contact_ids: Iterable[int], *,
                     visible: set[int] | None) -> DeleteResult:
        """«Удалить» (§6.1): the caller's contacts among ``contact_ids``; one being dialled
        right now is left (its call would write to a contact that no longer exists)."""
        ids = list(dict.fromkeys(contact_ids))
        if len(ids) > MAX_DELETE:
            raise CardError(Text("card.error.too_many", max=MAX_DELETE), field="ids")
        deleted, dialing = await self._db.contacts.delete_unless_dialling(
            ids, project_ids=visible)
        return DeleteResult(deleted=len(deleted), dialing=dialing,
                            skipped=len(ids) - len(deleted), ids=tuple(deleted))


def _stored_custom(text: str) -> dict[str, str]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
