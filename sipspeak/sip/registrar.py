"""Registrar: the location service of the call center's own phones (RFC 3261 §10.3).

Sans-IO binding table: every method takes ``now`` (seconds, the shell's monotonic clock)
and nothing here reads a clock or arms a timer.  ``next_expiry()`` is the earliest
deadline; the shell calls ``expire(now)`` when it passes.

An *extension* is the user part of the address-of-record (``sip:101@pbx`` → ``101``).

Public API:

* ``Registrar(min_expires=…, max_expires=…, default_expires=…, max_contacts=…)``
* ``Registrar.register(extension=…, contacts=…, expires=…, call_id=…, cseq=…, now=…,
  source=…) -> RegisterResult`` — §10.3 steps 6-8 on typed values.
* ``Registrar.handle_request(request, *, extension, now, source) -> RegisterResult`` —
  the same from a parsed ``SipRequest``; ``RegisterResult.response(request)`` builds the
  ``SipResponse``.
* ``lookup(extension, now)`` → live ``Binding`` s, highest q first; ``bindings(now)`` →
  all of them per extension.
* ``expire(now)`` → events of extensions that went offline; ``next_expiry()``.
* ``restore(bindings, now)`` → puts back bindings kept by the shell across a restart.
* Events: ``ExtensionOnline`` / ``ExtensionOffline`` (frozen dataclasses).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from enum import Enum
from urllib.parse import unquote

from sipspeak.sip.events import Address
from sipspeak.sip.headers import NameAddr
from sipspeak.sip.message import REASON_PHRASES, SipRequest, SipResponse, make_response
from sipspeak.sip.uri import SipUri, Uri

# RFC 3261 §20.19 / §20.37: expires is delta-seconds up to 2**32-1.
_MAX_DELTA = 2**32 - 1
# RFC 3261 §10.2.1.1: "a server SHOULD use 3600 seconds" when the client gave none.
DEFAULT_EXPIRES = 3600
# Parameters whose presence in one URI but not the other makes them differ (§19.1.4).
_STRICT_URI_PARAMS = ("user", "ttl", "method", "maddr", "transport")


class OfflineReason(Enum):
    UNREGISTERED = "unregistered"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """One contact bound to an extension (RFC 3261 §10.3 step 7)."""

    extension: str
    contact: NameAddr  # as registered, minus ;expires (re-added in responses)
    expires_at: float
    q: Decimal | None
    call_id: str
    cseq: int
    # Where the REGISTER came from (received / rport, and the TCP or WebSocket
    # connection): requests to a phone behind NAT go there, not to its Contact.
    source: Address | None = None
    user_agent: str | None = None  # the phone's User-Agent, for the admin UI

    @property
    def uri(self) -> Uri:
        return self.contact.uri

    def expires_in(self, now: float) -> int:
        """Whole seconds left, never negative (for ``;expires=`` in the 200)."""
        return max(0, int(self.expires_at - now + 0.5))


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionOnline:
    """The extension had no binding and now has at least one."""

    extension: str
    contacts: tuple[Binding, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionOffline:
    """The extension's last binding was removed (unregister) or expired."""

    extension: str
    reason: OfflineReason


RegistrarEvent = ExtensionOnline | ExtensionOffline


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterResult:
    """What to answer to a REGISTER, and the events the update caused.

    For a 200, ``contacts`` lists every current binding with ``;expires=`` (§10.3 step 8).
    """

    status: int
    reason: str
    contacts: tuple[NameAddr, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    events: tuple[RegistrarEvent, ...] = ()

    def response(
        self, request: SipRequest, *, to_tag: str | None = None
    ) -> SipResponse:
        """A response for ``request`` carrying this result (RFC 3261 §8.2.6, §10.3)."""
        return make_response(
            request,
            self.status,
            self.reason,
            to_tag=to_tag,
            contact=list(self.contacts),
            headers=self.headers,
        )


def _result(status: int, detail: str | None = None, **kw: object) -> RegisterResult:
    reason = REASON_PHRASES.get(status, "Unknown")
    if detail:
        reason = f"{reason} ({detail})" if status != 200 else reason
    return RegisterResult(status=status, reason=reason, **kw)  # type: ignore[arg-type]


def _param_value_equal(a: str | None, b: str | None) -> bool:
    return (a or "").lower() == (b or "").lower()


def same_uri(a: Uri, b: Uri) -> bool:
    """URI equality of RFC 3261 §19.1.4 (used to match a Contact to a binding)."""
    if not isinstance(a, SipUri) or not isinstance(b, SipUri):
        return str(a).lower() == str(b).lower()
    if a.scheme != b.scheme or a.port != b.port or a.host.lower() != b.host.lower():
        return False
    # userinfo is case-sensitive, compared after %-unescaping.
    if a.user_unescaped != b.user_unescaped:
        return False
    if (a.password and unquote(a.password)) != (b.password and unquote(b.password)):
        return False
    a_params = {k.lower(): v for k, v in a.parameters}
    b_params = {k.lower(): v for k, v in b.parameters}
    for name in set(a_params) | set(b_params):
        both = name in a_params and name in b_params
        if not both and name in _STRICT_URI_PARAMS:
            return False
        if both and not _param_value_equal(a_params[name], b_params[name]):
            return False
    return True


def _parse_q(value: str | None) -> Decimal | None:
    """RFC 3261 §20.10 qvalue: ``0[.ddd]`` or ``1[.000]``; None if absent."""
    if value is None:
        return None
    try:
        q = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"bad q value {value!r}") from None
    if not q.is_finite() or not Decimal(0) <= q <= Decimal(1) or len(value) > 5:
        raise ValueError(f"q value out of range: {value!r}")
    return q


