"""Typed values of the SIP header fields every element must understand (RFC 3261 §20, §25.1).

Public API (all frozen dataclasses, ``parse`` classmethods raise ``SipParseError``,
``str()`` gives the wire form):

* ``Via``      — ``SIP/2.0/UDP host:port;branch=…;rport;received=…`` (§20.42, RFC 3581).
* ``NameAddr`` — From / To / Contact / Route / Record-Route values: ``display_name``,
  ``uri``, header ``parameters`` (``tag`` property), ``is_wildcard`` for ``Contact: *``.
* ``CSeq``     — sequence number and method (§20.16).
* ``split_header_list(value)`` — split a comma-separated header value, respecting
  quoted strings and ``<…>``.
* ``parse_params(text)`` — ``;name=value`` generic parameters (§25.1 generic-param).
* ``quote_string`` / ``TOKEN_RE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from sipspeak.sip.errors import SipParseError
from sipspeak.sip.uri import (
    AbsoluteUri,
    Parameters,
    SipUri,
    Uri,
    parse_host_port,
    parse_uri,
)

TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_GEN_VALUE_RE = re.compile(
    r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+|\"(?:[^\"\\]|\\.)*\"", re.DOTALL
)
_VIA_RE = re.compile(
    r"([^\s/]+)\s*/\s*([^\s/]+)\s*/\s*([^\s/]+)\s+((?:\[[^\]\s]*\]|[^\s:\[]+)(?:\s*:\s*\d+)?)\s*\Z"
)
_MAX_CSEQ = 2**31 - 1

WILDCARD = AbsoluteUri(scheme="*", opaque="")
_TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"
# Parameters without quotes or whitespace, validated in one match (the common case).
_FAST_PARAMS_RE = re.compile(
    rf"[{_TOKEN_CHARS}]+(?:=[{_TOKEN_CHARS}:\[\]]+)?(?:;[{_TOKEN_CHARS}]+(?:=[{_TOKEN_CHARS}:\[\]]+)?)*"
)
_FAST_VIA_RE = re.compile(
    r"SIP/2\.0/([A-Za-z]+) ([A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::([0-9]{1,5}))?(?:;(.*))?"
)
_QUOTED_RE = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_UNESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)


def quote_string(text: str) -> str:
    """Quote ``text`` as a quoted-string, escaping ``"`` and ``\\`` (RFC 3261 §25.1)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read a quoted-string starting at ``text[start] == '"'``; return (unescaped, end)."""
    match = _QUOTED_RE.match(text, start)
    if match is None:
        raise SipParseError("unterminated quoted string")
    content = match.group(1)
    if "\\" in content:
        content = _UNESCAPE_RE.sub(r"\1", content)
    return content, match.end()


def _split_outside(text: str, sep: str, *, angle: bool = False) -> list[str]:
    """Split on ``sep`` outside quoted strings (and ``<…>`` when ``angle``)."""
    if '"' not in text and (not angle or "<" not in text):
        return text.split(sep)
    parts: list[str] = []
    buf_start = 0
    i = 0
    n = len(text)
    in_angle = False
    while i < n:
        ch = text[i]
        if ch == '"':
            _, i = _read_quoted(text, i)
            continue
        if angle and ch == "<":
            in_angle = True
        elif angle and ch == ">":
            in_angle = False
        elif ch == sep and not in_angle:
            parts.append(text[buf_start:i])
            buf_start = i + 1
        i += 1
    parts.append(text[buf_start:])
    return parts


def split_header_list(value: str) -> list[str]:
    """Split a comma-separated header value into its elements (RFC 3261 §7.3.1)."""
    if "," not in value:
        stripped = value.strip()
        return [stripped] if stripped else []
    return [
        item.strip() for item in _split_outside(value, ",", angle=True) if item.strip()
    ]


def parse_params(text: str) -> Parameters:
    """Parse ``;name[=value]`` generic parameters; ``text`` starts after the first ';'."""
    if _FAST_PARAMS_RE.fullmatch(text):
        out: list[tuple[str, str | None]] = []
        for item in text.split(";"):
            name, eq, value = item.partition("=")
            out.append((name, value if eq else None))
        return tuple(out)
    params: list[tuple[str, str | None]] = []
    for item in _split_outside(text, ";"):
        if not item.strip():
            continue  # ";;" — tolerated, it carries nothing
        name, eq, value = item.partition("=")
        name = name.strip()
        if not TOKEN_RE.fullmatch(name):
            raise SipParseError(f"bad parameter {item.strip()!r}")
        if eq:
            value = value.strip()
            if not _GEN_VALUE_RE.fullmatch(value):
                raise SipParseError(f"bad parameter value {item.strip()!r}")
            params.append((name, value))
        else:
            params.append((name, None))
    return tuple(params)


def _param(params: Parameters, name: str) -> str | None:
    for key, value in params:
        if key.lower() == name:
            return "" if value is None else value
    return None


def _set_param(params: Parameters, name: str, value: str | None) -> Parameters:
    lname = name.lower()
    out = [p for p in params if p[0].lower() != lname]
    return tuple(out) + ((name, value),)


def _params_str(params: Parameters) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


