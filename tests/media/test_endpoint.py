"""RTP endpoints on real UDP sockets (127.0.0.1): latching, RTCP, inactivity, port pool,
SDP configuration and the bridge's datagram path between two endpoints."""

from __future__ import annotations

import asyncio
import socket

import pytest

from sipspeak.media.bridge import Bridge
from sipspeak.media.dtmf import DtmfDigit, telephone_event_packets
from sipspeak.media.endpoint import RtpEndpoint, open_endpoint
from sipspeak.media.portpool import PortPool, PortPoolExhausted
from sipspeak.media.rtcp import (
    RtcpBye,
    RtcpReceiverReport,
    RtcpSdes,
    RtcpSenderReport,
    parse_compound,
)
from sipspeak.media.rtp import RtpPacket


class Peer:
    """A phone: a plain UDP socket pair (RTP + RTCP) on ephemeral ports."""

    def __init__(self) -> None:
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.rtp.setblocking(False)
        self.addr = self.rtp.getsockname()

    def send(self, endpoint: RtpEndpoint, packet: RtpPacket) -> None:
        self.rtp.sendto(packet.serialize(), ("127.0.0.1", endpoint.local_port))

    async def recv(self, timeout: float = 2.0) -> bytes:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.sock_recv(self.rtp, 2048), timeout)

    def close(self) -> None:
        self.rtp.close()


def pkt(seq: int, ssrc: int = 77) -> RtpPacket:
    return RtpPacket(
        payload_type=0,
        sequence_number=seq,
        timestamp=160 * seq,
        ssrc=ssrc,
        payload=b"\x11" * 160,
    )


