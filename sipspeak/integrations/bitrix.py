"""Bitrix24 leads (manual §5.2.7 «Интеграция систем»), sans-IO.

The project's settings name what the manual shows — «Bitrix хост», «Название» (the lead's
title), «Логин», «Пароль», «Источник (source ID)», «Ответственный (assigned by ID)» — which
are the parameters of Bitrix24's lead import over HTTP: a form POSTed to
``https://<host>/crm/configs/import/lead.php`` with LOGIN and PASSWORD, answered by a
JavaScript-style object ``{'error':'201','ID':'…','error_message':'…'}`` where 201 means the
lead was created.  This module turns a client card into the lead's fields, builds the request
and reads the answer; sending, retrying and storing are :mod:`sipspeak.integrations.outbox`'s.
Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from sipspeak.storage.models import Contact, Project

__all__ = ["LeadAnswer", "LeadRequest", "lead_fields", "lead_request", "read_answer",
           "retry_delay_ms"]

IMPORT_PATH = "/crm/configs/import/lead.php"
CREATED = "201"
"""The answer's ``error`` when the lead was created."""
PERMANENT = frozenset({"400", "403"})
"""Refused for what was sent (bad fields, wrong login or password): sending again without a
change cannot succeed, so the lead fails at once and the administrator is told."""
RETRY_DELAYS_MS = (60_000, 5 * 60_000, 15 * 60_000, 60 * 60_000, 3 * 60 * 60_000)
"""After a failed attempt that may pass (the CRM down, a timeout): wait this long; after the
last, the lead has failed."""


@dataclass(frozen=True, slots=True)
class LeadRequest:
    url: str
    form: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class LeadAnswer:
    created: bool
    crm_id: str
    code: str
    message: str

    @property
    def permanent(self) -> bool:
        """A refusal that sending the same again would meet too."""
        return not self.created and self.code in PERMANENT


def configured(project: Project) -> bool:
    """Whether the project can send leads: a host and a login at least."""
    return bool(project.bitrix_host.strip() and project.bitrix_login.strip())


def lead_fields(project: Project, contact: Contact, *,
                notes: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """The lead's fields for a client card (Bitrix24 names; empty ones left out): the title
    from the project («Название», else the project's name and the number), the name split
    the Russian way (Фамилия Имя Отчество), phone, e-mail, position, address, city, region,
    birth date; the card's description and ``notes`` (label, value: its extra fields, status,
    operator, latest comment) go to COMMENTS, which Bitrix shows with the lead."""
    title = project.bitrix_title.strip() or f"{project.name}: {contact.phone}"
    out: dict[str, str] = {"TITLE": title}
    names = (contact.full_name or "").split()
    if len(names) == 1:
        out["NAME"] = names[0]
    elif names:
        out["LAST_NAME"], out["NAME"] = names[0], names[1]
        if len(names) > 2:
            out["SECOND_NAME"] = " ".join(names[2:])
    for key, value in (("PHONE_MOBILE", contact.phone), ("EMAIL_WORK", contact.email),
                       ("POST", contact.position), ("ADDRESS", contact.address),
                       ("ADDRESS_CITY", contact.city), ("ADDRESS_PROVINCE", contact.region),
                       ("BIRTHDATE", _bitrix_date(contact.birth_date)),
                       ("SOURCE_ID", project.bitrix_source_id.strip()),
                       ("ASSIGNED_BY_ID", project.bitrix_assigned_by_id.strip())):
        if value:
            out[key] = value
    lines = [contact.description or ""]
    lines += [f"{label}: {value}" if label else value for label, value in notes if value]
    text = "\n".join(line for line in lines if line)
    if text:
        out["COMMENTS"] = text
    return out


def _bitrix_date(value: str | None) -> str:
    """The stored birth date (ISO, YYYY-MM-DD) as Bitrix's DD.MM.YYYY; anything else: none."""
    try:
        return date.fromisoformat(value or "").strftime("%d.%m.%Y")
    except ValueError:
        return ""


def lead_request(project: Project, fields: Mapping[str, str]) -> LeadRequest:
    """The POST that creates the lead: the host (``https://`` unless it names its scheme),
    the login and password of the project, then the fields."""
    host = project.bitrix_host.strip().rstrip("/")
    base = host if host.startswith(("http://", "https://")) else f"https://{host}"
    form = (("LOGIN", project.bitrix_login.strip()), ("PASSWORD", project.bitrix_password),
            *((k, v) for k, v in fields.items() if k not in ("LOGIN", "PASSWORD")))
    return LeadRequest(url=base + IMPORT_PATH, form=form)


_ITEM = re.compile(r"""['"](error|ID|error_message)['"]\s*:\s*['"]?([^'",}]*)""")


def read_answer(status: int, body: str) -> LeadAnswer:
    """What the CRM said: created (with the lead's id) or why not.  An HTTP error or a body
    that is not the import's answer is a failure that may pass."""
    if status != 200:
        return LeadAnswer(created=False, crm_id="", code=f"http {status}",
                          message=body.strip()[:200])
    items = dict(_ITEM.findall(body))
    code = items.get("error", "")
    if not code:
        return LeadAnswer(created=False, crm_id="", code="answer",
                          message=body.strip()[:200] or "empty answer")
    return LeadAnswer(created=code == CREATED, crm_id=items.get("ID", "").strip(), code=code,
                      message=items.get("error_message", "").strip())


def retry_delay_ms(attempts_done: int) -> int | None:
    """How long to wait after the ``attempts_done``-th failed attempt; None: no more."""
    if attempts_done < 1 or attempts_done > len(RETRY_DELAYS_MS):
        return None
    return RETRY_DELAYS_MS[attempts_done - 1]
