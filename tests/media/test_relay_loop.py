"""The C relay loop (sipspeak/media/_rtpfast.c) against its Python twin and on real sockets.

The loop relays bridged plain audio packets without calling Python; these
tests check that it is built, that its state arithmetic is the Python twin's,
that the bytes it puts on the wire are those of the Python path (same bridge,
same packets, relay on and off), and that it keeps order with the packets it
leaves to Python, drops strangers and survives a failing tap.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipspeak.media import _rtppy, fastpath
from sipspeak.media.bridge import Bridge
from sipspeak.media.dtmf import DtmfDigit, telephone_event_packets
from sipspeak.media.endpoint import RtpEndpoint, open_endpoint
from sipspeak.media.fastpath import TAP_RECORD
from sipspeak.media.g711 import ULAW_TO_ALAW
from sipspeak.media.portpool import PortPool
from sipspeak.media.rtp import Codec, RtpPacket

sys.path.insert(0, str(Path(__file__).parent))
from rtp_packets import rtp


def test_the_c_relay_loop_is_built() -> None:
    """A missing compiler must not go unnoticed: the package would run the slow twin."""
    if os.environ.get("SIPSPEAK_MEDIA_NATIVE") == "0":
        assert fastpath.NATIVE is False
        return
    assert fastpath.NATIVE, (
        "sipspeak.media._rtpfast was not built (pip install needs gcc and the "
        "Python headers); the engine falls back to the Python relay"
    )
    from sipspeak.media import _rtpfast

    assert fastpath.Port is _rtpfast.Port


def _c() -> object:
    from sipspeak.media import _rtpfast

    return _rtpfast


RECEIVER_FIELDS = (
    "ssrc",
    "base_seq",
    "max_seq",
    "cycles",
    "bad_seq",
    "received",
    "expected_prior",
    "received_prior",
    "transit",
    "jitter",
)

packets = st.lists(
    st.tuples(
        st.sampled_from([1, 2, 0xFFFFFFFF]),  # ssrc: switches now and then
        st.integers(0, 0xFFFF),  # sequence number: any jump
        st.integers(0, 0xFFFFFFFF),  # timestamp
        st.floats(0.0, 0.2),  # arrival gap in seconds
    ),
    max_size=60,
)


def _walk(
    seq0: int, steps: list[tuple[int, int, int, float]]
) -> list[tuple[int, int, int, float]]:
    """Mostly in-order packets with the drawn jumps mixed in."""
    out, seq, now = [], seq0, 1000.0
    for i, (ssrc, jump, ts, gap) in enumerate(steps):
        seq = (seq + 1) & 0xFFFF if i % 3 else jump
        now += gap
        out.append((ssrc, seq, ts, now))
    return out


@given(seq0=st.integers(0, 0xFFFF), steps=packets)
def test_receiver_statistics_match_the_python_twin(
    seq0: int, steps: list[tuple[int, int, int, float]]
) -> None:
    c = _c().ReceiverCore(clock_rate=8000)  # type: ignore[attr-defined]
    py = _rtppy.ReceiverCore(clock_rate=8000)
    for ssrc, seq, ts, now in _walk(seq0, steps):
        c.update(ssrc, seq, ts, now)
        py.update(ssrc, seq, ts, now)
        for name in RECEIVER_FIELDS:
            assert getattr(c, name) == getattr(py, name), name


def test_receiver_and_rewriter_reject_bad_values() -> None:
    mod = _c()
    with pytest.raises(ValueError):
        mod.ReceiverCore(clock_rate=0)  # type: ignore[attr-defined]
    stats = mod.ReceiverCore()  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        stats.update(1, 70000, 0, 0.0)
    rewriter = mod.RewriterCore()  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        rewriter.table = b"short"
    with pytest.raises(TypeError):
        rewriter.target_port = object()
    with pytest.raises(TypeError):
        rewriter.tap = 5


# ----------------------------------------------------------------- on real sockets


class Peer:
    """A phone: one UDP socket on an ephemeral port of 127.0.0.1."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.addr: tuple[str, int] = self.sock.getsockname()

    def send(self, endpoint: RtpEndpoint, data: bytes) -> None:
        self.sock.sendto(data, ("127.0.0.1", endpoint.local_port))

    async def recv_all(self, count: int, timeout: float = 3.0) -> list[bytes]:
        loop = asyncio.get_running_loop()
        out = []
        async with asyncio.timeout(timeout):
            while len(out) < count:
                out.append(await loop.sock_recv(self.sock, 4096))
        return out

    def close(self) -> None:
        self.sock.close()


