"""SIP and other URIs as they appear in SIP messages (RFC 3261 §19.1, §25.1; RFC 3986).

Public API:

* ``SipUri`` — a parsed ``sip:`` / ``sips:`` URI (frozen).  ``user`` and
  ``password`` keep their %-escapes as received; ``user_unescaped`` decodes them.
  ``parameters`` is an ordered tuple of ``(name, value-or-None)``; name lookup
  with ``param(name)`` is case-insensitive (RFC 3261 §19.1.4).
* ``AbsoluteUri`` — any other scheme (``tel:``, ``urn:``, …) kept opaque.
* ``parse_uri(text) -> SipUri | AbsoluteUri`` raising ``SipParseError``.
* ``str(uri)`` serialises back to wire form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import unquote

from sipspeak.sip.errors import SipParseError

_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_ESCAPED = r"%[0-9A-Fa-f]{2}"
_USER_RE = re.compile(rf"(?:[{_UNRESERVED}&=+$,;?/]|{_ESCAPED})+")
_PASSWORD_RE = re.compile(rf"(?:[{_UNRESERVED}&=+$,]|{_ESCAPED})*")
_PARAM_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/:&+$]|{_ESCAPED})+")
_HEADERS_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/?:+$=&]|{_ESCAPED})*")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?")
_IPV6_RE = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_ABSOLUTE_RE = re.compile(r"[^\s<>\"]+")

# The common shape — no password, no %-escapes, no URI headers — in one match;
# anything else takes the component-by-component path below.
_FAST_SIP_URI_RE = re.compile(
    r"(sips?):(?:([A-Za-z0-9\-_.!~*'()&=+$,;?/]+)@)?"
    r"([A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::([0-9]{1,5}))?((?:;[A-Za-z0-9\-_.!~*'()\[\]/:&+$=]+)*)"
)

Parameters = tuple[tuple[str, str | None], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SipUri:
    """``sip:user:password@host:port;param=value?header=value`` (RFC 3261 §19.1.1)."""

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str
    port: int | None = None
    parameters: Parameters = ()
    headers: str = ""

    @property
    def user_unescaped(self) -> str | None:
        """The user part with %-escapes decoded (RFC 3261 §19.1.2)."""
        return None if self.user is None else unquote(self.user)

    def param(self, name: str) -> str | None:
        """Value of a URI parameter ("" for a parameter without value, None if absent)."""
        lname = name.lower()
        for key, value in self.parameters:
            if key.lower() == lname:
                return "" if value is None else value
        return None

    def has_param(self, name: str) -> bool:
        lname = name.lower()
        return any(key.lower() == lname for key, _ in self.parameters)

    @property
    def transport(self) -> str:
        """Transport named by ``;transport=`` (default UDP for sip:, TLS for sips:)."""
        value = self.param("transport")
        if value:
            return value.upper()
        return "TLS" if self.scheme == "sips" else "UDP"

    @property
    def host_port(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def with_params(self, **params: str | None) -> SipUri:
        """A copy with parameters set (``None`` value = flag parameter)."""
        keep = tuple(p for p in self.parameters if p[0].lower() not in params)
        return replace(self, parameters=keep + tuple(params.items()))

    def without_headers(self) -> SipUri:
        return replace(self, headers="")

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(self.user)
            if self.password is not None:
                parts.append(":")
                parts.append(self.password)
            parts.append("@")
        parts.append(self.host)
        if self.port is not None:
            parts.append(f":{self.port}")
        for key, value in self.parameters:
            parts.append(f";{key}" if value is None else f";{key}={value}")
        if self.headers:
            parts.append("?")
            parts.append(self.headers)
        return "".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class AbsoluteUri:
    """A URI of a scheme other than sip/sips, kept as received (RFC 3261 §19.1.6)."""

    scheme: str
    opaque: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri = SipUri | AbsoluteUri


def parse_host_port(text: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` where host may be an IPv6 reference (RFC 3261 §25.1)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError(f"unterminated IPv6 reference in {text!r}")
        host, rest = text[: end + 1], text[end + 1 :]
        if not _IPV6_RE.fullmatch(host):
            raise SipParseError(f"bad IPv6 reference {host!r}")
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise SipParseError(f"bad text after IPv6 reference in {text!r}")
        return host, _parse_port(rest[1:])
    host, sep, port = text.partition(":")
    if not _HOSTNAME_RE.fullmatch(host):
        raise SipParseError(f"bad host {host!r}")
    return host, (_parse_port(port) if sep else None)


def _parse_port(text: str) -> int:
    if not text.isdigit() or len(text) > 5 or int(text) > 65535:
        raise SipParseError(f"bad port {text!r}")
    return int(text)


def _parse_uri_params(text: str) -> Parameters:
    params: list[tuple[str, str | None]] = []
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if not _PARAM_RE.fullmatch(name) or (eq and not _PARAM_RE.fullmatch(value)):
            raise SipParseError(f"bad URI parameter {item!r}")
        params.append((name, value if eq else None))
    return tuple(params)


def parse_uri(text: str) -> SipUri | AbsoluteUri:
    """Parse a URI; ``sip:``/``sips:`` fully, other schemes opaquely.

    Raises ``SipParseError`` when the text is not a URI (for example embedded
    whitespace, RFC 4475 §3.1.2.8).
    """
    fast = _FAST_SIP_URI_RE.fullmatch(text)
    if fast is not None and (fast.group(4) is None or int(fast.group(4)) <= 65535):
        scheme, user, host, port, params_text = fast.groups()
        params: Parameters = ()
        if params_text:
            items = []
            for item in params_text[1:].split(";"):
                name, eq, value = item.partition("=")
                if not name or (eq and not value) or "=" in value:
                    break
                items.append((name, value if eq else None))
            else:
                params = tuple(items)
        if not params_text or params:
            return SipUri(
                scheme=scheme,
                user=user,
                host=host,
                port=int(port) if port else None,
                parameters=params,
            )
    return _parse_uri_slowly(text)


def _parse_uri_slowly(text: str) -> SipUri | AbsoluteUri:
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME_RE.fullmatch(scheme):
        raise SipParseError(f"not a URI: {text!r}")
    lscheme = scheme.lower()
    if lscheme not in ("sip", "sips"):
        if not _ABSOLUTE_RE.fullmatch(rest):
            raise SipParseError(f"bad URI {text!r}")
        return AbsoluteUri(scheme=lscheme, opaque=rest)
    user: str | None = None
    password: str | None = None
    at = rest.rfind("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, pcolon, pw = userinfo.partition(":")
        if not _USER_RE.fullmatch(user):
            raise SipParseError(f"bad user part in {text!r}")
        if pcolon:
            if not _PASSWORD_RE.fullmatch(pw):
                raise SipParseError(f"bad password in {text!r}")
            password = pw
    rest, qmark, headers = rest.partition("?")
    if qmark and not _HEADERS_RE.fullmatch(headers):
        raise SipParseError(f"bad URI headers in {text!r}")
    hostport, semi, params_text = rest.partition(";")
    host, port = parse_host_port(hostport)
    params = _parse_uri_params(params_text) if semi else ()
    return SipUri(
        scheme=lscheme,
        user=user,
        password=password,
        host=host,
        port=port,
        parameters=params,
        headers=headers,
    )