@dataclass(frozen=True, slots=True, kw_only=True)
class Via:
    """One Via value (RFC 3261 §20.42, §18.2.1; ``rport`` RFC 3581)."""

    transport: str = "UDP"
    host: str
    port: int | None = None
    parameters: Parameters = ()

    @classmethod
    def parse(cls, text: str) -> Via:
        fast = _FAST_VIA_RE.fullmatch(text)
        if fast is not None and '"' not in text:
            transport, host, port, params_text = fast.groups()
            if port is None or int(port) <= 65535:
                return cls(
                    transport=transport.upper(),
                    host=host,
                    port=int(port) if port else None,
                    parameters=parse_params(params_text) if params_text else (),
                )
        head, *rest = _split_outside(text, ";")
        m = _VIA_RE.fullmatch(head.strip())
        if m is None:
            raise SipParseError(f"bad Via {text.strip()!r}")
        name, version, transport, sent_by = m.groups()
        # Any version parses so that a SIP/7.0 request can still get its 505 (RFC 4475 §3.1.2.17).
        if name.upper() != "SIP" or not version.replace(".", "").isdigit():
            raise SipParseError(f"bad Via protocol {name}/{version}")
        if not TOKEN_RE.fullmatch(transport):
            raise SipParseError(f"bad Via transport {transport!r}")
        host, port = parse_host_port(re.sub(r"\s+", "", sent_by))
        params = parse_params(";".join(rest)) if rest else ()
        return cls(transport=transport.upper(), host=host, port=port, parameters=params)

    def param(self, name: str) -> str | None:
        return _param(self.parameters, name.lower())

    @property
    def branch(self) -> str | None:
        return _param(self.parameters, "branch")

    @property
    def received(self) -> str | None:
        return _param(self.parameters, "received")

    @property
    def rport(self) -> int | bool | None:
        """``None`` if absent, ``True`` if requested without value, else the port."""
        for key, value in self.parameters:
            if key.lower() == "rport":
                if value is None or value == "":
                    return True
                return int(value) if value.isdigit() else True
        return None

    @property
    def sent_by(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def with_param(self, name: str, value: str | None) -> Via:
        return replace(self, parameters=_set_param(self.parameters, name, value))

    def stamped(self, source_host: str, source_port: int) -> Via:
        """Add ``received`` / fill ``rport`` as a server transport must (§18.2.1, RFC 3581 §4)."""
        via = self
        if via.host != source_host:
            via = via.with_param("received", source_host)
        if via.rport is not None:
            if via.received is None:
                via = via.with_param("received", source_host)
            via = via.with_param("rport", str(source_port))
        return via

    def __str__(self) -> str:
        return f"SIP/2.0/{self.transport} {self.sent_by}{_params_str(self.parameters)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class NameAddr:
    """A name-addr / addr-spec with header parameters (RFC 3261 §20.10, §20.20, §25.1)."""

    display_name: str | None = None
    uri: Uri
    parameters: Parameters = ()

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        s = text.strip()
        if s == "*":
            return cls(uri=WILDCARD)
        display: str | None = None
        if s.startswith('"'):
            display, end = _read_quoted(s, 0)
            rest = s[end:].lstrip()
            if not rest.startswith("<"):
                raise SipParseError(f"display name without <URI> in {s!r}")
        else:
            lt = s.find("<")
            if lt >= 0:
                words = s[:lt].split()
                if not all(TOKEN_RE.fullmatch(w) for w in words):
                    raise SipParseError(f"bad display name in {s!r}")
                display = " ".join(words) if words else None
                rest = s[lt:]
            else:
                # addr-spec form: a URI holding ',', ';' or '?' MUST be in <> (§20.10)
                uri_text, semi, params_text = s.partition(";")
                uri = parse_uri(uri_text.rstrip())
                if isinstance(uri, SipUri) and uri.headers:
                    raise SipParseError(f"URI with headers outside <> in {s!r}")
                params = parse_params(params_text) if semi else ()
                return cls(uri=uri, parameters=params)
        gt = rest.find(">")
        if gt < 0:
            raise SipParseError(f"unterminated <URI> in {s!r}")
        uri = parse_uri(rest[1:gt])
        tail = rest[gt + 1 :].strip()
        if tail and not tail.startswith(";"):
            raise SipParseError(f"unexpected text after URI in {s!r}")
        params = parse_params(tail[1:]) if tail else ()
        return cls(display_name=display, uri=uri, parameters=params)

    @property
    def is_wildcard(self) -> bool:
        return self.uri == WILDCARD

    def param(self, name: str) -> str | None:
        return _param(self.parameters, name.lower())

    @property
    def tag(self) -> str | None:
        return _param(self.parameters, "tag")

    def with_tag(self, tag: str) -> NameAddr:
        return replace(self, parameters=_set_param(self.parameters, "tag", tag))

    def with_param(self, name: str, value: str | None) -> NameAddr:
        return replace(self, parameters=_set_param(self.parameters, name, value))

    def __str__(self) -> str:
        if self.is_wildcard:
            return "*"
        if self.display_name is None:
            return f"<{self.uri}>{_params_str(self.parameters)}"
        return f"{quote_string(self.display_name)} <{self.uri}>{_params_str(self.parameters)}"


@dataclass(frozen=True, slots=True)
class CSeq:
    """``CSeq: 4711 INVITE`` (RFC 3261 §20.16; the number is < 2**31, §8.1.1.5)."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str, *, strict: bool = True) -> CSeq:
        """``strict=False`` keeps an out-of-range number (to answer it with a 400)."""
        parts = text.split()
        if (
            len(parts) != 2
            or not parts[0].isdigit()
            or not TOKEN_RE.fullmatch(parts[1])
        ):
            raise SipParseError(f"bad CSeq {text.strip()!r}")
        seq = int(parts[0])
        if strict and seq > _MAX_CSEQ:
            raise SipParseError(f"CSeq number out of range: {parts[0]}")
        return cls(seq, parts[1])

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


@dataclass(frozen=True, slots=True, kw_only=True)
class UnparsedNameAddr(NameAddr):
    """A From/To value that did not parse, kept verbatim only so that the request
    can still be answered with a 400 (RFC 4475 §3.1.2.15-16)."""

    text: str = ""

    def __str__(self) -> str:
        return self.text
