"""Server side of SIP Digest authentication: challenges, verification and lock-out.

RFC 3261 §22.1-§22.4 and RFC 7616 §3.3-§3.5, for requests from the call center's own
phones (REGISTER, INVITE).  Sans-IO: the clock is the ``now`` parameter (seconds, any
monotonic origin) and password lookup is the caller's business — ``inspect`` says *whose*
secret is needed, the caller fetches it however it likes (sync or async), and ``verify``
takes the secret as data.

Public API:

* ``NonceSigner(key=…, lifetime=…)`` — nonces that carry their issue time, signed with
  HMAC-SHA-256, so they need no server-side table (RFC 7616 §3.3 suggests
  "time-stamp H(time-stamp ":" ETag ":" secret-data)").
* ``LockoutTable(max_failures=…, lockout_seconds=…)`` — failures per source address.
* ``StoredSecret.from_password(pw)`` / ``StoredSecret(ha1={"MD5": …, "SHA-256": …})``.
* ``DigestServer(realm=…, key=…, nonce_lifetime=…, algorithms=…, max_failures=…,
  lockout_seconds=…, lockout_per_user=…, uri_check=…)`` with ``inspect(...)`` →
  ``Accepted`` / ``Challenge`` / ``Rejected`` / ``SecretNeeded``, then
  ``verify(needed, secret, now=…)``; ``authenticate(..., lookup=…)`` does both with a
  synchronous lookup.

Decisions: a wrong password or an unknown user is a failure (re-challenged, counted for
lock-out); an expired or foreign nonce with a correct digest gets ``stale=true``; a
repeated (nonce, nc) gets a fresh stale challenge; a locked-out source gets 403 with
``retry_after``.  The nonce key should persist across restarts (a new key only turns
outstanding nonces stale, which clients retry silently).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from sipspeak.sip.digest import (
    Algorithm,
    DigestChallenge,
    DigestCredentials,
    DigestParseError,
    compute_ha1,
    compute_response,
)
from sipspeak.sip.errors import SipParseError
from sipspeak.sip.uri import SipUri, parse_uri

_NONCE_BYTES = 8 + 8 + 16  # issue time (ms), random, truncated HMAC
_CLOCK_SKEW = 1.0  # a nonce "issued" this far in the future is forged


# How the digest "uri" must match the Request-URI (RFC 7616 §3.4.6 "SHOULD" check):
# "exact" string equality; "host" the same scheme, host and port (phones and sipp that
# put "sip:host:port" in the digest while calling "sip:number@host:port"); "off".
UriCheck = Literal["exact", "host", "off"]


def _same_target(digest_uri: str, request_uri: str, mode: UriCheck) -> bool:
    if mode == "off" or digest_uri == request_uri:
        return True
    if mode == "exact":
        return False
    try:
        a, b = parse_uri(digest_uri), parse_uri(request_uri)
    except SipParseError:
        return False
    if not isinstance(a, SipUri) or not isinstance(b, SipUri):
        return str(a).lower() == str(b).lower()
    default = 5061 if a.scheme == "sips" else 5060
    return (
        a.scheme == b.scheme
        and a.host.lower() == b.host.lower()
        and (a.port or default) == (b.port or default)
    )


class NonceStatus(Enum):
    VALID = "valid"
    STALE = "stale"  # ours, but older than the lifetime: RFC 7616 §3.3 stale=true
    INVALID = "invalid"  # not ours (bad signature, wrong length, from the future)


class NonceSigner:
    """Issues and checks self-expiring nonces (RFC 7616 §3.3 "nonce", §5.4)."""

    def __init__(
        self,
        *,
        key: bytes,
        lifetime: float = 300.0,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if len(key) < 16:
            raise ValueError("nonce key must be at least 16 bytes")
        if lifetime <= 0:
            raise ValueError("nonce lifetime must be positive")
        self._key = key
        self.lifetime = lifetime
        self._random = random_bytes

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:16]

    def issue(self, now: float) -> str:
        stamp = max(0, int(now * 1000)).to_bytes(8, "big")
        body = stamp + self._random(8)
        return (
            base64.urlsafe_b64encode(body + self._mac(body)).decode("ascii").rstrip("=")
        )

    def issued_at(self, nonce: str) -> float | None:
        """Issue time of a nonce this signer made, or None if it is not one of ours."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return None
        if len(raw) != _NONCE_BYTES:
            return None
        body, mac = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        return int.from_bytes(body[:8], "big") / 1000.0

    def check(self, nonce: str, now: float) -> NonceStatus:
        issued = self.issued_at(nonce)
        if issued is None or issued > now + _CLOCK_SKEW:
            return NonceStatus.INVALID
        if now - issued > self.lifetime:
            return NonceStatus.STALE
        return NonceStatus.VALID