@contextlib.asynccontextmanager
async def bridged(
    pool: PortPool,
    *,
    operator: Codec = "PCMU",
    operator_dtmf: int = 101,
    seeded: bool = False,
    on_dtmf: Callable[[DtmfDigit], None] | None = None,
) -> AsyncIterator[tuple[Peer, Peer, RtpEndpoint, RtpEndpoint, Bridge]]:
    """Two phones, their endpoints and a bridge (PCMU customer); all closed on the way out.

    ``seeded``: fixed SSRCs and numbering, so that two runs put the same bytes on the wire.
    """
    alice, bob = Peer(), Peer()
    a = await open_endpoint(
        pool=pool,
        codec="PCMU",
        remote=alice.addr,
        rtcp=False,
        on_dtmf=on_dtmf,
        rng=random.Random(1) if seeded else None,
    )
    b = await open_endpoint(
        pool=pool,
        codec=operator,
        remote=bob.addr,
        dtmf_payload_type=operator_dtmf,
        rtcp=False,
        rng=random.Random(2) if seeded else None,
    )
    bridge = Bridge(customer=a, operator=b, rng=random.Random(3) if seeded else None)
    try:
        yield alice, bob, a, b, bridge
    finally:
        bridge.close()
        a.close()
        b.close()
        await a.wait_closed()
        await b.wait_closed()
        alice.close()
        bob.close()


def customer_burst() -> list[bytes]:
    """Audio across a sequence wrap with what the loop leaves to Python mixed in."""
    out = [rtp(0xAAAA, 65530 + i, 0xFFFFFE00 + 160 * i, fill=i) for i in range(8)]
    out.insert(3, rtp(0xAAAA, 2, 0, pt=101, fill=3, marker=True))  # telephone-event
    out.insert(5, rtp(0xAAAA, 3, 0, pt=13, fill=0))  # comfort noise
    out.insert(6, rtp(0xAAAA, 4, 160, fill=0x34, csrc=(9,)))  # not a plain header
    out.append(rtp(0xAAAA, 9, 1600, fill=0x77, padding=4))
    return out


async def _relay_run(
    pool: PortPool, *, relay: bool
) -> tuple[list[bytes], list[bytes], list[tuple[str, int, bytes]], int, dict[str, int]]:
    async with bridged(pool, operator="PCMA", operator_dtmf=96, seeded=True) as call:
        alice, bob, a, b, bridge = call
        tapped: list[tuple[str, int, bytes]] = []
        bridge.set_tap("customer", lambda codec, ts, pl: tapped.append((codec, ts, pl)))
        slow = 0
        raw = a._raw_receiver
        assert raw is not None

        def counting(*args: object) -> None:
            nonlocal slow
            slow += 1
            raw(*args)  # type: ignore[arg-type]

        a._raw_receiver = counting
        if not relay:
            a.native_port.rewriter = None
            b.native_port.rewriter = None
        burst = customer_burst()
        # The far ends speak first (latching); then a burst that queues up in
        # the socket, so one drain sees all of it in one batch.
        alice.send(a, burst[0])
        bob.send(b, rtp(0xBBBB, 500, 8000, pt=8, fill=0xD5))
        first = await bob.recv_all(1)
        back = await alice.recv_all(1)
        for data in burst[1:]:
            alice.send(a, data)
        rest = await bob.recv_all(len(burst) - 1)  # comfort noise goes through, too
        counters = {
            "received": a.packets_received,
            "sent": b.packets_sent,
            "octets": b.octets_sent,
            "last_ts": b.last_sent_timestamp,
            "stats_received": a.stats().received,
        }
        return first + rest, back, tapped, slow, counters


async def test_relay_loop_puts_the_python_paths_bytes_on_the_wire(
    port_pool: PortPool,
) -> None:
    by_loop = await _relay_run(port_pool, relay=True)
    by_python = await _relay_run(port_pool, relay=False)
    wire, back, tapped, slow, counters = by_loop
    assert len(wire) == len(customer_burst())
    assert wire == by_python[0] and back == by_python[1]
    assert tapped == by_python[2] and len(tapped) == 10  # audio only, transcoded
    assert counters == by_python[4]
    assert counters["received"] == len(customer_burst())
    # Transcoded to the operator's law, telephone-event renumbered to its PT.
    pts = [RtpPacket.parse(d).payload_type for d in wire]
    assert pts[:4] == [8, 8, 8, 96]
    if fastpath.NATIVE:
        # Of the plain-header packets only the first (latching), the event and
        # comfort noise reached Python; the loop relayed the other seven.
        assert slow == 3 and by_python[3] == len(customer_burst()) - 2
    else:
        assert slow == by_python[3]