async def wait_for(cond: object, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_latches_to_first_source_and_drops_others(port_pool: PortPool) -> None:
    got: list[RtpPacket] = []
    sdp_claims = ("127.0.0.1", 9)  # what SDP said; the phone is really elsewhere (NAT)
    ep = await open_endpoint(pool=port_pool, codec="PCMU", remote=sdp_claims, name="t1")
    ep.set_receiver(got.append)
    phone, intruder = Peer(), Peer()
    try:
        assert ep.local_port % 2 == 0
        phone.send(ep, pkt(1))
        await wait_for(lambda: len(got) == 1)
        assert ep.remote_address == phone.addr
        intruder.send(ep, pkt(2, ssrc=666))
        phone.send(ep, pkt(3))
        await wait_for(lambda: len(got) == 2)
        assert [p.sequence_number for p in got] == [1, 3]
        assert ep.dropped_foreign == 1
        # Our packets go to the latched source, not to the SDP address.
        ep.send(pkt(10, ssrc=1))
        back = RtpPacket.parse(await phone.recv())
        assert back.sequence_number == 10 and back.ssrc == ep.session.ssrc
        # Garbage from the latched source is dropped and counted, not fatal.
        phone.rtp.sendto(b"\x80\x00", ("127.0.0.1", ep.local_port))
        phone.send(ep, pkt(4))
        await wait_for(lambda: len(got) == 3)
        assert ep.dropped_malformed == 1
        stats = ep.stats()
        assert (
            stats.received == 3 and stats.cumulative_lost == 1
        )  # seq 2 never came from it
    finally:
        ep.close()
        phone.close()
        intruder.close()


async def test_inactivity_event_fires_once_when_rtp_stops(port_pool: PortPool) -> None:
    fired: list[RtpEndpoint] = []
    ep = await open_endpoint(
        pool=port_pool, codec="PCMA", inactivity_timeout=1.5, on_inactive=fired.append
    )
    phone = Peer()
    try:
        for i in range(10):
            phone.send(ep, pkt(i))
            await asyncio.sleep(0.05)
        assert not fired  # RTP is flowing
        await wait_for(lambda: bool(fired), timeout=10)
        await asyncio.sleep(1.0)
        assert fired == [ep] and ep.inactive  # once, not once per check
        phone.send(ep, pkt(20))
        await wait_for(lambda: not ep.inactive, timeout=10)
    finally:
        ep.close()
        phone.close()


async def test_rtcp_reports_and_bye_reach_the_peer(port_pool: PortPool) -> None:
    rtcp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # The peer's RTCP port must be its RTP port + 1: find such a pair.
    for _ in range(50):
        rtp_sock.bind(("127.0.0.1", 0))
        try:
            rtcp_sock.bind(("127.0.0.1", rtp_sock.getsockname()[1] + 1))
            break
        except OSError:
            rtp_sock.close()
            rtp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp_sock.setblocking(False)
    remote = rtp_sock.getsockname()
    ep = await open_endpoint(pool=port_pool, codec="PCMU", remote=remote)
    # Make the first report due now instead of in 2-6 s.
    ep.session._next = 0.0
    ep._rtcp_timer.cancel()  # type: ignore[union-attr]
    ep.send(pkt(1))
    ep._arm_rtcp()
    loop = asyncio.get_running_loop()
    try:
        report = parse_compound(
            await asyncio.wait_for(loop.sock_recv(rtcp_sock, 2048), 3)
        )
        assert isinstance(report[0], RtcpSenderReport) and report[0].packet_count == 1
        assert isinstance(report[1], RtcpSdes)
        ep.close("bye now")
        bye = parse_compound(await asyncio.wait_for(loop.sock_recv(rtcp_sock, 2048), 3))
        assert isinstance(bye[-1], RtcpBye) and bye[-1].reason == b"bye now"
        assert isinstance(bye[0], (RtcpSenderReport, RtcpReceiverReport))
    finally:
        ep.close()
        rtp_sock.close()
        rtcp_sock.close()


async def test_pool_skips_taken_pairs_and_reports_exhaustion(
    port_pool: PortPool,
) -> None:
    await skips_taken_pairs_and_reports_exhaustion(port_pool)


def test_pool_skips_taken_pairs_under_uvloop(port_pool: PortPool) -> None:
    # uvloop words a taken port differently from asyncio (errno only in __cause__).
    uvloop = pytest.importorskip("uvloop")
    uvloop.run(skips_taken_pairs_and_reports_exhaustion(port_pool))


async def skips_taken_pairs_and_reports_exhaustion(port_pool: PortPool) -> None:
    # Take the pool's first pair from outside, as another process would.
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        blocker.bind(("127.0.0.1", port_pool.first))
    except OSError:
        pass  # already taken by someone else: even better
    endpoints: list[RtpEndpoint] = []
    try:
        with pytest.raises(PortPoolExhausted):
            for _ in range(port_pool.capacity + 1):
                endpoints.append(await open_endpoint(pool=port_pool, codec="PCMU"))
        ports = [e.local_port for e in endpoints]
        assert port_pool.first not in ports
        assert all(p % 2 == 0 for p in ports) and len(set(ports)) == len(ports)
        last = endpoints.pop()
        last.close()
        await last.wait_closed()
        endpoints.append(await open_endpoint(pool=port_pool, codec="PCMU"))
    finally:
        for e in endpoints:
            e.close()
            await e.wait_closed()
        blocker.close()
    assert port_pool.in_use == 0


def test_port_pool_bookkeeping() -> None:
    pool = PortPool(first=30001, last=30006)
    assert pool.first == 30002 and pool.capacity == 2
    a, b = pool.acquire(), pool.acquire()
    assert (a, b) == (30002, 30004)
    with pytest.raises(PortPoolExhausted):
        pool.acquire()
    pool.release(a)
    with pytest.raises(ValueError):
        pool.release(a)
    assert pool.acquire() == 30002
    with pytest.raises(ValueError):
        PortPool(first=100, last=200)


async def test_configure_applies_the_negotiated_codec_and_telephone_event(
    port_pool: PortPool,
) -> None:
    digits: list[DtmfDigit] = []
    ep = await open_endpoint(
        pool=port_pool, codec="PCMU", dtmf_payload_type=101, on_dtmf=digits.append
    )
    phone = Peer()
    try:
        ep.configure(codec="PCMA", dtmf_payload_type=96)
        assert ep.codec == "PCMA" and ep.dtmf_payload_type == 96
        ep.configure(codec="PCMU")  # the telephone-event type is left alone
        assert ep.codec == "PCMU" and ep.dtmf_payload_type == 96
        for _, packet in telephone_event_packets(
            "7", payload_type=96, ssrc=5, first_sequence=1, timestamp=0
        ):
            phone.send(ep, packet)
        await wait_for(lambda: bool(digits))
        assert [d.digit for d in digits] == ["7"]
        # The attribute form (what the call layer assigns after SDP) does the same.
        ep.dtmf_payload_type = None
        assert ep.dtmf_payload_type is None
        with pytest.raises(ValueError):
            ep.configure(codec="G722")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            ep.configure(dtmf_payload_type=128)
    finally:
        ep.close()
        phone.close()


async def test_bridge_between_two_endpoints_rewrites_datagrams(
    port_pool: PortPool,
) -> None:
    alice, bob = Peer(), Peer()
    a = await open_endpoint(pool=port_pool, codec="PCMU", remote=alice.addr)
    b = await open_endpoint(pool=port_pool, codec="PCMA", remote=bob.addr)
    bridge = Bridge(customer=a, operator=b)
    tapped: list[int] = []
    bridge.set_tap("customer", lambda codec, ts, payload: tapped.append(ts))
    try:
        for seq in (1, 2, 3):
            alice.send(a, pkt(seq))
        out = [RtpPacket.parse(await bob.recv()) for _ in range(3)]
        # Transcoded to the operator's law, in the operator endpoint's stream.
        assert {p.payload_type for p in out} == {8}
        assert {p.ssrc for p in out} == {b.ssrc}
        first = out[0].sequence_number
        assert [(p.sequence_number - first) & 0xFFFF for p in out] == [0, 1, 2]
        assert out[0].marker and not out[1].marker
        assert tapped == [p.timestamp for p in out]
        assert b.packets_sent == 3 and b.octets_sent == 480
        assert b.last_sent_timestamp == out[-1].timestamp
        bob.send(
            b,
            RtpPacket(
                payload_type=8,
                sequence_number=9,
                timestamp=0,
                ssrc=4,
                payload=b"\xd5" * 160,
            ),
        )
        back = RtpPacket.parse(await alice.recv())
        assert back.payload_type == 0 and back.ssrc == a.ssrc
        assert a.stats().received == 3 and b.stats().received == 1
    finally:
        bridge.close()
        a.close()
        b.close()
        alice.close()
        bob.close()


async def test_rtcp_goes_where_the_sdp_says_until_nat_moves_rtp(port_pool: PortPool) -> None:
    """RFC 3605 a=rtcp: a port that is not RTP + 1; a NAT-moved RTP source overrides it."""
    rtp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp_sock.bind(("127.0.0.1", 0))
    rtcp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp_sock.bind(("127.0.0.1", 0))
    rtcp_sock.setblocking(False)
    remote, rtcp_at = rtp_sock.getsockname(), rtcp_sock.getsockname()
    ep = await open_endpoint(pool=port_pool, codec="PCMU")
    loop = asyncio.get_running_loop()

    async def report() -> None:
        ep.session._next = 0.0  # due now instead of in 2-6 s
        assert ep._rtcp_timer is not None
        ep._rtcp_timer.cancel()
        ep._arm_rtcp()

    try:
        ep.relatch(remote, rtcp=rtcp_at)
        rtp_sock.sendto(pkt(1).serialize(), ("127.0.0.1", ep.local_port))  # latch: as SDP said
        await wait_for(lambda: ep.packets_received == 1)
        await report()
        first = parse_compound(await asyncio.wait_for(loop.sock_recv(rtcp_sock, 2048), 3))
        assert isinstance(first[0], RtcpReceiverReport)
        # A re-INVITE with the same a=rtcp, but RTP now arrives from elsewhere (a NAT).
        ep.relatch(remote, rtcp=rtcp_at)
        nat = Peer()
        nat.send(ep, pkt(2))
        await wait_for(lambda: ep.packets_received == 2)
        assert ep._remote_rtcp == (nat.addr[0], nat.addr[1] + 1)
        nat.close()
    finally:
        ep.close()
        rtp_sock.close()
        rtcp_sock.close()
