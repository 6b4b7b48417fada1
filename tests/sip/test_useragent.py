"""User agent core: calls between two sans-IO user agents (RFC 3261 §9, §12-§15)."""

from __future__ import annotations

from typing import Any

from sipspeak.sip.errors import NotAcceptableHere
from sipspeak.sip.events import MessageRejected, ResponseReceived, Transmit
from sipspeak.sip.headers import NameAddr
from sipspeak.sip.message import SipRequest, SipResponse, make_response
from sipspeak.sip.sdp import answer_offer, build_offer, parse_sdp, with_direction
from sipspeak.sip.session import (
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallFailed,
    IncomingCall,
    InviteSession,
    ReinviteAnswered,
    ReinviteReceived,
    RequestInDialog,
    SessionState,
)
from sipspeak.sip.uri import SipUri

Wire = Any  # the fixture type lives in conftest

OFFER = build_offer(
    address="127.0.0.1", port=40000, session_id=1, version=1
).serialize()


def call(wire: Wire, **kw: Any) -> InviteSession:
    return wire.a.invite(
        uri=SipUri(user="bob", host="127.0.0.1", port=5072),
        from_=NameAddr(uri=SipUri(user="alice", host="127.0.0.1")),
        destination=wire.b_addr,
        body=OFFER,
        now=wire.now,
        **kw,
    )


def incoming(wire: Wire) -> InviteSession:
    wire.transfer()
    events = wire.events(wire.b)
    assert len(events) == 1 and isinstance(events[0], IncomingCall)
    return events[0].session


def kinds(events: list[object]) -> list[str]:
    return [type(e).__name__ for e in events]


def is_method(method: str) -> Any:
    return lambda item: (
        isinstance(item.message, SipRequest) and item.message.method == method
    )


def is_status(status: int) -> Any:
    return lambda item: (
        isinstance(item.message, SipResponse) and item.message.status == status
    )


def test_basic_call_invite_ringing_ok_ack_bye(wire: Wire) -> None:
    uac = call(wire)
    uas = incoming(wire)
    assert parse_sdp(uas.invite.body).media[0].port == 40000
    uas.ring(wire.now)
    wire.b.process_pending(wire.now)
    wire.transfer()
    assert kinds(wire.events(wire.a)) == ["CallProgress"]
    assert uac.state is SessionState.EARLY and uac.dialog is not None
    uas.answer(b"v=0\r\n", wire.now)
    wire.transfer()
    (answered,) = wire.events(wire.a)
    assert isinstance(answered, CallAnswered) and answered.response.body == b"v=0\r\n"
    (confirmed,) = wire.events(wire.b)
    assert isinstance(confirmed, CallConfirmed)
    assert uac.dialog is not None and uas.dialog is not None
    assert uac.dialog.id == (
        uas.dialog.call_id,
        uas.dialog.remote_tag,
        uas.dialog.local_tag,
    )
    assert [label for _, label in wire.log] == ["INVITE", "100", "180", "200", "ACK"]
    uac.hangup(wire.now)
    wire.transfer()
    (ended,) = wire.events(wire.b)
    assert isinstance(ended, CallEnded) and ended.by_remote
    assert uas.state is SessionState.TERMINATED and uac.state is SessionState.TERMINATED
    assert wire.a.session_count == 0 and wire.b.session_count == 0
    wire.advance(40.0)
    assert wire.a.transactions.transaction_count == 0
    assert wire.b.transactions.transaction_count == 0


def test_uas_retransmits_2xx_until_ack_and_uac_acks_each(wire: Wire) -> None:
    call(wire)
    uas = incoming(wire)
    uas.answer(b"", wire.now)
    lost_acks = 2

    def drop(item: Transmit) -> bool:
        nonlocal lost_acks
        if is_method("ACK")(item) and lost_acks:
            lost_acks -= 1
            return True
        return False

    wire.transfer(drop)
    wire.advance(5.0, drop)
    labels = [label for _, label in wire.log]
    assert labels.count("200") == 3 and labels.count("ACK") == 3  # 200 at 0, 0.5, 1.5
    assert kinds(wire.events(wire.b)) == ["CallConfirmed"]
    assert kinds(wire.events(wire.a)) == ["CallAnswered"]