@dataclass(slots=True)
class _Failures:
    count: int
    first_at: float
    locked_until: float | None = None


class LockoutTable:
    """Counts authentication failures per source address and locks it out.

    ``max_failures`` failures within ``lockout_seconds`` of the first one lock the source
    for ``lockout_seconds``; a success clears the count.  Bounded to ``max_entries``
    sources (the oldest entry is dropped first) so a flood of addresses cannot grow it.
    """

    def __init__(
        self,
        *,
        max_failures: int = 5,
        lockout_seconds: float = 300.0,
        max_entries: int = 65536,
    ) -> None:
        if max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        if lockout_seconds <= 0:
            raise ValueError("lockout_seconds must be positive")
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self.max_entries = max_entries
        self._table: OrderedDict[str, _Failures] = OrderedDict()

    def _entry(self, source: str, now: float) -> _Failures | None:
        entry = self._table.get(source)
        if entry is None:
            return None
        if entry.locked_until is not None:
            if now >= entry.locked_until:
                del self._table[source]
                return None
        elif now - entry.first_at > self.lockout_seconds:
            del self._table[source]
            return None
        return entry

    def is_locked(self, source: str, now: float) -> bool:
        entry = self._entry(source, now)
        return entry is not None and entry.locked_until is not None

    def locked_until(self, source: str, now: float) -> float | None:
        entry = self._entry(source, now)
        return None if entry is None else entry.locked_until

    def record_failure(self, source: str, now: float) -> bool:
        """Count one failure; True when the source is (now) locked out."""
        entry = self._entry(source, now)
        if entry is None:
            entry = _Failures(count=0, first_at=now)
            self._table[source] = entry
            while len(self._table) > self.max_entries:
                self._table.popitem(last=False)
        entry.count += 1
        if entry.locked_until is None and entry.count >= self.max_failures:
            entry.locked_until = now + self.lockout_seconds
        return entry.locked_until is not None

    def record_success(self, source: str) -> None:
        self._table.pop(source, None)

    def failures(self, source: str, now: float) -> int:
        entry = self._entry(source, now)
        return 0 if entry is None else entry.count


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredSecret:
    """What the caller's lookup returns: a password, or HA1 per hash (RFC 7616 §3.4.2).

    HA1 is ``H(username ":" realm ":" password)`` keyed by ``"MD5"`` / ``"SHA-256"``; a
    store that keeps only HA1 values never holds plain passwords.
    """

    password: str | None = field(default=None, repr=False)
    ha1: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_password(cls, password: str) -> StoredSecret:
        return cls(password=password)

    def ha1_for(self, algorithm: Algorithm, username: str, realm: str) -> str | None:
        base = algorithm.removesuffix("-sess")
        if base in self.ha1:
            return self.ha1[base].lower()
        if self.password is not None:
            return compute_ha1(algorithm, username, realm, self.password)
        return None


# --- decisions -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted:
    """Credentials verified; ``username`` is the authenticated user."""

    username: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    """Answer with ``status`` (401 or 407) and one ``header`` field per value (RFC 3261 §22.1)."""

    status: int
    reason: str
    header: str
    values: tuple[str, ...]
    stale: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """Answer with ``status`` (403 while locked out, 400 for malformed credentials).

    ``retry_after`` (seconds) is set during a lock-out, for a ``Retry-After`` header.
    """

    status: int
    reason: str
    retry_after: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretNeeded:
    """Look up the secret of ``username`` and pass it to ``DigestServer.verify``."""

    username: str
    credentials: DigestCredentials
    method: str
    source: str
    proxy: bool
    nonce_status: NonceStatus
    body: bytes = b""


