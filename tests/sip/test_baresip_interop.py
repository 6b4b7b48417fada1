"""Calls with baresip as the peer (headless: aufile source/player, no UI), on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sipspeak.sip.events import Address
from sipspeak.sip.headers import NameAddr
from sipspeak.sip.sdp import (
    answer_offer,
    build_offer,
    extract_sdp,
    negotiate_answer,
    parse_sdp,
)
from sipspeak.sip.session import CallAnswered, CallConfirmed, IncomingCall
from sipspeak.sip.transport import SipEndpoint
from sipspeak.sip.uri import SipUri


def baresip_config(directory: Path, port: int, *, auto_answer: bool) -> Path:
    tone = directory / "tone.wav"
    subprocess.run(
        [
            "sox",
            "-n",
            "-r",
            "8000",
            "-c",
            "1",
            "-b",
            "16",
            str(tone),
            "synth",
            "5",
            "sine",
            "440",
        ],
        check=True,
        timeout=20,
    )
    (directory / "config").write_text(
        f"sip_listen 127.0.0.1:{port}\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aufile.so\nmodule menu.so\nmodule_app account.so\n"
        f"audio_player aufile,{directory}/received.wav\n"
        f"audio_source aufile,{tone}\n"
        f"audio_alert aufile,{directory}/alert.wav\n"
    )
    answer = ";answermode=auto" if auto_answer else ""
    (directory / "accounts").write_text(f"<sip:baresip@127.0.0.1>;regint=0{answer}\n")
    return directory


async def wait_for_output(peer: Any, text: str, timeout: float = 10.0) -> str:
    """Read the peer's output until ``text`` shows up."""
    seen = ""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while text not in seen:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"{text!r} not in baresip output:\n{seen[-2000:]}")
        try:
            chunk = await asyncio.wait_for(peer.proc.stdout.read(4096), remaining)
        except TimeoutError:
            raise AssertionError(
                f"{text!r} not in baresip output:\n{seen[-2000:]}"
            ) from None
        if not chunk:
            raise AssertionError(f"baresip exited before {text!r}:\n{seen[-2000:]}")
        seen += chunk.decode(errors="replace")
    return seen


async def next_event(endpoint: SipEndpoint, kind: type, timeout: float = 10.0) -> Any:
    while True:
        event = await asyncio.wait_for(endpoint.events.get(), timeout)
        if isinstance(event, kind):
            return event


@pytest.fixture
def rtp_socket() -> Any:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


async def test_baresip_calls_our_uas(
    endpoint: SipEndpoint, spawn: Any, pick_port: Any, tmp_path: Path, rtp_socket: Any
) -> None:
    local = endpoint.ua.addresses["UDP"]
    config = baresip_config(tmp_path, pick_port(), auto_answer=False)
    peer = await spawn(
        [
            "stdbuf",
            "-oL",
            "baresip",
            "-f",
            str(config),
            "-t",
            "30",
            "-e",
            f"/dial sip:service@127.0.0.1:{local.port}",
        ]
    )
    incoming = await next_event(endpoint, IncomingCall, 15)
    session = incoming.session
    offer = parse_sdp(
        extract_sdp(incoming.request.headers.get("Content-Type"), incoming.request.body)
        or b""
    )
    rtp_port = rtp_socket.getsockname()[1]
    answer, media = answer_offer(
        offer, address="127.0.0.1", port=rtp_port, session_id=7, version=1
    )
    assert media.codec in ("PCMU", "PCMA")
    session.ring(endpoint.loop.time())
    session.answer(answer.serialize(), endpoint.loop.time())
    await next_event(endpoint, CallConfirmed)
    await wait_for_output(peer, "Call established")
    # baresip now sends G.711 RTP to the address in our answer
    packet = await asyncio.wait_for(endpoint.loop.sock_recv(rtp_socket, 2048), 10)
    assert packet[0] >> 6 == 2 and packet[1] & 0x7F == media.payload_type
    session.hangup(endpoint.loop.time())
    await wait_for_output(peer, "session closed: Connection reset by peer")  # our BYE
    assert endpoint.ua.session_count == 0


async def test_our_uac_calls_baresip(
    endpoint: SipEndpoint, spawn: Any, pick_port: Any, tmp_path: Path
) -> None:
    port = pick_port()
    config = baresip_config(tmp_path, port, auto_answer=True)
    peer = await spawn(["stdbuf", "-oL", "baresip", "-f", str(config), "-t", "30"])
    await wait_for_output(peer, "baresip is ready")
    offer = build_offer(address="127.0.0.1", port=41234, session_id=3, version=1)
    session = endpoint.ua.invite(
        uri=SipUri(user="baresip", host="127.0.0.1", port=port),
        from_=NameAddr(
            display_name="SipSpeak", uri=SipUri(user="dialer", host="127.0.0.1")
        ),
        destination=Address("UDP", "127.0.0.1", port),
        body=offer.serialize(),
        now=endpoint.loop.time(),
    )
    answered = await next_event(endpoint, CallAnswered, 15)
    assert answered.session is session
    media = negotiate_answer(offer, parse_sdp(answered.response.body))
    assert media.codec in ("PCMU", "PCMA") and media.remote_port > 0
    await wait_for_output(peer, "Call established")
    session.hangup(endpoint.loop.time())
    await wait_for_output(peer, "session closed: Connection reset by peer")  # our BYE