def test_no_ack_ends_the_call_with_bye(wire: Wire) -> None:
    call(wire)
    uas = incoming(wire)
    uas.answer(b"", wire.now)
    wire.advance(40.0, drop=is_method("ACK"))
    events = wire.events(wire.b)
    assert isinstance(events[-1], CallEnded) and not events[-1].by_remote
    assert [label for d, label in wire.log if d == "b>a"].count("BYE") == 1
    assert uas.state is SessionState.TERMINATED


def test_cancel_gets_487(wire: Wire) -> None:
    uac = call(wire)
    uas = incoming(wire)
    uas.ring(wire.now)
    wire.transfer()
    uac.cancel(wire.now)
    wire.transfer()
    (failed,) = wire.events(wire.b)
    assert isinstance(failed, CallFailed) and failed.status == 487
    events = wire.events(wire.a)
    assert kinds(events) == ["CallProgress", "CallFailed"]
    assert events[-1].status == 487  # type: ignore[attr-defined]
    labels = [label for _, label in wire.log]
    assert labels[-4:] == ["CANCEL", "200", "487", "ACK"]


def test_cancel_waits_for_a_provisional_response(wire: Wire) -> None:
    uac = call(wire)
    # the INVITE is lost; CANCEL must not go out before any 1xx (§9.1)
    wire.a.messages_to_send()
    uac.cancel(wire.now)
    assert wire.a.messages_to_send() == []
    wire.advance(0.6)  # Timer A resends the INVITE; the UAS answers 100
    assert "CANCEL" in [label for _, label in wire.log]


def test_cancel_racing_200_ends_with_ack_and_bye(wire: Wire) -> None:
    uac = call(wire)
    uas = incoming(wire)
    uas.ring(wire.now)
    wire.transfer()
    uac.cancel(wire.now)  # CANCEL queued on A
    uas.answer(b"", wire.now)  # 200 queued on B: they cross on the wire
    wire.transfer()
    a_events = wire.events(wire.a)
    assert isinstance(a_events[-1], CallEnded) and a_events[-1].reason == "cancelled"
    b_events = wire.events(wire.b)
    assert kinds(b_events) == ["CallConfirmed", "CallEnded"]
    labels = [label for _, label in wire.log]
    assert "487" not in labels and "BYE" in labels and labels.count("ACK") == 1
    assert uac.state is SessionState.TERMINATED and uas.state is SessionState.TERMINATED


def test_busy_is_reported_and_acked(wire: Wire) -> None:
    uac = call(wire)
    uas = incoming(wire)
    uas.reject(486, wire.now)
    wire.transfer()
    (failed,) = wire.events(wire.a)
    assert isinstance(failed, CallFailed) and failed.status == 486
    assert [label for _, label in wire.log][-2:] == ["486", "ACK"]
    assert uac.state is SessionState.TERMINATED


def test_invite_timeout_is_408(wire: Wire) -> None:
    uac = call(wire)
    wire.advance(33.0, drop=lambda item: True)
    (failed,) = wire.events(wire.a)
    assert isinstance(failed, CallFailed) and failed.status == 408
    assert uac.state is SessionState.TERMINATED


def test_ring_timeout_cancels(wire: Wire) -> None:
    uac = call(wire, ring_timeout=10.0)
    uas = incoming(wire)
    uas.ring(wire.now)
    wire.transfer()
    wire.advance(11.0)
    assert isinstance(wire.events(wire.b)[-1], CallFailed)
    assert uac.final_status == 487


def test_reinvite_hold_and_unhold_with_target_refresh(wire: Wire) -> None:
    uac = call(wire)
    uas = incoming(wire)
    uas.answer(b"", wire.now)
    wire.transfer()
    wire.events(wire.a), wire.events(wire.b)
    offer = parse_sdp(OFFER)
    for direction, version in (("sendonly", 2), ("sendrecv", 3)):
        uac.reinvite(with_direction(offer, direction, version).serialize(), wire.now)  # type: ignore[arg-type]
        wire.transfer()
        (received,) = wire.events(wire.b)
        assert isinstance(received, ReinviteReceived)
        assert parse_sdp(received.request.body).media[0].direction == direction
        uas.accept_reinvite(b"v=0\r\n", wire.now)
        wire.transfer()
        (answered,) = wire.events(wire.a)
        assert (
            isinstance(answered, ReinviteAnswered) and answered.response.status == 200
        )
    assert uac.dialog is not None and uac.dialog.local_seq == 3
    assert uas.dialog is not None and uas.dialog.remote_seq == 3
    # the UAS hangs up: BYE from the callee, using the caller's Contact as target
    uas.hangup(wire.now)
    wire.transfer()
    ended = wire.events(wire.a)[-1]
    assert isinstance(ended, CallEnded) and ended.by_remote


