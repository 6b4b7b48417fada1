"""SIP over TLS (RFC 3261 §26.2.1) with real sockets: baresip calls our user agent over TLS,
a verifying Python client checks the certificate chain, clear text on the TLS port is
dropped, and every kind of bad certificate or key file is refused with its file named."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tlscerts import TlsFiles, encrypted_key, make_tls_files, other_key

from sipspeak.sip.events import Address
from sipspeak.sip.headers import CSeq, NameAddr, Via
from sipspeak.sip.message import SipRequest, SipResponse, parse_message
from sipspeak.sip.session import CallConfirmed, CallEnded, IncomingCall
from sipspeak.sip.tls import TlsFileError, server_context
from sipspeak.sip.transport import SipEndpoint
from sipspeak.sip.uri import SipUri


def options(transport: str, host: str, port: int, branch: str) -> SipRequest:
    uri = SipUri(host=host, port=port)
    return SipRequest(
        method="OPTIONS", uri=uri,
        via=[Via(transport=transport, host="client.invalid", parameters=(("branch", branch),))],
        from_=NameAddr(uri=SipUri(user="client", host="client.invalid"),
                       parameters=(("tag", "c1"),)),
        to=NameAddr(uri=uri), call_id=f"call-{branch}", cseq=CSeq(1, "OPTIONS"),
        max_forwards=70)


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path / "pki")


async def listen_tls(endpoint: SipEndpoint, files: TlsFiles) -> Address:
    return await endpoint.listen_tls(
        "127.0.0.1", 0, context=server_context(str(files.cert), str(files.key)))


async def read_response(reader: asyncio.StreamReader) -> SipResponse:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    message = parse_message(head, stream=True)
    assert isinstance(message, SipResponse)
    return message


def baresip_config(directory: Path, port: int, ca: Path) -> Path:
    """A headless baresip (no audio devices) that trusts the test CA."""
    directory.mkdir(parents=True, exist_ok=True)
    tone = directory / "tone.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(tone),
                    "synth", "10", "sine", "440"], check=True, timeout=20)
    (directory / "config").write_text(
        f"sip_listen 127.0.0.1:{port}\n"
        f"sip_cafile {ca}\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aufile.so\nmodule menu.so\nmodule_app account.so\n"
        f"audio_player aufile,{directory}/received.wav\n"
        f"audio_source aufile,{tone}\n"
        f"audio_alert aufile,{directory}/alert.wav\n")
    (directory / "accounts").write_text("<sip:baresip@127.0.0.1>;regint=0\n")
    return directory


async def test_baresip_calls_our_user_agent_over_tls(
        endpoint: SipEndpoint, answering_app: Any, spawn: Any, pick_port: Any,
        tls_files: TlsFiles, tmp_path: Path) -> None:
    local = await listen_tls(endpoint, tls_files)
    app = answering_app(endpoint)
    config = baresip_config(tmp_path / "baresip", pick_port(), tls_files.ca)
    peer = await spawn(["stdbuf", "-oL", "baresip", "-s", "-f", str(config), "-t", "30", "-e",
                        f"/dial sip:service@127.0.0.1:{local.port};transport=tls"])
    await peer.read_until("Call established", 15)
    [incoming] = [e for e in app.events if isinstance(e, IncomingCall)]
    # The request came over TLS, on a connection: its Via says so, and the session's peer
    # is that connection.
    assert incoming.request.via[0].transport == "TLS"
    peer_address = incoming.session.peer
    assert peer_address.transport == "TLS" and peer_address.connection is not None
    assert any(isinstance(e, CallConfirmed) for e in app.events)
    # Our 200 OK names the TLS transport in its Contact, so in-dialog requests come back
    # over TLS (baresip's SIP trace).
    assert f"Contact: <sip:sipspeak@127.0.0.1:{local.port};transport=tls>" in peer.output.decode()

    incoming.session.hangup(endpoint.loop.time())
    output = await peer.read_until("session closed", 10)
    assert f"TLS 127.0.0.1:{local.port} -> " in output.split("BYE sip:")[0].rsplit("#", 1)[-1]
    assert any(isinstance(e, CallEnded) for e in app.events)
    # One TLS connection carried the whole call.
    assert [a.transport for a in endpoint.stream_connections] == ["TLS"]


async def test_a_verifying_client_gets_answers_over_tls(
        endpoint: SipEndpoint, tls_files: TlsFiles) -> None:
    local = await listen_tls(endpoint, tls_files)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", local.port, ssl=tls_files.client_context(), server_hostname="127.0.0.1")
    try:
        assert writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
        request = options("TLS", "127.0.0.1", local.port, "z9hG4bKtls1").serialize()
        second = options("TLS", "127.0.0.1", local.port, "z9hG4bKtls2").serialize()
        # Framed like TCP: a message split over writes, a keep-alive, a second message.
        writer.write(request[:40])
        await writer.drain()
        writer.write(request[40:] + b"\r\n\r\n" + second)
        await writer.drain()
        first_reply, second_reply = await read_response(reader), await read_response(reader)
        assert first_reply.status == 200 and second_reply.status == 200
        assert first_reply.via[0].branch == "z9hG4bKtls1"
        assert second_reply.via[0].branch == "z9hG4bKtls2"
        assert first_reply.via[0].transport == "TLS"
    finally:
        writer.close()


async def test_a_client_that_does_not_trust_the_certificate_is_refused(
        endpoint: SipEndpoint, tls_files: TlsFiles, tmp_path: Path) -> None:
    local = await listen_tls(endpoint, tls_files)
    stranger = make_tls_files(tmp_path / "other", name="other")
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection("127.0.0.1", local.port, ssl=stranger.client_context(),
                                      server_hostname="127.0.0.1")
    # A name the certificate does not carry is refused too.
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection("127.0.0.1", local.port, ssl=tls_files.client_context(),
                                      server_hostname="sip.example.org")


def invite(transport: str, port: int, branch: str) -> bytes:
    request = options(transport, "127.0.0.1", port, branch)
    request.method = "INVITE"
    request.cseq = CSeq(1, "INVITE")
    request.contact = [NameAddr(uri=SipUri(user="web", host="client.invalid"))]
    return request.serialize()


async def test_clear_text_sent_to_the_tls_port_is_dropped(
        endpoint: SipEndpoint, answering_app: Any, tls_files: TlsFiles) -> None:
    local = await listen_tls(endpoint, tls_files)
    app = answering_app(endpoint, answer_after=None)
    reader, writer = await asyncio.open_connection("127.0.0.1", local.port)
    writer.write(invite("TCP", local.port, "z9hG4bKplain"))
    await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.read(65536), 5)
    except ConnectionResetError:
        answer = b""
    writer.close()
    # The connection is closed without a SIP answer and the core never saw the INVITE.
    assert b"SIP/2.0" not in answer
    assert app.events == [] and endpoint.stream_connections == []
    # The listener still serves TLS clients: the same INVITE over TLS rings.
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", local.port, ssl=tls_files.client_context(), server_hostname="127.0.0.1")
    try:
        writer.write(invite("TLS", local.port, "z9hG4bKafter"))
        await writer.drain()
        statuses = [(await read_response(reader)).status for _ in range(2)]
        assert statuses == [100, 180]
        assert [type(e) for e in app.events] == [IncomingCall]
        incoming = app.events[0]
        assert isinstance(incoming, IncomingCall)
        incoming.session.reject(486, endpoint.loop.time())
    finally:
        writer.close()


async def test_no_connection_is_opened_to_a_tls_destination(endpoint: SipEndpoint) -> None:
    # Outgoing TLS is not offered: a TLS destination without a live connection (a phone
    # whose connection closed) is dropped, not dialled in clear text or over TCP.
    target = Address("TLS", "127.0.0.1", 5061)
    request = endpoint.ua.build_request(
        "OPTIONS", SipUri(user="x", host="127.0.0.1", port=5061,
                          parameters=(("transport", "tls"),)),
        from_=NameAddr(uri=SipUri(user="a", host="127.0.0.1")),
        to=NameAddr(uri=SipUri(user="x", host="127.0.0.1")), destination=target)
    assert request.via[0].transport == "TLS"
    endpoint.ua.send_request(request, target, endpoint.loop.time())
    endpoint.flush()
    await asyncio.sleep(0.05)
    assert endpoint.stream_connections == [] and endpoint.tcp_by_peer == {}


@pytest.mark.parametrize("case, setting, problem", [
    ("missing cert", "tls_cert", "does not exist"),
    ("missing key", "tls_key", "does not exist"),
    ("cert is a directory", "tls_cert", "is a directory"),
    ("cert is not PEM", "tls_cert", "holds no PEM certificate"),
    ("key is not PEM", "tls_key", "holds no PEM private key"),
    ("key of another certificate", "tls_key", "does not match the certificate in"),
    ("key under a passphrase", "tls_key", "is encrypted with a passphrase"),
    ("cert is a broken PEM", "tls_cert", "is not a readable PEM certificate"),
])
def test_bad_certificate_files_are_refused_naming_the_file(
        tls_files: TlsFiles, tmp_path: Path, case: str, setting: str, problem: str) -> None:
    cert, key = tls_files.cert, tls_files.key
    if case == "missing cert":
        cert = tmp_path / "absent.pem"
    elif case == "missing key":
        key = tmp_path / "absent-key.pem"
    elif case == "cert is a directory":
        cert = tmp_path
    elif case == "cert is not PEM":
        cert = tmp_path / "cert.der"
        cert.write_bytes(b"\x30\x82\x01\x0a not a certificate")
    elif case == "key is not PEM":
        key = tmp_path / "key.txt"
        key.write_text("secret\n")
    elif case == "key of another certificate":
        key = other_key(tmp_path / "other-key.pem")
    elif case == "key under a passphrase":
        key = encrypted_key(tmp_path / "locked-key.pem")
    elif case == "cert is a broken PEM":
        cert = tmp_path / "broken.pem"
        cert.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(TlsFileError) as raised:
        server_context(str(cert), str(key))
    text = str(raised.value)
    named = cert if setting == "tls_cert" else key
    assert text.startswith(f"{setting}: {named} ") and problem in text, text
    assert "\n" not in text


def test_the_context_refuses_tls_older_than_1_2(tls_files: TlsFiles) -> None:
    context = server_context(str(tls_files.cert), str(tls_files.key))
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE  # phones are not asked for certificates
