"""Every catalogue key the templates and handlers use exists in Russian and in English."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import sipspeak.web
from sipspeak.i18n import CATALOGUE, LANGUAGES, extend, translate
from sipspeak.web.layout import AGENT_STATES, MENU

WEB = Path(sipspeak.web.__file__).parent
_TEMPLATE_KEY = re.compile(r"""_\(\s*["']([a-z_]+\.[a-z_0-9]+)["']\s*\)""")
_CODE_KEY = re.compile(r"""(?:translate|tr)\(\s*(?:request,\s*)?["']([a-z_]+\.[a-z_0-9]+)["']""")


def _ours(path: Path) -> bool:
    """Projects and uploads pages keep their own strings (added with i18n.extend)."""
    relative = path.relative_to(WEB).as_posix()
    return not relative.startswith(("projects", "uploads", "templates/projects",
                                    "templates/uploads"))


def used_keys() -> set[str]:
    keys: set[str] = set()
    for path in (WEB / "templates").rglob("*.html"):
        if _ours(path):
            keys |= set(_TEMPLATE_KEY.findall(path.read_text(encoding="utf-8")))
    for path in WEB.glob("*.py"):
        if _ours(path):
            keys |= set(_CODE_KEY.findall(path.read_text(encoding="utf-8")))
    keys |= {f"agent.{s}" for s in AGENT_STATES}
    keys |= {f"role.{r}" for r in ("admin", "supervisor", "operator")}
    keys |= {f"trunks.state.{s}" for s in ("registered", "registering", "failed", "disabled")}
    for item in MENU:
        keys.add(item.key)
        keys |= {c.key for c in item.children}
    return keys


def test_every_used_key_is_translated_in_every_language() -> None:
    keys = used_keys()
    assert len(keys) > 80
    missing = {lang: sorted(k for k in keys if k not in CATALOGUE[lang]) for lang in LANGUAGES}
    assert missing == {lang: [] for lang in LANGUAGES}


def test_languages_have_the_same_keys() -> None:
    assert set(CATALOGUE["ru"]) == set(CATALOGUE["en"])


def test_fallback_to_russian_then_to_the_key() -> None:
    assert translate("menu.users", "de") == "Пользователи"
    assert translate("no.such.key", "en") == "no.such.key"


def test_extend_adds_keys_and_refuses_to_redefine_one() -> None:
    extend({"ru": {"test.extend_key": "Проба"}, "en": {"test.extend_key": "Probe"}})
    assert translate("test.extend_key", "en") == "Probe"
    extend({"ru": {"test.extend_key": "Проба"}})  # the same text again is harmless
    with pytest.raises(ValueError):
        extend({"ru": {"test.extend_key": "Другое"}})
    with pytest.raises(ValueError):
        extend({"de": {"x.y": "z"}})
