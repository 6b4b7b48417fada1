"""Phone numbers as people type them → E.164, or a reason (a catalogue text) why not.

Accepted forms: ``8 (922) 871-13-45``, ``+7 922 8711345``, ``79228711345``, ``9228711345``,
Excel numbers (``79228711345.0``), ``8-10-44-…`` / ``00 44 …`` / ``+44 20 7946 0958`` for
foreign numbers, with an optional extension (``доб. 12``, ``ext 12``) that is dropped: the
dialer calls the main number.

Russian mobiles (``+7 9XX``) take a fast path without ``phonenumbers.parse``: every ``9XX``
code is a DEF code in the numbering plan, so ten digits starting with 9 are a valid number. Russian
geographic and 8-800 numbers, Kazakhstan (``+7 6XX/7XX``) and foreign numbers are checked
by ``phonenumbers``.
"""

from __future__ import annotations

import re

import phonenumbers

from sipspeak.i18n import Text

EMPTY = Text("crm.error.phone_empty")
TOO_SHORT = Text("crm.error.phone_short")
TOO_LONG = Text("crm.error.phone_long")
BAD_CHARS = Text("crm.error.phone_chars")
INVALID = Text("crm.error.phone_invalid")
UNKNOWN_COUNTRY = Text("crm.error.phone_country")

_SEPARATORS = str.maketrans("", "", " -()./\u00a0\t\u2010\u2011\u2012\u2013\u2014")
_EXTENSION = re.compile(
    r"\s*(?:доб\.?|доп\.?|ext\.?|extension|x|#)\s*\d{1,6}\s*$", re.IGNORECASE
)
_RU_NATIONAL = 10
_MAX_E164_DIGITS = 15
_MIN_FOREIGN_DIGITS = 8


class InvalidPhoneError(ValueError):
    """The value is not a dialable number; ``reason`` is what the user is told (Russian in
    ``str(error)``)."""

    def __init__(self, reason: Text) -> None:
        super().__init__(reason)
        self.reason = reason


def _text_of(value: object) -> str:
    if value is None or isinstance(value, bool):
        raise InvalidPhoneError(EMPTY if value is None else INVALID)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Excel stores long digit strings typed into a cell as floats.
        if not value.is_integer():  # also NaN and infinity
            raise InvalidPhoneError(INVALID)
        return str(int(value))
    return str(value).strip()


def _via_phonenumbers(digits: str) -> str:
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise InvalidPhoneError(UNKNOWN_COUNTRY) from exc
        raise InvalidPhoneError(INVALID) from exc
    if not phonenumbers.is_valid_number(number):
        if phonenumbers.is_possible_number_with_reason(number) == (
            phonenumbers.ValidationResult.TOO_SHORT
        ):
            raise InvalidPhoneError(TOO_SHORT)
        raise InvalidPhoneError(INVALID)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _russian(national: str) -> str:
    if len(national) < _RU_NATIONAL:
        raise InvalidPhoneError(TOO_SHORT)
    if len(national) > _RU_NATIONAL:
        raise InvalidPhoneError(TOO_LONG)
    lead = national[0]
    if lead == "9":
        return "+7" + national
    if lead in "34678":
        # 3xx/4xx/8xx: Russian geographic and non-geographic codes; 6xx/7xx: Kazakhstan.
        return _via_phonenumbers("7" + national)
    raise InvalidPhoneError(INVALID)


def normalize_phone(value: object) -> str:
    """E.164 (``+79228711345``) or :class:`InvalidPhoneError` with the reason."""
    text = _text_of(value)
    if not text:
        raise InvalidPhoneError(EMPTY)
    plus = text.startswith("+")
    digits = text[1:].translate(_SEPARATORS) if plus else text.translate(_SEPARATORS)
    if not (digits.isascii() and digits.isdigit()):
        # Only now look for an extension: plain numbers, the usual case, skip the regex.
        text = _EXTENSION.sub("", text)
        digits = (
            text[1:].translate(_SEPARATORS) if plus else text.translate(_SEPARATORS)
        )
        if not (digits.isascii() and digits.isdigit()):
            raise InvalidPhoneError(BAD_CHARS if digits else EMPTY)
    if plus:
        if digits.startswith("7"):
            return _russian(digits[1:])
    elif digits.startswith("00"):
        digits = digits[2:]
    elif digits.startswith("810") and len(digits) > 11:
        digits = digits[3:]
    elif len(digits) == _RU_NATIONAL + 1 and digits[0] in "78":
        return _russian(digits[1:])
    elif len(digits) <= _RU_NATIONAL:
        return _russian(digits)
    elif digits[0] in "78":
        # Without "+", a long number starting with 7 or 8 is a Russian one with extra digits.
        raise InvalidPhoneError(TOO_LONG)
    if len(digits) < _MIN_FOREIGN_DIGITS:
        raise InvalidPhoneError(TOO_SHORT)
    if len(digits) > _MAX_E164_DIGITS:
        raise InvalidPhoneError(TOO_LONG)
    return _via_phonenumbers(digits)


def phone_error(value: object) -> Text | None:
    """The rejection reason for a value, or None when it is a valid number."""
    try:
        normalize_phone(value)
    except InvalidPhoneError as exc:
        return exc.reason
    return None


def mask_phone(phone: str) -> str:
    """A number an operator may not see (the project's «Показывать номера» is off)."""
    if len(phone) <= 6:
        return "***"
    return phone[:4] + "*" * (len(phone) - 6) + phone[-2:]


def shown_phone(phone: str, *, show_numbers: bool, role: str) -> str:
    """The customer's number as a user of ``role`` may see it in a project: an operator sees
    it masked when the project's «Показывать номера» is off; staff always see it whole."""
    return phone if show_numbers or role != "operator" else mask_phone(phone)
