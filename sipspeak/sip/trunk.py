"""Registration of a SIP trunk with its provider (RFC 3261 §10.2), sans-IO.

The core keeps one registration alive: it asks for a REGISTER to be sent, answers
401 / 407 challenges with ``DigestClient``, follows 423 Min-Expires, refreshes before the
binding expires and backs off exponentially (with a cap) after failures.  Time is the
``now`` parameter; ``get_timer()`` is the next deadline and ``handle_timer(now)`` fires
it, as in aioquic.  The asyncio shell (``trunk_aio``) sends each ``RegisterRequest`` in a
client transaction and feeds back the response or the timeout.

Public API:

* ``parse_trunk_host(host, username) -> TrunkTarget`` — ``sip:host``,
  ``sip:user@host``, ``host:port``, ``host``, with ``;transport=`` kept.
* ``TrunkConfig`` (frozen) and ``TrunkRegistration(config, contact=…, call_id=…,
  from_tag=…)`` with ``start(now)``, ``stop(now)``, ``pop_request() -> RegisterRequest |
  None``, ``receive_response(response, now)``, ``transaction_failed(now, reason)``,
  ``get_timer()``, ``handle_timer(now)``, ``status`` (a ``TrunkStatus``) and
  ``pop_events()`` (``TrunkStatusChanged``).
* ``TrunkState``: ``DISABLED`` / ``REGISTERING`` / ``REGISTERED`` / ``FAILED``; every
  transition is in ``TRANSITIONS`` (``(state, TrunkInput) -> state``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from sipspeak.sip.digest import AuthHeader, DigestAttempt, DigestClient
from sipspeak.sip.errors import SipParseError
from sipspeak.sip.headers import CSeq, NameAddr, Via
from sipspeak.sip.message import Headers, SipRequest, SipResponse
from sipspeak.sip.registrar import same_uri
from sipspeak.sip.uri import SipUri, parse_host_port, parse_uri

USER_AGENT = "SipSpeak"
_MAX_CSEQ = 2**31 - 1


class TrunkState(enum.Enum):
    DISABLED = "disabled"
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"


class TrunkInput(enum.Enum):
    """What moves the trunk between states."""

    ENABLE = "enable"
    DISABLE = "disable"
    RETRY_DUE = "retry deadline passed"
    SUCCEEDED = "2xx to REGISTER"
    FAILED = "final failure or timeout"


_S, _I = TrunkState, TrunkInput
# Every transition of the machine; a pair missing here leaves the state as it is (a late
# answer to an un-REGISTER of a disabled trunk, say).  A refresh happens in REGISTERED:
# the binding stays valid while it is in flight, so the state does not change.
TRANSITIONS: dict[tuple[TrunkState, TrunkInput], TrunkState] = {
    (_S.DISABLED, _I.ENABLE): _S.REGISTERING,
    (_S.REGISTERING, _I.SUCCEEDED): _S.REGISTERED,
    (_S.REGISTERING, _I.FAILED): _S.FAILED,
    (_S.REGISTERED, _I.SUCCEEDED): _S.REGISTERED,
    (_S.REGISTERED, _I.FAILED): _S.FAILED,
    (_S.FAILED, _I.RETRY_DUE): _S.REGISTERING,
    (_S.REGISTERING, _I.DISABLE): _S.DISABLED,
    (_S.REGISTERED, _I.DISABLE): _S.DISABLED,
    (_S.FAILED, _I.DISABLE): _S.DISABLED,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TrunkTarget:
    """Where REGISTER goes (Request-URI, §10.2 "Request-URI names the domain of the
    location service") and the address-of-record it binds (To / From)."""

    registrar: SipUri
    aor: SipUri

    @property
    def host(self) -> str:
        return self.registrar.host

    @property
    def port(self) -> int:
        # RFC 3261 §19.1.2: default 5060 for sip:, 5061 for sips:.
        if self.registrar.port is not None:
            return self.registrar.port
        return 5061 if self.registrar.scheme == "sips" else 5060

    @property
    def transport(self) -> str:
        return self.registrar.transport


def parse_trunk_host(host: str, username: str) -> TrunkTarget:
    """Read the "Хост" field of a trunk: ``sip:host``, ``sip:user@host``, ``host:port``.

    A user part in the host field names the address-of-record (the provider's account
    number); otherwise the trunk's user name does.  Raises ``ValueError`` on bad input.
    """
    text = host.strip()
    if not text:
        raise ValueError("trunk host is empty")
    try:
        if text.lower().startswith(("sip:", "sips:")):
            uri = parse_uri(text)
            if not isinstance(uri, SipUri):
                raise ValueError(f"not a SIP URI: {host!r}")
        else:
            name, port = parse_host_port(text)
            uri = SipUri(host=name, port=port)
    except SipParseError as exc:
        raise ValueError(f"bad trunk host {host!r}: {exc.reason}") from None
    user = uri.user or username
    if not user:
        raise ValueError("trunk needs a user name")
    keep = tuple(p for p in uri.parameters if p[0].lower() == "transport")
    registrar = SipUri(scheme=uri.scheme, host=uri.host, port=uri.port, parameters=keep)
    aor = SipUri(scheme=uri.scheme, user=user, host=uri.host, port=uri.port)
    return TrunkTarget(registrar=registrar, aor=aor)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrunkConfig:
    """A trunk as the admin entered it (manual §4.4) plus timing knobs."""

    username: str
    password: str
    host: str
    expires: int = 3600
    auth_username: str | None = None  # if the provider's auth name differs
    refresh_margin: float = 60.0  # refresh this long before expiry (at most half way)
    retry_base: float = 30.0
    retry_cap: float = 1800.0
    target: TrunkTarget = field(init=False)

    def __post_init__(self) -> None:
        if self.expires <= 0:
            raise ValueError("expires must be positive")
        if self.retry_base <= 0 or self.retry_cap < self.retry_base:
            raise ValueError("need 0 < retry_base <= retry_cap")
        object.__setattr__(self, "target", parse_trunk_host(self.host, self.username))


@dataclass(frozen=True, slots=True, kw_only=True)
class TrunkStatus:
    """What the web UI and the call layer read about a trunk."""

    state: TrunkState
    reason: str | None = None  # "403 Forbidden", "timeout", "credentials rejected …"
    status_code: int | None = None  # last final status, None for a timeout
    registered_until: float | None = None  # binding expiry as granted by the provider
    next_attempt: float | None = None  # refresh or retry deadline


@dataclass(frozen=True, slots=True, kw_only=True)
class TrunkStatusChanged:
    """Emitted whenever ``status.state`` or its reason changes."""

    status: TrunkStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterRequest:
    """One REGISTER to send (RFC 3261 §10.2); ``to_message(via)`` makes the SipRequest."""

    request_uri: SipUri
    aor: SipUri
    from_tag: str
    call_id: str
    cseq: int
    contact: SipUri
    expires: int
    auth: tuple[AuthHeader, ...] = ()

    def to_message(self, via: Via, *, user_agent: str = USER_AGENT) -> SipRequest:
        headers = Headers([("Expires", str(self.expires)), ("User-Agent", user_agent)])
        for name, value in self.auth:
            headers.add(name, value)
        return SipRequest(
            method="REGISTER",
            uri=self.request_uri,
            via=[via],
            from_=NameAddr(uri=self.aor).with_tag(self.from_tag),
            to=NameAddr(uri=self.aor),
            call_id=self.call_id,
            cseq=CSeq(self.cseq, "REGISTER"),
            max_forwards=70,
            # §10.2.1: the Contact carries the binding; expires also in the header.
            contact=[NameAddr(uri=self.contact)],
            headers=headers,
        )


class TrunkRegistration:
    """Keeps one trunk registered (RFC 3261 §10.2.1 - §10.2.4, §22)."""

    def __init__(
        self, config: TrunkConfig, *, contact: SipUri, call_id: str, from_tag: str
    ) -> None:
        self.config = config
        self.contact = contact
        # §10.2.4: refreshes SHOULD use the same Call-ID, with CSeq incremented.
        self.call_id = call_id
        self.from_tag = from_tag
        self._auth = DigestClient(
            username=config.auth_username or config.username, password=config.password
        )
        self._cseq = 0
        self._expires = config.expires
        self._state = TrunkState.DISABLED
        self._reason: str | None = None
        self._status_code: int | None = None
        self._registered_until: float | None = None
        self._timer: float | None = None
        self._failures = 0
        self._outbox: list[RegisterRequest] = []
        self._events: list[TrunkStatusChanged] = []
        self._pending: int | None = None  # CSeq of the REGISTER in flight
        self._attempt: DigestAttempt | None = None
        self._unregistering = False
        self._interval_retried = False

    # -- reading ---------------------------------------------------------------

    @property
    def state(self) -> TrunkState:
        return self._state

    @property
    def auth(self) -> DigestClient:
        """The trunk's credentials and learned nonces, shared with its outbound calls."""
        return self._auth

    @property
    def status(self) -> TrunkStatus:
        return TrunkStatus(
            state=self._state,
            reason=self._reason,
            status_code=self._status_code,
            registered_until=self._registered_until,
            next_attempt=self._timer,
        )

    def pop_events(self) -> list[TrunkStatusChanged]:
        events, self._events = self._events, []
        return events

    def pop_request(self) -> RegisterRequest | None:
        return self._outbox.pop(0) if self._outbox else None

    def get_timer(self) -> float | None:
        return self._timer

    # -- commands ----------------------------------------------------------------

    def start(self, now: float) -> None:
        """Enable the trunk ("Активно") and register at once."""
        if self._state is not TrunkState.DISABLED:
            return
        self._failures = 0
        self._unregistering = False
        self._send(now, expires=self._expires)
        self._apply(TrunkInput.ENABLE, None, None)

    def stop(self, now: float) -> None:
        """Disable the trunk; a live binding is removed with Expires: 0 (§10.2.2)."""
        if self._state is TrunkState.DISABLED:
            return
        bound = self._registered_until is not None and self._registered_until > now
        self._timer = None
        self._registered_until = None
        self._apply(TrunkInput.DISABLE, None, None)
        if bound:
            self._unregistering = True
            self._send(now, expires=0)
        else:
            self._pending = None

    def handle_timer(self, now: float) -> None:
        """Fire the refresh or retry deadline when it has passed."""
        if self._timer is None or now < self._timer:
            return
        self._timer = None
        if self._state is TrunkState.DISABLED or self._pending is not None:
            return
        # The last failure stays readable while the retry is in flight.
        self._apply(TrunkInput.RETRY_DUE, self._reason, self._status_code)
        self._interval_retried = False
        self._send(now, expires=self._expires)

    # -- input -------------------------------------------------------------------

    def receive_response(self, response: SipResponse, now: float) -> None:
        """A response to the REGISTER in flight (others are ignored, §8.1.3.3)."""
        if (
            self._pending is None
            or response.call_id != self.call_id
            or response.cseq.seq != self._pending
            or response.cseq.method != "REGISTER"
            or response.status < 200
        ):
            return
        self._pending = None
        status = response.status
        phrase = f"{status} {response.reason}".strip()
        if status in (401, 407) and self._attempt is not None:
            name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
            answer = self._attempt.on_challenge(status, response.headers.get_all(name))
            if answer is not None:
                self._send(
                    now,
                    expires=0 if self._unregistering else self._expires,
                    auth=answer,
                )
                return
            detail = self._attempt.failure_reason
            self._fail(now, f"{phrase}: {detail}" if detail else phrase, status)
            return
        if self._unregistering:
            self._unregistering = False
            return
        if status == 423 and not self._interval_retried:
            # §10.2.8: retry with an expiration "greater than or equal to" Min-Expires.
            minimum = _int_header(response, "Min-Expires")
            if minimum is not None and minimum > self._expires:
                self._interval_retried = True
                self._expires = minimum
                self._send(now, expires=self._expires)
                return
        if 200 <= status < 300:
            self._registered(response, now, phrase)
            return
        retry_after = (
            _int_header(response, "Retry-After") if status in (500, 503) else None
        )
        self._fail(now, phrase, status, retry_after=retry_after)

    def transaction_failed(self, now: float, reason: str = "timeout") -> None:
        """Timer F fired or the transport failed for the REGISTER in flight."""
        if self._pending is None:
            return
        self._pending = None
        if self._unregistering:
            self._unregistering = False
            return
        self._fail(now, reason, None)

    # -- internals -----------------------------------------------------------------

    def _send(
        self, now: float, *, expires: int, auth: list[AuthHeader] | None = None
    ) -> None:
        if self._cseq >= _MAX_CSEQ:
            self._cseq = 0
        self._cseq += 1
        if auth is None:
            # A new request: pre-emptive credentials from the last challenge (§22.3).
            self._attempt = self._auth.begin(
                "REGISTER", str(self.config.target.registrar)
            )
            auth = self._attempt.preemptive()
        self._pending = self._cseq
        self._outbox.append(
            RegisterRequest(
                request_uri=self.config.target.registrar,
                aor=self.config.target.aor,
                from_tag=self.from_tag,
                call_id=self.call_id,
                cseq=self._cseq,
                contact=self.contact,
                expires=expires,
                auth=tuple(auth),
            )
        )

    def _registered(self, response: SipResponse, now: float, phrase: str) -> None:
        granted: int | None = None
        # §10.2.4: the 200 lists our binding; its expires param is what was granted.
        for contact in response.contact:
            if not contact.is_wildcard and same_uri(contact.uri, self.contact):
                granted = _delta(contact.param("expires"))
                break
        if granted is None:
            granted = _int_header(response, "Expires")
        if granted is None:
            granted = self._expires
        if granted <= 0:
            self._fail(now, f"{phrase} without our binding", response.status)
            return
        self._failures = 0
        self._registered_until = now + granted
        self._timer = now + granted - min(self.config.refresh_margin, granted / 2)
        self._apply(TrunkInput.SUCCEEDED, None, response.status)

    def _fail(
        self,
        now: float,
        reason: str,
        status: int | None,
        *,
        retry_after: int | None = None,
    ) -> None:
        if (self._state, TrunkInput.FAILED) not in TRANSITIONS:
            return  # e.g. the un-REGISTER of a disabled trunk was refused
        delay = min(self.config.retry_base * 2**self._failures, self.config.retry_cap)
        if retry_after is not None:
            delay = min(max(delay, float(retry_after)), self.config.retry_cap)
        self._failures = min(self._failures + 1, 32)
        if self._registered_until is not None and self._registered_until <= now:
            self._registered_until = None
        self._timer = now + delay
        self._apply(TrunkInput.FAILED, reason, status)

    def _apply(self, event: TrunkInput, reason: str | None, status: int | None) -> None:
        state = TRANSITIONS.get((self._state, event))
        if state is None:
            return
        changed = (state, reason) != (self._state, self._reason)
        self._state = state
        self._reason = reason
        self._status_code = status
        if changed:
            self._events.append(TrunkStatusChanged(status=self.status))


def _delta(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


def _int_header(response: SipResponse, name: str) -> int | None:
    value = response.headers.get(name)
    if value is None:
        return None
    # Retry-After may carry a comment and parameters: "120 (lunch);duration=60".
    return _delta(value.split("(", 1)[0].split(";", 1)[0])
