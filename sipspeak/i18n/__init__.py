"""The one translation catalogue. Russian is the default; English is available.

Templates call ``_("key")``; feature modules may add their strings with :func:`extend`
(at import time, before the app serves).  A key missing from a language falls back to Russian, then to
the key itself, so a missing translation shows up as text, never as an error.

Errors a user may read carry a :class:`Text` (a key and its values) instead of a Russian
string, so a page or an API answer can say them in the reader's language.  The catalogue sits
at the package's top and imports nothing of it, so every layer (accounts, storage, crm, the
web pages) raises its errors with it.

The texts, by concept: :mod:`.ui` (layout, menu, settings pages), :mod:`.projects` (projects
and the base upload), :mod:`.reports`, :mod:`.monitoring`, :mod:`.errors` (what services, storage and the
contacts import tell a user).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .card import CARD_EN, CARD_RU
from .errors import ERRORS_EN, ERRORS_RU
from .integrations import INTEGRATIONS_EN, INTEGRATIONS_RU
from .monitoring import MONITORING_EN, MONITORING_RU
from .projects import PROJECTS_EN, PROJECTS_RU
from .reports import REPORTS_EN, REPORTS_RU
from .softphone import SOFTPHONE_EN, SOFTPHONE_RU
from .ui import UI
from .workspace import WORKSPACE_EN, WORKSPACE_RU

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"

CATALOGUE: dict[str, dict[str, str]] = {language: dict(UI[language]) for language in LANGUAGES}


def extend(entries: dict[str, dict[str, str]]) -> None:
    """Add a feature module's strings to the catalogue: ``{"ru": {...}, "en": {...}}``.

    A key may be added once; adding it again with another text is a programming error.
    """
    for language, table in entries.items():
        if language not in LANGUAGES:
            raise ValueError(f"unknown language {language!r}")
        target = CATALOGUE[language]
        for key, text in table.items():
            if target.get(key, text) != text:
                raise ValueError(f"catalogue key {key!r} ({language}) is already defined")
            target[key] = text


def translate(key: str, language: str = DEFAULT_LANGUAGE) -> str:
    table = CATALOGUE.get(language) or CATALOGUE[DEFAULT_LANGUAGE]
    return table.get(key) or CATALOGUE[DEFAULT_LANGUAGE].get(key) or key


#: A value of a placeholder: shown as is, or (a :class:`Text`) rendered in the same language.
Param = Union[str, int, float, "Text"]


@dataclass(frozen=True, slots=True, init=False)
class Text:
    """A catalogue message with the values of its placeholders, rendered in any language.

    ``Text("projects.error.range", field=Text("projects.label.name"), low=0, high=10)``;
    ``str(text)`` is the Russian text (logs, the CLI), :meth:`render` says it in the reader's
    language.
    """

    key: str
    params: tuple[tuple[str, Param], ...]

    def __init__(self, key: str, /, **params: Param) -> None:
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "params", tuple(params.items()))

    def render(self, language: str) -> str:
        values = {name: value.render(language) if isinstance(value, Text) else value
                  for name, value in self.params}
        return translate(self.key, language).format_map(values)

    def __str__(self) -> str:
        return self.render(DEFAULT_LANGUAGE)


#: What an error says: a catalogue :class:`Text`, or a string shown as is (a library's words).
Message = Text | str


def joined(texts: list[Text]) -> Text:
    """Several messages as one, separated by spaces (each still translated)."""
    first, *rest = texts
    return first if not rest else Text("text.joined", first=first, rest=joined(rest))


def render(message: Message, language: str) -> str:
    return message.render(language) if isinstance(message, Text) else message


def message_of(exc: BaseException) -> Message:
    """The :class:`Text` an exception was raised with, else its string."""
    if len(exc.args) == 1 and isinstance(exc.args[0], Text):
        return exc.args[0]
    return str(exc)



extend({"ru": PROJECTS_RU, "en": PROJECTS_EN})
extend({"ru": MONITORING_RU, "en": MONITORING_EN})
extend({"ru": REPORTS_RU, "en": REPORTS_EN})
extend({"ru": ERRORS_RU, "en": ERRORS_EN})
extend({"ru": SOFTPHONE_RU, "en": SOFTPHONE_EN})
extend({"ru": WORKSPACE_RU, "en": WORKSPACE_EN})
extend({"ru": CARD_RU, "en": CARD_EN})
extend({"ru": INTEGRATIONS_RU, "en": INTEGRATIONS_EN})
