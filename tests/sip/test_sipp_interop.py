"""Interop with real sipp processes on 127.0.0.1 (UDP)."""

from __future__ import annotations

import asyncio
from typing import Any

from sipspeak.sip.events import Address
from sipspeak.sip.headers import NameAddr
from sipspeak.sip.sdp import build_offer, negotiate_answer, parse_sdp, with_direction
from sipspeak.sip.session import (
    CallAnswered,
    CallEnded,
    CallFailed,
    CallProgress,
    ReinviteAnswered,
)
from sipspeak.sip.transport import SipEndpoint
from sipspeak.sip.uri import SipUri

SIPP_COMMON = [
    "-i",
    "127.0.0.1",
    "-nostdin",
    "-timeout",
    "20s",
    "-timeout_error",
    "-recv_timeout",
    "10s",
]


def sipp_uac(target: Address, *extra: str) -> list[str]:
    return ["sipp", f"{target.host}:{target.port}", *SIPP_COMMON, "-p", "0", *extra]


async def next_event(endpoint: SipEndpoint, kind: type, timeout: float = 10.0) -> Any:
    while True:
        event = await asyncio.wait_for(endpoint.events.get(), timeout)
        if isinstance(event, kind):
            return event


def local(endpoint: SipEndpoint) -> Address:
    return endpoint.ua.addresses["UDP"]


async def test_sipp_uac_calls_our_uas(
    endpoint: SipEndpoint, spawn: Any, answering_app: Any
) -> None:
    app = answering_app(endpoint)
    sipp = await spawn(
        sipp_uac(local(endpoint), "-sn", "uac", "-m", "3", "-r", "10", "-d", "200")
    )
    code, output = await sipp.wait(30)
    assert code == 0, output[-2000:]
    kinds = [type(e).__name__ for e in app.events]
    assert kinds.count("IncomingCall") == 3
    assert kinds.count("CallConfirmed") == 3
    assert kinds.count("CallEnded") == 3
    assert all(e.by_remote for e in app.events if isinstance(e, CallEnded))
    assert endpoint.ua.session_count == 0


async def test_sipp_uac_cancels_and_gets_487(
    endpoint: SipEndpoint, spawn: Any, answering_app: Any, scenarios: Any
) -> None:
    app = answering_app(endpoint, answer_after=None)
    scenario = str(scenarios / "uac_cancel.xml")
    sipp = await spawn(
        sipp_uac(local(endpoint), "-sf", scenario, "-m", "2", "-r", "10")
    )
    code, output = await sipp.wait(30)
    assert code == 0, output[-2000:]
    failed = [e for e in app.events if isinstance(e, CallFailed)]
    assert [e.status for e in failed] == [487, 487]
    assert endpoint.ua.session_count == 0


def offer() -> bytes:
    return build_offer(
        address="127.0.0.1", port=41000, session_id=5, version=1
    ).serialize()


async def start_sipp_uas(spawn: Any, port: int, *scenario: str) -> tuple[Any, Address]:
    sipp = await spawn(["sipp", *SIPP_COMMON, "-p", str(port), "-m", "1", *scenario])
    return sipp, Address("UDP", "127.0.0.1", port)


def invite(endpoint: SipEndpoint, target: Address, **kw: Any) -> Any:
    uri = SipUri(user="service", host=target.host, port=target.port)
    return endpoint.ua.invite(
        uri=uri,
        from_=NameAddr(
            display_name="SipSpeak", uri=SipUri(user="dialer", host="127.0.0.1")
        ),
        destination=target,
        body=offer(),
        now=endpoint.loop.time(),
        **kw,
    )


async def test_our_uac_calls_sipp_uas(
    endpoint: SipEndpoint, spawn: Any, pick_port: Any
) -> None:
    sipp, target = await start_sipp_uas(spawn, pick_port(), "-sn", "uas")
    session = invite(endpoint, target)
    answered = await next_event(endpoint, CallAnswered)
    assert answered.session is session and answered.response.status == 200
    assert b"m=audio" in answered.response.body
    session.hangup(endpoint.loop.time())
    code, output = await sipp.wait(20)
    assert code == 0, output[-2000:]


async def test_our_uac_gets_486_from_busy_sipp(
    endpoint: SipEndpoint, spawn: Any, pick_port: Any, scenarios: Any
) -> None:
    busy = str(scenarios / "uas_busy.xml")
    sipp, target = await start_sipp_uas(spawn, pick_port(), "-sf", busy)
    invite(endpoint, target)
    failed = await next_event(endpoint, CallFailed)
    assert failed.status == 486
    code, output = await sipp.wait(20)
    assert code == 0, output[-2000:]  # sipp got our ACK


async def test_no_answer_is_cancelled(
    endpoint: SipEndpoint, spawn: Any, pick_port: Any, scenarios: Any
) -> None:
    no_answer = str(scenarios / "uas_no_answer.xml")
    sipp, target = await start_sipp_uas(spawn, pick_port(), "-sf", no_answer)
    session = invite(endpoint, target, ring_timeout=1.0)
    progress = await next_event(endpoint, CallProgress)
    assert progress.response.status == 180
    failed = await next_event(endpoint, CallFailed)
    assert failed.status == 487 and failed.session is session
    code, output = await sipp.wait(20)
    assert code == 0, output[-2000:]


async def test_options_keepalive_from_sipp(
    endpoint: SipEndpoint, spawn: Any, tmp_path: Any
) -> None:
    scenario = tmp_path / "options.xml"
    scenario.write_text(
        """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="options ping">
  <send retrans="500"><![CDATA[
      OPTIONS sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:ping@[local_ip]:[local_port]>;tag=[pid]x[call_number]
      To: <sip:[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 OPTIONS
      Max-Forwards: 70
      Content-Length: 0
    ]]></send>
  <recv response="200"/>
</scenario>
"""
    )
    sipp = await spawn(
        sipp_uac(local(endpoint), "-sf", str(scenario), "-m", "3", "-r", "10")
    )
    code, output = await sipp.wait(20)
    assert code == 0, output[-2000:]


async def test_hold_and_unhold_by_reinvite_with_sipp(
    endpoint: SipEndpoint, spawn: Any, pick_port: Any, scenarios: Any
) -> None:
    hold = str(scenarios / "uas_hold.xml")
    sipp, target = await start_sipp_uas(spawn, pick_port(), "-sf", hold)
    ours = build_offer(address="127.0.0.1", port=41000, session_id=5, version=1)
    session = invite(endpoint, target)
    answered = await next_event(endpoint, CallAnswered)
    assert (
        negotiate_answer(ours, parse_sdp(answered.response.body)).direction
        == "sendrecv"
    )
    for version, direction, expected in (
        (2, "sendonly", "sendonly"),
        (3, "sendrecv", "sendrecv"),
    ):
        offer = with_direction(ours, direction, version)  # type: ignore[arg-type]
        session.reinvite(offer.serialize(), endpoint.loop.time())
        reply = await next_event(endpoint, ReinviteAnswered)
        assert reply.response.status == 200
        # the callee's answer, seen from our side (§6.1: recvonly answers sendonly)
        assert (
            negotiate_answer(offer, parse_sdp(reply.response.body)).direction
            == expected
        )
    assert session.dialog is not None and session.dialog.local_seq == 3
    session.hangup(endpoint.loop.time())
    code, output = await sipp.wait(20)
    assert code == 0, output[-2000:]  # sipp checked a=sendonly, then a=sendrecv
