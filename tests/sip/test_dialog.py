"""Dialog state, route sets and in-dialog requests (RFC 3261 §12, §16.12.1.2)."""

from __future__ import annotations

import pytest

from sipspeak.sip.dialog import Dialog, DialogState, OutOfOrderRequest, uri_destination
from sipspeak.sip.events import Address
from sipspeak.sip.headers import CSeq, NameAddr, Via
from sipspeak.sip.message import SipRequest, make_response, parse_message
from sipspeak.sip.uri import SipUri, parse_uri

INVITE = (
    b"INVITE sip:bob@192.0.2.20 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bKproxy2\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKproxy1\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKalice\r\n"
    b"Record-Route: <sip:192.0.2.2:5060;lr>, <sip:192.0.2.1:5060;lr>\r\n"
    b"From: <sip:alice@example.com>;tag=a1\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: dialog-test\r\n"
    b"CSeq: 10 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.10:5060>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def invite() -> SipRequest:
    message = parse_message(INVITE)
    assert isinstance(message, SipRequest)
    return message


def via() -> Via:
    return Via(host="192.0.2.20", port=5060, parameters=(("branch", "z9hG4bKnew"),))


def test_uas_route_set_keeps_record_route_order() -> None:
    request = invite()
    dialog = Dialog.for_uas(request, local_tag="b1", local_contact=None, flow=None)
    assert dialog.id == ("dialog-test", "b1", "a1")
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:192.0.2.2:5060;lr",
        "sip:192.0.2.1:5060;lr",
    ]
    bye = dialog.create_request("BYE", via=via())
    assert bye.uri == parse_uri("sip:alice@192.0.2.10:5060")  # remote target = Contact
    assert [str(r.uri) for r in bye.route] == [
        "sip:192.0.2.2:5060;lr",
        "sip:192.0.2.1:5060;lr",
    ]
    assert bye.from_.tag == "b1" and bye.to.tag == "a1" and bye.cseq.seq == 1
    assert dialog.destination() == Address(
        "UDP", "192.0.2.2", 5060
    )  # first hop is the proxy


def test_uac_route_set_is_reversed_and_confirmed_by_2xx() -> None:
    request = invite()
    ringing = make_response(request, 180, to_tag="b1", contact=[])
    dialog = Dialog.for_uac(request, ringing, None)
    assert dialog.state is DialogState.EARLY
    ok = make_response(request, 200, to_tag="b1")
    ok.contact = [NameAddr(uri=parse_uri("sip:bob@192.0.2.20:5070"))]
    dialog.confirm(ok)
    assert dialog.state is DialogState.CONFIRMED
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:192.0.2.1:5060;lr",
        "sip:192.0.2.2:5060;lr",
    ]
    assert dialog.remote_target == parse_uri("sip:bob@192.0.2.20:5070")
    ack = dialog.create_request("ACK", via=via(), cseq=request.cseq.seq)
    assert ack.cseq.seq == 10 and ack.cseq.method == "ACK"
    bye = dialog.create_request("BYE", via=via())
    assert bye.cseq.seq == 11  # the next local CSeq (§12.2.1.1)


def test_strict_router_becomes_the_request_uri() -> None:
    request = invite()
    request.record_route = [NameAddr(uri=parse_uri("sip:192.0.2.9:5060"))]
    dialog = Dialog.for_uas(request, local_tag="b1", local_contact=None, flow=None)
    bye = dialog.create_request("BYE", via=via())
    assert bye.uri == parse_uri("sip:192.0.2.9:5060")
    assert [str(r.uri) for r in bye.route] == ["sip:alice@192.0.2.10:5060"]


def test_out_of_order_cseq_and_target_refresh() -> None:
    request = invite()
    dialog = Dialog.for_uas(request, local_tag="b1", local_contact=None, flow=None)
    reinvite = invite()
    reinvite.cseq = CSeq(11, "INVITE")
    reinvite.contact = [NameAddr(uri=parse_uri("sip:alice@192.0.2.99:6000"))]
    dialog.check_request(reinvite)
    assert dialog.remote_seq == 11 and dialog.remote_target == parse_uri(
        "sip:alice@192.0.2.99:6000"
    )
    old = invite()
    old.method = "BYE"
    old.cseq = CSeq(5, "BYE")
    with pytest.raises(OutOfOrderRequest) as info:
        dialog.check_request(old)
    assert info.value.status_hint == 500


def test_uri_destination_defaults() -> None:
    assert uri_destination(parse_uri("sip:h.example:5070;transport=TCP")) == Address(
        "TCP", "h.example", 5070
    )
    assert uri_destination(parse_uri("sips:h.example")) == Address(
        "UDP", "h.example", 5061
    )
    assert uri_destination(parse_uri("sip:[2001:db8::1]")) == Address(
        "UDP", "2001:db8::1", 5060
    )
    assert (
        uri_destination(SipUri(host="h", parameters=(("maddr", "192.0.2.5"),))).host
        == "192.0.2.5"
    )
