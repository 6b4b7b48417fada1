"""WebRTC gateway legs wired back to back: two real aiortc peer connections.

No browser here: ICE, DTLS-SRTP and RTP run for real over 127.0.0.1 between
two :class:`WebRtcLeg` objects, which is where "without transcoding" can be
checked byte for byte.  A decode/encode path would fail these tests: it would
re-frame payloads to 160 bytes, and μ-law 0x7F (-0) comes back as 0xFF (+0).
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender

from sipspeak.media.rtp import RtpPacket, seq_diff, ts_diff
from sipspeak.media.webrtc import (
    WebRtcLeg,
    WebRtcLegClosed,
    WebRtcLegConnected,
    WebRtcLegEvent,
    WebRtcLegState,
    WebRtcSettings,
    WebRtcSignallingError,
    sdp_audio_codecs,
)
from sipspeak.media.webrtc_gateway import WebRtcGateway

pytestmark = pytest.mark.timeout(60)

LOOPBACK = WebRtcSettings(host_addresses=("127.0.0.1",))


@pytest.fixture
async def pair() -> AsyncIterator[tuple[WebRtcLeg, WebRtcLeg]]:
    offerer = WebRtcLeg(settings=LOOPBACK, call_id="offerer")
    answerer = WebRtcLeg(settings=LOOPBACK, call_id="answerer")
    try:
        yield offerer, answerer
    finally:
        await asyncio.wait_for(asyncio.gather(offerer.close(), answerer.close()), 10)


async def negotiate(offerer: WebRtcLeg, answerer: WebRtcLeg) -> None:
    offer = await asyncio.wait_for(offerer.create_offer(), 10)
    answer = await asyncio.wait_for(answerer.accept_offer(offer), 10)
    await asyncio.wait_for(offerer.accept_answer(answer), 10)
    async with asyncio.timeout(15):
        while not (
            offerer.state is WebRtcLegState.CONNECTED
            and answerer.state is WebRtcLegState.CONNECTED
        ):
            await asyncio.sleep(0.02)


def source_stream(rng: random.Random) -> list[RtpPacket]:
    """PCMU packets with every byte value, odd sizes and a timestamp jump."""
    packets: list[RtpPacket] = []
    seq, ts = 65530, 0xFFFFFF00  # both wrap during the stream
    for n in range(40):
        size = (160, 80, 240, 7)[n % 4]
        payload = bytes(rng.randrange(256) for _ in range(size))
        if n == 0:
            payload = bytes(range(256))[:size]
        packets.append(
            RtpPacket(
                payload_type=0,
                sequence_number=seq,
                timestamp=ts,
                ssrc=0xABCDEF,
                payload=payload + b"\x7f\xff",
                marker=n == 0,
            )
        )
        seq = (seq + 1) & 0xFFFF
        # A silence-suppression gap of 1 s after packet 20 (RFC 3551 §4.1).
        ts = (ts + size + 2 + (8000 if n == 20 else 0)) & 0xFFFFFFFF
    return packets


async def play(leg: WebRtcLeg, packets: list[RtpPacket]) -> None:
    """Send ``packets`` paced at start + n x 20 ms, with a telephone-event in between."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n, packet in enumerate(packets):
        leg.send(
            RtpPacket(
                payload_type=packet.payload_type,
                sequence_number=packet.sequence_number,
                timestamp=packet.timestamp,
                ssrc=packet.ssrc,
                payload=packet.payload,
            )
        )
        if n == 5:
            # Not negotiated on the WebRTC side: the leg must not send it.
            leg.send(
                RtpPacket(
                    payload_type=101,
                    sequence_number=0,
                    timestamp=0,
                    ssrc=1,
                    payload=b"\x05\x0a\x00\xa0",
                )
            )
        await asyncio.sleep(max(0.0, start + (n + 1) * 0.020 - loop.time()))


def assert_same_stream(sent: list[RtpPacket], received: list[RtpPacket]) -> None:
    assert len(received) == len(sent)
    received = sorted(
        received, key=lambda p: seq_diff(p.sequence_number, received[0].sequence_number)
    )
    assert [p.payload for p in received] == [p.payload for p in sent]
    assert all(p.payload_type == 0 for p in received)
    for (s0, s1), (r0, r1) in zip(
        itertools.pairwise(sent), itertools.pairwise(received), strict=True
    ):
        assert ts_diff(r1.timestamp, r0.timestamp) == ts_diff(
            s1.timestamp, s0.timestamp
        )
        assert seq_diff(r1.sequence_number, r0.sequence_number) == 1
    assert len({p.ssrc for p in received}) == 1


