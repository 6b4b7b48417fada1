"""Contact card fields and the guess of which file column holds which field.

A mapping is one entry per file column: a field name (``phone``, ``email``, ``full_name``,
``birth_date``, ``position``, ``city``, ``address``, ``description``), ``custom:<name>`` for a
column kept as an extra card field, or ``ignore``. Headers are matched in Russian and English
(``Тел.``, ``Телефон``, ``phone``, ``ФИО``, ``E-mail``, ``Дата рожд.`` …).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sipspeak.crm.phones import InvalidPhoneError, normalize_phone
from sipspeak.i18n import Text

PHONE = "phone"
IGNORE = "ignore"
CUSTOM_PREFIX = "custom:"
STANDARD_FIELDS = (
    "phone",
    "email",
    "full_name",
    "birth_date",
    "position",
    "city",
    "address",
    "description",
)
#: The fields as the card names them (the catalogue's card.* keys).
FIELD_LABELS: dict[str, Text] = {
    "phone": Text("card.phone"),
    "email": Text("card.email"),
    "full_name": Text("card.full_name"),
    "birth_date": Text("card.birth_date"),
    "position": Text("card.position"),
    "city": Text("card.city"),
    "address": Text("card.address"),
    "description": Text("card.description"),
    IGNORE: Text("card.ignore"),
}
MAX_CUSTOM_NAME = 64

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "phone": (
        "phone",
        "тел",
        "телефон",
        "номер",
        "номертелефона",
        "телефонклиента",
        "мобильный",
        "моб",
        "мобтел",
        "сотовый",
        "phonenumber",
        "mobile",
        "mobilephone",
        "tel",
        "telephone",
        "msisdn",
        "number",
        "cell",
    ),
    "email": ("email", "mail", "почта", "электроннаяпочта", "емейл", "имейл", "эпочта"),
    "full_name": (
        "fullname",
        "фио",
        "фамилияимяотчество",
        "name",
        "имя",
        "клиент",
        "контакт",
        "contact",
        "client",
        "customer",
        "фамилияимя",
    ),
    "birth_date": (
        "birthdate",
        "датарождения",
        "датарожд",
        "др",
        "birthday",
        "dob",
        "dateofbirth",
        "деньрождения",
    ),
    "position": ("position", "должность", "jobtitle", "title", "позиция"),
    "city": ("city", "город", "населенныйпункт", "town"),
    "address": ("address", "адрес", "адреспроживания", "addr"),
    "description": (
        "description",
        "описание",
        "комментарий",
        "примечание",
        "comment",
        "comments",
        "note",
        "notes",
        "коммент",
    ),
}
_BY_KEY = {key: field for field, keys in _SYNONYMS.items() for key in keys}


def header_key(header: object) -> str:
    """``"Дата рожд."`` → ``"датарожд"``: lower case, letters and digits only, ё → е."""
    text = "" if header is None else str(header)
    return re.sub(r"[^0-9a-zа-я]+", "", text.lower().replace("ё", "е"))


# Word stems for headers not listed above ("Моб. телефон", "Телефон 2", "Эл. почта"),
# tried in this order after the exact names.
_STEMS: tuple[tuple[str, str], ...] = (
    ("рожд", "birth_date"),
    ("birth", "birth_date"),
    ("телеф", "phone"),
    ("phone", "phone"),
    ("почт", "email"),
    ("mail", "email"),
    ("фио", "full_name"),
    ("должн", "position"),
    ("город", "city"),
    ("адрес", "address"),
    ("address", "address"),
    ("коммент", "description"),
    ("описан", "description"),
    ("примечан", "description"),
)


def guess_field(header: object) -> str | None:
    """The standard field a header names, or None."""
    key = header_key(header)
    if not key:
        return None
    field = _BY_KEY.get(key) or _BY_KEY.get(key.rstrip("0123456789"))
    if field is not None:
        return field
    return next((f for stem, f in _STEMS if stem in key), None)


def custom_field(header: object) -> str:
    name = " ".join(str(header).split())[:MAX_CUSTOM_NAME]
    return CUSTOM_PREFIX + name


def guess_mapping(headers: Sequence[object]) -> list[str]:
    """One entry per column; a standard field goes to its first column only."""
    mapping: list[str] = []
    used: set[str] = set()
    for header in headers:
        field = guess_field(header)
        if field is not None and field not in used:
            used.add(field)
            mapping.append(field)
        elif header is None or not str(header).strip():
            mapping.append(IGNORE)
        else:
            mapping.append(custom_field(header))
    return mapping


def is_header_row(values: Sequence[object]) -> bool:
    """A row is a header when it names at least one standard field and holds no phone."""
    if not any(guess_field(v) for v in values):
        return False
    return not any(looks_like_phone(v) for v in values)


def looks_like_phone(value: object) -> bool:
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, str) and sum(c.isdigit() for c in value) < 10:
        return False
    try:
        normalize_phone(value)
    except InvalidPhoneError:
        return False
    return True


def guess_phone_column(rows: Sequence[Sequence[object]]) -> int | None:
    """For a file without headers: the column where most sample values are phone numbers."""
    width = max((len(r) for r in rows), default=0)
    best, best_hits = None, 0
    for column in range(width):
        hits = sum(1 for r in rows if column < len(r) and looks_like_phone(r[column]))
        if hits > best_hits and hits * 2 >= len(rows):
            best, best_hits = column, hits
    return best


def validate_mapping(mapping: Sequence[str]) -> list[Text]:
    """Problems with a mapping chosen by the user; empty when it is usable."""
    problems: list[Text] = []
    seen: set[str] = set()
    for entry in mapping:
        if entry == IGNORE:
            continue
        if entry.startswith(CUSTOM_PREFIX):
            if not entry[len(CUSTOM_PREFIX) :].strip():
                problems.append(Text("crm.error.custom_unnamed"))
        elif entry not in STANDARD_FIELDS:
            problems.append(Text("crm.error.unknown_field", field=entry))
        if entry in seen and entry != IGNORE:
            problems.append(Text("crm.error.field_twice", field=FIELD_LABELS.get(entry, entry)))
        seen.add(entry)
    if PHONE not in seen:
        problems.append(Text("crm.error.no_phone_column"))
    return problems
