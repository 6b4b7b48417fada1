"""Digest values, hashes and the client (RFC 2617, RFC 7616, RFC 3261 §22)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipspeak.sip.digest import (
    AuthHeader,
    DigestChallenge,
    DigestClient,
    DigestCredentials,
    DigestParseError,
    compute_ha1,
    compute_response,
    parse_auth_params,
)

# RFC 7616 §3.9.1 example.
RFC7616 = {
    "username": "Mufasa",
    "password": "Circle of Life",
    "realm": "http-auth@example.org",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
    "uri": "/dir/index.html",
}


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_example_vectors(algorithm: str, expected: str) -> None:
    v = RFC7616
    challenge = DigestChallenge.parse(
        f'Digest realm="{v["realm"]}", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{v["nonce"]}", opaque="{v["opaque"]}"'
    )
    client = DigestClient(
        username=v["username"],
        password=v["password"],
        cnonce_factory=lambda: v["cnonce"],
    )
    headers = client.begin("GET", v["uri"]).on_challenge(401, [str(challenge)])
    assert headers is not None and len(headers) == 1
    assert headers[0].name == "Authorization"
    creds = DigestCredentials.parse(headers[0].value)
    assert creds.response == expected
    assert creds.nc == 1 and creds.qop == "auth" and creds.opaque == v["opaque"]
    assert creds.algorithm == algorithm


def test_rfc2617_example() -> None:
    ha1 = compute_ha1("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life")
    response = compute_response(
        algorithm="MD5",
        ha1=ha1,
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        method="GET",
        uri="/dir/index.html",
        qop="auth",
        nc=1,
        cnonce="0a4f113b",
    )
    assert response == "6629fae49393a05397450978507c4ef1"


def test_rfc2617_credentials_parse_and_round_trip() -> None:
    value = (
        'Digest username="Mufasa",\r\n realm="testrealm@host.com",\r\n'
        ' nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",\r\n uri="/dir/index.html",\r\n'
        ' qop=auth,\r\n nc=00000001,\r\n cnonce="0a4f113b",\r\n'
        ' response="6629fae49393a05397450978507c4ef1",\r\n'
        ' opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    creds = DigestCredentials.parse(value)
    assert creds.username == "Mufasa" and creds.nc == 1 and creds.cnonce == "0a4f113b"
    assert creds.algorithm == "MD5" and not creds.algorithm_explicit
    assert DigestCredentials.parse(str(creds)) == creds


def test_quoted_string_escapes_round_trip() -> None:
    challenge = DigestChallenge(
        realm='we "said" \\ hi', nonce="n,1", qop=("auth",), opaque="o p"
    )
    assert DigestChallenge.parse(str(challenge)) == challenge


def test_auth_params_tolerate_whitespace_and_empty_elements() -> None:
    scheme, params = parse_auth_params('Digest  Realm = "a" ,, NONCE=abc ,qop="auth"')
    assert scheme == "Digest"
    assert params == {"realm": "a", "nonce": "abc", "qop": "auth"}


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Digest realm",
        'Digest realm="unterminated',
        'Digest realm="a" nonce="b"',
        'Digest realm="a", realm="b", nonce="c"',
        'Digest nonce="x"',
        'Basic realm="x", nonce="y"',
        'Digest realm="x", nonce="y", algorithm=SHA-1',
        'Digest realm="x", nonce=@',
    ],
)
def test_bad_challenges_raise(value: str) -> None:
    with pytest.raises(DigestParseError):
        DigestChallenge.parse(value)


@pytest.mark.parametrize(
    "value",
    [
        'Digest username="u", realm="r", nonce="n", uri="sip:x", response="zz"',
        'Digest username="u", realm="r", nonce="n", uri="sip:x", response="ab", qop=auth',
        'Digest username="u", realm="r", nonce="n", uri="sip:x", response="ab", qop=auth, nc=1, cnonce="c"',
        'Digest username="u", realm="r", nonce="n", uri="sip:x", response="ab", qop=bogus',
        'Digest realm="r", nonce="n", uri="sip:x", response="ab"',
    ],
)
def test_bad_credentials_raise(value: str) -> None:
    with pytest.raises(DigestParseError):
        DigestCredentials.parse(value)


@given(st.text(max_size=60))
def test_parser_never_crashes_unexpectedly(text: str) -> None:
    try:
        DigestChallenge.parse(text)
    except DigestParseError:
        pass


@given(
    realm=st.text(min_size=1, max_size=20).filter(
        lambda s: "\r" not in s and "\n" not in s
    ),
    nonce=st.from_regex(r"[A-Za-z0-9+/=_-]{1,30}", fullmatch=True),
    opaque=st.none()
    | st.text(max_size=20).filter(lambda s: "\r" not in s and "\n" not in s),
)
def test_challenge_round_trip(realm: str, nonce: str, opaque: str | None) -> None:
    challenge = DigestChallenge(
        realm=realm, nonce=nonce, opaque=opaque, algorithm="SHA-256", qop=("auth",)
    )
    assert DigestChallenge.parse(str(challenge)) == challenge


def _counter() -> itertools.count[int]:
    return itertools.count(1)


def _client(password: str = "secret") -> DigestClient:
    counter = _counter()
    return DigestClient(
        username="alice", password=password, cnonce_factory=lambda: f"c{next(counter)}"
    )


def test_client_prefers_sha256_and_answers_407_with_proxy_authorization() -> None:
    values = [
        'Digest realm="pbx", nonce="n1", algorithm=MD5, qop="auth"',
        'Digest realm="pbx", nonce="n1", algorithm=SHA-256, qop="auth"',
    ]
    headers = _client().begin("INVITE", "sip:bob@pbx").on_challenge(407, values)
    assert headers is not None
    [header] = headers
    assert header.name == "Proxy-Authorization"
    creds = DigestCredentials.parse(header.value)
    assert creds.algorithm == "SHA-256"
    ha1 = compute_ha1("SHA-256", "alice", "pbx", "secret")
    expected = compute_response(
        algorithm="SHA-256",
        ha1=ha1,
        nonce="n1",
        method="INVITE",
        uri="sip:bob@pbx",
        qop="auth",
        nc=1,
        cnonce=creds.cnonce,
    )
    assert creds.response == expected


def test_client_answers_each_realm() -> None:
    values = ['Digest realm="a", nonce="1"', 'Digest realm="b", nonce="2", qop="auth"']
    headers = _client().begin("INVITE", "sip:x@y").on_challenge(407, values)
    assert headers is not None
    realms = sorted(DigestCredentials.parse(h.value).realm for h in headers)
    assert realms == ["a", "b"]
    no_qop = next(
        DigestCredentials.parse(h.value) for h in headers if 'realm="a"' in h.value
    )
    assert no_qop.qop is None and no_qop.nc is None and no_qop.cnonce is None


def test_client_gives_up_on_second_non_stale_challenge() -> None:
    attempt = _client().begin("REGISTER", "sip:pbx")
    assert attempt.on_challenge(401, ['Digest realm="pbx", nonce="n1", qop="auth"'])
    assert (
        attempt.on_challenge(401, ['Digest realm="pbx", nonce="n2", qop="auth"'])
        is None
    )
    assert attempt.failure_reason is not None and "rejected" in attempt.failure_reason


def test_client_gives_up_on_same_nonce_even_if_stale() -> None:
    attempt = _client().begin("REGISTER", "sip:pbx")
    assert attempt.on_challenge(401, ['Digest realm="pbx", nonce="n1", qop="auth"'])
    assert (
        attempt.on_challenge(
            401, ['Digest realm="pbx", nonce="n1", qop="auth", stale=true']
        )
        is None
    )


def test_client_retries_stale_with_new_nonce_then_caps() -> None:
    attempt = _client().begin("REGISTER", "sip:pbx")
    assert attempt.on_challenge(401, ['Digest realm="pbx", nonce="n1", qop="auth"'])
    again = attempt.on_challenge(
        401, ['Digest realm="pbx", nonce="n2", qop="auth", stale=TRUE']
    )
    assert again is not None and DigestCredentials.parse(again[0].value).nonce == "n2"
    assert attempt.on_challenge(
        401, ['Digest realm="pbx", nonce="n3", qop="auth", stale=true']
    )
    assert (
        attempt.on_challenge(
            401, ['Digest realm="pbx", nonce="n4", qop="auth", stale=true']
        )
        is None
    )
    assert attempt.failure_reason is not None and "stale" in attempt.failure_reason


def test_client_preemptive_increments_nc_and_tolerates_forgotten_nonce() -> None:
    client = _client()
    first = client.begin("REGISTER", "sip:pbx")
    assert first.preemptive() == []
    assert first.on_challenge(401, ['Digest realm="pbx", nonce="n1", qop="auth"'])
    second = client.begin("REGISTER", "sip:pbx")
    [header] = second.preemptive()
    creds = DigestCredentials.parse(header.value)
    assert creds.nonce == "n1" and creds.nc == 2
    # The server forgot n1 and challenges without stale: that is not a rejection yet.
    retry = second.on_challenge(401, ['Digest realm="pbx", nonce="n9", qop="auth"'])
    assert retry is not None and DigestCredentials.parse(retry[0].value).nc == 1
    assert (
        second.on_challenge(401, ['Digest realm="pbx", nonce="n10", qop="auth"'])
        is None
    )


def test_client_skips_unusable_challenges() -> None:
    attempt = _client().begin("REGISTER", "sip:pbx")
    assert (
        attempt.on_challenge(
            401, ['Basic realm="x"', 'Digest realm="r", nonce="n", qop="auth-conf"']
        )
        is None
    )
    assert attempt.failure_reason is not None
    with pytest.raises(ValueError):
        attempt.on_challenge(403, [])


def test_userhash_hides_username() -> None:
    headers = (
        _client()
        .begin("REGISTER", "sip:pbx")
        .on_challenge(
            401,
            [
                'Digest realm="pbx", nonce="n", qop="auth", algorithm=SHA-256, userhash=true'
            ],
        )
    )
    assert headers is not None
    creds = DigestCredentials.parse(headers[0].value)
    assert creds.userhash and creds.username != "alice" and len(creds.username) == 64
    assert isinstance(headers[0], AuthHeader)


def test_request_authenticator_shares_attempt_per_call_id() -> None:
    from sipspeak.sip.digest import RequestAuthenticator
    from sipspeak.sip.message import (
        SipRequest,
        SipResponse,
        make_response,
        parse_message,
    )

    invite = parse_message(
        b"INVITE sip:79001234567@provider SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
        b"From: <sip:117049@provider>;tag=f\r\nTo: <sip:79001234567@provider>\r\n"
        b"Call-ID: call-1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    assert isinstance(invite, SipRequest)
    authenticate = RequestAuthenticator(_client())

    def challenge(nonce: str) -> SipResponse:
        value = f'Digest realm="provider", nonce="{nonce}", qop="auth"'
        return make_response(invite, 407, headers=[("Proxy-Authenticate", value)])

    first = authenticate(invite, challenge("n1"))
    assert first is not None and first[0][0] == "Proxy-Authorization"
    creds = DigestCredentials.parse(first[0][1])
    assert creds.uri == "sip:79001234567@provider" and creds.nonce == "n1"
    # The same call challenged again without stale: wrong password, give up.
    assert authenticate(invite, challenge("n2")) is None
    assert authenticate(invite, make_response(invite, 486)) is None
