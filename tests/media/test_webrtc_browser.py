"""WebRTC gateway against real headless Chromium with its fake audio device.

The page (webrtc_assets/softphone.*) is served by a small aiohttp server on a
free loopback port; offer and answer travel through WebDriver execute-async.
Chromium's microphone is a tone file; the RTP side of the leg is the test.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import pytest_asyncio
from aiohttp import web

from sipspeak.media.bridge import Bridge
from sipspeak.media.endpoint import open_endpoint
from sipspeak.media.g711 import ulaw_decode, ulaw_encode
from sipspeak.media.portpool import PortPool
from sipspeak.media.rtp import RtpPacket, seq_diff, ts_diff
from sipspeak.media.webrtc import (
    WebRtcLeg,
    WebRtcLegClosed,
    WebRtcLegConnected,
    WebRtcLegEvent,
    WebRtcLegState,
    WebRtcSettings,
    sdp_audio_codecs,
)

sys.path.insert(0, str(Path(__file__).parent))
from chromium_driver import ChromiumDriver, WebDriverError
from sound import write_tone

# One Chromium for the module (starting it is the slow part); every test loads
# the page afresh, so no JavaScript state carries over.
pytestmark = [pytest.mark.timeout(60), pytest.mark.asyncio(loop_scope="module")]

ASSETS = Path(__file__).parent / "webrtc_assets"
LOOPBACK = WebRtcSettings(host_addresses=("127.0.0.1",))
MIC_HZ = 1000.0
RTP_HZ = 600.0


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    windowed = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(windowed))
    spectrum[0] = 0.0
    return float(np.argmax(spectrum)) * rate / len(samples)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def page_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_static("/", ASSETS)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/softphone.html"
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[ChromiumDriver]:
    tone = write_tone(tmp_path_factory.mktemp("webrtc") / "mic-1khz.wav", MIC_HZ)
    async with ChromiumDriver.launch(fake_audio=tone) as driver:
        yield driver


@pytest_asyncio.fixture(loop_scope="module")
async def browser(
    chromium: ChromiumDriver, page_url: str
) -> AsyncIterator[ChromiumDriver]:
    await chromium.navigate(page_url)
    try:
        yield chromium
    finally:
        # Unload the page: its peer connection goes with it.
        await chromium.navigate("about:blank")


@pytest_asyncio.fixture(loop_scope="module")
async def leg() -> AsyncIterator[WebRtcLeg]:
    leg = WebRtcLeg(settings=LOOPBACK, call_id="browser-test")
    try:
        yield leg
    finally:
        await asyncio.wait_for(leg.close(), 10)


async def page(browser: ChromiumDriver, method: str, *args: Any) -> Any:
    """Call ``softphone.<method>(*args)`` in the page and return its result."""
    result = await browser.execute_async(
        "const done = arguments[arguments.length - 1];"
        f"softphone.call(softphone.{method}, Array.from(arguments).slice(0, -1), done);",
        *args,
    )
    if "error" in result:
        logs = await browser.console_logs()
        raise AssertionError(f"softphone.{method}: {result['error']}\n{logs}")
    return result["value"]


async def connect(
    browser: ChromiumDriver,
    leg: WebRtcLeg,
    *,
    browser_offers: bool,
    trickle: bool = False,
) -> list[dict[str, Any]]:
    """Negotiate and wait until both sides are connected; return trickled candidates."""
    events: list[WebRtcLegEvent] = []
    leg.set_event_handler(events.append)
    trickled: list[dict[str, Any]] = []
    if trickle:
        offer = await page(browser, "createOfferTrickle")
        # Whatever Chromium had gathered already also comes as a trickled event.
        offer = "\r\n".join(
            line for line in offer.split("\r\n") if not line.startswith("a=candidate:")
        )
        answer = await asyncio.wait_for(leg.accept_offer(offer), 15)
        await page(browser, "acceptAnswer", answer)
        # Relay candidates as the page gathers them, up to end-of-candidates.
        async with asyncio.timeout(15):
            while not trickled or trickled[-1]["candidate"]:
                for candidate in await browser.execute(
                    "return softphone.takeCandidates()"
                ):
                    await leg.add_ice_candidate(
                        candidate["candidate"], sdp_mid=candidate["sdpMid"]
                    )
                    trickled.append(candidate)
                await asyncio.sleep(0.05)
    elif browser_offers:
        offer = await page(browser, "createOffer")
        answer = await asyncio.wait_for(leg.accept_offer(offer), 15)
        await page(browser, "acceptAnswer", answer)
    else:
        offer = await asyncio.wait_for(leg.create_offer(), 15)
        answer = await page(browser, "acceptOffer", offer)
        await asyncio.wait_for(leg.accept_answer(answer), 15)
    assert await page(browser, "connected", 15000) == "connected"
    async with asyncio.timeout(15):
        while leg.state is not WebRtcLegState.CONNECTED:
            await asyncio.sleep(0.05)
    assert WebRtcLegConnected() in events
    return trickled


def tone_packet(n: int, frequency: float, *, ssrc: int = 0x5157) -> RtpPacket:
    """Packet ``n`` of a 20 ms-framed PCMU tone."""
    t = (np.arange(160) + n * 160) / 8000
    return RtpPacket(
        payload_type=0,
        sequence_number=(4000 + n) & 0xFFFF,
        timestamp=(123456 + 160 * n) & 0xFFFFFFFF,
        ssrc=ssrc,
        payload=ulaw_encode(0.4 * 32767 * np.sin(2 * np.pi * frequency * t)),
    )


async def send_tone(leg: WebRtcLeg, frequency: float) -> None:
    """The RTP side: a PCMU tone paced at start + n x 20 ms until cancelled."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    while True:
        leg.send(tone_packet(n, frequency))
        n += 1
        await asyncio.sleep(max(0.0, start + n * 0.020 - loop.time()))