def test_reinvite_glare_gets_491(wire: Wire) -> None:
    uac = call(wire)
    uas = incoming(wire)
    uas.answer(b"", wire.now)
    wire.transfer()
    wire.events(wire.a), wire.events(wire.b)
    uac.reinvite(b"", wire.now)  # both re-INVITE at once: each gets 491 (§14.2)
    uas.reinvite(b"", wire.now)
    wire.transfer()
    assert [label for _, label in wire.log].count("491") == 2
    a_events, b_events = wire.events(wire.a), wire.events(wire.b)
    assert [e.response.status for e in a_events if isinstance(e, ReinviteAnswered)] == [
        491
    ]
    assert [e.response.status for e in b_events if isinstance(e, ReinviteAnswered)] == [
        491
    ]
    # the dialog survives and a later re-INVITE succeeds
    uac.reinvite(b"", wire.now)
    wire.transfer()
    (received,) = wire.events(wire.b)
    assert isinstance(received, ReinviteReceived)


def test_authenticated_retry_keeps_call_id_and_from_tag(wire: Wire) -> None:
    seen: list[SipResponse] = []

    def authenticate(
        request: SipRequest, response: SipResponse
    ) -> list[tuple[str, str]] | None:
        seen.append(response)
        return [("Proxy-Authorization", 'Digest username="alice"')]

    uac = call(wire, authenticate=authenticate)
    first = incoming(wire)
    first.reject(
        407, wire.now, headers=[("Proxy-Authenticate", 'Digest realm="x", nonce="n"')]
    )
    wire.transfer()
    second = wire.events(wire.b)
    assert len(second) == 1 and isinstance(second[0], IncomingCall)
    again = second[0].request
    assert again.call_id == first.invite.call_id
    assert again.from_.tag == first.invite.from_.tag
    assert again.cseq.seq == first.invite.cseq.seq + 1
    assert again.branch != first.invite.branch
    assert again.headers.get("Proxy-Authorization") == 'Digest username="alice"'
    assert len(seen) == 1 and seen[0].status == 407
    second[0].session.answer(b"", wire.now)
    wire.transfer()
    assert kinds(wire.events(wire.a)) == ["CallAnswered"]
    assert uac.state is SessionState.CONFIRMED


def test_options_unknown_method_and_stray_bye(wire: Wire) -> None:
    uri = SipUri(host="127.0.0.1", port=5072)
    for method in ("OPTIONS", "FOO", "BYE"):
        request = wire.a.build_request(
            method,
            uri,
            from_=NameAddr(uri=uri),
            to=NameAddr(uri=uri),
            destination=wire.b_addr,
        )
        wire.a.send_request(request, wire.b_addr, wire.now)
    wire.transfer()
    statuses = {e.transaction.request.method: e.response for e in wire.events(wire.a)
                if isinstance(e, ResponseReceived)}  # fmt: skip
    assert statuses["OPTIONS"].status == 200 and "INVITE" in (
        statuses["OPTIONS"].headers.get("Allow") or ""
    )
    assert statuses["FOO"].status == 501
    assert statuses["BYE"].status == 481


def test_handler_extension_point(wire: Wire) -> None:
    got: list[SipRequest] = []

    def registrar(request: SipRequest, txn: Any, now: float) -> SipResponse:
        got.append(request)
        return make_response(request, 200, to_tag="reg", contact=request.contact)

    wire.b.add_handler("REGISTER", registrar)
    uri = SipUri(host="127.0.0.1", port=5072)
    aor = NameAddr(uri=SipUri(user="alice", host="127.0.0.1"))
    request = wire.a.build_request(
        "REGISTER", uri, from_=aor, to=aor, destination=wire.b_addr
    )
    wire.a.send_request(request, wire.b_addr, wire.now)
    wire.transfer()
    (event,) = wire.events(wire.a)
    assert isinstance(event, ResponseReceived) and event.response.status == 200
    assert len(got) == 1 and got[0].contact == request.contact
    assert "REGISTER" in wire.b.allow


