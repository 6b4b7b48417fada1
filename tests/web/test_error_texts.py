"""Every error message raised with a catalogue key exists in Russian and in English, and both
languages have the same placeholders; the call that raises passes exactly those values."""

from __future__ import annotations

import ast
import string
from collections.abc import Iterator
from pathlib import Path

import pytest

import sipspeak
from sipspeak.i18n.errors import ERRORS_EN, ERRORS_RU
from sipspeak.i18n import CATALOGUE, LANGUAGES, Text

ROOT = Path(sipspeak.__file__).parent
SOURCES = [ROOT / "accounts.py", ROOT / "calls" / "entry.py", ROOT / "calls" / "operators.py",
           *(path for area in ("i18n", "web", "crm", "storage")
             for path in sorted((ROOT / area).rglob("*.py")))]


def placeholders(text: str) -> set[str]:
    return {name.split(".")[0].split("[")[0]
            for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def text_calls() -> Iterator[tuple[str, str, set[str] | None]]:
    """``(where, key, keyword names)`` of every ``Text("key", ...)`` in the sources; names are
    None when the call passes ``**values``."""
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "Text"):
                continue
            where = f"{path.relative_to(ROOT.parent)}:{node.lineno}"
            first = node.args[0] if node.args else None
            assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
                f"{where}: the key of a Text is a literal, so this test can find it")
            names = {k.arg for k in node.keywords}
            yield where, first.value, None if None in names else {n for n in names if n}


CALLS = list(text_calls())


def test_the_sources_raise_with_keys() -> None:
    assert len(CALLS) > 200


#: Errors whose message a user reads; ApiError's message is its third argument.
USER_ERRORS = {"ApiError": 2, "Invalid": 0, "BadRequest": 0, "Forbidden": 0, "TooLarge": 0,
               "Conflict": 0, "NotFound": 0, "AccountError": 0, "ImportFileError": 0,
               "XlsxFormatError": 0, "RowRejectedError": 0, "InvalidPhoneError": 0,
               "ClickToCallError": 0}


def test_no_user_facing_error_is_raised_with_a_bare_string() -> None:
    bare = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                    node.func.id in USER_ERRORS and len(node.args) > USER_ERRORS[node.func.id]:
                message = node.args[USER_ERRORS[node.func.id]]
                if isinstance(message, ast.JoinedStr) or (
                        isinstance(message, ast.Constant) and isinstance(message.value, str)):
                    bare.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}")
    assert bare == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_key_used_exists(language: str) -> None:
    missing = sorted({f"{where} {key}" for where, key, _ in CALLS
                      if key not in CATALOGUE[language]})
    assert missing == []


def test_error_sections_have_the_same_keys_in_both_languages() -> None:
    assert sorted(set(ERRORS_RU) ^ set(ERRORS_EN)) == []


def test_every_error_key_is_used() -> None:
    used = {key for _, key, _ in CALLS}
    assert sorted(set(ERRORS_RU) - used) == []


def test_russian_and_english_have_the_same_placeholders() -> None:
    differ = {key: (placeholders(text), placeholders(CATALOGUE["en"].get(key, "")))
              for key, text in CATALOGUE["ru"].items()
              if placeholders(text) != placeholders(CATALOGUE["en"].get(key, ""))}
    assert differ == {}


def test_every_call_passes_the_placeholders_of_its_text() -> None:
    wrong = {f"{where} {key}": (sorted(names), sorted(placeholders(CATALOGUE["ru"][key])))
             for where, key, names in CALLS
             if names is not None and key in CATALOGUE["ru"]
             and names != placeholders(CATALOGUE["ru"][key])}
    assert wrong == {}


def test_a_text_renders_in_each_language_and_russian_is_its_string() -> None:
    text = Text("storage.error.project_not_found", id=7)
    assert str(text) == "проект 7 не найден"
    assert text.render("en") == "project 7 not found"
    assert str(ValueError(text)) == "проект 7 не найден"


def test_a_label_given_as_a_text_is_translated_too() -> None:
    label = Text("projects.queue_timeout")
    text = Text("accounts.error.no_user", email=label)
    assert text.render("en") == "no user with the e-mail Queue timeout (s)"
    assert str(text) == "нет пользователя с e-mail Таймаут очереди (сек.)"
