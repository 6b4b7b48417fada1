"""Typed reading of forms and JSON objects (Fields)."""

from __future__ import annotations

import pytest

from sipspeak.web.errors import ApiError
from sipspeak.web.forms import Fields


def form(**values: object) -> Fields:
    return Fields({k: (v if isinstance(v, list) else [v]) for k, v in values.items()},
                  from_json=False)


def test_json_values_keep_their_types() -> None:
    fields = Fields.of({"name": " Анна ", "active": False, "ids": [3, 4], "n": 7})
    assert fields.text("name") == "Анна"
    assert fields.flag("active", True) is False
    assert fields.integers("ids") == [3, 4]
    assert fields.optional_int("n") == 7
    assert fields.optional_flag("missing") is None
    assert fields.flag("missing", True) is True


def test_an_absent_checkbox_is_unchecked() -> None:
    fields = form(name="x")
    assert fields.flag("active", True) is False
    assert fields.optional_flag("active") is False
    assert form(active="1").flag("active") is True


def test_secrets_are_not_stripped() -> None:
    assert form(password=" pass word ").secret("password") == " pass word "
    assert form().secret("password") == ""


@pytest.mark.parametrize("fields, read", [
    (Fields.of({"n": "abc"}), lambda f: f.optional_int("n")),
    (Fields.of({"n": True}), lambda f: f.optional_int("n")),
    (Fields.of({"n": 10**20}), lambda f: f.optional_int("n")),
    (Fields.of({"n": -1}), lambda f: f.integer("n", 0)),
    (Fields.of({"s": {"a": 1}}), lambda f: f.text("s")),
    (Fields.of({"s": "a\x00b"}), lambda f: f.text("s")),
    (Fields.of({"s": "x" * 3000}), lambda f: f.text("s")),
    (Fields.of({"b": "maybe"}), lambda f: f.flag("b")),
    (Fields.of({"ids": ["1", "x"]}), lambda f: f.integers("ids")),
    (form(ids=["0"]), lambda f: f.integers("ids")),
])
def test_wrong_values_name_their_field(fields: Fields, read: object) -> None:
    with pytest.raises(ApiError) as caught:
        read(fields)  # type: ignore[operator]
    assert caught.value.status == 422
    assert caught.value.field in {"n", "s", "b", "ids"}
