"""SIP requests and responses: parse and serialise (RFC 3261 §7, §8.1.1, §18.3, §20, §25).

Public API:

* ``SipRequest`` / ``SipResponse`` — keyword-only dataclasses.  The headers every
  element must understand are typed attributes parsed on arrival (``via``,
  ``from_``, ``to``, ``call_id``, ``cseq``, ``max_forwards``, ``contact``,
  ``route``, ``record_route``); every other header lives in ``headers``
  (``Headers``: ordered, case-insensitive, compact forms normalised to their long
  names, ``get`` / ``get_all`` / ``get_list`` / ``add`` / ``set`` / ``remove``).
  ``Content-Length`` is not stored: ``serialize()`` writes it from ``body``.
  Received messages are shared between layers: treat them as read-only and copy
  with ``dataclasses.replace`` before changing one.
* ``parse_message(data, *, stream=False, max_size=MAX_MESSAGE_SIZE)`` — one
  message from a datagram (``stream=False``: Content-Length optional, extra bytes
  dropped, §18.3) or one framed stream message (``stream=True``: Content-Length
  required).  Raises a ``SipError`` subclass whose ``status_hint`` is the response
  to send (400, 505, 513 …) and whose ``request`` is set when the request was
  understood well enough to answer it (its Request-URI may then be a placeholder
  and a bad From/To an ``UnparsedNameAddr`` echoed verbatim: use it only for
  ``make_response``).
* ``make_response(request, status, reason=None, *, to_tag=None, …)`` — a response
  with the fields §8.2.6.2 says to copy.
* ``REASON_PHRASES`` — default reason phrase per status code.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sipspeak.sip.errors import (
    MessageTooLargeError,
    SipError,
    SipParseError,
    VersionNotSupportedError,
)
from sipspeak.sip.headers import (
    TOKEN_RE,
    CSeq,
    NameAddr,
    UnparsedNameAddr,
    Via,
    split_header_list,
)
from sipspeak.sip.uri import AbsoluteUri, SipUri, Uri, parse_uri

MAX_MESSAGE_SIZE = 65535
SIP_VERSION = "SIP/2.0"

# RFC 3261 §7.3.3 and the IANA registry: compact form -> long name.
COMPACT_FORMS = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact", "k": "Supported",
    "l": "Content-Length", "m": "Contact", "n": "Identity-Info", "o": "Event", "r": "Refer-To",
    "s": "Subject", "t": "To", "u": "Allow-Events", "v": "Via", "x": "Session-Expires",
    "y": "Identity",
}  # fmt: skip
_KNOWN = [
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
    "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact", "Content-Disposition",
    "Content-Encoding", "Content-Language", "Content-Length", "Content-Type", "CSeq", "Date",
    "Error-Info", "Event", "Expires", "From", "In-Reply-To", "Max-Forwards", "MIME-Version",
    "Min-Expires", "Organization", "P-Asserted-Identity", "Path", "Priority", "Proxy-Authenticate",
    "Proxy-Authorization", "Proxy-Require", "Reason", "Record-Route", "Refer-To", "Referred-By",
    "Reply-To", "Require", "Retry-After", "Route", "RSeq", "RAck", "Server", "Session-Expires",
    "Subject", "Supported", "Timestamp", "To", "Unsupported", "User-Agent", "Via", "Warning",
    "WWW-Authenticate", "Min-SE", "Privacy", "Diversion", "Remote-Party-ID",
]  # fmt: skip
_CANONICAL = {name.lower(): name for name in _KNOWN}
_CANONICAL.update(COMPACT_FORMS)

REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    413: "Request Entity Too Large", 414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 421: "Extension Required",
    423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 491: "Request Pending", 500: "Server Internal Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Server Time-out", 505: "Version Not Supported", 513: "Message Too Large",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}  # fmt: skip


def canonical_name(name: str) -> str:
    """Long, conventionally-cased header name; compact forms expanded (§7.3.3)."""
    return _CANONICAL.get(name.lower(), name)


class Headers:
    """Ordered header fields other than the typed ones; names are case-insensitive."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = (
            [(canonical_name(n), v) for n, v in items] if items else []
        )

    def get(self, name: str) -> str | None:
        """The first value of ``name``, or None."""
        lname = canonical_name(name).lower()
        for key, value in self._items:
            if key.lower() == lname:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        """Every header line's value for ``name``, in order."""
        lname = canonical_name(name).lower()
        return [value for key, value in self._items if key.lower() == lname]

    def get_list(self, name: str) -> list[str]:
        """Every comma-separated element of ``name`` across all its lines (§7.3.1)."""
        return [
            item for value in self.get_all(name) for item in split_header_list(value)
        ]

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every line of ``name`` with one line."""
        self.remove(name)
        self.add(name, value)

    def remove(self, name: str) -> None:
        lname = canonical_name(name).lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != lname]

    def copy(self) -> Headers:
        new = Headers()
        new._items = list(self._items)
        return new

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclass(slots=True, kw_only=True)
class _SipMessage:
    via: list[Via]
    from_: NameAddr
    to: NameAddr
    call_id: str
    cseq: CSeq
    max_forwards: int | None = None
    contact: list[NameAddr] = field(default_factory=list)
    route: list[NameAddr] = field(default_factory=list)
    record_route: list[NameAddr] = field(default_factory=list)
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def _start_line(self) -> str:
        raise SipError("abstract message")

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        return None if value is None else value.split(";", 1)[0].strip().lower()

    def serialize(self) -> bytes:
        """Wire form; Content-Length always written from ``body`` (§20.14)."""
        lines = [self._start_line()]
        lines.extend(f"Via: {v}" for v in self.via)
        lines.extend(f"Route: {r}" for r in self.route)
        lines.extend(f"Record-Route: {r}" for r in self.record_route)
        lines.append(f"From: {self.from_}")
        lines.append(f"To: {self.to}")
        lines.append(f"Call-ID: {self.call_id}")
        lines.append(f"CSeq: {self.cseq}")
        if self.max_forwards is not None:
            lines.append(f"Max-Forwards: {self.max_forwards}")
        lines.extend(f"Contact: {c}" for c in self.contact)
        lines.extend(f"{k}: {v}" for k, v in self.headers)
        lines.append(f"Content-Length: {len(self.body)}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body


@dataclass(slots=True, kw_only=True)
class SipRequest(_SipMessage):
    """A SIP request (RFC 3261 §7.1, §8.1.1)."""

    method: str
    uri: Uri

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {SIP_VERSION}"

    @property
    def branch(self) -> str | None:
        """Branch of the topmost Via: the transaction key (§17.2.3)."""
        return self.via[0].branch if self.via else None


@dataclass(slots=True, kw_only=True)
class SipResponse(_SipMessage):
    """A SIP response (RFC 3261 §7.2, §8.2.6)."""

    status: int
    reason: str = ""

    def _start_line(self) -> str:
        return f"{SIP_VERSION} {self.status} {self.reason}"


SipMessage = SipRequest | SipResponse


def make_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    contact: list[NameAddr] | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> SipResponse:
    """Build a response copying Via, From, To, Call-ID, CSeq (RFC 3261 §8.2.6.2).

    ``to_tag`` is added unless the To already has one or the status is 100
    (a 100 Trying carries no tag, §8.2.6.2).  Record-Route is copied into 1xx/2xx
    answers so the peer learns the route set (§12.1.1).
    """
    to = request.to
    if to_tag is not None and to.tag is None and status != 100:
        to = to.with_tag(to_tag)
    response = SipResponse(
        status=status,
        reason=REASON_PHRASES.get(status, "Unknown") if reason is None else reason,
        via=list(request.via),
        from_=request.from_,
        to=to,
        call_id=request.call_id,
        cseq=request.cseq,
        contact=list(contact or []),
        record_route=list(request.record_route) if 100 < status < 300 else [],
        headers=Headers(headers),
        body=body,
    )
    if status == 100 and "Timestamp" in request.headers:
        response.headers.add("Timestamp", request.headers.get("Timestamp") or "")
    return response


_SINGLE = ("From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length")


class _Collector:
    """Collects typed header values while parsing; remembers the first problem."""

    __slots__ = (
        "contact",
        "error",
        "headers",
        "record_route",
        "route",
        "single",
        "via",
    )

    def __init__(self) -> None:
        self.via: list[Via] = []
        self.single: dict[str, str] = {}
        self.contact: list[NameAddr] = []
        self.route: list[NameAddr] = []
        self.record_route: list[NameAddr] = []
        self.headers = Headers()
        self.error: SipError | None = None

    def fail(self, error: SipError) -> None:
        if self.error is None:
            self.error = error


def _parse_start_line(line: str, col: _Collector) -> tuple[str, Uri | None, int, str]:
    """Return (method, uri, status, reason); method "" for a response.

    A malformed request line is recorded, not raised, so that the headers can
    still be read and the request answered with 400 (RFC 4475 §3.1.2.6-3.1.2.10).
    """
    if line.startswith("SIP/"):
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if version.upper() != SIP_VERSION:
            col.fail(VersionNotSupportedError(f"unsupported version {version!r}"))
        if len(code) != 3 or not code.isdigit() or not 100 <= int(code) <= 699:
            raise SipParseError(f"bad status code {code[:20]!r}")
        return "", None, int(code), reason
    parts = line.split(" ")
    method = parts[0]
    if not TOKEN_RE.fullmatch(method):
        raise SipParseError(f"bad method {method[:40]!r}")
    if len(parts) != 3:
        col.fail(
            SipParseError(
                "request line is not 'Method SP Request-URI SP SIP-Version' (§7.1)"
            )
        )
        return method, None, 0, ""
    uri_text, version = parts[1], parts[2]
    uri: Uri | None = None
    try:
        uri = parse_uri(uri_text)
    except SipParseError as exc:
        col.fail(exc)
    if isinstance(uri, SipUri) and uri.headers:
        col.fail(
            SipParseError("escaped headers are not allowed in a Request-URI (§19.1.5)")
        )
    if version.upper() != SIP_VERSION:
        col.fail(VersionNotSupportedError(f"unsupported version {version[:20]!r}"))
    return method, uri, 0, ""


def _add_header(name: str, value: str, col: _Collector) -> None:
    key = _CANONICAL.get(name.lower())
    if key is None:
        if not TOKEN_RE.fullmatch(name):
            raise SipParseError(f"bad header name {name[:40]!r}")
        col.headers.add(name, value)
        return
    try:
        if key == "Via":
            for item in split_header_list(value):
                try:
                    col.via.append(Via.parse(item))
                except SipParseError as exc:  # keep the good ones to answer with
                    col.fail(exc)
        elif key in _SINGLE:
            if key in col.single:
                raise SipParseError(f"more than one {key} header")
            col.single[key] = value
        elif key == "Contact":
            col.contact.extend(
                NameAddr.parse(item) for item in split_header_list(value)
            )
        elif key == "Route":
            col.route.extend(NameAddr.parse(item) for item in split_header_list(value))
        elif key == "Record-Route":
            col.record_route.extend(
                NameAddr.parse(item) for item in split_header_list(value)
            )
        else:
            col.headers.add(key, value)
    except SipParseError as exc:
        col.fail(SipParseError(f"{key}: {exc.reason}"))


def _unfold(head: str) -> list[str]:
    lines = head.split("\r\n")
    if head.count("\n") != len(lines) - 1 or head.count("\r") != len(lines) - 1:
        raise SipParseError("bare CR or LF in the header section")
    out: list[str] = []
    for line in lines:
        if line and line[0] in " \t":
            if len(out) < 2:
                raise SipParseError("continuation line without a header")
            out[-1] = out[-1] + " " + line.strip()
        else:
            out.append(line)
    return out


def parse_message(
    data: bytes, *, stream: bool = False, max_size: int = MAX_MESSAGE_SIZE
) -> SipRequest | SipResponse:
    """Parse one SIP message; see the module docstring for the error contract."""
    if len(data) > max_size:
        raise MessageTooLargeError(f"message of {len(data)} bytes exceeds {max_size}")
    data = data.lstrip(b"\r\n")  # §7.5: ignore CRLFs before the start line
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise SipParseError("no empty line after the header section")
    head = data[:end].decode("utf-8", "surrogateescape")
    body = data[end + 4 :]
    lines = _unfold(head)
    col = _Collector()
    method, uri, status, reason = _parse_start_line(lines[0], col)
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError(f"header line without ':' {line[:40]!r}")
        _add_header(name.strip(), value.strip(), col)
    return _build(col, method, uri, status, reason, body, stream)


def _name_addr(text: str, col: _Collector) -> NameAddr:
    try:
        return NameAddr.parse(text)
    except SipParseError as exc:
        col.fail(exc)
        return UnparsedNameAddr(
            text=text, uri=AbsoluteUri(scheme="invalid", opaque="name-addr")
        )


def _build(
    col: _Collector,
    method: str,
    uri: Uri | None,
    status: int,
    reason: str,
    body: bytes,
    stream: bool,
) -> SipRequest | SipResponse:
    single = col.single
    missing = [n for n in ("From", "To", "Call-ID", "CSeq") if n not in single]
    if not col.via:
        missing.insert(0, "Via")
    if missing:
        raise col.error or SipParseError(
            f"missing mandatory header(s): {', '.join(missing)}"
        )
    from_ = _name_addr(single["From"], col)
    to = _name_addr(single["To"], col)
    try:
        cseq = CSeq.parse(single["CSeq"], strict=False)
        call_id = single["Call-ID"]
        if not call_id or " " in call_id or "\t" in call_id:
            raise SipParseError(f"bad Call-ID {call_id[:40]!r}")
    except SipParseError as exc:
        raise col.error or exc from None
    if cseq.seq > 2**31 - 1:
        col.fail(SipParseError(f"CSeq number out of range: {cseq.seq} (§8.1.1.5)"))
    max_forwards: int | None = None
    if "Max-Forwards" in single:
        text = single["Max-Forwards"]
        if not text.isdigit() or int(text) > 255:
            col.fail(SipParseError(f"bad Max-Forwards {text[:20]!r}"))
        else:
            max_forwards = int(text)
    if "Content-Length" in single:
        text = single["Content-Length"]
        if not text.isdigit() or len(text) > 9:
            col.fail(SipParseError(f"bad Content-Length {text[:20]!r}"))
        else:
            length = int(text)
            if len(body) < length:
                col.fail(SipParseError("body shorter than Content-Length (§18.3)"))
            body = body[:length]
    elif stream:
        col.fail(
            SipParseError("Content-Length is mandatory on stream transports (§18.3)")
        )
    common = {
        "via": col.via,
        "from_": from_,
        "to": to,
        "call_id": call_id,
        "cseq": cseq,
        "max_forwards": max_forwards,
        "contact": col.contact,
        "route": col.route,
        "record_route": col.record_route,
        "headers": col.headers,
        "body": body,
    }
    if not method:
        if col.error is not None:
            raise col.error
        return SipResponse(status=status, reason=reason, **common)  # type: ignore[arg-type]
    if cseq.method != method:
        col.fail(
            SipParseError(
                f"CSeq method {cseq.method!r} differs from {method!r} (§8.1.1.5)"
            )
        )
    if uri is None:
        # Only to carry the error response: the Request-URI is not copied into it.
        uri = AbsoluteUri(scheme="invalid", opaque="request-uri")
        col.fail(SipParseError("bad Request-URI"))
    request = SipRequest(method=method, uri=uri, **common)  # type: ignore[arg-type]
    if col.error is not None:
        col.error.request = request
        raise col.error
    return request
