"""A synthetic contact base with the manual's columns and known defects (fixed seed).

Columns (manual §5.5): phone, email, full_name, birth_date, position, city, address,
description. ``invalid_share`` of the rows carry a number that cannot be dialled (too short,
letters, a non-existent code, empty); ``duplicate_share`` repeat an earlier valid number typed
differently. Everything else is a distinct valid number: Russian mobiles in the forms people
type, a few Moscow landlines and foreign numbers. The returned counts are what an import must
report.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import openpyxl
import phonenumbers

HEADER = (
    "phone",
    "email",
    "full_name",
    "birth_date",
    "position",
    "city",
    "address",
    "description",
)
_FIRST = (
    "Иван",
    "Пётр",
    "Анна",
    "Мария",
    "Сергей",
    "Ольга",
    "Дмитрий",
    "Елена",
    "Алексей",
    "Наталья",
)
_LAST = (
    "Иванов",
    "Петров",
    "Сидоров",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Лебедев",
    "Козлов",
)
_CITIES = (
    "Москва",
    "Оренбург",
    "Астрахань",
    "Красноярск",
    "Казань",
    "Пермь",
    "Омск",
    "Тула",
)
_POSITIONS = ("менеджер", "директор", "бухгалтер", "инженер", "", "")
_FOREIGN = ("+44 20 7946 {:04d}", "+1 212 736 {:04d}", "+49 30 1234{:04d}")


@dataclass(frozen=True, slots=True)
class GeneratedBase:
    rows: int
    invalid: int
    duplicates: int

    @property
    def accepted(self) -> int:
        return self.rows - self.invalid - self.duplicates


def _typed(national: str, rng: random.Random) -> object:
    """The same Russian number in one of the ways people and Excel write it."""
    form = rng.randrange(5)
    if form == 0:
        return f"8 ({national[:3]}) {national[3:6]}-{national[6:8]}-{national[8:]}"
    if form == 1:
        return f"+7 {national[:3]} {national[3:]}"
    if form == 2:
        return int("7" + national)  # a number cell
    if form == 3:
        return national
    return "+7" + national


def _invalid(rng: random.Random) -> object:
    kind = rng.randrange(5)
    if kind == 0:
        return "+7 9" + "".join(
            rng.choice("0123456789") for _ in range(rng.randrange(4, 8))
        )
    if kind == 1:
        return "89" + "".join(rng.choice("0123456789") for _ in range(11))  # 13 digits
    if kind == 2:
        return "нет телефона"
    if kind == 3:
        return "+7 2" + "".join(
            rng.choice("0123456789") for _ in range(9)
        )  # no 2xx codes
    return None


def _landline(rng: random.Random) -> str:
    while True:
        national = "495" + str(rng.randrange(2_000_000, 9_999_999))
        if phonenumbers.is_valid_number(phonenumbers.parse("+7" + national)):
            return national


def generate_base(
    path: Path,
    *,
    rows: int,
    seed: int = 20260426,
    invalid_share: float = 0.02,
    duplicate_share: float = 0.01,
) -> GeneratedBase:
    """Write the base to ``path`` (XLSX, write-only mode) and return its counts."""
    rng = random.Random(seed)
    invalid_rows = set(rng.sample(range(rows), round(rows * invalid_share)))
    candidates = [i for i in range(1, rows) if i not in invalid_rows]
    duplicate_rows = set(rng.sample(candidates, round(rows * duplicate_share)))
    fresh_needed = rows - len(invalid_rows) - len(duplicate_rows)
    mobiles = rng.sample(
        range(9_000_000_000, 10_000_000_000), fresh_needed + len(duplicate_rows)
    )
    used: list[tuple[str, bool]] = []  # (number as typed again, is Russian national)
    seen_landlines: set[str] = set()
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("База")
    sheet.append(list(HEADER))
    fresh = iter(mobiles)
    duplicates = 0
    foreign_count = 0
    for i in range(rows):
        phone: object
        if i in invalid_rows:
            phone = _invalid(rng)
        elif i in duplicate_rows and used:
            number, russian = rng.choice(used)
            phone = _typed(number, rng) if russian else number.replace(" ", "")
            duplicates += 1
        else:
            national = str(next(fresh))
            kind = rng.random()
            if kind < 0.02:
                national = _landline(rng)
                while national in seen_landlines:
                    national = _landline(rng)
                seen_landlines.add(national)
            if kind > 0.995:
                foreign = rng.choice(_FOREIGN).format(foreign_count)
                foreign_count += 1
                phone, entry = foreign, (foreign, False)
            else:
                phone, entry = _typed(national, rng), (national, True)
            used.append(entry)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        birth: object
        day = datetime(
            rng.randrange(1950, 2004), rng.randrange(1, 13), rng.randrange(1, 29)
        )
        birth_kind = rng.randrange(4)
        if birth_kind == 0:
            birth = day
        elif birth_kind == 1:
            birth = day.strftime("%d.%m.%Y")
        elif birth_kind == 2:
            birth = day.strftime("%d-%m-%Y")
        else:
            birth = None
        city = rng.choice(_CITIES)
        sheet.append(
            [
                phone,
                f"user{i}@example.ru" if rng.random() < 0.7 else None,
                f"{last} {first}",
                birth,
                rng.choice(_POSITIONS) or None,
                city,
                f"г. {city}, ул. Ленина, д. {rng.randrange(1, 200)}",
                "клиент из выставки" if rng.random() < 0.1 else None,
            ]
        )
    workbook.save(path)
    return GeneratedBase(rows=rows, invalid=len(invalid_rows), duplicates=duplicates)