async def test_browser_microphone_arrives_as_pcmu_packets(
    browser: ChromiumDriver, leg: WebRtcLeg
) -> None:
    packets: list[RtpPacket] = []
    leg.set_receiver(packets.append)
    await connect(browser, leg, browser_offers=True)

    async with asyncio.timeout(20):
        while len(packets) < 100:
            await asyncio.sleep(0.05)

    # Negotiated PCMU on our side: the answer we gave lists nothing else.
    assert leg.local_description is not None
    assert sdp_audio_codecs(leg.local_description) == ["PCMU"]
    assert leg.negotiated_codec == "PCMU"
    assert all(p.payload_type == 0 for p in packets)
    # Each payload is one byte per 8 kHz sample: the timestamp advances by the
    # payload length from one packet to the next (RFC 3551 §4.5.14).
    ordered = sorted(
        packets, key=lambda p: seq_diff(p.sequence_number, packets[0].sequence_number)
    )
    for a, b in itertools.pairwise(ordered):
        if seq_diff(b.sequence_number, a.sequence_number) == 1:
            assert ts_diff(b.timestamp, a.timestamp) == len(a.payload)
    # Chromium's fake microphone plays the 1 kHz file: the last second of the
    # forwarded μ-law bytes decodes to that tone.
    audio = ulaw_decode(b"".join(p.payload for p in ordered[-50:]))
    assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 1000
    assert dominant_frequency(audio, 8000) == pytest.approx(MIC_HZ, abs=15)


async def test_rtp_tone_reaches_browser_as_pcmu(
    browser: ChromiumDriver, leg: WebRtcLeg
) -> None:
    await connect(browser, leg, browser_offers=False)
    assert leg.negotiated_codec == "PCMU"
    sender = asyncio.create_task(send_tone(leg, RTP_HZ))
    try:
        heard = await page(browser, "remotePeak", 1500)
        stats = await page(browser, "stats")
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)

    assert heard["snapshots"] > 0
    assert heard["rms"] > 0.05, heard
    assert heard["peakHz"] == pytest.approx(RTP_HZ, abs=20), heard
    inbound, outbound = stats["inbound"], stats["outbound"]
    assert inbound["packetsReceived"] > 0
    assert inbound["mimeType"] == "audio/PCMU"
    assert inbound["payloadType"] == 0
    assert outbound["mimeType"] == "audio/PCMU"
    assert outbound["packetsSent"] > 0
    # The gateway gathered on loopback only, so that is where the browser sends.
    assert stats["selectedPair"]["remote"] == "127.0.0.1"
    assert stats["selectedPair"]["remoteType"] == "host"


async def test_browser_close_surfaces_closed_event(
    browser: ChromiumDriver, leg: WebRtcLeg
) -> None:
    await connect(browser, leg, browser_offers=False)
    events: list[WebRtcLegEvent] = []
    leg.set_event_handler(events.append)
    await page(browser, "close")
    closed = await asyncio.wait_for(leg.wait_closed(), 15)
    assert closed == WebRtcLegClosed("remote")
    assert events == [WebRtcLegClosed("remote")]
    assert leg.state is WebRtcLegState.CLOSED