Decision = Accepted | Challenge | Rejected


class DigestServer:
    """Digest challenges and verification for one realm (RFC 3261 §22, RFC 7616).

    ``proxy=False`` uses 401 / ``WWW-Authenticate`` / ``Authorization`` (a registrar or
    UAS, RFC 3261 §22.2); ``proxy=True`` uses 407 / ``Proxy-Authenticate`` /
    ``Proxy-Authorization`` (RFC 3261 §22.3), which the call center uses for INVITEs.
    """

    def __init__(
        self,
        *,
        realm: str,
        key: bytes,
        nonce_lifetime: float = 300.0,
        algorithms: Sequence[Algorithm] = ("SHA-256", "MD5"),
        max_failures: int = 5,
        lockout_seconds: float = 300.0,
        uri_check: UriCheck = "host",
        max_tracked_nonces: int = 100_000,
        lockout_per_user: bool = False,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if not algorithms:
            raise ValueError("at least one algorithm is needed")
        self.realm = realm
        self.algorithms = tuple(algorithms)
        self.nonces = NonceSigner(
            key=key, lifetime=nonce_lifetime, random_bytes=random_bytes
        )
        self.lockout = LockoutTable(
            max_failures=max_failures, lockout_seconds=lockout_seconds
        )
        self.uri_check = uri_check
        self.max_tracked_nonces = max_tracked_nonces
        # Per source address by default; per (address, user) when many phones share one
        # office NAT address, so one misconfigured phone does not lock out the others.
        self.lockout_per_user = lockout_per_user
        # nonce -> (expiry, nonce counts seen); RFC 7616 §3.4: the server checks that
        # "nc" is not repeated, to stop replays of a captured request.
        self._seen: OrderedDict[str, tuple[float, set[int]]] = OrderedDict()

    def _lockout_key(self, source: str, username: str) -> str:
        return f"{source}|{username}" if self.lockout_per_user else source

    def _locked(self, source: str, now: float) -> Rejected:
        until = self.lockout.locked_until(source, now)
        wait = None if until is None else max(1, int(until - now + 0.999))
        return Rejected(
            status=403,
            reason="Forbidden (too many failed authentications)",
            retry_after=wait,
        )

    # -- building challenges -------------------------------------------------------

    def challenge(
        self, *, now: float, proxy: bool = False, stale: bool = False
    ) -> Challenge:
        """A fresh challenge: one header value per algorithm, strongest first (RFC 7616 §3.7)."""
        nonce = self.nonces.issue(now)
        values = tuple(
            str(
                DigestChallenge(
                    realm=self.realm,
                    nonce=nonce,
                    algorithm=alg,
                    qop=("auth",),
                    stale=stale,
                )
            )
            for alg in self.algorithms
        )
        if proxy:
            return Challenge(
                status=407,
                reason="Proxy Authentication Required",
                header="Proxy-Authenticate",
                values=values,
                stale=stale,
            )
        return Challenge(
            status=401,
            reason="Unauthorized",
            header="WWW-Authenticate",
            values=values,
            stale=stale,
        )

    # -- checking requests -----------------------------------------------------------

    def inspect(
        self,
        *,
        method: str,
        uri: str,
        authorization: Sequence[str],
        source: str,
        now: float,
        proxy: bool = False,
        body: bytes = b"",
    ) -> Decision | SecretNeeded:
        """First step for a request: ``authorization`` holds the values of its
        ``Authorization`` (or, with ``proxy``, ``Proxy-Authorization``) header fields.

        Returns a final decision, or ``SecretNeeded`` naming the user whose secret the
        caller must fetch and hand to ``verify``.
        """
        if not self.lockout_per_user and self.lockout.is_locked(source, now):
            return self._locked(source, now)
        credentials: DigestCredentials | None = None
        for value in authorization:
            try:
                parsed = DigestCredentials.parse(value)
            except DigestParseError as exc:
                if (
                    value.lstrip()[:6].lower() == "digest"
                    and f'"{self.realm}"' in value
                ):
                    return Rejected(status=400, reason=f"Bad Request ({exc.reason})")
                continue
            # RFC 3261 §22.3: credentials for other realms belong to other elements.
            if parsed.realm == self.realm:
                credentials = parsed
                break
        if credentials is None:
            return self.challenge(now=now, proxy=proxy)
        key = self._lockout_key(source, credentials.username)
        if self.lockout.is_locked(key, now):
            return self._locked(key, now)
        if credentials.algorithm not in self.algorithms or credentials.userhash:
            return self.challenge(now=now, proxy=proxy)
        # RFC 7616 §3.4.6: the server SHOULD check that "uri" names the request target.
        if not _same_target(credentials.uri, uri, self.uri_check):
            return Rejected(
                status=400, reason="Bad Request (digest uri does not match)"
            )
        return SecretNeeded(
            username=credentials.username,
            credentials=credentials,
            method=method,
            source=source,
            proxy=proxy,
            nonce_status=self.nonces.check(credentials.nonce, now),
            body=body,
        )

    def verify(
        self, needed: SecretNeeded, secret: StoredSecret | None, *, now: float
    ) -> Decision:
        """Second step: compare the response with the one computed from ``secret``.

        ``secret`` is ``None`` for an unknown user, which is answered exactly like a wrong
        password so that user names cannot be probed.
        """
        creds = needed.credentials
        source = self._lockout_key(needed.source, creds.username)
        if self.lockout.is_locked(source, now):
            return self._locked(source, now)
        ha1 = (
            None
            if secret is None
            else secret.ha1_for(creds.algorithm, creds.username, self.realm)
        )
        matches = False
        if ha1 is not None:
            expected = compute_response(
                algorithm=creds.algorithm,
                ha1=ha1,
                nonce=creds.nonce,
                method=needed.method,
                uri=creds.uri,
                qop=creds.qop,
                nc=creds.nc,
                cnonce=creds.cnonce,
                body=needed.body,
            )
            matches = hmac.compare_digest(expected, creds.response)
        if not matches:
            if self.lockout.record_failure(source, now):
                return self._locked(source, now)
            return self.challenge(now=now, proxy=needed.proxy)
        if needed.nonce_status is not NonceStatus.VALID:
            # RFC 7616 §3.3: stale=true when "the nonce value is not valid" but the
            # request digest is, so the client retries without asking the user.
            return self.challenge(now=now, proxy=needed.proxy, stale=True)
        if not self._first_use(creds, now):
            return self.challenge(now=now, proxy=needed.proxy, stale=True)
        self.lockout.record_success(source)
        return Accepted(username=creds.username)

    def authenticate(
        self,
        *,
        method: str,
        uri: str,
        authorization: Sequence[str],
        source: str,
        now: float,
        lookup: Callable[[str], StoredSecret | None],
        proxy: bool = False,
        body: bytes = b"",
    ) -> Decision:
        """``inspect`` then ``verify`` with a synchronous ``lookup(username)``."""
        step = self.inspect(
            method=method,
            uri=uri,
            authorization=authorization,
            source=source,
            now=now,
            proxy=proxy,
            body=body,
        )
        if not isinstance(step, SecretNeeded):
            return step
        return self.verify(step, lookup(step.username), now=now)

    def _first_use(self, creds: DigestCredentials, now: float) -> bool:
        """Record (nonce, nc); False if it was used before (a replay)."""
        while self._seen:
            nonce, (expiry, _) = next(iter(self._seen.items()))
            if expiry > now and len(self._seen) <= self.max_tracked_nonces:
                break
            del self._seen[nonce]
        issued = self.nonces.issued_at(creds.nonce)
        expiry = (issued if issued is not None else now) + self.nonces.lifetime
        entry = self._seen.get(creds.nonce)
        if entry is None:
            entry = (expiry, set())
            self._seen[creds.nonce] = entry
        # Without qop there is no nc (RFC 2069 form): such a nonce is good for one use.
        count = -1 if creds.nc is None else creds.nc
        if count in entry[1]:
            return False
        entry[1].add(count)
        return True
