"""HTTP Digest authentication for SIP: values, hashes and the client side.

RFC 3261 §22 (SIP use of HTTP authentication), RFC 2617 §3 and RFC 7616 (Digest with
SHA-256, ``-sess`` variants, ``userhash``).  Sans-IO: everything works on header *values*
(strings), never on sockets or clocks.

Public API:

* ``DigestChallenge.parse(value)`` / ``str(challenge)`` — a ``WWW-Authenticate`` or
  ``Proxy-Authenticate`` value (RFC 7616 §3.3).
* ``DigestCredentials.parse(value)`` / ``str(credentials)`` — an ``Authorization`` or
  ``Proxy-Authorization`` value (RFC 7616 §3.4).
* ``compute_ha1``, ``compute_response`` — the hash chain of RFC 7616 §3.4.1-§3.4.3.
* ``DigestClient(username=…, password=…)`` and ``DigestClient.begin(method, uri)`` →
  ``DigestAttempt`` whose ``on_challenge(status, values)`` answers a 401 / 407 with the
  header fields to add to the re-sent request, or ``None`` when it gives up.
* ``AuthHeader`` — ``(name, value)`` of one header field to add.
* ``RequestAuthenticator(client)`` — the ``authenticate(request, response)`` hook of an
  INVITE session: one ``DigestAttempt`` per (Call-ID, method), so re-sent requests share
  the loop protection.

Errors: ``DigestParseError`` (a ``SipParseError``, status hint 400) for malformed values.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple, get_args

from sipspeak.sip.errors import SipParseError

if TYPE_CHECKING:
    from sipspeak.sip.message import SipRequest, SipResponse

Algorithm = Literal["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"]
ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)
Qop = Literal["auth", "auth-int"]

# RFC 7616 §3.7: a client SHOULD use the strongest algorithm it understands.
_PREFERENCE: dict[str, int] = {"SHA-256": 4, "SHA-256-sess": 3, "MD5": 2, "MD5-sess": 1}
_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda data: hashlib.md5(data, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
}
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_NC_RE = re.compile(r"[0-9A-Fa-f]{8}")
_MAX_VALUE = 8192  # a header value longer than this is hostile, not a challenge


class DigestParseError(SipParseError):
    """A malformed Digest challenge or credentials value (400 Bad Request)."""


class AuthHeader(NamedTuple):
    """One header field to add to a request: ``Authorization`` or ``Proxy-Authorization``."""

    name: str
    value: str


def quote(text: str) -> str:
    """A quoted-string (RFC 3261 §25.1) with ``"`` and ``\\`` escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_auth_params(text: str) -> tuple[str, dict[str, str]]:
    """Split ``scheme name=value, name="quoted", …`` into the scheme and a parameter dict.

    RFC 3261 §25.1 ``challenge`` / ``credentials``: parameter names are
    case-insensitive (returned lower-cased), values are tokens or quoted strings
    (returned unescaped).  Duplicate names are an error (RFC 7616 §3.3).
    """
    if len(text) > _MAX_VALUE:
        raise DigestParseError("authentication header value too long")
    text = text.strip()
    match = _TOKEN_RE.match(text)
    if match is None:
        raise DigestParseError(f"missing authentication scheme in {text!r}")
    scheme = match.group(0)
    pos = match.end()
    params: dict[str, str] = {}
    n = len(text)
    if pos < n and text[pos] not in " \t":
        raise DigestParseError(f"bad authentication scheme in {text!r}")
    expect_comma = False
    while True:
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        if pos >= n:
            break
        if expect_comma:
            if text[pos] != ",":
                raise DigestParseError(f"expected ',' at {pos} in {text!r}")
            pos += 1
            expect_comma = False
            continue
        if text[pos] == ",":  # RFC 7230 #rule: empty list elements are allowed
            pos += 1
            continue
        name_match = _TOKEN_RE.match(text, pos)
        if name_match is None:
            raise DigestParseError(f"bad parameter name at {pos} in {text!r}")
        name = name_match.group(0).lower()
        pos = name_match.end()
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos >= n or text[pos] != "=":
            raise DigestParseError(f"parameter {name!r} has no value")
        pos += 1
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] == '"':
            value, pos = _read_quoted(text, pos)
        else:
            value_match = _TOKEN_RE.match(text, pos)
            if value_match is None:
                raise DigestParseError(f"bad value of parameter {name!r}")
            value = value_match.group(0)
            pos = value_match.end()
        if name in params:
            raise DigestParseError(f"duplicate parameter {name!r}")
        params[name] = value
        expect_comma = True
    return scheme, params


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            out.append(text[i + 1])
            i += 2
        elif ch == '"':
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise DigestParseError("unterminated quoted string")


