"""Interop with real sipp on 127.0.0.1: RTP echo, pcap playback, RFC 4733 digits, recording."""

from __future__ import annotations

import asyncio
import shutil
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from sipspeak.media.bridge import Bridge
from sipspeak.media.dtmf import DtmfDigit
from sipspeak.media.endpoint import open_endpoint
from sipspeak.media.jitterbuffer import AudioFrame, JitterBuffer
from sipspeak.media.player import Player
from sipspeak.media.portpool import PortPool
from sipspeak.media.recorder import WavRecorder
from sipspeak.media.rtp import RtpPacket

sys.path.insert(0, str(Path(__file__).parent))
from sipp_peer import (
    PCAP_DIR,
    PLAY_PCAP_SCENARIO,
    SipAnswerer,
    free_udp_port,
    pcap_rtp_payloads,
    run_sipp,
    sipp_args,
)

pytestmark = pytest.mark.skipif(
    shutil.which("sipp") is None, reason="sipp (sip-tester) missing"
)


async def answerer_for(rtp_port: int, payload_type: int, codec: str) -> SipAnswerer:
    loop = asyncio.get_running_loop()
    _, answerer = await loop.create_datagram_endpoint(
        lambda: SipAnswerer(rtp_port=rtp_port, payload_type=payload_type, codec=codec),
        local_addr=("127.0.0.1", 0),
    )
    return answerer


def peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(float) * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / 8000)[np.argmax(spectrum)])


async def test_sipp_rtp_echo_through_bridge_is_recorded_at_its_frequency(
    port_pool: PortPool, tmp_path: Path
) -> None:
    """Operator tone -> bridge -> our endpoint -> sipp -rtp_echo -> back -> recorder."""
    endpoint = await open_endpoint(pool=port_pool, codec="PCMU", name="echo")
    answerer = await answerer_for(endpoint.local_port, 0, "PCMU")
    tone = (6000 * np.sin(2 * np.pi * 1000 * np.arange(8000) / 8000)).astype(np.int16)
    operator = Player(codec="PCMU", audio=tone, loop=True)
    recorder = WavRecorder(path=tmp_path / "echo.wav")
    args = sipp_args(
        answerer, sip_port=free_udp_port(), media_port=free_udp_port(even_block=4)
    )
    sipp = asyncio.create_task(
        run_sipp([*args, "-sn", "uac", "-rtp_echo", "-d", "3000"], timeout=40)
    )
    try:
        remote = await asyncio.wait_for(answerer.remote_media, 20)
        endpoint.relatch(remote)  # the answer to sipp's offer: send to its media port
        bridge = Bridge(customer=endpoint, operator=operator)
        bridge.set_tap("customer", recorder.tap("customer"))
        bridge.set_tap("operator", recorder.tap("operator"))
        operator.start()
        await asyncio.wait_for(answerer.bye.wait(), 30)
        code, output = await sipp
        assert code == 0, output[-2000:]
    finally:
        sipp.cancel()
        await operator.stop()
        recorder.close()
        endpoint.close()
        await endpoint.wait_closed()
        if answerer.transport is not None:
            answerer.transport.close()
    stats = endpoint.stats()
    assert stats.received > 50  # sipp echoed our packets back
    assert (
        endpoint.remote_address is not None and endpoint.remote_address[1] == remote[1]
    )
    with wave.open(str(tmp_path / "echo.wav"), "rb") as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).reshape(
            -1, 2
        )
    customer, operator_side = audio[:, 0], audio[:, 1]
    loud = np.nonzero(np.abs(customer) > 1000)[0]
    assert len(loud) > 8000  # over a second of echoed tone on the left channel
    segment = customer[loud[0] : loud[0] + 8000]
    assert abs(peak_hz(segment) - 1000) < 10
    assert abs(peak_hz(operator_side[loud[0] : loud[0] + 8000]) - 1000) < 10


async def test_sipp_plays_g711a_pcap_into_our_endpoint(
    port_pool: PortPool, tmp_path: Path
) -> None:
    received: list[RtpPacket] = []
    jitter = JitterBuffer(codec="PCMA", delay=0.1)
    frames: list[AudioFrame] = []
    loop = asyncio.get_running_loop()

    def on_packet(packet: RtpPacket) -> None:
        # A consumer of ordered audio (as AMD is): put, then take what is due.
        received.append(packet)
        now = loop.time()
        jitter.put(packet, now)
        frames.extend(jitter.pop(now))

    endpoint = await open_endpoint(pool=port_pool, codec="PCMA", name="pcap")
    endpoint.set_receiver(on_packet)
    answerer = await answerer_for(endpoint.local_port, 8, "PCMA")
    pcap = PCAP_DIR / "g711a.pcap"
    scenario = tmp_path / "play.xml"
    scenario.write_text(
        PLAY_PCAP_SCENARIO.format(pt=8, codec="PCMA", pcap=pcap, pause_ms=8000),
        encoding="latin-1",
    )
    args = sipp_args(
        answerer, sip_port=free_udp_port(), media_port=free_udp_port(even_block=4)
    )
    try:
        code, output = await run_sipp([*args, "-sf", str(scenario)], timeout=40)
        assert code == 0, output[-2000:]
    finally:
        endpoint.close()
        await endpoint.wait_closed()
        if answerer.transport is not None:
            answerer.transport.close()
    expected = [payload for pt, payload in pcap_rtp_payloads(pcap) if pt == 8]
    got = [p.payload for p in received]
    assert all(p.payload_type == 8 for p in received)
    assert len(got) >= 0.95 * len(expected)
    # What arrived is the capture's audio, in the capture's order.
    it = iter(expected)
    assert all(any(g == e for e in it) for g in got)
    # Ordered audio out of the jitter buffer: the whole capture, gaps as silence.
    frames.extend(jitter.pop(loop.time() + 10))
    audio = b"".join(f.payload for f in frames if not f.concealed)
    assert len(audio) >= 0.95 * sum(len(e) for e in expected)
    assert audio == b"".join(
        got
    )  # loopback keeps order: nothing dropped, nothing moved


@pytest.mark.parametrize("digit", ["1", "5", "pound"])
async def test_sipp_dtmf_pcap_surfaces_each_digit_once(
    port_pool: PortPool, tmp_path: Path, digit: str
) -> None:
    digits: list[DtmfDigit] = []
    relayed: list[RtpPacket] = []
    endpoint = await open_endpoint(
        pool=port_pool, codec="PCMU", dtmf_payload_type=101, on_dtmf=digits.append
    )
    endpoint.set_receiver(relayed.append)
    answerer = await answerer_for(endpoint.local_port, 0, "PCMU")
    scenario = tmp_path / "dtmf.xml"
    pcap = PCAP_DIR / f"dtmf_2833_{digit}.pcap"
    scenario.write_text(
        PLAY_PCAP_SCENARIO.format(pt=0, codec="PCMU", pcap=pcap, pause_ms=1000),
        encoding="latin-1",
    )
    args = sipp_args(
        answerer, sip_port=free_udp_port(), media_port=free_udp_port(even_block=4)
    )
    try:
        code, output = await run_sipp([*args, "-sf", str(scenario)], timeout=40)
        assert code == 0, output[-2000:]
    finally:
        endpoint.close()
        await endpoint.wait_closed()
        if answerer.transport is not None:
            answerer.transport.close()
    want = "#" if digit == "pound" else digit
    assert [d.digit for d in digits] == [want]
    assert digits[0].ended and digits[0].duration_ms > 0
    # The end packet is sent three times; all of them still reach the bridge.
    assert len(relayed) == len(pcap_rtp_payloads(pcap))
