"""Message templates of a project (e-mail, SMS): placeholders filled in from a client card.

Placeholders are names in braces: the card's fields (``{full_name}``, ``{phone}``,
``{email}``, ``{city}``, ``{position}``, ``{address}``, ``{birth_date}``, ``{region}``,
``{description}``), the project's extra card fields by their names (``{Пожелание}``),
``{project}`` and ``{operator}``.  A placeholder the card has no value for stays as written,
so a typo shows in the draft instead of vanishing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sipspeak.crm.card import Card

__all__ = ["card_values", "fill", "with_phone"]

_PLACEHOLDER = re.compile(r"\{([^{}\n]{1,64})\}")


def card_values(card: Card, *, operator: str) -> dict[str, str]:
    """The card's values for a draft the operator sees.  Where the card shows him the number
    masked, ``{phone}`` is left in the draft and filled with the real number only when the
    message goes (:func:`with_phone`): the customer gets his number, the operator never sees
    it."""
    values = {name: value for name, value in card.fields.items() if value}
    if "*" in card.phone:
        values.pop("phone", None)
    values.update({c.name: c.value for c in card.custom if c.value})
    values["project"] = card.project_name
    values["operator"] = operator
    return values


def fill(template: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1).strip(), m.group(0)), template)


def with_phone(text: str, phone: str) -> str:
    """``{phone}`` left in a draft, filled as the message goes out."""
    return fill(text, {"phone": phone})
