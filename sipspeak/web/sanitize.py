"""An allow-list HTML sanitiser for the operator script (§5.2.6), built on ``html.parser``.

Only formatting tags survive (paragraphs, headings, emphasis, lists, links, line breaks);
everything else is dropped with its tags kept out but its text kept in.  ``script`` and
``style`` lose their content as well.  No attribute survives except ``href`` on ``a``, and
only with an http, https, mailto or tel URL or a relative one: ``javascript:`` and
``data:`` URLs, ``on*`` handlers and ``style`` never reach the operator's browser.  The output
is rebuilt from parsed tokens, so unbalanced or malformed markup cannot smuggle anything
through.
"""

from __future__ import annotations

from html import escape
from html.parser import HTMLParser

ALLOWED_TAGS = frozenset({
    "p", "br", "b", "strong", "i", "em", "u", "s", "ul", "ol", "li", "h1", "h2", "h3", "h4",
    "blockquote", "a", "div", "span", "sub", "sup", "hr",
})
VOID_TAGS = frozenset({"br", "hr"})
#: Tags whose text is dropped together with them.
DROPPED_WITH_CONTENT = frozenset({"script", "style", "template", "iframe", "object",
                                  "embed", "noscript", "textarea", "select", "title", "head", "svg",
                                  "math"})
SAFE_SCHEMES = ("http:", "https:", "mailto:", "tel:")
MAX_SCRIPT_CHARS = 200_000
MAX_DEPTH = 100


def safe_url(value: str) -> str | None:
    """The URL when it is relative or of a safe scheme; None otherwise."""
    # Browsers ignore control characters and spaces inside a scheme ("java\tscript:").
    compact = "".join(c for c in value if c > " " and c != "\x7f").lower()
    if not compact:
        return None
    head = compact.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if ":" not in head:
        return value.strip()
    return value.strip() if compact.startswith(SAFE_SCHEMES) else None


class _Sanitiser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self.skipping += 1
            return
        if self.skipping or tag not in ALLOWED_TAGS:
            return
        text = f"<{tag}"
        if tag == "a":
            href = next((v for k, v in attrs if k == "href" and v is not None), None)
            url = safe_url(href) if href is not None else None
            if url is not None:
                text += f' href="{escape(url, quote=True)}" rel="noopener noreferrer"'
        if tag in VOID_TAGS:
            self.out.append(text + ">")
            return
        if len(self.open) >= MAX_DEPTH:
            return
        self.open.append(tag)
        self.out.append(text + ">")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID_TAGS and not self.skipping:
            self.out.append(f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self.skipping = max(0, self.skipping - 1)
            return
        if self.skipping or tag not in self.open:
            return
        while self.open:
            name = self.open.pop()
            self.out.append(f"</{name}>")
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(escape(data, quote=False))

    def result(self) -> str:
        self.close()
        while self.open:
            self.out.append(f"</{self.open.pop()}>")
        return "".join(self.out).strip()


def sanitize_html(html: str) -> str:
    """Allow-listed HTML of ``html``: safe to show inside the operator's page."""
    parser = _Sanitiser()
    parser.feed(html)
    return parser.result()


__all__ = ["ALLOWED_TAGS", "MAX_SCRIPT_CHARS", "safe_url", "sanitize_html"]
