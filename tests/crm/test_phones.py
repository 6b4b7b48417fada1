"""Phone normalisation and enrichment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipspeak.crm.enrichment import Enricher, format_offset, utc_offset
from sipspeak.crm.numbering import default_index
from sipspeak.crm.phones import (
    BAD_CHARS,
    EMPTY,
    INVALID,
    TOO_LONG,
    TOO_SHORT,
    UNKNOWN_COUNTRY,
    InvalidPhoneError,
    normalize_phone,
    phone_error,
)


@pytest.mark.parametrize(
    "typed",
    [
        "8 (922) 871-13-45",
        "+7 922 8711345",
        "79228711345",
        "9228711345",
        "+7(922)871-13-45",
        "8-922-871-13-45",
        " 8 922 871 13 45 ",
        "+7 922 871-13-45 доб. 12",
        79228711345,
        79228711345.0,
        89228711345,
    ],
)
def test_russian_mobile_forms(typed: object) -> None:
    assert normalize_phone(typed) == "+79228711345"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("+44 20 7946 0958", "+442079460958"),
        ("00 44 20 7946 0958", "+442079460958"),
        ("8 10 44 20 7946 0958", "+442079460958"),
        ("442079460958", "+442079460958"),
        ("+1 (212) 736-1234", "+12127361234"),
        ("+7 (3532) 12-34-56", "+73532123456"),
        ("8 800 123-45-67", "+78001234567"),
        ("+7 701 234 5678", "+77012345678"),
    ],
)
def test_other_numbers(typed: str, expected: str) -> None:
    assert normalize_phone(typed) == expected


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        (None, EMPTY),
        ("", EMPTY),
        ("   ", EMPTY),
        ("12345", TOO_SHORT),
        ("+7 922 871134", TOO_SHORT),
        ("+7 922 87113456", TOO_LONG),
        ("8922871134567", TOO_LONG),
        ("нет телефона", BAD_CHARS),
        ("8922abc1345", BAD_CHARS),
        ("+7 222 871 13 45", INVALID),
        ("72228711345", INVALID),
        ("+999 123456789", UNKNOWN_COUNTRY),
        ("+44 20 79", TOO_SHORT),
        (79228711345.5, INVALID),
        (True, INVALID),
        ("1234567890123456789", TOO_LONG),
    ],
)
def test_rejections_carry_russian_reason(typed: object, reason: str) -> None:
    with pytest.raises(InvalidPhoneError) as info:
        normalize_phone(typed)
    assert info.value.reason == reason
    assert phone_error(typed) == reason


@given(st.integers(min_value=9_000_000_000, max_value=9_999_999_999), st.integers(0, 4))
def test_any_mobile_in_any_form_gives_the_same_e164(national: int, form: int) -> None:
    digits = str(national)
    typed = [
        f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}",
        f"+7 {digits[:3]} {digits[3:]}",
        "7" + digits,
        digits,
        int("7" + digits),
    ][form]
    assert normalize_phone(typed) == "+7" + digits


@given(st.text(max_size=30))
def test_arbitrary_text_is_e164_or_a_reason(text: str) -> None:
    reason = phone_error(text)
    if reason is None:
        result = normalize_phone(text)
        assert result.startswith("+") and result[1:].isdigit() and len(result) <= 16
    else:
        assert reason in {
            EMPTY,
            TOO_SHORT,
            TOO_LONG,
            BAD_CHARS,
            INVALID,
            UNKNOWN_COUNTRY,
        }


NOON = datetime(2026, 11, 26, 12, tzinfo=UTC)


def test_mobile_enrichment_from_index() -> None:
    info = Enricher(default_index()).info("+79228711345")
    assert info.region == "Оренбургская обл."
    assert info.timezone == "Asia/Yekaterinburg"
    assert info.carrier is not None and "мегафон" in info.carrier.lower()
    assert utc_offset(info.timezone, NOON) == "+05:00"


def test_landline_enrichment_from_phonenumbers_geocoder() -> None:
    info = Enricher(default_index()).info("+73532123456")
    assert info.region == "Оренбургская обл."
    assert info.timezone == "Asia/Yekaterinburg"
    assert info.carrier is None


def test_toll_free_and_unallocated_mobile_have_no_region() -> None:
    enricher = Enricher(default_index())
    assert enricher.info("+78001234567").region is None
    assert enricher.info("+78001234567").timezone is None
    unallocated = next(
        n
        for n in range(9_400_000_000, 9_500_000_000, 1_000_000)
        if default_index().lookup(n) is None
    )
    assert enricher.info(f"+7{unallocated}").timezone is None


def test_foreign_enrichment_and_offset_follow_dst() -> None:
    info = Enricher(default_index()).info("+442079460958")
    assert info.timezone == "Europe/London"
    assert (
        info.region == "Соединенное Королевство"
    )  # the country; city names cost 100 MB
    assert utc_offset(info.timezone, datetime(2026, 1, 15, tzinfo=UTC)) == "+00:00"
    assert utc_offset(info.timezone, datetime(2026, 7, 15, tzinfo=UTC)) == "+01:00"


def test_kazakhstan_keeps_country_as_region() -> None:
    info = Enricher(default_index()).info("+77012345678")
    assert info.region == "Казахстан"


def test_offset_formatting() -> None:
    from datetime import timedelta

    assert format_offset(timedelta(hours=5)) == "+05:00"
    assert format_offset(timedelta(hours=-3, minutes=-30)) == "-03:30"
    assert format_offset(timedelta(hours=5, minutes=45)) == "+05:45"
    assert utc_offset(None, NOON) is None
    assert utc_offset("Nowhere/Atlantis", NOON) is None
