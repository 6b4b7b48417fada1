"""«Скрипт можно загрузить в текстовом формате» (manual §5.2.6): a script file → the HTML of
the script editor.

A ``.txt`` file becomes paragraphs (a blank line between two; a single line break stays a
line break), a ``.html`` file keeps its formatting; either way the result goes through the
script's allow-list sanitiser (:func:`~.sanitize.sanitize_html`), exactly like a script the
editor saves, so nothing the file holds (scripts, handlers, styles) reaches a page.  The
text is UTF-8 (with or without a byte-order mark) or, failing that, Windows-1251, the
encoding of text files saved on Russian Windows; anything with control characters is no
text file.  Nothing here touches storage: the editor shows the result, «Сохранить» saves it.
"""

from __future__ import annotations

import re
from html import escape

from ..i18n import Text
from .sanitize import MAX_SCRIPT_CHARS, sanitize_html

__all__ = ["MAX_FILE_BYTES", "ScriptFileError", "decode_text", "script_from_file",
           "text_to_html"]

TEXT_SUFFIXES = (".txt",)
HTML_SUFFIXES = (".html", ".htm")
MAX_FILE_BYTES = 4 * MAX_SCRIPT_CHARS
"""A script's characters take at most 4 bytes each in UTF-8."""
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class ScriptFileError(ValueError):
    """A file that cannot be a script; ``message`` says why (a catalogue text)."""

    def __init__(self, message: Text) -> None:
        super().__init__(message)
        self.message = message


def decode_text(data: bytes) -> str:
    """The file's text: UTF-8 (a BOM of UTF-8 or UTF-16 is honoured), else Windows-1251."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"),
                       (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            try:
                return _checked(data[len(bom):].decode(codec))
            except UnicodeDecodeError:
                raise ScriptFileError(Text("projects.error.script_file_encoding")) from None
    for codec in ("utf-8", "cp1251"):
        try:
            return _checked(data.decode(codec))
        except UnicodeDecodeError:
            continue
    raise ScriptFileError(Text("projects.error.script_file_encoding"))


def _checked(text: str) -> str:
    if _CONTROL.search(text):  # a binary file read as text
        raise ScriptFileError(Text("projects.error.script_file_encoding"))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def text_to_html(text: str) -> str:
    """Plain text → paragraphs: blank lines part them, a single line break stays one."""
    paragraphs: list[list[str]] = [[]]
    for line in text.split("\n"):
        if line.strip():
            paragraphs[-1].append(escape(line.rstrip(), quote=False))
        elif paragraphs[-1]:
            paragraphs.append([])
    return "".join("<p>" + "<br>".join(lines) + "</p>" for lines in paragraphs if lines)


def script_from_file(filename: str, data: bytes) -> str:
    """The sanitised HTML of a script file (``.txt``, ``.html`` or ``.htm``)."""
    name = filename.strip().lower()
    if not name.endswith(TEXT_SUFFIXES + HTML_SUFFIXES):
        raise ScriptFileError(Text("projects.error.script_file_type", name=filename[-100:]))
    if len(data) > MAX_FILE_BYTES:
        raise ScriptFileError(Text("projects.error.script_file_size", max=MAX_SCRIPT_CHARS))
    text = decode_text(data)
    if len(text) > MAX_SCRIPT_CHARS:
        raise ScriptFileError(Text("projects.error.script_file_size", max=MAX_SCRIPT_CHARS))
    html = sanitize_html(text if name.endswith(HTML_SUFFIXES) else text_to_html(text))
    if len(html) > MAX_SCRIPT_CHARS:
        raise ScriptFileError(Text("projects.error.script_file_size", max=MAX_SCRIPT_CHARS))
    return html
