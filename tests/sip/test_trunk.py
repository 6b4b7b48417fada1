"""Trunk registration core against a sans-IO provider (DigestServer + Registrar), fake clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sipspeak.sip.auth import Accepted, Challenge, DigestServer, Rejected, StoredSecret
from sipspeak.sip.headers import Via
from sipspeak.sip.message import SipRequest, SipResponse, make_response, parse_message
from sipspeak.sip.registrar import Registrar
from sipspeak.sip.trunk import (
    TrunkConfig,
    TrunkRegistration,
    TrunkState,
    parse_trunk_host,
)
from sipspeak.sip.uri import SipUri


class Provider:
    """A registrar with Digest auth, answering over the wire format."""

    def __init__(
        self,
        *,
        password: str = "s3cret",
        max_expires: int = 3600,
        min_expires: int = 60,
        nonce_lifetime: float = 600.0,
    ) -> None:
        self.auth = DigestServer(
            realm="provider", key=b"p" * 32, nonce_lifetime=nonce_lifetime
        )
        self.registrar = Registrar(min_expires=min_expires, max_expires=max_expires)
        self.password = password
        self.requests: list[SipRequest] = []
        self.override: Callable[[SipRequest], SipResponse | None] | None = None

    def handle(self, request: SipRequest, now: float) -> SipResponse:
        self.requests.append(request)
        if self.override is not None:
            forced = self.override(request)
            if forced is not None:
                return forced
        decision = self.auth.authenticate(
            method=request.method,
            uri=str(request.uri),
            authorization=request.headers.get_all("Authorization"),
            source="192.0.2.1",
            now=now,
            lookup=lambda user: (
                StoredSecret.from_password(self.password) if user == "117049" else None
            ),
        )
        if isinstance(decision, Challenge):
            return make_response(
                request,
                decision.status,
                headers=[(decision.header, v) for v in decision.values],
                to_tag="p",
            )
        if isinstance(decision, Rejected):
            return make_response(request, decision.status, to_tag="p")
        assert isinstance(decision, Accepted)
        user = request.to.uri.user if isinstance(request.to.uri, SipUri) else None
        result = self.registrar.handle_request(request, extension=user or "", now=now)
        return result.response(request, to_tag="p")


def wire(message: SipRequest | SipResponse) -> SipRequest | SipResponse:
    return parse_message(message.serialize())


def transfer(
    trunk: TrunkRegistration, provider: Provider, now: float, *, drop: bool = False
) -> int:
    """Deliver every queued REGISTER and its response; returns how many were sent."""
    sent = 0
    while (req := trunk.pop_request()) is not None:
        sent += 1
        message = wire(
            req.to_message(
                Via.parse(f"SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK{req.cseq}")
            )
        )
        assert isinstance(message, SipRequest)
        if drop:
            trunk.transaction_failed(now)
            continue
        response = wire(provider.handle(message, now))
        assert isinstance(response, SipResponse)
        trunk.receive_response(response, now)
    return sent


def make_trunk(password: str = "s3cret", **kw: object) -> TrunkRegistration:
    config = TrunkConfig(
        username="117049", password=password, host="sip:provider.example", **kw
    )  # type: ignore[arg-type]
    return TrunkRegistration(
        config,
        contact=SipUri(user="117049", host="127.0.0.1", port=5099),
        call_id="trunk-1",
        from_tag="ft",
    )


@pytest.mark.parametrize(
    ("host", "registrar", "aor", "port"),
    [
        ("sip:192.168.1.100", "sip:192.168.1.100", "sip:117049@192.168.1.100", 5060),
        ("sip:117050@zadarma.com", "sip:zadarma.com", "sip:117050@zadarma.com", 5060),
        (
            "pbx.example:5080",
            "sip:pbx.example:5080",
            "sip:117049@pbx.example:5080",
            5080,
        ),
        ("pbx.example", "sip:pbx.example", "sip:117049@pbx.example", 5060),
        (
            "sip:pbx.example;transport=tcp",
            "sip:pbx.example;transport=tcp",
            "sip:117049@pbx.example",
            5060,
        ),
        ("sips:pbx.example", "sips:pbx.example", "sips:117049@pbx.example", 5061),
    ],
)
def test_host_forms(host: str, registrar: str, aor: str, port: int) -> None:
    target = parse_trunk_host(host, "117049")
    assert (str(target.registrar), str(target.aor), target.port) == (
        registrar,
        aor,
        port,
    )


@pytest.mark.parametrize(
    "host", ["", "sip:", "bad host", "tel:+7123", "host:99999", "sip:a@b:x"]
)
def test_bad_host_is_a_clear_error(host: str) -> None:
    with pytest.raises(ValueError, match="host|URI|empty"):
        parse_trunk_host(host, "117049")


def test_register_with_auth_and_refresh_before_expiry() -> None:
    provider = Provider(max_expires=600)
    trunk = make_trunk()
    assert trunk.state is TrunkState.DISABLED
    trunk.start(0.0)
    assert trunk.state is TrunkState.REGISTERING
    assert (
        transfer(trunk, provider, 0.0) == 2
    )  # REGISTER, 401, REGISTER with credentials
    status = trunk.status
    assert status.state is TrunkState.REGISTERED and status.status_code == 200
    # The provider capped 3600 to 600: refresh 60 s before the granted expiry.
    assert status.registered_until == 600.0 and trunk.get_timer() == 540.0
    first, second = provider.requests
    assert "Authorization" not in first.headers and "Authorization" in second.headers
    assert second.cseq.seq == first.cseq.seq + 1 and second.call_id == first.call_id
    assert [str(b.uri) for b in provider.registrar.lookup("117049", 1.0)] == [
        "sip:117049@127.0.0.1:5099"
    ]
    trunk.handle_timer(539.0)
    assert trunk.pop_request() is None
    trunk.handle_timer(540.0)
    # Refresh: credentials go pre-emptively with nc=2, so one request is enough.
    assert transfer(trunk, provider, 540.0) == 1
    assert "nc=00000002" in (provider.requests[-1].headers.get("Authorization") or "")
    assert (
        trunk.status.registered_until == 1140.0 and trunk.state is TrunkState.REGISTERED
    )
    events = [e.status.state for e in trunk.pop_events()]
    assert events == [TrunkState.REGISTERING, TrunkState.REGISTERED]


def test_short_grant_refreshes_at_half() -> None:
    provider = Provider(max_expires=80, min_expires=10)
    trunk = make_trunk()
    trunk.start(0.0)
    transfer(trunk, provider, 0.0)
    assert trunk.get_timer() == 40.0


def test_wrong_password_fails_then_backs_off_exponentially_with_cap() -> None:
    provider = Provider()
    trunk = make_trunk(password="wrong", retry_base=10.0, retry_cap=50.0)
    trunk.start(0.0)
    assert transfer(trunk, provider, 0.0) == 2  # no endless loop
    status = trunk.status
    assert status.state is TrunkState.FAILED and status.status_code == 401
    assert status.reason is not None and status.reason.startswith("401 Unauthorized")
    deadlines = [trunk.get_timer()]
    now = 0.0
    for _ in range(4):
        now = trunk.get_timer() or 0.0
        trunk.handle_timer(now)
        assert trunk.state is TrunkState.REGISTERING
        transfer(trunk, provider, now)
        assert trunk.state is TrunkState.FAILED
        deadlines.append(trunk.get_timer())
    gaps = [
        b - a
        for a, b in zip([0.0, *deadlines[:-1]], deadlines, strict=True)
        if a is not None and b is not None
    ]
    assert gaps == [10.0, 20.0, 40.0, 50.0, 50.0]


def test_timeout_is_a_failure_and_recovery_resets_back_off() -> None:
    provider = Provider()
    trunk = make_trunk(retry_base=5.0)
    trunk.start(0.0)
    transfer(trunk, provider, 0.0, drop=True)
    assert trunk.status.state is TrunkState.FAILED and trunk.status.reason == "timeout"
    assert trunk.status.status_code is None and trunk.get_timer() == 5.0
    trunk.handle_timer(5.0)
    transfer(trunk, provider, 5.0)
    assert trunk.state is TrunkState.REGISTERED


def test_423_retries_with_min_expires() -> None:
    provider = Provider(min_expires=1800, max_expires=3600)
    trunk = make_trunk(expires=300)
    trunk.start(0.0)
    transfer(trunk, provider, 0.0)
    assert trunk.state is TrunkState.REGISTERED
    assert [r.headers.get("Expires") for r in provider.requests][-1] == "1800"
    assert trunk.status.registered_until == 1800.0


def test_503_with_retry_after_and_403_reason() -> None:
    provider = Provider()
    provider.override = lambda req: make_response(
        req, 503, headers=[("Retry-After", "120 (maintenance)")]
    )
    trunk = make_trunk(retry_base=5.0)
    trunk.start(0.0)
    transfer(trunk, provider, 0.0)
    assert (
        trunk.status.reason == "503 Service Unavailable" and trunk.get_timer() == 120.0
    )
    provider.override = lambda req: make_response(req, 403, "Forbidden")
    trunk.handle_timer(120.0)
    transfer(trunk, provider, 120.0)
    assert trunk.status.reason == "403 Forbidden" and trunk.status.status_code == 403


def test_stop_unregisters_and_stale_responses_are_ignored() -> None:
    provider = Provider()
    trunk = make_trunk()
    trunk.start(0.0)
    transfer(trunk, provider, 0.0)
    assert provider.registrar.lookup("117049", 1.0)
    trunk.stop(10.0)
    assert trunk.state is TrunkState.DISABLED and trunk.get_timer() is None
    transfer(trunk, provider, 10.0)
    assert provider.requests[-1].headers.get("Expires") == "0"
    assert provider.registrar.lookup("117049", 11.0) == []
    assert trunk.state is TrunkState.DISABLED
    # A late response to an old CSeq changes nothing.
    late = make_response(provider.requests[0], 200)
    trunk.receive_response(late, 12.0)
    assert trunk.state is TrunkState.DISABLED
    trunk.start(20.0)
    transfer(trunk, provider, 20.0)
    assert trunk.state is TrunkState.REGISTERED


def test_bad_config() -> None:
    with pytest.raises(ValueError):
        TrunkConfig(username="u", password="p", host="pbx", expires=0)
    with pytest.raises(ValueError):
        TrunkConfig(username="u", password="p", host="pbx", retry_base=10, retry_cap=5)
    with pytest.raises(ValueError):
        TrunkConfig(username="u", password="p", host="")


def test_refresh_with_expired_nonce_recovers_through_stale() -> None:
    provider = Provider(max_expires=600, nonce_lifetime=100.0)
    trunk = make_trunk()
    trunk.start(0.0)
    transfer(trunk, provider, 0.0)
    trunk.handle_timer(540.0)
    # Pre-emptive credentials carry the expired nonce: 401 stale=true, then success.
    assert transfer(trunk, provider, 540.0) == 2
    stale_challenge = provider.requests[-1].headers.get("Authorization") or ""
    assert "nc=00000001" in stale_challenge
    assert trunk.state is TrunkState.REGISTERED
    assert trunk.status.registered_until == 1140.0


def test_refused_unregister_leaves_the_trunk_disabled() -> None:
    provider = Provider()
    trunk = make_trunk()
    trunk.start(0.0)
    transfer(trunk, provider, 0.0)
    provider.password = "changed-meanwhile"
    trunk.stop(10.0)
    transfer(trunk, provider, 10.0)
    status = trunk.status
    assert status.state is TrunkState.DISABLED and status.reason is None
    assert trunk.get_timer() is None and trunk.pop_request() is None
