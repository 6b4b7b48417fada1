"""One file row → a contact record with enrichment, or the reason it is rejected.

Checks, in the order the user reads them back: the phone is present and valid; the e-mail
has the shape ``name@domain.tld``; the birth date is a date (``DD.MM.YYYY``, ``DD-MM-YYYY``,
``DD/MM/YYYY``, ISO ``YYYY-MM-DD``, an Excel date cell or an Excel serial day number); no value
is longer than :data:`MAX_VALUE_CHARS`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sipspeak.crm.contact_fields import CUSTOM_PREFIX, FIELD_LABELS, IGNORE, PHONE
from sipspeak.crm.enrichment import Enricher
from sipspeak.crm.phones import InvalidPhoneError, normalize_phone
from sipspeak.i18n import Message, Text
from sipspeak.storage.models import NewContact

MAX_VALUE_CHARS = 4000
MIN_BIRTH_YEAR = 1900
_EXCEL_EPOCH = date(1899, 12, 30)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")
_DMY = re.compile(r"^(\d{1,2})[.\-/](\d{1,2})[.\-/](\d{4})$")
_ISO = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
)
_DMY_TIME = re.compile(
    r"^(\d{1,2})[.\-/](\d{1,2})[.\-/](\d{4})\s+\d{1,2}:\d{2}(?::\d{2})?$"
)

_PHONE, _BIRTH, _FIELD, _CUSTOM = range(4)

NO_PHONE = Text("crm.error.no_phone")


ContactRecord = NewContact
"""A validated, enriched contact, as storage accepts it."""


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row that was not imported: its number in the file, the reason, the phone as typed."""

    row: int
    reason: Message
    phone: str = ""


class RowRejectedError(ValueError):
    def __init__(self, reason: Text) -> None:
        super().__init__(reason)
        self.reason = reason


def cell_text(value: object) -> str:
    """A cell as text: ``None`` → ``""``, ``79228711345.0`` → ``"79228711345"``."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return (
            value.date().isoformat()
            if value.time() == datetime.min.time()
            else value.isoformat(" ")
        )
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def parse_birth_date(value: object, *, today: date) -> str | None:
    """ISO ``YYYY-MM-DD``, None for an empty cell, :class:`RowRejectedError` otherwise."""
    if value is None or value == "":
        return None
    parsed: date | None = None
    if isinstance(value, datetime):
        parsed = value.date()
    elif isinstance(value, date):
        parsed = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        # An Excel serial day number left in a cell without a date format.
        if 1 <= value < 2_958_466:
            parsed = _EXCEL_EPOCH + timedelta(days=int(value))
    else:
        text = str(value).strip()
        if not text:
            return None
        try:
            if m := (_DMY.match(text) or _DMY_TIME.match(text)):
                parsed = date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
            elif m := _ISO.match(text):
                parsed = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            parsed = None
    if parsed is None or not (MIN_BIRTH_YEAR <= parsed.year and parsed <= today):
        raise RowRejectedError(Text("crm.error.birth_date", value=cell_text(value)))
    return parsed.isoformat()


class RowValidator:
    """Applies a column mapping to rows; enrichment goes through the given :class:`Enricher`."""

    def __init__(
        self, mapping: Sequence[str], *, enricher: Enricher, today: date
    ) -> None:
        self._enricher = enricher
        self._today = today
        self._columns: list[tuple[int, str]] = [
            (i, f) for i, f in enumerate(mapping) if f != IGNORE
        ]
        # (column, field or custom name, kind): decided once, not per row.
        self._plan: list[tuple[int, str, int]] = [
            (i, f, _PHONE)
            if f == PHONE
            else (i, f, _BIRTH)
            if f == "birth_date"
            else (i, f.removeprefix(CUSTOM_PREFIX), _CUSTOM)
            if f.startswith(CUSTOM_PREFIX)
            else (i, f, _FIELD)
            for i, f in self._columns
        ]
        phone_columns = [i for i, f in self._columns if f == PHONE]
        self.phone_column = phone_columns[0] if phone_columns else None

    def raw_phone(self, values: Sequence[object]) -> str:
        i = self.phone_column
        return cell_text(values[i]) if i is not None and i < len(values) else ""

    def validate(self, values: Sequence[object]) -> ContactRecord:
        """The contact of a row, or :class:`RowRejectedError` with the reason."""
        fields: dict[str, str | None] = {}
        custom: dict[str, str] = {}
        birth: object = None
        phone_value: object = None
        width = len(values)
        for i, name, kind in self._plan:
            value = values[i] if i < width else None
            if kind == _PHONE:
                phone_value = value
                continue
            if kind == _BIRTH:
                birth = value
                continue
            text = value.strip() if type(value) is str else cell_text(value)
            if len(text) > MAX_VALUE_CHARS:
                label = FIELD_LABELS.get(name, name)
                raise RowRejectedError(Text("crm.error.value_long", field=label))
            if kind == _CUSTOM:
                if text:
                    custom[name] = text
            else:
                fields[name] = text or None
        if phone_value is None or (
            isinstance(phone_value, str) and not phone_value.strip()
        ):
            raise RowRejectedError(NO_PHONE)
        try:
            phone = normalize_phone(phone_value)
        except InvalidPhoneError as exc:
            raise RowRejectedError(exc.reason) from exc
        email = fields.get("email")
        if email is not None and not _EMAIL.match(email):
            raise RowRejectedError(Text("crm.error.bad_email", value=email))
        info = self._enricher.info(phone)
        return ContactRecord(
            phone=phone,
            full_name=fields.get("full_name"),
            email=email,
            birth_date=parse_birth_date(birth, today=self._today),
            position=fields.get("position"),
            city=fields.get("city"),
            address=fields.get("address"),
            description=fields.get("description"),
            custom=custom,
            region=info.region,
            timezone=info.timezone,
            carrier=info.carrier,
        )
