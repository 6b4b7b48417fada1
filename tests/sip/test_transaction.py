"""RFC 3261 §17 transactions driven by a float clock (no sockets, no sleeping)."""

from __future__ import annotations

from sipspeak.sip.events import (
    Address,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
    Transmit,
)
from sipspeak.sip.headers import CSeq, NameAddr, Via
from sipspeak.sip.message import SipRequest, SipResponse, make_response, parse_message
from sipspeak.sip.transaction import State
from sipspeak.sip.transaction_layer import TransactionLayer, new_branch
from sipspeak.sip.uri import SipUri

UAC = Address("UDP", "127.0.0.1", 5061)
UAS = Address("UDP", "127.0.0.1", 5062)
TCP_UAS = Address("TCP", "127.0.0.1", 5062)


def request(method: str = "INVITE", seq: int = 1) -> SipRequest:
    return SipRequest(
        method=method,
        uri=SipUri(user="bob", host="127.0.0.1", port=5062),
        via=[
            Via(
                host="127.0.0.1",
                port=5061,
                parameters=(("branch", new_branch()), ("rport", None)),
            )
        ],
        from_=NameAddr(
            uri=SipUri(user="alice", host="127.0.0.1"), parameters=(("tag", "a1"),)
        ),
        to=NameAddr(uri=SipUri(user="bob", host="127.0.0.1")),
        call_id="call-1",
        cseq=CSeq(seq, method),
        max_forwards=70,
    )


def wire(message: SipRequest | SipResponse) -> SipRequest | SipResponse:
    """Through bytes, as a real transport would carry it."""
    return parse_message(message.serialize())


def drain(layer: TransactionLayer) -> list[object]:
    out, layer.outbox[:] = list(layer.outbox), []
    return out


def fire(layer: TransactionLayer, now: float) -> None:
    for owner in layer.queue.pop_due(now):
        owner.handle_timer(now)


def run_clock(layer: TransactionLayer, until: float) -> list[float]:
    """Fire every timer up to ``until``; return the times at which something was sent."""
    sent: list[float] = []
    while (deadline := layer.queue.get_timer()) is not None and deadline <= until:
        fire(layer, deadline)
        sent.extend(deadline for item in drain(layer) if isinstance(item, Transmit))
    return sent


def test_client_invite_timer_a_doubles_and_timer_b_times_out() -> None:
    layer = TransactionLayer()
    txn = layer.send_request(request(), UAS, now=0.0)
    assert [type(x) for x in drain(layer)] == [Transmit]
    sent = run_clock(layer, 31.9)
    assert sent == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # §17.1.1.2: A doubles from T1
    fire(layer, 32.0)
    events = drain(layer)
    assert isinstance(events[0], TransactionTimedOut) and events[0].transaction is txn
    assert txn.state is State.TERMINATED and layer.transaction_count == 0


def test_client_non_invite_timer_e_capped_at_t2() -> None:
    layer = TransactionLayer()
    layer.send_request(request("OPTIONS"), UAS, now=0.0)
    drain(layer)
    sent = run_clock(layer, 20.0)
    assert sent == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5]  # E: 0.5, 1, 2, 4, 4, 4 …
    fire(layer, 32.0)
    assert any(isinstance(e, TransactionTimedOut) for e in drain(layer))


def test_reliable_transport_has_no_retransmissions() -> None:
    layer = TransactionLayer()
    layer.send_request(request(), TCP_UAS, now=0.0)
    drain(layer)
    assert run_clock(layer, 31.0) == []


def pair() -> tuple[TransactionLayer, TransactionLayer]:
    return TransactionLayer(), TransactionLayer()


def deliver(
    items: list[object], to: TransactionLayer, source: Address, now: float
) -> None:
    for item in items:
        if isinstance(item, Transmit):
            message = wire(item.message)
            if isinstance(message, SipRequest):
                to.receive_request(message, source, now)
            else:
                to.receive_response(message, now)