def test_bad_input_is_answered_or_dropped(wire: Wire) -> None:
    wire.b.receive_data(b"\x00\xffgarbage\r\n\r\n", wire.a_addr, 0.0)
    assert wire.b.messages_to_send() == []
    assert isinstance(wire.b.next_event(), MessageRejected)
    uri = SipUri(host="127.0.0.1", port=5072)
    request = wire.a.build_request("OPTIONS", uri, from_=NameAddr(uri=uri), to=NameAddr(uri=uri),
                                   destination=wire.b_addr)  # fmt: skip
    raw = request.serialize().replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1)
    wire.b.receive_data(raw, wire.a_addr, 0.0)
    (sent,) = wire.b.messages_to_send()
    assert isinstance(sent.message, SipResponse) and sent.message.status == 505
    assert sent.destination.port == wire.a_addr.port


def test_cancel_without_final_response_gives_up_after_64_t1(wire: Wire) -> None:
    uac = call(wire)
    uas = incoming(wire)
    uas.ring(wire.now)
    wire.transfer()
    uac.cancel(wire.now)
    # the callee ignores the CANCEL entirely (and never answers the INVITE)
    wire.advance(
        40.0, drop=lambda item: is_method("CANCEL")(item) or is_status(487)(item)
    )
    failed = [e for e in wire.events(wire.a) if isinstance(e, CallFailed)]
    assert [f.status for f in failed] == [487]
    assert uac.state is SessionState.TERMINATED
    assert wire.a.transactions.transaction_count == 0


def test_in_dialog_info_is_reported_and_update_refused(wire: Wire) -> None:
    uac = call(wire)
    uas = incoming(wire)
    uas.answer(b"", wire.now)
    wire.transfer()
    wire.events(wire.a), wire.events(wire.b)
    assert uac.dialog is not None
    for method in ("INFO", "UPDATE", "FOO"):
        request = uac.dialog.create_request(
            method, via=wire.a.via_for(wire.b_addr), body=b"Signal=5\r\nDuration=160\r\n",
            headers=[("Content-Type", "application/dtmf-relay")],
        )  # fmt: skip
        wire.a.send_request(request, wire.b_addr, wire.now)
    wire.transfer()
    statuses = {e.transaction.request.method: e.response.status for e in wire.events(wire.a)
                if isinstance(e, ResponseReceived)}  # fmt: skip
    assert statuses == {"INFO": 200, "UPDATE": 405, "FOO": 501}
    (info,) = wire.events(wire.b)
    assert isinstance(info, RequestInDialog) and info.request.body.startswith(
        b"Signal=5"
    )
    assert info.session is uas


def test_offer_without_usable_codec_is_rejected_488(wire: Wire) -> None:
    g729_only = (
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 40000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n"
    )
    uac = wire.a.invite(
        uri=SipUri(user="bob", host="127.0.0.1", port=5072),
        from_=NameAddr(uri=SipUri(user="alice", host="127.0.0.1")),
        destination=wire.b_addr,
        body=g729_only,
        now=wire.now,
    )
    uas = incoming(wire)
    try:
        answer_offer(
            parse_sdp(uas.invite.body),
            address="127.0.0.1",
            port=1,
            session_id=1,
            version=1,
        )
    except NotAcceptableHere as exc:
        uas.reject(exc.status_hint, wire.now)
    wire.transfer()
    (failed,) = wire.events(wire.a)
    assert isinstance(failed, CallFailed) and failed.status == 488
    assert uac.state is SessionState.TERMINATED


def test_late_offer_answer_travels_in_the_ack(wire: Wire) -> None:
    """INVITE without SDP: the callee offers in the 200, the caller answers in the ACK."""
    answered: list[SipResponse] = []

    def late_answer(response: SipResponse) -> bytes:
        answered.append(response)
        answer, _ = answer_offer(
            parse_sdp(response.body),
            address="127.0.0.1",
            port=42000,
            session_id=9,
            version=1,
        )
        return answer.serialize()

    uac = wire.a.invite(
        uri=SipUri(user="bob", host="127.0.0.1", port=5072),
        from_=NameAddr(uri=SipUri(user="alice", host="127.0.0.1")),
        destination=wire.b_addr,
        now=wire.now,
        late_answer=late_answer,
    )
    uas = incoming(wire)
    assert uas.invite.body == b""
    uas.answer(OFFER, wire.now)
    wire.transfer()
    (confirmed,) = wire.events(wire.b)
    assert isinstance(confirmed, CallConfirmed)
    assert confirmed.ack.content_type == "application/sdp"
    assert parse_sdp(confirmed.ack.body).media[0].port == 42000
    assert len(answered) == 1 and uac.state is SessionState.CONFIRMED