async def test_payloads_pass_through_unchanged_both_ways(
    pair: tuple[WebRtcLeg, WebRtcLeg],
) -> None:
    offerer, answerer = pair
    at_offerer: list[RtpPacket] = []
    at_answerer: list[RtpPacket] = []
    offerer.set_receiver(at_offerer.append)
    answerer.set_receiver(at_answerer.append)
    await negotiate(offerer, answerer)

    forward = source_stream(random.Random(1))
    backward = source_stream(random.Random(2))
    await asyncio.wait_for(
        asyncio.gather(play(offerer, forward), play(answerer, backward)), 10
    )
    async with asyncio.timeout(5):
        while len(at_answerer) < len(forward) or len(at_offerer) < len(backward):
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)  # a stray telephone-event would arrive by now

    assert_same_stream(forward, at_answerer)
    assert_same_stream(backward, at_offerer)
    assert answerer.packets_ignored == 0
    assert offerer.packets_ignored == 0
    # By default aiortc's own receive path (and its decoder) never runs.
    for leg in pair:
        assert "inbound-rtp" not in {s.type for s in (await leg.stats()).values()}


async def test_offer_and_answer_carry_pcmu_only_and_loopback_candidates(
    pair: tuple[WebRtcLeg, WebRtcLeg],
) -> None:
    offerer, answerer = pair
    offer = await asyncio.wait_for(offerer.create_offer(), 10)
    answer = await asyncio.wait_for(answerer.accept_offer(offer), 10)
    for sdp in (offer, answer):
        assert sdp_audio_codecs(sdp) == ["PCMU"]
        candidates = [
            line.split() for line in sdp.splitlines() if line.startswith("a=candidate:")
        ]
        assert candidates
        # candidate-attribute (RFC 8839 §5.1): foundation component transport
        # priority address port "typ" type
        assert {(c[4], c[7]) for c in candidates} == {("127.0.0.1", "host")}
    await asyncio.wait_for(offerer.accept_answer(answer), 10)
    assert offerer.negotiated_codec == answerer.negotiated_codec == "PCMU"


async def test_offer_without_pcmu_is_rejected_with_488() -> None:
    browser = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    leg = WebRtcLeg(settings=LOOPBACK)
    try:
        transceiver = browser.addTransceiver("audio")
        opus = [
            c
            for c in RTCRtpSender.getCapabilities("audio").codecs
            if c.mimeType.lower() == "audio/opus"
        ]
        transceiver.setCodecPreferences(opus)
        offer = await browser.createOffer()
        assert sdp_audio_codecs(offer.sdp) == ["OPUS"]
        with pytest.raises(WebRtcSignallingError) as error:
            await leg.accept_offer(offer.sdp)
        assert error.value.status_hint == 488
    finally:
        await asyncio.wait_for(asyncio.gather(browser.close(), leg.close()), 10)


async def test_offer_with_video_is_rejected_with_488() -> None:
    browser = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    leg = WebRtcLeg(settings=LOOPBACK)
    try:
        browser.addTransceiver("audio")
        browser.addTransceiver("video")
        offer = await browser.createOffer()
        with pytest.raises(WebRtcSignallingError) as error:
            await leg.accept_offer(offer.sdp)
        assert error.value.status_hint == 488
    finally:
        await asyncio.wait_for(asyncio.gather(browser.close(), leg.close()), 10)


async def test_signalling_out_of_order_is_refused() -> None:
    leg = WebRtcLeg(settings=LOOPBACK)
    other = WebRtcLeg(settings=LOOPBACK)
    try:
        offer = await asyncio.wait_for(other.create_offer(), 10)
        with pytest.raises(WebRtcSignallingError) as error:
            await leg.accept_answer(offer)
        assert error.value.status_hint == 491
    finally:
        await asyncio.wait_for(asyncio.gather(leg.close(), other.close()), 10)
    with pytest.raises(WebRtcSignallingError) as error:
        await leg.create_offer()
    assert error.value.status_hint == 481


