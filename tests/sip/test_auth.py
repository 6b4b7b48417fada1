"""Server-side Digest: nonces, verification, replay, lock-out, with a client peer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipspeak.sip.auth import (
    Accepted,
    Challenge,
    DigestServer,
    NonceSigner,
    NonceStatus,
    Rejected,
    SecretNeeded,
    StoredSecret,
)
from sipspeak.sip.digest import AuthHeader, DigestClient, DigestCredentials, compute_ha1

KEY = b"k" * 32
USERS = {"101": "pw101", "102": "pw102"}


def lookup(user: str) -> StoredSecret | None:
    password = USERS.get(user)
    return None if password is None else StoredSecret.from_password(password)


def _server(**kwargs: object) -> DigestServer:
    return DigestServer(realm="sipspeak", key=KEY, **kwargs)  # type: ignore[arg-type]


def exchange(
    server: DigestServer,
    client: DigestClient,
    *,
    now: float,
    method: str = "REGISTER",
    uri: str = "sip:sipspeak",
    source: str = "10.0.0.1",
    proxy: bool = False,
    preemptive: bool = False,
    max_rounds: int = 6,
) -> tuple[Accepted | Challenge | Rejected, list[int]]:
    """Drive one request through challenges like a UAC would; returns the final
    decision and the statuses seen on the way."""
    attempt = client.begin(method, uri)
    headers: list[AuthHeader] = attempt.preemptive() if preemptive else []
    statuses: list[int] = []
    for _ in range(max_rounds):
        decision = server.authenticate(
            method=method,
            uri=uri,
            authorization=[h.value for h in headers],
            source=source,
            now=now,
            lookup=lookup,
            proxy=proxy,
        )
        if not isinstance(decision, Challenge):
            return decision, statuses
        statuses.append(decision.status)
        answer = attempt.on_challenge(decision.status, decision.values)
        if answer is None:
            return decision, statuses
        headers = answer
    raise AssertionError("no final decision")


def test_nonce_carries_its_expiry() -> None:
    signer = NonceSigner(key=KEY, lifetime=30.0)
    nonce = signer.issue(1000.0)
    assert signer.check(nonce, 1000.0) is NonceStatus.VALID
    assert signer.check(nonce, 1029.0) is NonceStatus.VALID
    assert signer.check(nonce, 1031.0) is NonceStatus.STALE
    assert signer.check(nonce, 990.0) is NonceStatus.INVALID  # from the future
    other = NonceSigner(key=b"x" * 32, lifetime=30.0)
    assert other.check(nonce, 1000.0) is NonceStatus.INVALID
    tampered = nonce[:-2] + ("AA" if nonce[-2:] != "AA" else "BB")
    assert signer.check(tampered, 1000.0) is NonceStatus.INVALID
    assert signer.check("not base64 !", 1000.0) is NonceStatus.INVALID
    assert signer.issue(1000.0) != nonce
    with pytest.raises(ValueError):
        NonceSigner(key=b"short")


@pytest.mark.parametrize("proxy", [False, True])
def test_right_password_is_accepted(proxy: bool) -> None:
    server = _server()
    client = DigestClient(username="101", password="pw101")
    decision, statuses = exchange(
        server, client, now=10.0, proxy=proxy, method="INVITE", uri="sip:200@pbx"
    )
    assert decision == Accepted(username="101")
    assert statuses == [407 if proxy else 401]


def test_md5_only_server_and_ha1_store() -> None:
    server = _server(algorithms=("MD5",))
    ha1 = compute_ha1("MD5", "101", "sipspeak", "pw101")
    step = server.inspect(
        method="REGISTER", uri="sip:sipspeak", authorization=[], source="a", now=0.0
    )
    assert (
        isinstance(step, Challenge)
        and len(step.values) == 1
        and "MD5" in step.values[0]
    )
    client = DigestClient(username="101", password="pw101")
    [header] = (
        client.begin("REGISTER", "sip:sipspeak").on_challenge(401, step.values) or []
    )
    step2 = server.inspect(
        method="REGISTER",
        uri="sip:sipspeak",
        authorization=[header.value],
        source="a",
        now=1.0,
    )
    assert isinstance(step2, SecretNeeded) and step2.username == "101"
    assert server.verify(step2, StoredSecret(ha1={"MD5": ha1}), now=1.0) == Accepted(
        username="101"
    )
    # An HA1 store without a SHA-256 entry cannot verify SHA-256 answers.
    assert isinstance(
        server.verify(step2, StoredSecret(ha1={"SHA-256": ha1}), now=1.0), Challenge
    )


def test_wrong_password_gets_rechallenged_and_client_gives_up() -> None:
    server = _server()
    client = DigestClient(username="101", password="wrong")
    decision, statuses = exchange(server, client, now=0.0)
    assert isinstance(decision, Challenge) and not decision.stale
    assert statuses == [401, 401]
    assert server.lockout.failures("10.0.0.1", 0.0) == 1


def test_unknown_user_looks_like_wrong_password() -> None:
    server = _server()
    decision, statuses = exchange(
        server, DigestClient(username="999", password="x"), now=0.0
    )
    assert isinstance(decision, Challenge) and statuses == [401, 401]


def test_expired_nonce_with_right_password_is_stale_and_client_recovers() -> None:
    server = _server(nonce_lifetime=60.0)
    client = DigestClient(username="101", password="pw101")
    assert exchange(server, client, now=0.0)[0] == Accepted(username="101")
    # A refresh 2 minutes later re-uses the remembered nonce pre-emptively.
    decision, statuses = exchange(server, client, now=120.0, preemptive=True)
    assert decision == Accepted(username="101")
    assert statuses == [401]
    # ...and the challenge it got was stale=true (the server checks before lookup).
    old = DigestClient(username="101", password="pw101")
    old_attempt = old.begin("REGISTER", "sip:sipspeak")
    first = server.challenge(now=0.0)
    [hdr] = old_attempt.on_challenge(401, first.values) or []
    stale = server.authenticate(
        method="REGISTER",
        uri="sip:sipspeak",
        authorization=[hdr.value],
        source="s",
        now=500.0,
        lookup=lookup,
    )
    assert (
        isinstance(stale, Challenge) and stale.stale and "stale=true" in stale.values[0]
    )


def test_expired_nonce_with_wrong_password_is_not_stale() -> None:
    server = _server(nonce_lifetime=60.0)
    attempt = DigestClient(username="101", password="bad").begin(
        "REGISTER", "sip:sipspeak"
    )
    [hdr] = attempt.on_challenge(401, server.challenge(now=0.0).values) or []
    decision = server.authenticate(
        method="REGISTER",
        uri="sip:sipspeak",
        authorization=[hdr.value],
        source="s",
        now=500.0,
        lookup=lookup,
    )
    assert isinstance(decision, Challenge) and not decision.stale


def test_nc_replay_is_refused() -> None:
    server = _server()
    attempt = DigestClient(username="101", password="pw101").begin(
        "REGISTER", "sip:sipspeak"
    )
    [hdr] = attempt.on_challenge(401, server.challenge(now=0.0).values) or []
    kwargs = {
        "method": "REGISTER",
        "uri": "sip:sipspeak",
        "authorization": [hdr.value],
        "source": "s",
        "lookup": lookup,
    }
    assert server.authenticate(now=1.0, **kwargs) == Accepted(username="101")  # type: ignore[arg-type]
    replay = server.authenticate(now=2.0, **kwargs)  # type: ignore[arg-type]
    assert isinstance(replay, Challenge) and replay.stale


def test_lockout_after_repeated_failures_then_release() -> None:
    server = _server(max_failures=3, lockout_seconds=60.0)
    bad = DigestClient(username="101", password="bad")
    seen: list[int] = []
    for i in range(3):
        decision, _ = exchange(server, bad, now=float(i))
        seen.append(decision.status)
    assert seen == [401, 401, 403]
    # While locked out even the right password gets 403, from that address only.
    good = DigestClient(username="101", password="pw101")
    decision, _ = exchange(server, good, now=10.0)
    assert isinstance(decision, Rejected) and decision.status == 403
    assert exchange(server, good, now=10.0, source="10.0.0.2")[0] == Accepted(
        username="101"
    )
    assert server.lockout.locked_until("10.0.0.1", 10.0) == pytest.approx(62.0)
    # After M seconds the lock lifts.
    assert exchange(server, good, now=63.0)[0] == Accepted(username="101")
    assert server.lockout.failures("10.0.0.1", 63.0) == 0


def test_failures_are_forgotten_after_the_window() -> None:
    server = _server(max_failures=2, lockout_seconds=30.0)
    bad = DigestClient(username="101", password="bad")
    assert exchange(server, bad, now=0.0)[0].status == 401
    assert exchange(server, bad, now=100.0)[0].status == 401
    assert exchange(server, bad, now=101.0)[0].status == 403


def test_success_clears_failures() -> None:
    server = _server(max_failures=2)
    assert (
        exchange(server, DigestClient(username="101", password="bad"), now=0.0)[
            0
        ].status
        == 401
    )
    assert exchange(server, DigestClient(username="101", password="pw101"), now=1.0)[
        0
    ] == Accepted(username="101")
    assert (
        exchange(server, DigestClient(username="101", password="bad"), now=2.0)[
            0
        ].status
        == 401
    )


def test_uri_mismatch_and_malformed_credentials_are_400() -> None:
    server = _server()
    attempt = DigestClient(username="101", password="pw101").begin(
        "REGISTER", "sip:other"
    )
    [hdr] = attempt.on_challenge(401, server.challenge(now=0.0).values) or []
    decision = server.inspect(
        method="REGISTER",
        uri="sip:sipspeak",
        authorization=[hdr.value],
        source="s",
        now=0.0,
    )
    assert isinstance(decision, Rejected) and decision.status == 400
    broken = 'Digest username="101", realm="sipspeak", nonce="x", uri="sip:sipspeak", response="zz"'
    decision = server.inspect(
        method="REGISTER",
        uri="sip:sipspeak",
        authorization=[broken],
        source="s",
        now=0.0,
    )
    assert isinstance(decision, Rejected) and decision.status == 400


def test_credentials_for_other_realms_are_ignored() -> None:
    server = _server()
    foreign = DigestCredentials(
        username="u", realm="elsewhere", nonce="n", uri="sip:sipspeak", response="ab"
    )
    decision = server.inspect(
        method="REGISTER",
        uri="sip:sipspeak",
        authorization=[str(foreign)],
        source="s",
        now=0.0,
    )
    assert (
        isinstance(decision, Challenge)
        and decision.status == 401
        and decision.header == "WWW-Authenticate"
    )


def test_lockout_per_user_spares_other_phones_behind_the_same_nat() -> None:
    server = _server(max_failures=2, lockout_seconds=60.0, lockout_per_user=True)
    bad = DigestClient(username="101", password="bad")
    assert exchange(server, bad, now=0.0)[0].status == 401
    assert exchange(server, bad, now=1.0)[0].status == 403
    good_101 = DigestClient(username="101", password="pw101")
    assert exchange(server, good_101, now=2.0)[0].status == 403
    good_102 = DigestClient(username="102", password="pw102")
    assert exchange(server, good_102, now=2.0)[0] == Accepted(username="102")


@settings(max_examples=60, deadline=None)
@given(
    username=st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc")),
        min_size=1,
        max_size=16,
    ),
    password=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=24),
    algorithm=st.sampled_from(["MD5", "SHA-256"]),
    proxy=st.booleans(),
)
def test_client_and_server_agree_on_any_credentials(
    username: str, password: str, algorithm: str, proxy: bool
) -> None:
    """Whatever the user name (quotes, backslashes, Cyrillic) and password, the client's
    answer survives the header round trip and verifies; a wrong password does not."""
    server = DigestServer(realm='офис "главный"', key=KEY, algorithms=(algorithm,))  # type: ignore[arg-type]
    secrets = {username: StoredSecret.from_password(password)}

    def run(pw: str) -> Accepted | Challenge | Rejected:
        attempt = DigestClient(username=username, password=pw).begin(
            "INVITE", "sip:200@pbx"
        )
        challenge = server.challenge(now=0.0, proxy=proxy)
        headers = attempt.on_challenge(challenge.status, challenge.values)
        assert headers is not None
        return server.authenticate(
            method="INVITE",
            uri="sip:200@pbx",
            authorization=[h.value for h in headers],
            source="s",
            now=1.0,
            lookup=secrets.get,
            proxy=proxy,
        )

    assert run(password) == Accepted(username=username)
    assert isinstance(run(password + "x"), Challenge)


@pytest.mark.parametrize(
    ("mode", "digest_uri", "accepted"),
    [
        ("host", "sip:79001234567@pbx:5060", True),
        ("host", "sip:pbx:5060", True),  # sipp's [authentication] writes this
        ("host", "sip:PBX", True),
        ("host", "sip:other:5060", False),
        ("host", "sips:pbx:5060", False),
        ("host", "not a uri", False),
        ("exact", "sip:79001234567@pbx:5060", True),
        ("exact", "sip:pbx:5060", False),
        ("off", "sip:other", True),
    ],
)
def test_digest_uri_check(mode: str, digest_uri: str, accepted: bool) -> None:
    server = _server(uri_check=mode)
    request_uri = "sip:79001234567@pbx:5060"
    attempt = DigestClient(username="101", password="pw101").begin("INVITE", digest_uri)
    [hdr] = attempt.on_challenge(401, server.challenge(now=0.0).values) or []
    decision = server.authenticate(
        method="INVITE",
        uri=request_uri,
        authorization=[hdr.value],
        source="s",
        now=1.0,
        lookup=lookup,
    )
    if accepted:
        assert decision == Accepted(username="101")
    else:
        assert isinstance(decision, Rejected) and decision.status == 400