async def test_relay_loop_keeps_one_stream_across_a_source_switch(
    port_pool: PortPool,
) -> None:
    async with bridged(port_pool) as (alice, bob, a, b, bridge):
        for i in range(3):
            alice.send(a, rtp(1, 100 + i, 5000 + 160 * i))
        await asyncio.sleep(0.1)
        for i in range(3):  # the phone restarted its stream: new SSRC, new numbering
            alice.send(a, rtp(2, 9 + i, 77 + 160 * i))
        out = [RtpPacket.parse(d) for d in await bob.recv_all(6)]
        seqs = [(p.sequence_number - out[0].sequence_number) & 0xFFFF for p in out]
        assert seqs == [0, 1, 2, 3, 4, 5]
        assert {p.ssrc for p in out} == {b.ssrc}
        assert [p.marker for p in out] == [True, False, False, True, False, False]
        gap = (out[3].timestamp - out[2].timestamp) & 0xFFFFFFFF
        assert 800 <= gap < 8000 * 5  # the 100 ms pause, at least one frame
        assert (out[5].timestamp - out[3].timestamp) & 0xFFFFFFFF == 320
        assert bridge.switches("customer") == 2


async def test_relay_loop_drops_strangers_and_oversized_datagrams(
    port_pool: PortPool,
) -> None:
    mallory = Peer()
    async with bridged(port_pool) as (alice, bob, a, _, _):
        alice.send(a, rtp(1, 1, 0))
        await bob.recv_all(1)
        for i in range(5):
            mallory.send(a, rtp(66, 2 + i, 160))
        alice.sock.sendto(b"\x80" + b"\x00" * 3000, ("127.0.0.1", a.local_port))
        alice.send(a, rtp(1, 2, 160, fill=0x99))
        (last,) = await bob.recv_all(1)
        assert RtpPacket.parse(last).payload == b"\x99" * 160
        assert a.dropped_foreign == 5
        assert a.dropped_malformed == 1
        assert a.packets_received == 2
    mallory.close()


async def test_a_failing_tap_is_detached_and_one_that_ends_the_bridge_stops_the_relay(
    port_pool: PortPool,
) -> None:
    calls = 0

    def broken(codec: str, ts: int, payload: bytes) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("disk full")

    unraisable: list[object] = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        async with bridged(port_pool) as (alice, bob, a, b, bridge):
            alice.send(a, rtp(1, 1, 0))  # latches (always the Python path)
            await bob.recv_all(1)
            bridge.set_tap("customer", broken)
            for i in range(2, 5):
                alice.send(a, rtp(1, i, 160 * i))
            assert len(await bob.recv_all(3)) == 3  # the audio goes on
            assert calls == 1  # reported once, then detached

            def closing(codec: str, ts: int, payload: bytes) -> None:
                bridge.close()

            bridge.set_tap("customer", closing)
            for i in range(5, 9):
                alice.send(a, rtp(1, i, 160 * i))
            await asyncio.sleep(0.2)
            # All read; after the close nothing is relayed.
            assert a.packets_received == 8
            assert b.packets_sent == 4
    finally:
        sys.unraisablehook = old_hook
    if fastpath.NATIVE:
        assert len(unraisable) == 1  # reported, not raised into the loop


async def test_a_hang_up_from_the_slow_path_stops_the_batch(
    port_pool: PortPool,
) -> None:
    """A digit handler that ends the call runs inside the loop's batch: nothing after it."""
    digits: list[str] = []
    endpoints: list[RtpEndpoint] = []

    def hang_up(digit: DtmfDigit) -> None:
        digits.append(digit.digit)
        for endpoint in endpoints:
            endpoint.close()

    async with bridged(port_pool, on_dtmf=hang_up) as (alice, bob, a, b, _):
        endpoints += [a, b]
        alice.send(a, rtp(1, 1, 0))
        await bob.recv_all(1)
        burst = [rtp(1, 2, 160), rtp(1, 3, 320)]
        events = telephone_event_packets(
            "5", payload_type=101, ssrc=1, first_sequence=4, timestamp=480
        )
        burst += [p.serialize() for _, p in events]
        seq = 4 + len(events)
        burst += [rtp(1, seq + i, 480 + 160 * (i + 6)) for i in range(3)]
        for data in burst:
            alice.send(a, data)
        await a.wait_closed()
        await b.wait_closed()
        await asyncio.sleep(0.1)
        assert digits == ["5"]
        assert a.closed and b.closed
        # The audio and the event's packets up to its end: nothing after the hang-up.
        before_end = sum(1 for _, p in events if not p.payload[1] & 0x80)
        assert b.packets_sent == 3 + before_end