async def test_local_close_is_seen_as_remote_close_by_the_peer(
    pair: tuple[WebRtcLeg, WebRtcLeg],
) -> None:
    offerer, answerer = pair
    offerer_events: list[WebRtcLegEvent] = []
    answerer_events: list[WebRtcLegEvent] = []
    offerer.set_event_handler(offerer_events.append)
    answerer.set_event_handler(answerer_events.append)
    await negotiate(offerer, answerer)

    await asyncio.wait_for(offerer.close(), 10)
    assert offerer.state is WebRtcLegState.CLOSED
    assert await asyncio.wait_for(answerer.wait_closed(), 10) == WebRtcLegClosed(
        "remote"
    )
    assert offerer_events == [WebRtcLegConnected(), WebRtcLegClosed("local")]
    assert answerer_events == [WebRtcLegConnected(), WebRtcLegClosed("remote")]
    # A closed leg drops what the bridge still sends, without raising.
    offerer.send(RtpPacket(payload_type=0, sequence_number=1, timestamp=1, ssrc=1))


async def test_media_timeout_closes_a_silent_leg_only() -> None:
    settings = WebRtcSettings(host_addresses=("127.0.0.1",), media_timeout=0.6)
    talker = WebRtcLeg(settings=LOOPBACK, call_id="talker")
    listener = WebRtcLeg(settings=settings, call_id="listener")
    try:
        await negotiate(talker, listener)
        # 1.2 s of audio, twice the timeout: the listener stays connected.
        await asyncio.wait_for(play(talker, source_stream(random.Random(3))[:60]), 10)
        assert listener.state is WebRtcLegState.CONNECTED
        assert listener.packets_received > 0
        # The talker goes quiet: the listener closes, the talker sees it go.
        closed = await asyncio.wait_for(listener.wait_closed(), 10)
        assert closed == WebRtcLegClosed("media-timeout")
        assert await asyncio.wait_for(talker.wait_closed(), 10) == WebRtcLegClosed(
            "remote"
        )
    finally:
        await asyncio.wait_for(asyncio.gather(talker.close(), listener.close()), 10)


async def test_packets_sent_before_connection_are_dropped(
    pair: tuple[WebRtcLeg, WebRtcLeg],
) -> None:
    offerer, answerer = pair
    received: list[RtpPacket] = []
    answerer.set_receiver(received.append)
    stale = source_stream(random.Random(4))
    for packet in stale[:10]:
        offerer.send(packet)
    await negotiate(offerer, answerer)
    fresh = stale[10:20]
    await asyncio.wait_for(play(offerer, fresh), 10)
    async with asyncio.timeout(5):
        while len(received) < len(fresh):
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    assert_same_stream(fresh, received)


async def test_answer_without_pcmu_is_rejected_with_488() -> None:
    leg = WebRtcLeg(settings=LOOPBACK)
    try:
        offer = await asyncio.wait_for(leg.create_offer(), 10)
        # A peer that answers with a codec we never offered.
        answer = offer.replace("RTP/SAVPF 0", "RTP/SAVPF 8").replace(
            "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000"
        )
        answer = answer.replace("a=setup:actpass", "a=setup:active")
        assert sdp_audio_codecs(answer) == ["PCMA"]
        with pytest.raises(WebRtcSignallingError) as error:
            await leg.accept_answer(answer)
        assert error.value.status_hint == 488
    finally:
        await asyncio.wait_for(leg.close(), 10)


async def test_a_burst_beyond_the_send_queue_keeps_the_newest_packets(
    pair: tuple[WebRtcLeg, WebRtcLeg],
) -> None:
    offerer, answerer = pair
    received: list[RtpPacket] = []
    answerer.set_receiver(received.append)
    await negotiate(offerer, answerer)
    burst = source_stream(random.Random(5))[:30]
    # No await between sends: the sender cannot drain the queue meanwhile.
    for packet in burst:
        offerer.send(packet)
    capacity = LOOPBACK.send_queue_packets
    assert offerer.packets_dropped == len(burst) - capacity
    async with asyncio.timeout(5):
        while len(received) < capacity:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    assert_same_stream(burst[-capacity:], received)


async def test_ice_failure_closes_the_leg_as_failed(
    pair: tuple[WebRtcLeg, WebRtcLeg],
) -> None:
    offerer, answerer = pair
    events: list[WebRtcLegEvent] = []
    offerer.set_event_handler(events.append)
    offer = await asyncio.wait_for(offerer.create_offer(), 10)
    answer = await asyncio.wait_for(answerer.accept_offer(offer), 10)
    # An answer whose candidates are all gone (but complete): nothing to try.
    unreachable = "\r\n".join(
        line for line in answer.split("\r\n") if not line.startswith("a=candidate:")
    )
    assert "a=end-of-candidates" in unreachable
    await asyncio.wait_for(offerer.accept_answer(unreachable), 10)
    assert await asyncio.wait_for(offerer.wait_closed(), 15) == WebRtcLegClosed(
        "failed"
    )
    assert events == [WebRtcLegClosed("failed")]


