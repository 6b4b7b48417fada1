"""Cells written to CSV and XLSX files that users open in spreadsheet programs."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["formula_safe"]

_PHONE_LIKE = re.compile(r"[+\-\d\s().]*")


def formula_safe(value: Any) -> Any:
    """``value`` as a cell a spreadsheet program will not run as a formula (CWE-1236): text
    starting with ``=``, ``@``, a tab or a carriage return, or with ``+`` / ``-`` unless it
    is a phone number or a plain number, gets a leading apostrophe.  Anything but text is
    returned as it is."""
    if not isinstance(value, str):
        return value
    first = value[:1]
    if first in ("=", "@", "\t", "\r") or (
        first in ("+", "-") and not _PHONE_LIKE.fullmatch(value)
    ):
        return "'" + value
    return value