def _digest_params(value: str) -> dict[str, str]:
    scheme, params = parse_auth_params(value)
    if scheme.lower() != "digest":
        raise DigestParseError(f"not a Digest value: scheme {scheme!r}")
    return params


def _algorithm(params: dict[str, str]) -> Algorithm:
    # RFC 7616 §3.3: "If this is not present, it is assumed to be MD5."
    raw = params.get("algorithm", "MD5")
    for known in ALGORITHMS:
        if known.lower() == raw.lower():
            return known
    raise DigestParseError(f"unsupported digest algorithm {raw!r}")


def _require(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if value is None:
        raise DigestParseError(f"Digest value lacks {name!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestChallenge:
    """One Digest challenge (RFC 7616 §3.3; RFC 3261 §22.1, §20.44, §20.27)."""

    realm: str
    nonce: str
    algorithm: Algorithm = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    domain: str | None = None
    userhash: bool = False

    @classmethod
    def parse(cls, value: str) -> DigestChallenge:
        """Parse a ``WWW-Authenticate`` / ``Proxy-Authenticate`` value; unknown params are ignored."""
        params = _digest_params(value)
        qop = tuple(
            q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()
        )
        return cls(
            realm=_require(params, "realm"),
            nonce=_require(params, "nonce"),
            algorithm=_algorithm(params),
            qop=qop,
            opaque=params.get("opaque"),
            # RFC 7616 §3.3: stale is case-insensitive "true"; anything else is false.
            stale=params.get("stale", "").lower() == "true",
            domain=params.get("domain"),
            userhash=params.get("userhash", "").lower() == "true",
        )

    def __str__(self) -> str:
        parts = [f"realm={quote(self.realm)}"]
        if self.domain is not None:
            parts.append(f"domain={quote(self.domain)}")
        parts.append(f"nonce={quote(self.nonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append(f"qop={quote(','.join(self.qop))}")
        if self.userhash:
            parts.append("userhash=true")
        return "Digest " + ", ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestCredentials:
    """An ``Authorization`` / ``Proxy-Authorization`` Digest value (RFC 7616 §3.4; RFC 3261 §22.2)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: Algorithm = "MD5"
    qop: Qop | None = None
    nc: int | None = None
    cnonce: str | None = None
    opaque: str | None = None
    userhash: bool = False
    # Whether the wire value carried ``algorithm=``; kept so str() round-trips.
    algorithm_explicit: bool = field(default=True, compare=False)

    @classmethod
    def parse(cls, value: str) -> DigestCredentials:
        params = _digest_params(value)
        qop_raw = params.get("qop")
        qop: Qop | None
        if qop_raw is None:
            qop = None
        elif qop_raw.lower() in ("auth", "auth-int"):
            qop = "auth" if qop_raw.lower() == "auth" else "auth-int"
        else:
            raise DigestParseError(f"unknown qop {qop_raw!r}")
        nc: int | None = None
        cnonce = params.get("cnonce")
        if qop is not None:
            # RFC 7616 §3.4: cnonce and nc MUST be sent when qop is present.
            nc_raw = _require(params, "nc")
            if not _NC_RE.fullmatch(nc_raw):
                raise DigestParseError(f"bad nc {nc_raw!r}: 8 hex digits expected")
            nc = int(nc_raw, 16)
            cnonce = _require(params, "cnonce")
        response = _require(params, "response")
        if not re.fullmatch(r"[0-9A-Fa-f]+", response):
            raise DigestParseError("response is not hexadecimal")
        return cls(
            username=_require(params, "username"),
            realm=_require(params, "realm"),
            nonce=_require(params, "nonce"),
            uri=_require(params, "uri"),
            response=response.lower(),
            algorithm=_algorithm(params),
            qop=qop,
            nc=nc,
            cnonce=cnonce,
            opaque=params.get("opaque"),
            userhash=params.get("userhash", "").lower() == "true",
            algorithm_explicit="algorithm" in params,
        )

    def __str__(self) -> str:
        parts = [
            f"username={quote(self.username)}",
            f"realm={quote(self.realm)}",
            f"nonce={quote(self.nonce)}",
            f"uri={quote(self.uri)}",
            f"response={quote(self.response)}",
        ]
        if self.algorithm_explicit:
            parts.append(f"algorithm={self.algorithm}")
        if self.cnonce is not None:
            parts.append(f"cnonce={quote(self.cnonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        if self.qop is not None and self.nc is not None:
            parts.append(f"qop={self.qop}")
            parts.append(f"nc={self.nc:08x}")
        if self.userhash:
            parts.append("userhash=true")
        return "Digest " + ", ".join(parts)


def hash_hex(algorithm: Algorithm, data: str | bytes) -> str:
    """H(data) of RFC 7616 §3.4.1 as lower-case hex (``-sess`` uses the same H)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return _HASHES[algorithm.removesuffix("-sess")](raw)


def compute_ha1(algorithm: Algorithm, username: str, realm: str, password: str) -> str:
    """``H(username ":" realm ":" password)`` — what a server may store instead of the password."""
    return hash_hex(algorithm, f"{username}:{realm}:{password}")


def compute_userhash(algorithm: Algorithm, username: str, realm: str) -> str:
    """RFC 7616 §3.4.4: ``username = H(unq(username) ":" unq(realm))``."""
    return hash_hex(algorithm, f"{username}:{realm}")


def compute_response(
    *,
    algorithm: Algorithm,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    qop: Qop | None = None,
    nc: int | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """The ``response`` value (RFC 7616 §3.4.1-§3.4.3, RFC 2617 §3.2.2).

    ``ha1`` is ``H(user:realm:password)``; for ``-sess`` algorithms it is combined with
    the nonce and cnonce here.  Without ``qop`` this is the RFC 2069 form that
    RFC 3261 §22.4 keeps for backward compatibility.
    """
    if algorithm.endswith("-sess"):
        if cnonce is None:
            raise ValueError("-sess algorithms need a cnonce")
        ha1 = hash_hex(algorithm, f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        ha2 = hash_hex(algorithm, f"{method}:{uri}:{hash_hex(algorithm, body)}")
    else:
        ha2 = hash_hex(algorithm, f"{method}:{uri}")
    if qop is None:
        return hash_hex(algorithm, f"{ha1}:{nonce}:{ha2}")
    if nc is None or cnonce is None:
        raise ValueError("qop needs nc and cnonce")
    return hash_hex(algorithm, f"{ha1}:{nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}")


def _header_names(status: int) -> tuple[str, str]:
    """(challenge header, credentials header) for a 401 or 407 (RFC 3261 §22.2, §22.3)."""
    if status == 401:
        return "WWW-Authenticate", "Authorization"
    if status == 407:
        return "Proxy-Authenticate", "Proxy-Authorization"
    raise ValueError(f"status {status} is not an authentication challenge")


@dataclass(slots=True)
class _RealmState:
    """What the client remembers about one realm: the challenge and the nonce count."""

    challenge: DigestChallenge
    header: str
    nc: int = 0


def _pick(challenges: Iterable[DigestChallenge]) -> dict[str, DigestChallenge]:
    """The strongest supported challenge per realm.

    RFC 7616 §3.7 lets a client follow the server's order "unless a local policy
    dictates otherwise"; ours is to prefer SHA-256 whatever the order, so a server that
    lists MD5 first for old phones still gets SHA-256 from us.
    """
    best: dict[str, DigestChallenge] = {}
    for challenge in challenges:
        if challenge.qop and not {"auth", "auth-int"} & set(challenge.qop):
            continue  # only qop values we do not know: cannot answer this one
        current = best.get(challenge.realm)
        if (
            current is None
            or _PREFERENCE[challenge.algorithm] > _PREFERENCE[current.algorithm]
        ):
            best[challenge.realm] = challenge
    return best


class DigestClient:
    """Client credentials and the nonces learned from challenges (RFC 3261 §22.2-§22.3).

    One client serves many requests (a trunk's REGISTER refreshes and INVITEs): the last
    challenge per realm is remembered, so later requests can be authorised pre-emptively
    with an incremented ``nc`` (RFC 7616 §3.4, RFC 3261 §22.3).
    """

    def __init__(
        self,
        *,
        username: str,
        password: str,
        cnonce_factory: Callable[[], str] | None = None,
        max_stale_retries: int = 2,
    ) -> None:
        self.username = username
        self._password = password
        self._cnonce = cnonce_factory or (lambda: secrets.token_hex(12))
        self.max_stale_retries = max_stale_retries
        self._realms: dict[str, _RealmState] = {}

    def begin(self, method: str, uri: str, body: bytes = b"") -> DigestAttempt:
        """Start authorising one request (and the re-sends it takes)."""
        return DigestAttempt(self, method=method, uri=uri, body=body)

    def forget(self) -> None:
        """Drop remembered nonces (for example after the password changed)."""
        self._realms.clear()

    def _credentials(
        self, state: _RealmState, method: str, uri: str, body: bytes
    ) -> AuthHeader:
        challenge = state.challenge
        qop: Qop | None = None
        if challenge.qop:
            # RFC 7616 §3.4: prefer auth; auth-int only when it is all the server offers.
            qop = "auth" if "auth" in challenge.qop else "auth-int"
        state.nc += 1
        nc = state.nc if qop is not None else None
        cnonce = (
            self._cnonce()
            if qop is not None or challenge.algorithm.endswith("-sess")
            else None
        )
        ha1 = compute_ha1(
            challenge.algorithm, self.username, challenge.realm, self._password
        )
        response = compute_response(
            algorithm=challenge.algorithm,
            ha1=ha1,
            nonce=challenge.nonce,
            method=method,
            uri=uri,
            qop=qop,
            nc=nc,
            cnonce=cnonce,
            body=body,
        )
        username = self.username
        if challenge.userhash:
            username = compute_userhash(
                challenge.algorithm, self.username, challenge.realm
            )
        credentials = DigestCredentials(
            username=username,
            realm=challenge.realm,
            nonce=challenge.nonce,
            uri=uri,
            response=response,
            algorithm=challenge.algorithm,
            qop=qop,
            nc=nc,
            cnonce=cnonce,
            opaque=challenge.opaque,
            userhash=challenge.userhash,
        )
        return AuthHeader(state.header, str(credentials))


class DigestAttempt:
    """Authorisation of one request through its 401 / 407 re-sends.

    Loop protection (RFC 3261 §22.2: "the UAC SHOULD NOT re-attempt requests with the
    credentials that have just been rejected"): a realm that was answered once and
    challenges again without ``stale=true``, or with the very nonce that was answered,
    means the credentials are wrong, so the attempt gives up.  ``stale=true`` with a fresh
    nonce is retried at most ``max_stale_retries`` times.
    """

    def __init__(
        self, client: DigestClient, *, method: str, uri: str, body: bytes
    ) -> None:
        self._client = client
        self.method = method
        self.uri = uri
        self.body = body
        self._answered: dict[str, str] = {}  # realm -> nonce answered in this attempt
        # Realms answered pre-emptively with a remembered nonce: the server may have
        # forgotten that nonce, so their first challenge is not a rejection.
        self._preemptive: set[str] = set()
        self._stale_retries = 0
        self.failure_reason: str | None = None

    def preemptive(self) -> list[AuthHeader]:
        """Credentials for realms already known, with the next ``nc`` (may be empty)."""
        headers = []
        for realm, state in self._client._realms.items():
            self._preemptive.add(realm)
            headers.append(
                self._client._credentials(state, self.method, self.uri, self.body)
            )
        return headers

    def on_challenge(
        self, status: int, values: Sequence[str]
    ) -> list[AuthHeader] | None:
        """Answer a 401 (``WWW-Authenticate`` values) or 407 (``Proxy-Authenticate`` values).

        Returns the header fields for the re-sent request (its CSeq is the caller's job,
        RFC 3261 §22.2), or ``None`` with ``failure_reason`` set when it gives up.
        Values that are not Digest or do not parse are skipped; none usable → give up.
        """
        _, credentials_header = _header_names(status)
        parsed: list[DigestChallenge] = []
        for value in values:
            try:
                parsed.append(DigestChallenge.parse(value))
            except DigestParseError:
                continue
        chosen = _pick(parsed)
        if not chosen:
            self.failure_reason = f"{status} without a usable Digest challenge"
            return None
        for realm, challenge in chosen.items():
            previous = self._answered.get(realm)
            if previous is None:
                self._preemptive.discard(realm)
                continue
            if challenge.nonce == previous or not challenge.stale:
                self.failure_reason = f"credentials rejected for realm {realm!r}"
                return None
            self._stale_retries += 1
            if self._stale_retries > self._client.max_stale_retries:
                self.failure_reason = f"too many stale nonces from realm {realm!r}"
                return None
        headers = []
        for realm, challenge in chosen.items():
            state = _RealmState(challenge=challenge, header=credentials_header)
            self._client._realms[realm] = state
            self._answered[realm] = challenge.nonce
            headers.append(
                self._client._credentials(state, self.method, self.uri, self.body)
            )
        return headers


class RequestAuthenticator:
    """Answers 401 / 407 for whole SIP requests (RFC 3261 §22.2, §22.3).

    Call it with the request that was challenged and the response; it returns the
    ``(name, value)`` header fields for the re-sent request, or ``None`` to give up.
    Requests are told apart by (Call-ID, method): a re-sent INVITE keeps its Call-ID
    (§22.2), so its second challenge meets the same loop protection.
    """

    def __init__(self, client: DigestClient, *, max_tracked: int = 1024) -> None:
        self.client = client
        self.max_tracked = max_tracked
        self._attempts: OrderedDict[tuple[str, str], DigestAttempt] = OrderedDict()

    def __call__(
        self, request: SipRequest, response: SipResponse
    ) -> list[tuple[str, str]] | None:
        if response.status not in (401, 407):
            return None
        key = (request.call_id, request.method)
        attempt = self._attempts.get(key)
        if attempt is None:
            attempt = self.client.begin(request.method, str(request.uri), request.body)
            self._attempts[key] = attempt
            while len(self._attempts) > self.max_tracked:
                self._attempts.popitem(last=False)
        challenge_header, _ = _header_names(response.status)
        headers = attempt.on_challenge(
            response.status, response.headers.get_all(challenge_header)
        )
        if headers is None:
            self._attempts.pop(key, None)
            return None
        return [(h.name, h.value) for h in headers]