async def test_page_closed_surfaces_closed_event_by_media_timeout(
    browser: ChromiumDriver,
) -> None:
    # A closed tab sends neither RTCP BYE nor DTLS close_notify (and ICE
    # consent only expires after 30 s), so the silence of the browser tells.
    settings = WebRtcSettings(host_addresses=("127.0.0.1",), media_timeout=1.0)
    leg = WebRtcLeg(settings=settings, call_id="page-closed")
    try:
        await connect(browser, leg, browser_offers=True)
        # Audio keeps flowing for longer than the timeout: the leg stays up.
        async with asyncio.timeout(20):
            while leg.packets_received < 100:
                await asyncio.sleep(0.05)
        assert leg.state is WebRtcLegState.CONNECTED
        events: list[WebRtcLegEvent] = []
        leg.set_event_handler(events.append)

        await browser.navigate("about:blank")
        closed = await asyncio.wait_for(leg.wait_closed(), 15)
        assert closed == WebRtcLegClosed("media-timeout")
        assert events == [WebRtcLegClosed("media-timeout")]
    finally:
        await asyncio.wait_for(leg.close(), 10)


class Phone(asyncio.DatagramProtocol):
    """A SIP phone's RTP socket: collects what it gets, sends a paced tone."""

    def __init__(self) -> None:
        self.received: list[RtpPacket] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(RtpPacket.parse(data))

    async def talk(self, to: tuple[str, int], frequency: float) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = 0
        while True:
            self.transport.sendto(
                tone_packet(n, frequency, ssrc=0xFACE).serialize(), to
            )
            n += 1
            await asyncio.sleep(max(0.0, start + n * 0.020 - loop.time()))


async def test_browser_bridged_to_rtp_endpoint_without_transcoding(
    browser: ChromiumDriver, leg: WebRtcLeg, port_pool: PortPool
) -> None:
    """Browser <-> WebRtcLeg <-> Bridge <-> RtpEndpoint <-> a phone's UDP socket."""
    loop = asyncio.get_running_loop()
    transport, phone = await loop.create_datagram_endpoint(
        Phone, local_addr=("127.0.0.1", 0)
    )
    endpoint = await open_endpoint(
        pool=port_pool, codec="PCMU", dtmf_payload_type=None, name="phone", rtcp=False
    )
    bridge = Bridge(customer=endpoint, operator=leg)
    talking: asyncio.Task[None] | None = None
    try:
        trickled = await connect(browser, leg, browser_offers=True, trickle=True)
        talking = asyncio.create_task(
            phone.talk(("127.0.0.1", endpoint.local_port), RTP_HZ)
        )
        heard = await page(browser, "remotePeak", 1500)
        async with asyncio.timeout(20):
            while len(phone.received) < 60:
                await asyncio.sleep(0.05)
        stats = await page(browser, "stats")
    finally:
        if talking is not None:
            talking.cancel()
            await asyncio.gather(talking, return_exceptions=True)
        bridge.close()
        endpoint.close()
        await asyncio.wait_for(endpoint.wait_closed(), 10)
        transport.close()

    # Chromium's offer went out before gathering; its candidates trickled in.
    host = {
        (f[4], int(f[5]))
        for f in (c["candidate"].split() for c in trickled if c["candidate"])
        if f[7] == "host"
    }
    assert "127.0.0.1" in {ip for ip, _ in host}
    assert host <= {(ip, port) for ip, port, _ in leg.remote_candidates}
    # The phone hears the browser's microphone, as PCMU, tone intact.
    assert {p.payload_type for p in phone.received} == {0}
    audio = ulaw_decode(b"".join(p.payload for p in phone.received[-50:]))
    assert dominant_frequency(audio, 8000) == pytest.approx(MIC_HZ, abs=15)
    # The browser hears the phone, as PCMU.
    assert heard["peakHz"] == pytest.approx(RTP_HZ, abs=20), heard
    assert stats["inbound"]["mimeType"] == "audio/PCMU"
    assert stats["inbound"]["packetsReceived"] > 0


async def test_driver_reads_elements_console_and_screenshots(
    browser: ChromiumDriver,
) -> None:
    """The WebDriver helper the web UI tests reuse, on the softphone page."""
    await browser.console_logs()  # start from an empty console
    status = await browser.wait_for("#status", timeout=5)
    assert await browser.text(status) == "idle"
    assert await browser.execute("return softphone.state()") == "none"
    await browser.execute("console.log('from-the-test', arguments[0])", 42)
    logs = await browser.console_logs()
    assert any("from-the-test" in entry["message"] for entry in logs)
    png = await browser.screenshot()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(WebDriverError) as error:
        await browser.find("#no-such-thing")
    assert error.value.error == "no such element"
    assert (await browser.current_url()).endswith("/softphone.html")