def test_server_invite_resends_last_response_and_absorbs_ack() -> None:
    uac, uas = pair()
    invite = request()
    client = uac.send_request(invite, UAS, now=0.0)
    out = drain(uac)
    deliver(out, uas, UAC, 0.0)
    (received,) = drain(uas)
    assert isinstance(received, RequestReceived) and received.transaction is not None
    server = received.transaction
    # rport filled with the source port, received added (§18.2.1, RFC 3581)
    assert server.request.via[0].rport == 5061
    server.send_response(make_response(server.request, 180, to_tag="b1"), now=0.1)
    ringing = drain(uas)
    # the retransmitted INVITE gets the 180 again and creates no new transaction
    deliver(out, uas, UAC, 0.5)
    again = drain(uas)
    assert len(again) == 1 and isinstance(again[0], Transmit)
    assert again[0].message.serialize() == ringing[0].message.serialize()  # type: ignore[attr-defined]
    server.send_response(make_response(server.request, 486, to_tag="b1"), now=1.0)
    busy = drain(uas)
    deliver(ringing + busy, uac, UAS, 1.0)
    events = drain(uac)
    statuses = [e.response.status for e in events if isinstance(e, ResponseReceived)]
    assert statuses == [180, 486]
    acks = [e for e in events if isinstance(e, Transmit)]
    assert acks[0].message.method == "ACK"  # type: ignore[union-attr]
    assert acks[0].message.via[0].branch == invite.branch  # §17.1.1.3: same branch
    assert client.state is State.COMPLETED
    deliver(acks, uas, UAC, 1.1)
    assert server.state is State.CONFIRMED and drain(uas) == []
    # a retransmitted 486 is answered by the client transaction with another ACK only
    deliver(busy, uac, UAS, 1.2)
    assert [type(e) for e in drain(uac)] == [Transmit]
    run_clock(uas, 10.0)
    run_clock(uac, 40.0)
    assert uas.transaction_count == 0 and uac.transaction_count == 0


def test_server_invite_timer_g_and_h_without_ack() -> None:
    uac, uas = pair()
    uac.send_request(request(), UAS, now=0.0)
    deliver(drain(uac), uas, UAC, 0.0)
    (received,) = drain(uas)
    assert isinstance(received, RequestReceived) and received.transaction is not None
    received.transaction.send_response(
        make_response(received.request, 603, to_tag="x"), now=0.0
    )
    drain(uas)
    sent = run_clock(uas, 31.9)
    assert sent[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]  # G doubles up to T2
    fire(uas, 32.0)
    assert any(isinstance(e, TransactionTimedOut) for e in drain(uas))


def test_non_invite_round_trip_and_stray_response() -> None:
    uac, uas = pair()
    client = uac.send_request(request("OPTIONS"), UAS, now=0.0)
    deliver(drain(uac), uas, UAC, 0.0)
    (received,) = drain(uas)
    assert isinstance(received, RequestReceived) and received.transaction is not None
    received.transaction.send_response(
        make_response(received.request, 200, to_tag="t"), now=0.0
    )
    reply = drain(uas)
    deliver(reply, uac, UAS, 0.01)
    (event,) = drain(uac)
    assert isinstance(event, ResponseReceived) and event.transaction is client
    assert client.state is State.COMPLETED
    run_clock(uac, 6.0)  # Timer K = T4
    assert client.state is State.TERMINATED
    # the same 200 now matches nothing and is dropped (§17.1.3)
    assert uac.receive_response(wire(reply[0].message), now=7.0) is False  # type: ignore[arg-type,attr-defined]


def test_ack_for_2xx_passes_up_without_transaction() -> None:
    uas = TransactionLayer()
    ack = request("ACK")
    uas.receive_request(ack, UAC, now=0.0)
    (event,) = drain(uas)
    assert isinstance(event, RequestReceived) and event.transaction is None


def test_cancel_finds_its_invite() -> None:
    uas = TransactionLayer()
    invite = request()
    uas.receive_request(wire(invite), UAC, now=0.0)  # type: ignore[arg-type]
    cancel = request("CANCEL")
    cancel.via = list(invite.via)
    found = uas.find_invite(wire(cancel))  # type: ignore[arg-type]
    assert found is not None and found.request.method == "INVITE"
    other = request("CANCEL")
    assert uas.find_invite(other) is None


def test_merged_request_is_flagged() -> None:
    """§8.2.2.2: the same INVITE arriving over two forks (two branches) is flagged."""
    uas = TransactionLayer()
    first = request()
    uas.receive_request(wire(first), UAC, now=0.0)  # type: ignore[arg-type]
    second = wire(first)
    second.via = [
        Via(host="127.0.0.1", port=5099, parameters=(("branch", new_branch()),))
    ]
    uas.receive_request(second, UAC, now=0.0)  # type: ignore[arg-type]
    events = [e for e in drain(uas) if isinstance(e, RequestReceived)]
    assert [e.merged for e in events] == [False, True]
    # once the first transaction has ended, the key is free again
    assert events[0].transaction is not None
    events[0].transaction.send_response(make_response(first, 486, to_tag="x"), now=0.0)
    run_clock(uas, 40.0)
    third = wire(first)
    third.via = [
        Via(host="127.0.0.1", port=5098, parameters=(("branch", new_branch()),))
    ]
    uas.receive_request(third, UAC, now=41.0)  # type: ignore[arg-type]
    assert [e.merged for e in drain(uas) if isinstance(e, RequestReceived)] == [False]
