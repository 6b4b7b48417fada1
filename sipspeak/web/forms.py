"""Request input for pages and the API alike: an HTML form or a JSON object → typed values.

A handler reads ``fields = await Fields.read(request)`` and asks for typed values; a value of
the wrong type raises :class:`~.errors.Invalid` naming the field (422), a body that is not a
JSON object raises :class:`~.errors.BadRequest` (400).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ..i18n import Text
from .errors import BadRequest, Invalid

MAX_TEXT = 2000
_TRUE = {"1", "true", "on", "yes", "да"}
_FALSE = {"0", "false", "off", "no", "нет", ""}


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body: 400 for another content type, bad JSON or not an object."""
    if request.content_type != "application/json":
        raise BadRequest(Text("forms.error.json_object"))
    try:
        data = await request.json(loads=json.loads)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(Text("forms.error.not_json")) from None
    if not isinstance(data, dict):
        raise BadRequest(Text("forms.error.json_object"))
    return data


class Fields:
    def __init__(self, values: Mapping[str, list[Any]], *, from_json: bool) -> None:
        self._values = values
        self.from_json = from_json

    @classmethod
    async def read(cls, request: web.Request) -> Fields:
        if request.content_type == "application/json":
            data = await json_object(request)
            return cls({k: [v] for k, v in data.items()}, from_json=True)
        if request.method in ("GET", "HEAD"):
            form: Mapping[str, Any] = request.query
        else:
            form = await request.post()
        values: dict[str, list[Any]] = {}
        for key in set(form):
            values[key] = list(form.getall(key))  # type: ignore[attr-defined]
        return cls(values, from_json=False)

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Fields:
        return cls({k: [v] for k, v in data.items()}, from_json=True)

    def has(self, name: str) -> bool:
        return name in self._values

    def _first(self, name: str) -> Any:
        items = self._values.get(name)
        return items[0] if items else None

    def text(self, name: str, default: str = "", *, max_len: int = MAX_TEXT) -> str:
        value = self._first(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise Invalid(Text("forms.error.string", name=name), field=name)
        text = str(value).strip()
        if len(text) > max_len:
            raise Invalid(Text("forms.error.too_long", name=name, max=max_len), field=name)
        if "\x00" in text:
            raise Invalid(Text("forms.error.bad_char", name=name), field=name)
        return text

    def secret(self, name: str, *, max_len: int = 256) -> str:
        """A password as typed: not stripped; empty when absent."""
        value = self._first(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise Invalid(Text("forms.error.string", name=name), field=name)
        if len(value) > max_len or "\x00" in value:
            raise Invalid(Text("forms.error.bad_value", name=name), field=name)
        return value

    def optional_text(self, name: str, *, max_len: int = MAX_TEXT) -> str | None:
        if not self.has(name):
            return None
        return self.text(name, max_len=max_len)

    def optional_int(self, name: str, *, low: int = 0, high: int = 2**53) -> int | None:
        value = self._first(name)
        if value is None or value == "":
            return None
        return self._int(name, value, low, high)

    def integer(self, name: str, default: int, *, low: int = 0, high: int = 2**53) -> int:
        value = self._first(name)
        if value is None or value == "":
            return default
        return self._int(name, value, low, high)

    @staticmethod
    def _int(name: str, value: Any, low: int, high: int) -> int:
        if isinstance(value, bool):
            raise Invalid(Text("forms.error.number", name=name), field=name)
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise Invalid(Text("forms.error.number", name=name), field=name) from None
        if not low <= number <= high:
            raise Invalid(Text("forms.error.range", name=name, low=low, high=high), field=name)
        return number

    def flag(self, name: str, default: bool = False) -> bool:
        if not self.has(name):
            # An unchecked HTML checkbox is simply absent from the form.
            return default if self.from_json else False
        value = self._first(name)
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise Invalid(Text("forms.error.yes_no", name=name), field=name)

    def optional_flag(self, name: str) -> bool | None:
        """JSON: None when absent (no change); form: an absent checkbox is unchecked."""
        if self.from_json and not self.has(name):
            return None
        return self.flag(name)

    def integers(self, name: str) -> list[int]:
        items = self._values.get(name) or []
        out: list[int] = []
        for item in items:
            if isinstance(item, list):
                out += [self._int(name, v, 1, 2**53) for v in item]
            elif item != "":
                out.append(self._int(name, item, 1, 2**53))
        return out


__all__ = ["Fields"]