def _parse_delta(value: str | None) -> int | None:
    """A delta-seconds value; malformed → None (treated as absent, §20.19 says 3600)."""
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit():
        return None
    return min(int(value), _MAX_DELTA)


class Registrar:
    """Bindings per extension with expiry, refresh and removal (RFC 3261 §10.3)."""

    def __init__(
        self,
        *,
        min_expires: int = 60,
        max_expires: int = 7200,
        default_expires: int = DEFAULT_EXPIRES,
        max_contacts: int = 10,
    ) -> None:
        if not 0 < min_expires <= max_expires or default_expires < min_expires:
            raise ValueError("need 0 < min_expires <= max_expires, default >= min")
        if max_contacts < 1:
            raise ValueError("max_contacts must be at least 1")
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self.max_contacts = max_contacts
        self._bindings: dict[str, list[Binding]] = {}

    # -- queries -----------------------------------------------------------------

    def lookup(self, extension: str, now: float) -> list[Binding]:
        """Live bindings of ``extension``, highest q first (RFC 3261 §16.6 target order)."""
        live = [b for b in self._bindings.get(extension, ()) if b.expires_at > now]
        # A contact without q ranks as 1.0 here: most phones omit it.
        return sorted(
            live, key=lambda b: b.q if b.q is not None else Decimal(1), reverse=True
        )

    def is_online(self, extension: str, now: float) -> bool:
        return bool(self.lookup(extension, now))

    def bindings(self, now: float) -> dict[str, list[Binding]]:
        """Every live binding per extension (the admin UI's phone list)."""
        table = {ext: self.lookup(ext, now) for ext in sorted(self._bindings)}
        return {ext: live for ext, live in table.items() if live}

    def extensions(self, now: float) -> list[str]:
        """Extensions that have at least one live binding."""
        return sorted(ext for ext in self._bindings if self.is_online(ext, now))

    def next_expiry(self) -> float | None:
        """Earliest binding expiry: the deadline for the next ``expire`` call."""
        deadlines = [b.expires_at for bs in self._bindings.values() for b in bs]
        return min(deadlines, default=None)

    # -- updates -----------------------------------------------------------------

    def expire(self, now: float) -> list[RegistrarEvent]:
        """Drop bindings whose time is up; events for extensions that went offline."""
        events: list[RegistrarEvent] = []
        for extension in list(self._bindings):
            kept = [b for b in self._bindings[extension] if b.expires_at > now]
            if kept:
                self._bindings[extension] = kept
            else:
                del self._bindings[extension]
                events.append(
                    ExtensionOffline(extension=extension, reason=OfflineReason.EXPIRED)
                )
        return events

    def restore(self, bindings: Sequence[Binding], now: float) -> list[RegistrarEvent]:
        """Put back bindings kept across a restart (their ``expires_at`` already on this
        clock); expired ones and those of an extension that registered meanwhile are left
        out, and at most ``max_contacts`` per extension are taken.  Returns an
        ``ExtensionOnline`` per extension that came back."""
        restored: dict[str, list[Binding]] = {}
        for binding in bindings:
            if binding.expires_at <= now or self.lookup(binding.extension, now):
                continue
            own = restored.setdefault(binding.extension, [])
            if len(own) < self.max_contacts and not any(
                same_uri(b.uri, binding.uri) for b in own
            ):
                own.append(binding)
        for extension, own in restored.items():
            self._bindings[extension] = own
        return [
            ExtensionOnline(extension=extension, contacts=tuple(own))
            for extension, own in sorted(restored.items())
        ]

    def handle_request(
        self,
        request: SipRequest,
        *,
        extension: str,
        now: float,
        source: Address | None = None,
    ) -> RegisterResult:
        """§10.3 steps 6-8 for an already authenticated and authorised REGISTER."""
        return self.register(
            extension=extension,
            contacts=request.contact,
            expires=request.headers.get("Expires"),
            call_id=request.call_id,
            cseq=request.cseq.seq,
            now=now,
            source=source,
            user_agent=request.headers.get("User-Agent"),
        )

    def register(
        self,
        *,
        extension: str,
        contacts: Sequence[NameAddr],
        expires: str | int | None,
        call_id: str,
        cseq: int,
        now: float,
        source: Address | None = None,
        user_agent: str | None = None,
    ) -> RegisterResult:
        """Apply one REGISTER (RFC 3261 §10.3 steps 6-8); all-or-nothing (step 7)."""
        header_expires = expires if isinstance(expires, int) else _parse_delta(expires)
        stored_bindings = self._bindings.get(extension, [])
        current = [b for b in stored_bindings if b.expires_at > now]
        was_online = bool(current)
        # Bindings that lapsed before ``expire`` ran: report them on commit.
        lapsed: tuple[RegistrarEvent, ...] = ()
        if stored_bindings and not current:
            lapsed = (
                ExtensionOffline(extension=extension, reason=OfflineReason.EXPIRED),
            )

        if any(c.is_wildcard for c in contacts):
            # §10.3 step 6: "If the request has additional Contact fields or an
            # expiration time other than zero, the request is invalid, and the server
            # MUST return a 400 (Invalid Request)".
            if len(contacts) != 1 or header_expires != 0:
                return _result(400, "Contact: * needs Expires: 0 and no other Contact")
            for binding in current:
                if binding.call_id == call_id and cseq <= binding.cseq:
                    return _result(500, "CSeq out of order")
            self._bindings.pop(extension, None)
            events: tuple[RegistrarEvent, ...] = lapsed
            if was_online:
                events = (
                    ExtensionOffline(
                        extension=extension, reason=OfflineReason.UNREGISTERED
                    ),
                )
            return _result(200, events=events)

        updated = list(current)
        made: list[Binding] = []
        for contact in contacts:
            raw_expires = contact.param("expires")
            lifetime = _parse_delta(raw_expires)
            if lifetime is None:
                lifetime = (
                    header_expires
                    if header_expires is not None
                    else self.default_expires
                )
            # §10.3 step 7: a registrar MAY shorten but never lengthen beyond its limit;
            # below min-expires it MUST answer 423 with Min-Expires (§10.2.8 / §21.4.17).
            if 0 < lifetime < self.min_expires:
                return _result(423, headers=(("Min-Expires", str(self.min_expires)),))
            lifetime = min(lifetime, self.max_expires)
            try:
                q = _parse_q(contact.param("q"))
            except ValueError as exc:
                return _result(400, str(exc))
            stored = replace(
                contact,
                parameters=tuple(
                    (k, v) for k, v in contact.parameters if k.lower() != "expires"
                ),
            )
            index = next(
                (i for i, b in enumerate(updated) if same_uri(b.uri, contact.uri)), None
            )
            if index is not None:
                existing = updated[index]
                # §10.3 step 7: same Call-ID and a CSeq not higher → "the update MUST be
                # aborted and the request fails".  (A binding this very request made —
                # the same Contact listed twice — is simply overwritten.)
                fresh = any(existing is b for b in made)
                if not fresh and existing.call_id == call_id and cseq <= existing.cseq:
                    return _result(500, "CSeq out of order")
                if lifetime == 0:
                    del updated[index]
                    continue
                updated[index] = new = Binding(
                    extension=extension,
                    contact=stored,
                    expires_at=now + lifetime,
                    q=q,
                    call_id=call_id,
                    cseq=cseq,
                    source=source,
                    user_agent=user_agent,
                )
                made.append(new)
            elif lifetime > 0:
                new = Binding(
                    extension=extension,
                    contact=stored,
                    expires_at=now + lifetime,
                    q=q,
                    call_id=call_id,
                    cseq=cseq,
                    source=source,
                    user_agent=user_agent,
                )
                updated.append(new)
                made.append(new)
        if len(updated) > self.max_contacts:
            # Not in RFC 3261; 403 tells the phone this registration will not succeed.
            return _result(403, f"at most {self.max_contacts} contacts per extension")

        # Commit (§10.3 step 7: visible only if every update succeeded).
        if updated:
            self._bindings[extension] = updated
        else:
            self._bindings.pop(extension, None)
        events = lapsed
        if updated and not was_online:
            events += (ExtensionOnline(extension=extension, contacts=tuple(updated)),)
        elif was_online and not updated:
            events += (
                ExtensionOffline(
                    extension=extension, reason=OfflineReason.UNREGISTERED
                ),
            )
        # §10.3 step 8: the 200 lists all current bindings with their expires.
        listed = tuple(
            b.contact.with_param("expires", str(b.expires_in(now))) for b in updated
        )
        return _result(200, contacts=listed, events=events)
