"""What the system adds to a number: region, IANA time zone, UTC offset, carrier.

``+7 9XX`` mobiles come from the numbering index (the holder of the range and the region it
was allocated to; ported numbers keep the old operator). Russian geographic numbers get their
region from the index's prefix table (``+7 3532…`` → ``Оренбургская обл.``, taken from
phonenumbers' geocoder when the index was built); no operator, since the ABC ranges are not in
the snapshot. Abroad (and Kazakhstan, +7 6XX/7XX): the country's Russian name from the
index, the time zone from ``phonenumbers`` when it names exactly one, the carrier from its
carrier module (10 MB, imported on the first such number). phonenumbers' geocoder, which
would name the city, is never imported: it costs about 100 MB of memory. 8-800 numbers and Russian mobiles outside the index
get no region and no zone; ``+7 9XX`` numbers outside the index get nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from sipspeak.crm.numbering import NumberingIndex, default_index

LANGUAGE = "ru"
_UNKNOWN_ZONE = "Etc/Unknown"


@dataclass(frozen=True, slots=True)
class PhoneInfo:
    """Region, IANA zone and carrier of a number; any may be unknown."""

    region: str | None
    timezone: str | None
    carrier: str | None


UNKNOWN = PhoneInfo(region=None, timezone=None, carrier=None)


@dataclass(frozen=True, slots=True)
class PhoneDetails:
    """What the contacts table shows (manual §6.1): Регион, Часовой пояс, Провайдер."""

    phone: str
    region: str | None
    timezone: str | None
    utc_offset: str | None
    carrier: str | None


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def format_offset(offset: timedelta) -> str:
    """``timedelta(hours=5)`` → ``+05:00``."""
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


def utc_offset(timezone: str | None, at: datetime) -> str | None:
    """The zone's UTC offset at instant ``at`` (aware datetime), e.g. ``+05:00``."""
    if not timezone:
        return None
    zone = _zone(timezone)
    if zone is None:
        return None
    offset = at.astimezone(zone).utcoffset()
    return format_offset(offset) if offset is not None else None


class Enricher:
    """Looks numbers up; keeps one :class:`PhoneInfo` per (operator, region) of the index."""

    def __init__(self, index: NumberingIndex | None = None) -> None:
        self._index = index if index is not None else default_index()
        self._by_ids: dict[tuple[int, int], PhoneInfo] = {}
        self._countries = tuple(sorted(self._index.countries.items()))

    @property
    def index(self) -> NumberingIndex:
        return self._index

    def info(self, e164: str) -> PhoneInfo:
        """Enrichment of a normalised number (``+79228711345``)."""
        if e164.startswith("+7") and len(e164) == 12 and e164[2] in "3489":
            # Russian numbering: the index's ranges (DEF, and ABC after a full refresh).
            ids = self._index.lookup_ids(int(e164[2:]))
            if ids is not None:
                cached = self._by_ids.get(ids)
                if cached is None:
                    operator = self._index.operators[ids[0]]
                    region = self._index.regions[ids[1]]
                    cached = PhoneInfo(
                        region=region.name or None,
                        timezone=region.timezone,
                        carrier=operator.name or None,
                    )
                    self._by_ids[ids] = cached
                return cached
            if e164[2] == "9":
                # An unallocated DEF range: phonenumbers knows no region or zone for +7 9XX
                # either, and asking it costs more than the rest of the import of the row.
                return UNKNOWN
            return self._geographic(e164[2:])
        return _abroad(e164, self._countries)

    def details(self, e164: str, at: datetime) -> PhoneDetails:
        """Enrichment plus the UTC offset at instant ``at`` (aware datetime)."""
        info = self.info(e164)
        return PhoneDetails(
            phone=e164,
            region=info.region,
            timezone=info.timezone,
            utc_offset=utc_offset(info.timezone, at),
            carrier=info.carrier,
        )

    def _geographic(self, national: str) -> PhoneInfo:
        region = self._index.prefix_region(national)
        if region is None:
            return UNKNOWN
        return PhoneInfo(region=region.name, timezone=region.timezone, carrier=None)


@lru_cache(maxsize=4096)
def _abroad(e164: str, countries: tuple[tuple[str, str], ...]) -> PhoneInfo:
    from phonenumbers import carrier as pn_carrier
    from phonenumbers import timezone as pn_timezone

    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return UNKNOWN
    code = phonenumbers.region_code_for_number(number)
    region = dict(countries).get(code) if code and code != "RU" else None
    zones = [z for z in pn_timezone.time_zones_for_number(number) if z != _UNKNOWN_ZONE]
    zone = zones[0] if len(zones) == 1 else None
    carrier = pn_carrier.name_for_number(number, LANGUAGE) or None
    return PhoneInfo(region=region, timezone=zone, carrier=carrier)


@lru_cache(maxsize=1)
def default_enricher() -> Enricher:
    return Enricher()
