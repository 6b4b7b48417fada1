"""Registrar bindings (RFC 3261 §10.3) on a fake clock."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipspeak.sip.events import Address
from sipspeak.sip.headers import NameAddr
from sipspeak.sip.message import SipRequest, parse_message
from sipspeak.sip.registrar import (
    ExtensionOffline,
    ExtensionOnline,
    OfflineReason,
    Registrar,
    same_uri,
)
from sipspeak.sip.uri import parse_uri


def c(text: str) -> NameAddr:
    return NameAddr.parse(text)


def reg(
    r: Registrar,
    *contacts: str,
    expires: str | None = None,
    call_id: str = "cid-1",
    cseq: int = 1,
    now: float = 0.0,
    ext: str = "101",
):
    return r.register(
        extension=ext,
        contacts=[c(x) for x in contacts],
        expires=expires,
        call_id=call_id,
        cseq=cseq,
        now=now,
    )


def test_register_lookup_and_online_event() -> None:
    r = Registrar(min_expires=60, max_expires=3600)
    result = reg(r, "<sip:101@10.0.0.5:5062>", expires="600")
    assert result.status == 200
    [event] = result.events
    assert isinstance(event, ExtensionOnline) and event.extension == "101"
    [binding] = r.lookup("101", 1.0)
    assert str(binding.uri) == "sip:101@10.0.0.5:5062"
    assert binding.expires_at == 600.0
    assert [str(x) for x in result.contacts] == ["<sip:101@10.0.0.5:5062>;expires=600"]
    assert r.lookup("101", 600.0) == []
    assert r.lookup("102", 1.0) == []


def test_several_contacts_q_order_and_listing() -> None:
    r = Registrar()
    reg(r, "<sip:101@a>;q=0.3", "<sip:101@b>;q=0.9", expires="300")
    result = reg(r, "<sip:101@c>;expires=120", call_id="other", now=10.0)
    assert result.status == 200 and result.events == ()
    assert [str(b.uri) for b in r.lookup("101", 11.0)] == [
        "sip:101@c",
        "sip:101@b",
        "sip:101@a",
    ]
    assert sorted(str(x) for x in result.contacts) == [
        "<sip:101@a>;q=0.3;expires=290",
        "<sip:101@b>;q=0.9;expires=290",
        "<sip:101@c>;expires=120",
    ]
    assert r.lookup("101", 11.0)[1].q == Decimal("0.9")


def test_refresh_extends_and_query_lists() -> None:
    r = Registrar()
    reg(r, "<sip:101@a>", expires="100", cseq=1)
    reg(r, "<sip:101@a>", expires="100", cseq=2, now=80.0)
    [b] = r.lookup("101", 150.0)
    assert b.expires_at == 180.0 and b.cseq == 2
    # A REGISTER without Contact is a query (§10.2.3).
    query = reg(r, cseq=3, now=100.0)
    assert query.status == 200 and [str(x) for x in query.contacts] == [
        "<sip:101@a>;expires=80"
    ]


def test_unregister_one_contact_then_the_last() -> None:
    r = Registrar()
    reg(r, "<sip:101@a>", "<sip:101@b>", expires="300")
    one = reg(r, "<sip:101@a>", expires="0", cseq=2)
    assert one.status == 200 and one.events == ()
    assert [str(b.uri) for b in r.lookup("101", 1.0)] == ["sip:101@b"]
    last = reg(r, "<sip:101@b>;expires=0", cseq=3)
    assert last.events == (
        ExtensionOffline(extension="101", reason=OfflineReason.UNREGISTERED),
    )
    assert r.lookup("101", 1.0) == [] and last.contacts == ()


def test_wildcard_unregister_rules() -> None:
    r = Registrar()
    reg(r, "<sip:101@a>", "<sip:101@b>", expires="300")
    assert reg(r, "*", expires="60", cseq=2).status == 400
    assert reg(r, "*", cseq=2).status == 400  # no Expires at all
    assert reg(r, "*", "<sip:101@c>", expires="0", cseq=2).status == 400
    assert reg(r, "*", expires="0", cseq=1).status == 500  # same Call-ID, old CSeq
    assert len(r.lookup("101", 1.0)) == 2
    ok = reg(r, "*", expires="0", cseq=2)
    assert ok.status == 200
    assert ok.events == (
        ExtensionOffline(extension="101", reason=OfflineReason.UNREGISTERED),
    )
    assert r.lookup("101", 1.0) == []


def test_min_expires_423_and_max_cap() -> None:
    r = Registrar(min_expires=60, max_expires=1800)
    too_brief = reg(r, "<sip:101@a>", expires="30")
    assert too_brief.status == 423 and ("Min-Expires", "60") in too_brief.headers
    assert r.lookup("101", 0.0) == []
    capped = reg(r, "<sip:101@a>", expires="999999999999")
    assert capped.status == 200 and r.lookup("101", 0.0)[0].expires_at == 1800.0
    default = reg(r, "<sip:101@b>", call_id="x")
    assert default.status == 200
    assert r.lookup("101", 0.0)[-1].expires_at == 1800.0  # default 3600 capped too


def test_malformed_expires_uses_default_and_bad_q_is_400() -> None:
    r = Registrar(max_expires=7200)
    assert reg(r, "<sip:101@a>;expires=soon").status == 200
    assert r.lookup("101", 0.0)[0].expires_at == 3600.0
    assert reg(r, "<sip:101@b>;q=1.5", call_id="z").status == 400
    assert reg(r, "<sip:101@b>;q=abc", call_id="z").status == 400


def test_call_id_cseq_ordering() -> None:
    r = Registrar()
    reg(r, "<sip:101@a>", expires="300", call_id="one", cseq=5)
    assert reg(r, "<sip:101@a>", expires="300", call_id="one", cseq=5).status == 500
    assert reg(r, "<sip:101@a>", expires="300", call_id="one", cseq=4).status == 500
    # A different Call-ID (phone rebooted) replaces the binding whatever its CSeq.
    assert (
        reg(r, "<sip:101@a>", expires="100", call_id="two", cseq=1, now=1.0).status
        == 200
    )
    [b] = r.lookup("101", 2.0)
    assert b.call_id == "two" and b.expires_at == 101.0


def test_failed_request_changes_nothing() -> None:
    r = Registrar()
    reg(r, "<sip:101@a>", expires="300", cseq=5)
    # First contact would be fine, second is out of order: nothing is committed.
    result = reg(r, "<sip:101@new>", "<sip:101@a>", expires="300", cseq=5)
    assert result.status == 500
    assert [str(b.uri) for b in r.lookup("101", 1.0)] == ["sip:101@a"]


def test_max_contacts() -> None:
    r = Registrar(max_contacts=2)
    assert reg(r, "<sip:101@a>", "<sip:101@b>", "<sip:101@c>").status == 403
    assert r.lookup("101", 0.0) == []


def test_expiry_deadline_and_offline_event() -> None:
    r = Registrar()
    reg(r, "<sip:101@a>", expires="100")
    reg(r, "<sip:102@a>", expires="200", ext="102")
    assert r.next_expiry() == 100.0
    assert r.expire(99.0) == []
    assert r.expire(100.0) == [
        ExtensionOffline(extension="101", reason=OfflineReason.EXPIRED)
    ]
    assert r.next_expiry() == 200.0 and r.extensions(150.0) == ["102"]
    assert list(r.bindings(150.0)) == ["102"] and len(r.bindings(150.0)["102"]) == 1
    assert r.expire(250.0) == [
        ExtensionOffline(extension="102", reason=OfflineReason.EXPIRED)
    ]
    assert r.next_expiry() is None


def test_lapsed_binding_reported_when_phone_comes_back() -> None:
    r = Registrar()
    reg(r, "<sip:101@a>", expires="100")
    again = reg(r, "<sip:101@a>", expires="100", cseq=2, now=500.0)
    assert [type(e) for e in again.events] == [ExtensionOffline, ExtensionOnline]


def test_uri_comparison_rules() -> None:
    def same(a: str, b: str) -> bool:
        return same_uri(parse_uri(a), parse_uri(b))

    assert same(
        "sip:101@EXAMPLE.com;Transport=TCP", "sip:101@example.com;transport=tcp"
    )
    assert not same("sip:101@example.com", "sip:101@example.com:5060")
    assert not same("sip:Alice@example.com", "sip:alice@example.com")
    assert same("sip:%61lice@example.com", "sip:alice@example.com")
    assert not same("sip:101@a;transport=tcp", "sip:101@a")
    assert same("sip:101@a;ob", "sip:101@a")  # other params only when in both
    assert not same("sip:101@a;x=1", "sip:101@a;x=2")


def test_handle_request_from_wire() -> None:
    data = (
        b"REGISTER sip:pbx.local SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK1\r\n"
        b"From: <sip:101@pbx.local>;tag=a\r\n"
        b"To: <sip:101@pbx.local>\r\n"
        b"Call-ID: abc@10.0.0.5\r\n"
        b"CSeq: 7 REGISTER\r\n"
        b"Contact: <sip:101@10.0.0.5:5062;transport=udp>;expires=120, <sip:101@10.0.0.5:5070>\r\n"
        b"Expires: 900\r\n"
        b"User-Agent: Yealink SIP-T21P\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    request = parse_message(data)
    assert isinstance(request, SipRequest)
    r = Registrar()
    result = r.handle_request(
        request, extension="101", now=0.0, source=Address("UDP", "10.0.0.5", 5062)
    )
    response = result.response(request, to_tag="t1")
    wire = response.serialize().decode()
    assert wire.startswith("SIP/2.0 200 OK\r\n")
    assert "Contact: <sip:101@10.0.0.5:5062;transport=udp>;expires=120\r\n" in wire
    assert "Contact: <sip:101@10.0.0.5:5070>;expires=900\r\n" in wire
    assert response.to.tag == "t1"
    assert r.lookup("101", 0.0)[0].source == Address("UDP", "10.0.0.5", 5062)
    assert r.lookup("101", 0.0)[0].user_agent == "Yealink SIP-T21P"


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        Registrar(min_expires=100, default_expires=50, max_expires=200)


def test_same_contact_twice_in_one_request_is_not_out_of_order() -> None:
    r = Registrar()
    result = reg(r, "<sip:101@a>;expires=100", "<sip:101@a>;expires=200")
    assert result.status == 200
    [b] = r.lookup("101", 0.0)
    assert b.expires_at == 200.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["101", "102"]),
            st.sampled_from(["<sip:x@a>", "<sip:x@b>", "*"]),
            st.sampled_from(["0", "60", "300", None]),
            st.integers(min_value=0, max_value=500),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_events_track_online_state(
    ops: list[tuple[str, str, str | None, int, bool]],
) -> None:
    """Whatever the sequence, events alternate online/offline per extension and
    agree with ``lookup``; ``next_expiry`` is never later than a live binding."""
    r = Registrar(min_expires=60)
    online = {"101": False, "102": False}
    now = 0.0
    for cseq, (ext, contact, expires, step, purge) in enumerate(ops, start=1):
        now += step
        events = list(r.expire(now)) if purge else []
        events += reg(r, contact, expires=expires, cseq=cseq, now=now, ext=ext).events
        # Lapsed bindings are reported by the next register or by expire, once.
        events += r.expire(now)
        for event in events:
            if isinstance(event, ExtensionOnline):
                assert not online[event.extension]
                online[event.extension] = True
            else:
                assert online[event.extension]
                online[event.extension] = False
        assert online[ext] == bool(r.lookup(ext, now))
        deadline = r.next_expiry()
        live = [b.expires_at for e in online for b in r.lookup(e, now)]
        if live:
            assert deadline is not None and deadline <= min(live)


def test_restore_puts_back_live_bindings_of_offline_extensions() -> None:
    before = Registrar(max_contacts=2)
    reg(before, "<sip:101@a>", "<sip:101@b>;q=0.5", expires="600")
    reg(before, "<sip:102@a>", expires="100", ext="102")
    reg(before, "<sip:103@a>", expires="600", ext="103")
    kept = [b for bindings in before.bindings(0.0).values() for b in bindings]

    after = Registrar(max_contacts=2)
    reg(after, "<sip:103@z>", expires="600", ext="103", call_id="new", now=50.0)
    extra = replace(kept[0], contact=c("<sip:101@c>"))  # a third contact of 101
    events = after.restore([*kept, kept[0], extra], now=150.0)
    # 101 is back with two contacts (the duplicate and the one over max_contacts left out),
    # 102 had expired by then, 103 registered anew meanwhile and keeps that binding only.
    assert events == [ExtensionOnline(extension="101", contacts=tuple(kept[:2]))]
    assert [str(b.uri) for b in after.lookup("101", 150.0)] == ["sip:101@a", "sip:101@b"]
    assert after.lookup("102", 150.0) == []
    assert [str(b.uri) for b in after.lookup("103", 150.0)] == ["sip:103@z"]
    assert after.next_expiry() == 600.0
    # A restored binding is refreshed and removed like any other.
    assert reg(after, "<sip:101@a>", expires="0", cseq=2, now=200.0).status == 200
    assert [str(b.uri) for b in after.lookup("101", 200.0)] == ["sip:101@b"]