datagrams = st.lists(
    st.one_of(
        st.tuples(
            st.just("audio"), st.integers(0, 3), st.binary(min_size=0, max_size=320)
        ),
        st.tuples(
            st.sampled_from(["event", "cn", "alaw"]),
            st.integers(0, 3),
            st.just(b"\x01\x02\x03\x04"),
        ),
        st.tuples(st.just("raw"), st.just(0), st.binary(min_size=0, max_size=40)),
        st.tuples(st.just("rtcp-ish"), st.just(0), st.binary(min_size=0, max_size=30)),
    ),
    min_size=1,
    max_size=25,
)


def _encode(items: list[tuple[str, int, bytes]]) -> list[bytes]:
    out, seq, ts = [], 1000, 50_000
    for kind, step, body in items:
        seq, ts = seq + step, ts + 160 * step
        if kind == "raw":
            out.append(body)  # anything at all: short, wrong version, garbage
        elif kind == "rtcp-ish":
            out.append(bytes([0x80, 200]) + body)  # RTCP multiplexed, maybe malformed
        else:
            pt = {"audio": 0, "event": 101, "cn": 13, "alaw": 8}[kind]
            out.append(
                RtpPacket(
                    payload_type=pt,
                    sequence_number=seq & 0xFFFF,
                    timestamp=ts,
                    ssrc=0xC0FFEE,
                    payload=body,
                ).serialize()
            )
    return out


async def _play(
    pool: PortPool, burst: list[bytes], *, relay: bool
) -> tuple[list[bytes], dict[str, int]]:
    async with bridged(pool, operator="PCMA", seeded=True) as (alice, bob, a, b, _):
        if not relay:
            a.native_port.rewriter = None
        alice.send(a, rtp(0xC0FFEE, 999, 49_840))  # latch first
        got = await bob.recv_all(1)
        for data in burst:
            alice.send(a, data)
        alice.send(a, rtp(0xC0FFEE, 0xFFFF, 0, fill=0xEE))  # a marker that all was read
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(3):
            while True:
                data = await loop.sock_recv(bob.sock, 4096)
                got.append(data)
                if data.endswith(bytes([ULAW_TO_ALAW[0xEE]]) * 160):
                    break
        counters = {
            "received": a.packets_received,
            "foreign": a.dropped_foreign,
            "malformed": a.dropped_malformed,
            "sent": b.packets_sent,
            "octets": b.octets_sent,
        }
        return got, counters


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=datagrams)
def test_any_datagrams_give_the_same_wire_and_counters_with_the_loop_on_and_off(
    port_pool: PortPool, items: list[tuple[str, int, bytes]]
) -> None:
    burst = _encode(items)

    async def both() -> None:
        on = await _play(port_pool, burst, relay=True)
        off = await _play(port_pool, burst, relay=False)
        assert on == off

    asyncio.run(both())


async def test_the_loop_fills_a_tap_buffer_with_the_target_law(
    port_pool: PortPool,
) -> None:
    kept = fastpath.TapBuffer()
    async with bridged(port_pool, operator="PCMA") as (alice, bob, a, _, bridge):
        alice.send(a, rtp(1, 1, 0, fill=0x10))  # latches (Python path)
        await bob.recv_all(1)
        bridge.set_tap("customer", kept)
        for i in range(2, 7):
            alice.send(a, rtp(1, i, 160 * i, fill=0x10 + i))
        wire = await bob.recv_all(5)
        data = kept.take()
        ts, n, codec, _arrival = TAP_RECORD.unpack_from(data, 0)
        # One segment of the five contiguous packets, as the operator hears them.
        assert (n, codec) == (5 * 160, 1) and len(data) == TAP_RECORD.size + n
        assert ts == RtpPacket.parse(wire[0]).timestamp
        assert data[TAP_RECORD.size :] == b"".join(
            RtpPacket.parse(w).payload for w in wire
        )
        assert wire[0][12:] == bytes([ULAW_TO_ALAW[0x12]]) * 160
