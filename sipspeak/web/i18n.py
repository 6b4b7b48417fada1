"""The one translation catalogue. Russian is the default; English is available.

Templates call ``_("key")``; a key missing from a language falls back to Russian, then to
the key itself, so a missing translation shows up as text, never as an error.
"""

from __future__ import annotations

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"

CATALOGUE: dict[str, dict[str, str]] = {
    "ru": {
        "app.title": "SipSpeak — колл-центр",
        "login.title": "Вход в систему",
        "login.email": "E-mail",
        "login.password": "Пароль",
        "login.submit": "Войти",
        "login.failed": "Неверный e-mail или пароль",
        "support.title": "Техническая поддержка",
    },
    "en": {
        "app.title": "SipSpeak — call center",
        "login.title": "Sign in",
        "login.email": "E-mail",
        "login.password": "Password",
        "login.submit": "Sign in",
        "login.failed": "Wrong e-mail or password",
        "support.title": "Support",
    },
}


def translate(key: str, language: str = DEFAULT_LANGUAGE) -> str:
    table = CATALOGUE.get(language) or CATALOGUE[DEFAULT_LANGUAGE]
    return table.get(key) or CATALOGUE[DEFAULT_LANGUAGE].get(key) or key
