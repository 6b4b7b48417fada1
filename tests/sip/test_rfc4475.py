"""RFC 4475 torture messages (tests/sip/data/rfc4475/*.dat): parsed, or rejected with the right status.

Each message goes through a real ``UserAgent`` as a UDP datagram; the status of
the first response it sends (or none) is checked, and a call in progress on the
same user agent must not notice anything.  wsinv carries a To tag, so as an
out-of-dialog request it is answered 481 (RFC 3261 §12.2.2) once parsed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sipspeak.sip.errors import SipError
from sipspeak.sip.events import Address
from sipspeak.sip.message import SipRequest, SipResponse, parse_message
from sipspeak.sip.session import CallConfirmed, CallEnded, IncomingCall
from sipspeak.sip.uri import SipUri
from sipspeak.sip.useragent import UserAgent

DATA = Path(__file__).parent / "data" / "rfc4475"

# name -> (parses?, status of the first response the user agent sends, None = silence)
EXPECTED: dict[str, tuple[bool, int | None]] = {
    # §3.1.1 valid messages
    "wsinv": (True, 481), "intmeth": (True, 501), "esc01": (True, 100), "escnull": (True, 405),
    "esc02": (True, 501), "lwsdisp": (True, 200), "longreq": (True, 100), "dblreq": (True, 405),
    "semiuri": (True, 200), "transports": (True, 200), "mpart01": (True, 405),
    "unreason": (True, None), "noreason": (True, None),
    # §3.1.2 invalid messages
    "badinv01": (False, 400), "clerr": (False, 400), "scalar02": (False, 400),
    "scalarlg": (False, None), "quotbal": (False, 400), "ltgtruri": (False, 400),
    "lwsruri": (False, 400), "lwsstart": (False, 400), "trws": (False, 400),
    "escruri": (False, 400), "baddate": (True, 100), "regbadct": (False, 400),
    "badaspec": (False, 400), "baddn": (False, 400), "badvers": (False, 505),
    "mismatch01": (False, 400), "mismatch02": (False, 400), "bigcode": (False, None),
    # §3.2 transaction layer
    "badbranch": (True, 200),
    # §3.3 application layer
    "insuf": (False, None), "unkscm": (True, 416), "novelsc": (True, 416), "unksm2": (True, 405),
    "bext01": (True, 420), "invut": (True, 415), "regaut01": (True, 405), "multi01": (False, 400),
    "mcl01": (False, 400), "bcast": (True, None), "zeromf": (True, 200), "cparam01": (True, 405),
    "cparam02": (True, 405), "regescrt": (True, 405), "sdp01": (True, 406), "inv2543": (True, 100),
}  # fmt: skip

SOURCE = Address("UDP", "192.0.2.77", 5060)


def load(name: str) -> bytes:
    return (DATA / f"{name}.dat").read_bytes()


def test_every_data_file_has_an_expectation() -> None:
    assert sorted(p.stem for p in DATA.glob("*.dat")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_torture_message(name: str) -> None:
    parses, status = EXPECTED[name]
    data = load(name)
    try:
        parse_message(data)
        parsed = True
    except SipError:
        parsed = False
    assert parsed == parses
    ua = UserAgent(local=Address("UDP", "127.0.0.1", 5060))
    ua.receive_data(data, SOURCE, now=0.0)
    sent = ua.messages_to_send()
    got = sent[0].message.status if sent else None  # type: ignore[union-attr]
    assert got == status, [s.message for s in sent]
    for item in sent:
        assert isinstance(item.message, SipResponse)
        assert item.destination.host == SOURCE.host  # §18.2.2 with "received"
    # what it says is itself parseable (a 400 echoes a bad From/To verbatim, so not those)
    for item in sent if parses else ():
        assert parse_message(item.message.serialize()).cseq == item.message.cseq


def test_valid_messages_carry_their_meaning() -> None:
    wsinv = parse_message(load("wsinv"))
    assert isinstance(wsinv, SipRequest)
    assert wsinv.to.tag == "1918181833n" and wsinv.from_.tag == "98asjd8"
    assert wsinv.from_.display_name == 'J Rosenberg \\"'
    assert wsinv.max_forwards == 68 and wsinv.cseq.seq == 9
    assert [v.transport for v in wsinv.via] == ["UDP", "TCP", "UDP"]
    assert (
        wsinv.via[2].branch == "z9hG4bK30239" and wsinv.via[2].host == "192.168.255.111"
    )
    assert wsinv.contact[0].display_name == 'Quoted string ""'
    assert (
        wsinv.contact[0].param("q") == "0.33"
        and wsinv.contact[0].param("secondparam") == ""
    )
    assert wsinv.headers.get("Subject") == ""
    assert (
        wsinv.headers.get("NewFangledHeader")
        == "newfangled value continued newfangled value"
    )
    assert wsinv.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    esc01 = parse_message(load("esc01"))
    assert isinstance(esc01, SipRequest) and isinstance(esc01.uri, SipUri)
    assert esc01.uri.user_unescaped == "sips:user@example.com"
    intmeth = parse_message(load("intmeth"))
    assert isinstance(intmeth, SipRequest)
    assert intmeth.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert intmeth.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert intmeth.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"  # type: ignore[union-attr]
    longreq = parse_message(load("longreq"))
    assert len(longreq.via) == 34 and longreq.via[-1].received == "192.0.2.5"
    semiuri = parse_message(load("semiuri"))
    assert semiuri.uri.user_unescaped == "user;par=u@example.net"  # type: ignore[union-attr]
    assert semiuri.uri.parameters == ()  # type: ignore[union-attr]
    assert len(semiuri.headers.get_list("Accept")) == 6
    unreason = parse_message(load("unreason"))
    assert isinstance(unreason, SipResponse) and unreason.reason.endswith("простое")
    dblreq = parse_message(load("dblreq"))
    assert (
        isinstance(dblreq, SipRequest)
        and dblreq.method == "REGISTER"
        and dblreq.body == b""
    )
    # every one of them survives serialize -> parse with the same meaning
    for name, (parses, _) in EXPECTED.items():
        if parses:
            message = parse_message(load(name))
            assert parse_message(message.serialize()) == message, name


def test_rejected_messages_leave_a_call_untouched(wire: Any) -> None:
    session = wire.a.invite(
        uri=SipUri(user="bob", host="127.0.0.1", port=5072),
        from_=wire.b.contact_for(wire.b_addr),
        destination=wire.b_addr,
        now=0.0,
    )
    wire.transfer()
    (incoming,) = wire.events(wire.b)
    assert isinstance(incoming, IncomingCall)
    for name in EXPECTED:
        wire.b.receive_data(load(name), SOURCE, now=0.0)
    wire.b.messages_to_send()
    wire.events(wire.b)
    incoming.session.answer(b"", 0.0)
    wire.transfer()
    assert any(isinstance(e, CallConfirmed) for e in wire.events(wire.b))
    session.hangup(0.0)
    wire.transfer()
    assert any(isinstance(e, CallEnded) for e in wire.events(wire.b))