async def test_gateway_owns_its_legs_and_closes_them_all() -> None:
    gateway = WebRtcGateway(settings=LOOPBACK)
    first = gateway.open_leg(call_id="first")
    second = gateway.open_leg(call_id="second")
    try:
        await negotiate(first, second)
        assert gateway.legs == [first, second]
        await asyncio.wait_for(gateway.close(), 10)
        assert first.closed_reason == second.closed_reason == "local"
        assert gateway.legs == []
        with pytest.raises(RuntimeError):
            gateway.open_leg(call_id="late")
    finally:
        await asyncio.wait_for(asyncio.gather(first.close(), second.close()), 10)


async def test_gateway_forgets_legs_the_far_end_closed() -> None:
    gateway = WebRtcGateway(settings=LOOPBACK)
    outside = WebRtcLeg(settings=LOOPBACK, call_id="browser")
    leg = gateway.open_leg(call_id="operator")
    try:
        await negotiate(outside, leg)
        await asyncio.wait_for(outside.close(), 10)
        assert await asyncio.wait_for(leg.wait_closed(), 10) == WebRtcLegClosed(
            "remote"
        )
        assert gateway.legs == []
    finally:
        await asyncio.wait_for(asyncio.gather(gateway.close(), outside.close()), 10)


async def test_trickled_candidates_connect_a_candidate_less_offer(
    pair: tuple[WebRtcLeg, WebRtcLeg],
) -> None:
    offerer, answerer = pair
    offer = await asyncio.wait_for(offerer.create_offer(), 10)
    with pytest.raises(WebRtcSignallingError) as error:
        await answerer.add_ice_candidate("")
    assert error.value.status_hint == 491
    # The browser sends its offer before gathering, then each candidate.
    lines = offer.split("\r\n")
    candidates = [line for line in lines if line.startswith("a=candidate:")]
    bare = "\r\n".join(
        line
        for line in lines
        if not line.startswith(("a=candidate:", "a=end-of-candidates"))
    )
    assert candidates
    answer = await asyncio.wait_for(answerer.accept_offer(bare), 10)
    await asyncio.wait_for(offerer.accept_answer(answer), 10)
    assert answerer.remote_candidates == []
    for line in candidates:
        await answerer.add_ice_candidate(line.removeprefix("a="))
    await answerer.add_ice_candidate("")
    trickled = {(f[4], int(f[5]), f[7]) for f in (line.split() for line in candidates)}
    assert trickled <= set(answerer.remote_candidates)
    async with asyncio.timeout(15):
        while not (
            offerer.state is WebRtcLegState.CONNECTED
            and answerer.state is WebRtcLegState.CONNECTED
        ):
            await asyncio.sleep(0.02)
    with pytest.raises(WebRtcSignallingError) as error:
        await answerer.add_ice_candidate("candidate:garbage")
    assert error.value.status_hint == 400


async def test_receiver_reports_keep_aiortcs_receive_path() -> None:
    settings = WebRtcSettings(host_addresses=("127.0.0.1",), receiver_reports=True)
    talker = WebRtcLeg(settings=settings, call_id="talker")
    listener = WebRtcLeg(settings=settings, call_id="listener")
    received: list[RtpPacket] = []
    listener.set_receiver(received.append)
    talking: asyncio.Task[None] | None = None
    try:
        await negotiate(talker, listener)
        stream = source_stream(random.Random(6)) * 10
        talking = asyncio.create_task(play(talker, stream))
        # RTCP RR (RFC 3550 §6.4.2) from the listener reaches the talker.
        async with asyncio.timeout(10):
            while "remote-inbound-rtp" not in {
                s.type for s in (await talker.stats()).values()
            }:
                await asyncio.sleep(0.1)
        inbound = [
            s for s in (await listener.stats()).values() if s.type == "inbound-rtp"
        ]
        assert inbound and inbound[0].packetsReceived > 0
        # The bridge still gets the packets themselves, unchanged.
        assert [p.payload for p in received] == [
            p.payload for p in stream[: len(received)]
        ]
    finally:
        if talking is not None:
            talking.cancel()
            await asyncio.gather(talking, return_exceptions=True)
        await asyncio.wait_for(asyncio.gather(talker.close(), listener.close()), 10)
