"""TCP (Content-Length framing) and WebSocket (RFC 7118) transports with real sockets."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp

from sipspeak.sip.events import Address
from sipspeak.sip.headers import CSeq, NameAddr, Via
from sipspeak.sip.message import SipRequest, SipResponse, parse_message
from sipspeak.sip.session import CallConfirmed, CallEnded, IncomingCall
from sipspeak.sip.transport import SipEndpoint
from sipspeak.sip.uri import SipUri
from sipspeak.sip.useragent import UserAgent


def options(
    transport: str, host: str, port: int, branch: str = "z9hG4bKws1"
) -> SipRequest:
    uri = SipUri(host=host, port=port)
    return SipRequest(
        method="OPTIONS",
        uri=uri,
        via=[
            Via(
                transport=transport,
                host="client.invalid",
                parameters=(("branch", branch),),
            )
        ],
        from_=NameAddr(
            uri=SipUri(user="web", host="client.invalid"), parameters=(("tag", "w1"),)
        ),
        to=NameAddr(uri=uri),
        call_id=f"call-{branch}",
        cseq=CSeq(1, "OPTIONS"),
        max_forwards=70,
    )


async def test_sipp_over_tcp(
    endpoint: SipEndpoint, spawn: Any, answering_app: Any
) -> None:
    tcp = await endpoint.listen_tcp("127.0.0.1", 0)
    app = answering_app(endpoint)
    sipp = await spawn(
        ["sipp", f"127.0.0.1:{tcp.port}", "-t", "t1", "-sn", "uac", "-m", "2", "-r", "10",
         "-i", "127.0.0.1", "-nostdin", "-timeout", "20s", "-timeout_error", "-d", "100"]
    )  # fmt: skip
    code, output = await sipp.wait(30)
    assert code == 0, output[-2000:]
    assert sum(isinstance(e, CallConfirmed) for e in app.events) == 2
    assert sum(isinstance(e, CallEnded) for e in app.events) == 2


async def test_tcp_framing_byte_by_byte_and_pipelined(endpoint: SipEndpoint) -> None:
    tcp = await endpoint.listen_tcp("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", tcp.port)
    try:
        first = options("TCP", "127.0.0.1", tcp.port, "z9hG4bKtcp1").serialize()
        second = options("TCP", "127.0.0.1", tcp.port, "z9hG4bKtcp2").serialize()
        for i in range(len(first)):  # one byte per write
            writer.write(first[i : i + 1])
            await writer.drain()
        writer.write(b"\r\n\r\n" + second)  # keep-alive ping then a second message
        await writer.drain()
        data = b""
        while data.count(b"SIP/2.0 200") < 2:
            data += await asyncio.wait_for(reader.read(65536), 5)
        assert b"\r\n\r\n" in data and data.count(b"CSeq: 1 OPTIONS") == 2
        writer.write(
            b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKx\r\n\r\n"
        )
        await writer.drain()
        rest = await asyncio.wait_for(
            reader.read(), 5
        )  # no Content-Length: connection closed
        assert rest == b""
    finally:
        writer.close()


async def test_our_uac_calls_our_uas_over_tcp(
    endpoint: SipEndpoint, answering_app: Any
) -> None:
    tcp = await endpoint.listen_tcp("127.0.0.1", 0)
    app = answering_app(endpoint)
    caller = SipEndpoint(UserAgent(local=Address("TCP", "127.0.0.1", 0), user="caller"))
    try:
        await caller.listen_tcp("127.0.0.1", 0)
        target = Address("TCP", "127.0.0.1", tcp.port)
        session = caller.ua.invite(
            uri=SipUri(
                user="callee",
                host="127.0.0.1",
                port=tcp.port,
                parameters=(("transport", "tcp"),),
            ),
            from_=NameAddr(uri=SipUri(user="caller", host="127.0.0.1")),
            destination=target,
            now=caller.loop.time(),
        )
        while True:
            event = await asyncio.wait_for(caller.events.get(), 5)
            if type(event).__name__ == "CallAnswered":
                break
        session.hangup(caller.loop.time())
        for _ in range(50):
            if any(isinstance(e, CallEnded) for e in app.events):
                break
            await asyncio.sleep(0.05)
        assert any(isinstance(e, CallEnded) and e.by_remote for e in app.events)
    finally:
        await caller.close()


async def test_websocket_sip_subprotocol(
    endpoint: SipEndpoint, answering_app: Any
) -> None:
    ws_addr = await endpoint.listen_ws("127.0.0.1", 0, "/sip")
    app = answering_app(endpoint)
    url = f"http://127.0.0.1:{ws_addr.port}/sip"
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, protocols=("sip",)) as ws:
            assert ws.protocol == "sip"
            await ws.send_str(
                options("WS", "127.0.0.1", ws_addr.port).serialize().decode()
            )
            reply = parse_message(
                (await asyncio.wait_for(ws.receive(), 5)).data.encode()
            )
            assert isinstance(reply, SipResponse) and reply.status == 200
            # a call from the "browser": the answer, then the UAS's BYE, come back on this socket
            invite = options("WS", "127.0.0.1", ws_addr.port, "z9hG4bKinv")
            invite.method = "INVITE"
            invite.cseq = CSeq(1, "INVITE")
            invite.contact = [NameAddr(uri=SipUri(user="web", host="client.invalid",
                                                  parameters=(("transport", "ws"),)))]  # fmt: skip
            await ws.send_str(invite.serialize().decode())
            statuses = []
            while 200 not in statuses:
                msg = parse_message(
                    (await asyncio.wait_for(ws.receive(), 5)).data.encode()
                )
                assert isinstance(msg, SipResponse)
                statuses.append(msg.status)
            assert statuses[:2] == [100, 180]
            assert msg.contact and "transport=ws" in str(msg.contact[0].uri)
            (incoming,) = [e for e in app.events if isinstance(e, IncomingCall)]
            incoming.session.hangup(endpoint.loop.time())  # BYE after the ACK
            ack = SipRequest(method="ACK", uri=msg.contact[0].uri, via=[Via(transport="WS",
                             host="client.invalid", parameters=(("branch", "z9hG4bKack"),))],
                             from_=invite.from_, to=msg.to, call_id=invite.call_id,
                             cseq=CSeq(1, "ACK"), max_forwards=70)  # fmt: skip
            await ws.send_str(ack.serialize().decode())
            bye = parse_message((await asyncio.wait_for(ws.receive(), 5)).data.encode())
            assert isinstance(bye, SipRequest) and bye.method == "BYE"
            assert bye.call_id == invite.call_id
        async with http.ws_connect(url) as plain:  # no "sip" subprotocol: refused
            closing = await asyncio.wait_for(plain.receive(), 5)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_no_exception_escapes_the_transport(
    endpoint: SipEndpoint, caplog: Any
) -> None:
    """A handler that raises and an event consumer that raises are logged; the endpoint goes on."""

    def broken_handler(request: SipRequest, txn: Any, now: float) -> None:
        raise RuntimeError("handler bug")

    def broken_consumer(event: object) -> None:
        raise RuntimeError("consumer bug")

    endpoint.ua.add_handler("MESSAGE", broken_handler)
    endpoint.on_event = broken_consumer
    local = endpoint.ua.addresses["UDP"]
    loop = asyncio.get_running_loop()
    received: asyncio.Queue[bytes] = asyncio.Queue()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            received.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(
        Client, local_addr=("127.0.0.1", 0)
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        message = options("UDP", "127.0.0.1", local.port, "z9hG4bKmsg")
        message.method = "MESSAGE"
        message.cseq = CSeq(1, "MESSAGE")
        message.via = [
            Via(host="127.0.0.1", port=port, parameters=(("branch", "z9hG4bKmsg"),))
        ]
        transport.sendto(message.serialize(), ("127.0.0.1", local.port))
        transport.sendto(b"\xff\xfe garbage \r\n\r\n", ("127.0.0.1", local.port))
        ping = options("UDP", "127.0.0.1", local.port, "z9hG4bKping")
        ping.via = [
            Via(host="127.0.0.1", port=port, parameters=(("branch", "z9hG4bKping"),))
        ]
        transport.sendto(ping.serialize(), ("127.0.0.1", local.port))
        replies = [
            parse_message(await asyncio.wait_for(received.get(), 5)) for _ in range(2)
        ]
        statuses = {
            r.cseq.method: r.status for r in replies if isinstance(r, SipResponse)
        }
        assert statuses == {"MESSAGE": 500, "OPTIONS": 200}
        assert "handler bug" in caplog.text
    finally:
        transport.close()


async def test_our_uac_calls_sipp_uas_over_tcp(
    endpoint: SipEndpoint, spawn: Any, pick_port: Any
) -> None:
    """An outgoing TCP connection is opened, reused for ACK and BYE, and framed."""
    await endpoint.listen_tcp("127.0.0.1", 0)
    port = pick_port(socket.SOCK_STREAM)
    sipp = await spawn(
        ["sipp", "-sn", "uas", "-t", "t1", "-i", "127.0.0.1", "-p", str(port), "-m", "1",
         "-nostdin", "-timeout", "20s", "-timeout_error"]
    )  # fmt: skip
    target = Address("TCP", "127.0.0.1", port)
    for _ in range(50):  # sipp needs a moment before it listens
        try:
            _, probe = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        probe.close()
        break
    session = endpoint.ua.invite(
        uri=SipUri(
            user="service",
            host="127.0.0.1",
            port=port,
            parameters=(("transport", "tcp"),),
        ),
        from_=NameAddr(uri=SipUri(user="dialer", host="127.0.0.1")),
        destination=target,
        now=endpoint.loop.time(),
    )
    while True:
        event = await asyncio.wait_for(endpoint.events.get(), 10)
        if type(event).__name__ == "CallAnswered":
            break
    assert session.dialog is not None and len(endpoint.tcp_by_peer) == 1
    assert session.dialog.destination("TCP") == target  # Contact ;transport=tcp
    session.hangup(endpoint.loop.time())
    code, output = await sipp.wait(20)
    assert code == 0, output[-2000:]
    assert next(endpoint.connection_ids) == 2  # one connection carried the whole call
