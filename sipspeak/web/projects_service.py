"""Projects (§5): scope, create, the settings of every tab, launch, copy, delete.

Pages and /api/v1 call the same functions.  Settings arrive as one JSON-like mapping (the
API body, or a tab's form turned into one by :mod:`projects_forms`); every value is checked
here, and an absurd one raises :class:`~.errors.Invalid` naming the field with a catalogue
message, before anything is written.  All writes of one save happen in one transaction.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import zoneinfo
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..i18n import Message, Text
from ..media.amd.params import AmdParams, AmdParamsError
from ..media.audio import load_wav
from ..storage import NotFound
from ..storage.models import (
    DIAL_MODES,
    STRATEGIES,
    Project,
    TaskRule,
    User,
    WeekdayInterval,
)
from .auth import project_ids_for
from .errors import Forbidden, Invalid
from .sanitize import MAX_SCRIPT_CHARS, sanitize_html

if TYPE_CHECKING:
    from ..app import Services

MAX_NAME = 200
MAX_TIMEOUT_S = 86_400
MAX_CARD_FIELDS = 100
MAX_CARD_FIELD = 64
MAX_INTERVALS = 70
MAX_RULES = 500
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
_CALLER_ID = re.compile(r"^\+?[0-9]{1,20}$")
_RETRY = re.compile(r"^\d+(;\d+)*$")

#: The five queue strategies of §5.2.4 with the manual's labels (catalogue keys).
STRATEGY_KEYS: dict[str, str] = {s: f"projects.strategy.{s}" for s in STRATEGIES}
DIAL_MODE_KEYS: dict[str, str] = {m: f"projects.dial_mode.{m}" for m in DIAL_MODES}
RETRY_KINDS: tuple[str, ...] = ("busy", "no_answer", "machine", "lost")
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: A dial may be withdrawn unanswered only after ringing this long: the minimum ring time of
#: UK (Ofcom) and US (47 CFR 64.1200(a)(6)) rules.
MIN_RING_BEFORE_WITHDRAWAL_S = 15

#: Scalar settings: name → (kind, low, high).  Kinds: int, flag, text, secret.
INT_FIELDS: dict[str, tuple[int, int]] = {
    "queue_timeout_s": (1, MAX_TIMEOUT_S),
    "operator_timeout_s": (1, MAX_TIMEOUT_S),
    "dial_timeout_s": (1, 600),
    "global_timeout_s": (1, MAX_TIMEOUT_S),
    "max_concurrent_calls": (1, 10_000),
    "predictive_percent": (1, 100),
    "withdraw_after_s": (0, 600),
    "max_attempts": (1, 100),
    **{f"retry_{k}_attempts": (0, 100) for k in RETRY_KINDS},
}
FLAG_FIELDS: tuple[str, ...] = (
    "show_numbers", "amd_enabled", "robot", "operator_auto_answer", "music_on_hold",
    "operator_tasks_enabled", "global_timeout_enabled", "launched", "call_from_end",
)
TEXT_FIELDS: dict[str, int] = {
    "bitrix_host": 300, "bitrix_title": 300, "bitrix_login": 200, "bitrix_source_id": 100,
    "bitrix_assigned_by_id": 100, "sms_template": 1000, "email_template": 20_000,
}
#: Fields of each settings tab (§5.2.1–5.2.7) and of the launch switches (§5.3, §5.4).
TABS: dict[str, tuple[str, ...]] = {
    "project": ("show_numbers", "amd_enabled", "amd_params", "robot", "name", "starts_on",
                "ends_on", "timezone", "client_time_from", "client_time_to", "caller_id",
                "trunk_id"),
    "card": ("card_fields",),
    "schedule": ("intervals",),
    "queue": ("group_ids", "queue_timeout_s", "operator_timeout_s", "strategy",
              "operator_auto_answer", "music_on_hold", "supervisor_id", "status_ids",
              "operator_tasks_enabled", "task_rules", "abandon_message_file_id"),
    "attempts": ("dial_timeout_s", "global_timeout_enabled", "global_timeout_s",
                 "max_concurrent_calls", "dial_mode", "predictive_percent", "withdraw_after_s",
                 "max_attempts",
                 *(f"retry_{k}_{p}" for k in RETRY_KINDS for p in ("intervals", "attempts"))),
    "script": ("script_html",),
    "integration": ("crm_status_id", "bitrix_host", "bitrix_title", "bitrix_login",
                    "bitrix_password", "bitrix_source_id", "bitrix_assigned_by_id",
                    "sms_template", "email_template"),
    "launch": ("launched", "call_from_end"),
}
ALL_SETTINGS: frozenset[str] = frozenset(f for tab in TABS.values() for f in tab)


@lru_cache(maxsize=1)
def time_zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


# -- scope ------------------------------------------------------------------------------


async def project_for(services: Services, user: User, project_id: int) -> Project:
    """The project, if it is in the caller's scope (:func:`~.auth.project_ids_for`: all for
    an admin, his own for a supervisor): 404 when it does not exist, 403 out of scope."""
    project = await services.db.projects.get(project_id)
    visible = await project_ids_for(services, user)
    if visible is not None and project.id not in visible:
        raise Forbidden(Text("projects.error.out_of_scope"))
    return project


async def list_projects(services: Services, user: User, *, name: str = "",
                        group_id: int | None = None, created_from: int | None = None,
                        created_to: int | None = None) -> list[Project]:
    visible = await project_ids_for(services, user)
    projects = await services.db.projects.list(name=name, group_id=group_id,
                                               created_from=created_from, created_to=created_to)
    return [p for p in projects if visible is None or p.id in visible]


def _day_start_ms(text: str, *, next_day: bool = False) -> int | None:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    if next_day:
        day += timedelta(days=1)
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def list_filters(query: Any) -> dict[str, Any]:
    """``name``, ``group_id``, ``from``, ``to`` (ISO dates, inclusive) of the list query."""
    group = str(query.get("group_id", ""))
    return {
        "name": str(query.get("name", ""))[:200].strip(),
        "group_id": int(group) if group.isdigit() else None,
        "created_from": _day_start_ms(str(query.get("from", ""))),
        "created_to": _day_start_ms(str(query.get("to", "")), next_day=True),
    }


# -- values -----------------------------------------------------------------------------


def _int(data: Mapping[str, Any], name: str) -> int:
    value = data[name]
    if isinstance(value, str):
        value = value.strip()
    if isinstance(value, bool) or value is None or value == "":
        raise Invalid(Text("projects.error.number_required", field=_label(name)), field=name)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise Invalid(Text("projects.error.integer", field=_label(name)), field=name) from None
    low, high = INT_FIELDS[name]
    if number < 0:
        raise Invalid(Text("projects.error.negative", field=_label(name)), field=name)
    if not low <= number <= high:
        raise Invalid(Text("projects.error.range", field=_label(name), low=low, high=high),
                      field=name)
    if name == "withdraw_after_s" and 0 < number < MIN_RING_BEFORE_WITHDRAWAL_S:
        raise Invalid(Text("projects.error.min_ring", field=_label(name),
                           min=MIN_RING_BEFORE_WITHDRAWAL_S), field=name)
    return number


def _flag(data: Mapping[str, Any], name: str) -> bool:
    value = data[name]
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "on", "yes", "да"):
        return True
    if text in ("0", "false", "off", "no", "нет", ""):
        return False
    raise Invalid(Text("projects.error.yes_no", field=_label(name)), field=name)


def _text(data: Mapping[str, Any], name: str, max_len: int) -> str:
    value = data[name]
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Invalid(Text("projects.error.string", field=_label(name)), field=name)
    text = str(value).strip()
    if len(text) > max_len:
        raise Invalid(Text("projects.error.too_long", field=_label(name), max=max_len),
                      field=name)
    if "\x00" in text:
        raise Invalid(Text("projects.error.bad_char", field=_label(name)), field=name)
    return text


def _optional_id(data: Mapping[str, Any], name: str) -> int | None:
    value = data[name]
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Invalid(Text("projects.error.id", field=_label(name)), field=name)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise Invalid(Text("projects.error.id", field=_label(name)), field=name) from None
    if number < 1:
        raise Invalid(Text("projects.error.id", field=_label(name)), field=name)
    return number


def _ids(data: Mapping[str, Any], name: str) -> list[int]:
    value = data[name]
    items = value if isinstance(value, list) else [value]
    out: list[int] = []
    for item in items:
        if item is None or item == "":
            continue
        number = _optional_id({name: item}, name)
        if number is not None:
            out.append(number)
    return list(dict.fromkeys(out))


def _hhmm(data: Mapping[str, Any], name: str) -> str:
    text = _text(data, name, 5)
    if not _HHMM.match(text):
        raise Invalid(Text("projects.error.hhmm", field=_label(name)), field=name)
    return text


def _date(data: Mapping[str, Any], name: str) -> str | None:
    text = _text(data, name, 10)
    if not text:
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise Invalid(Text("projects.error.date", field=_label(name)), field=name) from None


def retry_intervals(text: str, field: str) -> str:
    """``"15;60;1440;60"``: minutes as positive integers separated by ``;``."""
    compact = "".join(text.split())
    if not _RETRY.match(compact) or any(int(p) <= 0 for p in compact.split(";")):
        raise Invalid(Text("projects.error.retry_format", field=_label(field)), field=field)
    if len(compact) > 200 or any(int(p) > 525_600 for p in compact.split(";")):
        raise Invalid(Text("projects.error.retry_year", field=_label(field)), field=field)
    return compact


#: Field names as the messages say them (the keys of the catalogue's projects.label.*).
_LABELS: dict[str, Text] = {
    "name": Text("projects.label.name"),
    "queue_timeout_s": Text("projects.label.queue_timeout_s"),
    "operator_timeout_s": Text("projects.label.operator_timeout_s"),
    "dial_timeout_s": Text("projects.label.dial_timeout_s"),
    "global_timeout_s": Text("projects.label.global_timeout_s"),
    "max_concurrent_calls": Text("projects.label.max_concurrent_calls"),
    "predictive_percent": Text("projects.label.predictive_percent"),
    "withdraw_after_s": Text("projects.label.withdraw_after_s"),
    "max_attempts": Text("projects.label.max_attempts"),
    "starts_on": Text("projects.label.starts_on"),
    "ends_on": Text("projects.label.ends_on"),
    "timezone": Text("projects.label.timezone"),
    "client_time_from": Text("projects.label.client_time_from"),
    "client_time_to": Text("projects.label.client_time_to"),
    "caller_id": Text("projects.label.caller_id"),
    "trunk_id": Text("projects.label.trunk_id"),
    "supervisor_id": Text("projects.label.supervisor_id"),
    "abandon_message_file_id": Text("projects.label.abandon_message_file_id"),
    "crm_status_id": Text("projects.label.crm_status_id"),
    "strategy": Text("projects.label.strategy"),
    "dial_mode": Text("projects.label.dial_mode"),
    "amd_params": Text("projects.label.amd_params"),
    "retry_busy_intervals": Text("projects.label.retry_busy_intervals"),
    "retry_no_answer_intervals": Text("projects.label.retry_no_answer_intervals"),
    "retry_machine_intervals": Text("projects.label.retry_machine_intervals"),
    "retry_lost_intervals": Text("projects.label.retry_lost_intervals"),
    "retry_busy_attempts": Text("projects.label.retry_busy_attempts"),
    "retry_no_answer_attempts": Text("projects.label.retry_no_answer_attempts"),
    "retry_machine_attempts": Text("projects.label.retry_machine_attempts"),
    "retry_lost_attempts": Text("projects.label.retry_lost_attempts"),
    "card_fields": Text("projects.label.card_fields"),
    "intervals": Text("projects.label.intervals"),
    "task_rules": Text("projects.label.task_rules"),
    "group_ids": Text("projects.label.group_ids"),
    "status_ids": Text("projects.label.status_ids"),
    "script_html": Text("projects.label.script_html"),
}


def _label(name: str) -> Message:
    return _LABELS.get(name, name)


# -- settings ---------------------------------------------------------------------------


async def _abandon_message(services: Services, file_id: int | None) -> int | None:
    """The recording for customers no operator took: a WAV of the file manager that plays."""
    if file_id is None:
        return None
    field = "abandon_message_file_id"
    try:
        stored = await services.db.files.file(file_id)
    except NotFound:
        raise Invalid(Text("projects.error.abandon_message", id=file_id), field=field) from None
    try:
        await asyncio.to_thread(load_wav, services.config.files_dir / stored.stored_name)
    except (ValueError, OSError):  # WavFormatError, or PCM cut short
        raise Invalid(Text("projects.error.abandon_wav", name=stored.name), field=field) from None
    return file_id


async def parse_settings(services: Services, user: User, project: Project | None,
                         data: Mapping[str, Any]) -> dict[str, Any]:
    """Checked, typed settings out of ``data`` (only the keys it holds).

    Scalar columns come back under their names; ``group_ids``, ``status_ids``,
    ``card_fields``, ``intervals`` and ``task_rules`` as lists for their own tables.
    """
    unknown = sorted(set(data) - ALL_SETTINGS)
    if unknown:
        raise Invalid(Text("projects.error.unknown_fields", names=", ".join(unknown)),
                      field=unknown[0])
    out: dict[str, Any] = {}
    for name in data:
        if name in INT_FIELDS:
            out[name] = _int(data, name)
        elif name in FLAG_FIELDS:
            out[name] = _flag(data, name)
        elif name in TEXT_FIELDS:
            out[name] = _text(data, name, TEXT_FIELDS[name])
    if "name" in data:
        name = _text(data, "name", 1000)
        if not name:
            raise Invalid(Text("projects.error.name_empty"), field="name")
        if len(name) > MAX_NAME:
            raise Invalid(Text("projects.error.name_long", max=MAX_NAME), field="name")
        out["name"] = name
    if "bitrix_password" in data:
        secret = data["bitrix_password"]
        if not isinstance(secret, str) or len(secret) > 200 or "\x00" in secret:
            raise Invalid(Text("projects.error.bitrix_password"), field="bitrix_password")
        if secret:  # an empty password field keeps the stored one
            out["bitrix_password"] = secret
    if "strategy" in data:
        if data["strategy"] not in STRATEGIES:
            raise Invalid(Text("projects.error.strategy"), field="strategy")
        out["strategy"] = data["strategy"]
    if "dial_mode" in data:
        if data["dial_mode"] not in DIAL_MODES:
            raise Invalid(Text("projects.error.dial_mode"), field="dial_mode")
        out["dial_mode"] = data["dial_mode"]
    for kind in RETRY_KINDS:
        key = f"retry_{kind}_intervals"
        if key in data:
            out[key] = retry_intervals(_text(data, key, 1000), key)
    if "timezone" in data:
        zone = _text(data, "timezone", 64)
        if zone not in time_zones():
            raise Invalid(Text("projects.error.timezone", zone=zone), field="timezone")
        out["timezone"] = zone
    for key in ("client_time_from", "client_time_to"):
        if key in data:
            out[key] = _hhmm(data, key)
    for key in ("starts_on", "ends_on"):
        if key in data:
            out[key] = _date(data, key)
    if "caller_id" in data:
        caller = "".join(_text(data, "caller_id", 40).split())
        if caller and not _CALLER_ID.match(caller):
            raise Invalid(Text("projects.error.caller_id"), field="caller_id")
        out["caller_id"] = caller
    if "amd_params" in data:
        out["amd_params"] = _amd_params(data["amd_params"])
    if "script_html" in data:
        raw = data["script_html"]
        if not isinstance(raw, str) or len(raw) > MAX_SCRIPT_CHARS:
            raise Invalid(Text("projects.error.script", max=MAX_SCRIPT_CHARS),
                          field="script_html")
        out["script_html"] = sanitize_html(raw)
    await _references(services, user, project, data, out)
    if "card_fields" in data:
        out["card_fields"] = _card_fields(data["card_fields"])
    if "intervals" in data:
        out["intervals"] = _intervals(data["intervals"])
    _cross_checks(project, out)
    return out


def _amd_params(value: Any) -> str:
    if isinstance(value, str):
        text = value.strip() or "{}"
        try:
            value = json.loads(text)
        except ValueError:
            raise Invalid(Text("projects.error.amd_json"), field="amd_params") from None
    if not isinstance(value, dict):
        raise Invalid(Text("projects.error.amd_json"), field="amd_params")
    try:
        AmdParams.from_mapping(value)
    except AmdParamsError as exc:
        raise Invalid(Text("projects.error.amd_params", reason=str(exc)),
                      field="amd_params") from None
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


async def _references(services: Services, user: User, project: Project | None,
                      data: Mapping[str, Any], out: dict[str, Any]) -> None:
    db = services.db
    if "trunk_id" in data:
        trunk_id = _optional_id(data, "trunk_id")
        if trunk_id is not None:
            try:
                await db.trunks.get(trunk_id)
            except NotFound:
                raise Invalid(Text("projects.error.trunk", id=trunk_id),
                              field="trunk_id") from None
        out["trunk_id"] = trunk_id
    if "crm_status_id" in data:
        status_id = _optional_id(data, "crm_status_id")
        if status_id is not None and status_id not in {s.id for s in await db.statuses.list()}:
            raise Invalid(Text("projects.error.crm_status", id=status_id),
                          field="crm_status_id")
        out["crm_status_id"] = status_id
    if "abandon_message_file_id" in data:
        out["abandon_message_file_id"] = await _abandon_message(
            services, _optional_id(data, "abandon_message_file_id"))
    if "supervisor_id" in data:
        supervisor_id = _optional_id(data, "supervisor_id")
        if user.role != "admin" and supervisor_id != user.id:
            raise Forbidden(Text("projects.error.supervisor_self"))
        if supervisor_id is not None:
            try:
                supervisor = await db.users.get(supervisor_id)
            except NotFound:
                supervisor = None
            if supervisor is None or supervisor.role != "supervisor" or supervisor.deleted:
                raise Invalid(Text("projects.error.supervisor_role"), field="supervisor_id")
        out["supervisor_id"] = supervisor_id
    if "group_ids" in data:
        group_ids = _ids(data, "group_ids")
        known = {g.id for g in await db.groups.list()}
        missing = [g for g in group_ids if g not in known]
        if missing:
            raise Invalid(Text("projects.error.group", id=missing[0]), field="group_ids")
        if user.role != "admin":
            allowed = set(project.group_ids if project else ())
            for mine in await db.projects.list(supervisor_id=user.id):
                allowed |= set(mine.group_ids)
            if set(group_ids) - allowed:
                raise Forbidden(Text("projects.error.group_scope"))
        out["group_ids"] = group_ids
    statuses = None
    if "status_ids" in data:
        status_ids = _ids(data, "status_ids")
        statuses = {s.id for s in await db.statuses.list()}
        missing = [s for s in status_ids if s not in statuses]
        if missing:
            raise Invalid(Text("projects.error.status", id=missing[0]), field="status_ids")
        out["status_ids"] = status_ids
    if "task_rules" in data:
        rules = data["task_rules"]
        if not isinstance(rules, list) or len(rules) > MAX_RULES:
            raise Invalid(Text("projects.error.rules_list"), field="task_rules")
        statuses = statuses or {s.id for s in await db.statuses.list()}
        parsed: list[TaskRule] = []
        for rule in rules:
            if not isinstance(rule, Mapping):
                raise Invalid(Text("projects.error.rule_shape"), field="task_rules")
            operator_id = _optional_id({"task_rules": rule.get("operator_id")}, "task_rules")
            status_id = _optional_id({"task_rules": rule.get("status_id")}, "task_rules")
            if operator_id is None or status_id is None:
                raise Invalid(Text("projects.error.rule_missing"), field="task_rules")
            try:
                operator = await db.users.get(operator_id)
            except NotFound:
                operator = None
            if operator is None or operator.role != "operator" or operator.deleted:
                raise Invalid(Text("projects.error.rule_operator", id=operator_id),
                              field="task_rules")
            if status_id not in statuses:
                raise Invalid(Text("projects.error.rule_status", id=status_id),
                              field="task_rules")
            parsed.append(TaskRule(operator_id=operator_id, status_id=status_id))
        out["task_rules"] = list(dict.fromkeys(parsed))


def _card_fields(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    names: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise Invalid(Text("projects.error.card_names"), field="card_fields")
        name = " ".join(item.split())
        if not name:
            continue
        if len(name) > MAX_CARD_FIELD:
            raise Invalid(Text("projects.error.card_long", name=name[:20], max=MAX_CARD_FIELD),
                          field="card_fields")
        if name.casefold() in (n.casefold() for n in names):
            raise Invalid(Text("projects.error.card_twice", name=name), field="card_fields")
        names.append(name)
    if len(names) > MAX_CARD_FIELDS:
        raise Invalid(Text("projects.error.card_many", max=MAX_CARD_FIELDS),
                      field="card_fields")
    return names


def _intervals(value: Any) -> list[WeekdayInterval]:
    if not isinstance(value, list) or len(value) > MAX_INTERVALS:
        raise Invalid(Text("projects.error.intervals_list"), field="intervals")
    out: list[WeekdayInterval] = []
    for item in value:
        if not isinstance(item, Mapping):
            raise Invalid(Text("projects.error.interval_shape"), field="intervals")
        weekday = item.get("weekday")
        if isinstance(weekday, bool) or not isinstance(weekday, (int, str)) or \
                not str(weekday).isdigit() or not 0 <= int(weekday) <= 6:
            raise Invalid(Text("projects.error.weekday"), field="intervals")
        start, end = str(item.get("start", "")).strip(), str(item.get("end", "")).strip()
        if not (_HHMM.match(start) and _HHMM.match(end)):
            raise Invalid(Text("projects.error.interval_hhmm"), field="intervals")
        if end <= start:
            raise Invalid(Text("projects.error.interval_order", start=start, end=end),
                          field="intervals")
        out.append(WeekdayInterval(weekday=int(weekday), start_time=start, end_time=end))
    out.sort(key=lambda i: (i.weekday, i.start_time))
    for a, b in itertools.pairwise(out):
        if a.weekday == b.weekday and b.start_time < a.end_time:
            raise Invalid(Text("projects.error.interval_overlap", a_start=a.start_time,
                               a_end=a.end_time, b_start=b.start_time, b_end=b.end_time),
                          field="intervals")
    return out


def _cross_checks(project: Project | None, out: dict[str, Any]) -> None:
    def value(name: str) -> Any:
        return out[name] if name in out else getattr(project, name, None)

    starts, ends = value("starts_on"), value("ends_on")
    if starts and ends and ends < starts and ("starts_on" in out or "ends_on" in out):
        raise Invalid(Text("projects.error.dates_order"), field="ends_on")
    time_from, time_to = value("client_time_from"), value("client_time_to")
    if time_from and time_to and time_to <= time_from and \
            ("client_time_from" in out or "client_time_to" in out):
        raise Invalid(Text("projects.error.client_window"), field="client_time_to")


SPLIT_KEYS = ("group_ids", "status_ids", "card_fields", "intervals", "task_rules")


async def save_settings(services: Services, project_id: int, settings: Mapping[str, Any]) -> None:
    """Write checked settings (of :func:`parse_settings`) in one transaction."""
    db = services.db
    columns = {k: v for k, v in settings.items() if k not in SPLIT_KEYS}
    async with db.transaction():
        if columns:
            await db.projects.update(project_id, **columns)
        if "group_ids" in settings:
            await db.projects.set_groups(project_id, settings["group_ids"])
        if "status_ids" in settings:
            await db.projects.set_statuses(project_id, settings["status_ids"])
        if "card_fields" in settings:
            await db.projects.set_card_fields(project_id, settings["card_fields"])
        if "intervals" in settings:
            await db.projects.set_intervals(project_id, settings["intervals"])
        if "task_rules" in settings:
            await db.projects.set_task_rules(project_id, settings["task_rules"])


# -- actions ----------------------------------------------------------------------------


CREATE_FIELDS = ("name", "queue_timeout_s", "operator_timeout_s", "strategy")


async def create_project(services: Services, user: User, data: Mapping[str, Any]) -> int:
    """§5.1: name, queue timeout, operator timeout, strategy; a supervisor supervises it."""
    if "name" not in data:
        raise Invalid(Text("projects.error.name_empty"), field="name")
    extra = sorted(set(data) - set(CREATE_FIELDS) - ALL_SETTINGS)
    if extra:
        raise Invalid(Text("projects.error.unknown_fields", names=", ".join(extra)),
                      field=extra[0])
    settings = await parse_settings(services, user, None, data)
    if user.role == "supervisor":
        settings["supervisor_id"] = user.id
    columns = {k: v for k, v in settings.items() if k not in SPLIT_KEYS}
    db = services.db
    async with db.transaction():
        project_id = await db.projects.create(**columns)
        await save_settings(services, project_id,
                            {k: v for k, v in settings.items() if k in SPLIT_KEYS})
    return project_id


async def update_project(services: Services, user: User, project_id: int,
                         data: Mapping[str, Any]) -> Project:
    project = await project_for(services, user, project_id)
    settings = await parse_settings(services, user, project, data)
    await save_settings(services, project_id, settings)
    return _changed(services, await services.db.projects.get(project_id))


async def set_launched(services: Services, user: User, project_id: int, *,
                       launched: bool | None = None, call_from_end: bool | None = None) -> Project:
    await project_for(services, user, project_id)
    changes: dict[str, Any] = {}
    if launched is not None:
        changes["launched"] = launched
    if call_from_end is not None:
        changes["call_from_end"] = call_from_end
    await services.db.projects.update(project_id, **changes)
    return _changed(services, await services.db.projects.get(project_id))


async def copy_project(services: Services, user: User, project_id: int) -> int:
    await project_for(services, user, project_id)
    return await services.db.projects.copy(project_id)


async def delete_project(services: Services, user: User, project_id: int) -> None:
    project = await project_for(services, user, project_id)
    await services.db.projects.delete(project_id)
    services.bus.publish("projects.changed", project_id=project.id, launched=False)


def _changed(services: Services, project: Project) -> Project:
    """Tell the campaign runtime: a stopped project stops dialling at once, settings reload."""
    services.bus.publish("projects.changed", project_id=project.id, launched=project.launched)
    return project


# -- output -----------------------------------------------------------------------------


def project_json(project: Project) -> dict[str, Any]:
    """Every setting; the Bitrix password is never shown, only whether one is set."""
    out: dict[str, Any] = {}
    for name in Project.__dataclass_fields__:
        value = getattr(project, name)
        if name == "bitrix_password":
            out["bitrix_password_set"] = bool(value)
            continue
        if name == "amd_params":
            try:
                value = json.loads(value or "{}")
            except ValueError:
                value = {}
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


async def project_details(services: Services, project: Project) -> dict[str, Any]:
    db = services.db
    out = project_json(project)
    out["card_fields"] = [f.name for f in await db.projects.card_fields(project.id)]
    out["intervals"] = [{"weekday": i.weekday, "start": i.start_time, "end": i.end_time}
                        for i in await db.projects.intervals(project.id)]
    out["task_rules"] = [{"operator_id": r.operator_id, "status_id": r.status_id}
                         for r in await db.projects.task_rules(project.id)]
    return out


__all__ = [
    "ALL_SETTINGS",
    "CREATE_FIELDS",
    "DIAL_MODE_KEYS",
    "FLAG_FIELDS",
    "RETRY_KINDS",
    "STRATEGY_KEYS",
    "TABS",
    "WEEKDAYS",
    "copy_project",
    "create_project",
    "delete_project",
    "list_filters",
    "list_projects",
    "parse_settings",
    "project_details",
    "project_for",
    "project_json",
    "retry_intervals",
    "save_settings",
    "set_launched",
    "time_zones",
    "update_project",
]
