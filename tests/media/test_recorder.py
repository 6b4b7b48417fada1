"""Stereo WAV recorder: placement by RTP timestamp, silence for gaps, crash-safe header."""

from __future__ import annotations

import asyncio
import shutil
import wave
from concurrent.futures import Executor, Future
from pathlib import Path

import numpy as np
import pytest

from sipspeak.media import _rtppy, fastpath, g711
from sipspeak.media.fastpath import TAP_RECORD
from sipspeak.media.recorder import WavRecorder


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def tone(freq: float, n: int, start: int = 0) -> np.ndarray:
    t = (np.arange(n) + start) / 8000
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 8000)
        frames = w.readframes(w.getnframes())
    return np.frombuffer(frames, dtype=np.int16).reshape(-1, 2)


def peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(float) * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / 8000)[np.argmax(spectrum)])


def test_channels_tones_gaps_and_reordering(tmp_path: Path) -> None:
    clock = Clock()
    rec = WavRecorder(path=tmp_path / "call.wav", clock=clock)
    left, right = rec.tap("customer"), rec.tap("operator")
    cust = tone(1000, 160 * 150)
    oper = tone(440, 160 * 150)
    lost = set(range(40, 50))  # 200 ms of customer audio lost
    for i in range(150):
        # Operator packets arrive pairwise swapped; customer ones with a hole.
        j = i ^ 1 if i >= 2 else i
        if i not in lost:
            left(
                "PCMU", 1000 + 160 * i, g711.ulaw_encode(cust[160 * i : 160 * (i + 1)])
            )
        right(
            "PCMA",
            0xFFFFFF00 + 160 * j,
            g711.alaw_encode(oper[160 * j : 160 * (j + 1)]),
        )
        clock.now += 0.02
    rec.close()
    audio = read_wav(tmp_path / "call.wav")
    assert len(audio) == 150 * 160
    assert abs(peak_hz(audio[:6000, 0]) - 1000) < 10
    assert abs(peak_hz(audio[:6000, 1]) - 440) < 10
    assert np.all(audio[40 * 160 : 50 * 160, 0] == 0)  # the gap is silence
    assert np.any(audio[50 * 160 : 51 * 160, 0] != 0)
    # Reordered operator audio is put back in place: it matches the G.711 round trip.
    expected = g711.alaw_decode(g711.alaw_encode(oper))
    assert np.array_equal(audio[:, 1], expected)


def test_late_starting_operator_is_aligned_by_the_clock(tmp_path: Path) -> None:
    clock = Clock()
    rec = WavRecorder(path=tmp_path / "a.wav", clock=clock)
    left, right = rec.tap("customer"), rec.tap("operator")
    for i in range(100):
        left("PCMU", 160 * i, g711.ulaw_encode(tone(1000, 160)))
        if i >= 50:  # the operator answers one second in
            right("PCMU", 777 + 160 * (i - 50), g711.ulaw_encode(tone(1000, 160)))
        clock.now += 0.02
    rec.close()
    audio = read_wav(tmp_path / "a.wav")
    assert np.all(audio[: 49 * 160, 1] == 0)
    assert np.any(audio[50 * 160 + 10 : 51 * 160, 1] != 0)


def test_file_is_readable_after_a_crash_and_memory_stays_bounded(
    tmp_path: Path,
) -> None:
    clock = Clock()
    path = tmp_path / "long.wav"
    rec = WavRecorder(path=path, clock=clock, window=1.0, flush_every=0.5)
    left, right = rec.tap("customer"), rec.tap("operator")
    pending_sizes = []
    for i in range(50 * 30):  # 30 s of call
        payload = g711.ulaw_encode(tone(1000, 160, 160 * i))
        left("PCMU", 160 * i, payload)
        right("PCMU", 5 + 160 * i, payload)
        clock.now += 0.02
        pending_sizes.append(
            sum(len(c.pending) for c in rec._channels if c is not None)
        )
    assert set(pending_sizes) == {
        2 * 8000
    }  # one window per channel, whatever the length
    # "Crash": copy the file as it is on disk, without close().
    rec.sync()
    crashed = tmp_path / "crashed.wav"
    shutil.copy(path, crashed)
    audio = read_wav(crashed)
    assert 28 * 8000 <= len(audio) <= 30 * 8000
    assert abs(peak_hz(audio[-8000:, 0]) - 1000) < 10
    rec.close()
    assert len(read_wav(path)) == 30 * 8000


class CountingWriter(Executor):
    """Runs disk writes inline and counts them."""

    def __init__(self) -> None:
        self.calls = 0

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        self.calls += 1
        future: Future[object] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def test_disk_writes_come_in_flush_sized_blocks_even_with_a_late_channel(
    tmp_path: Path,
) -> None:
    clock = Clock()
    writer = CountingWriter()
    rec = WavRecorder(
        path=tmp_path / "w.wav", clock=clock, writer=writer, flush_every=0.5
    )
    left, right = rec.tap("customer"), rec.tap("operator")
    clock.now += 5.0  # the first packet comes 5 s after the recording started
    for i in range(500):  # 10 s; the operator only starts after 2 s
        left("PCMU", 160 * i, g711.ulaw_encode(tone(1000, 160)))
        if i >= 100:
            right("PCMU", 99 + 160 * i, g711.ulaw_encode(tone(1000, 160)))
        clock.now += 0.02
    rec.close()
    # About two writes a second (plus the leading silence), never one per packet.
    assert writer.calls <= 2 * 15 + 5
    audio = read_wav(tmp_path / "w.wav")
    assert len(audio) >= 15 * 8000 - 160
    assert np.all(audio[: 5 * 8000 - 160] == 0)  # silence before the first packet


# -- buffered taps (what the relay loop feeds) ---------------------------------------


def _packets(seed: int) -> list[tuple[int, str, int, bytes, float]]:
    """Both channels: runs of 20 ms packets with loss, reordering, a law change, a jump."""
    rng = np.random.default_rng(seed)
    out = []
    t = 50.0
    ts = [1000, 0xFFFFF000]  # the operator's timestamps wrap around
    for i in range(400):
        t += 0.02
        for index in (0, 1):
            if index == 1 and i < 30:
                continue  # the operator joins 0.6 s late
            ts[index] = (ts[index] + 160) & 0xFFFFFFFF
            if rng.random() < 0.03:
                continue  # lost
            codec = "PCMA" if index == 1 and 200 <= i < 260 else "PCMU"
            size = 160 if rng.random() > 0.02 else 80  # now and then a 10 ms packet
            payload = bytes(rng.integers(0, 256, size, dtype=np.uint8))
            out.append((index, codec, ts[index], payload, t + rng.random() * 0.004))
        if i == 300:
            ts[0] = (ts[0] + 8000 * 60) & 0xFFFFFFFF  # a new timeline: re-anchored
    # Some neighbours swap places on the way.
    for k in range(5, len(out) - 1, 37):
        out[k], out[k + 1] = out[k + 1], out[k]
    return out


def test_buffered_taps_write_what_packet_by_packet_writes(tmp_path: Path) -> None:
    for seed in range(4):
        packets = _packets(seed)
        clock = Clock()
        direct = WavRecorder(path=tmp_path / f"d{seed}.wav", clock=clock)
        for index, codec, ts, payload, arrival in packets:
            clock.now = arrival
            direct.write(index, codec, ts, payload)  # type: ignore[arg-type]
        direct.close()
        clock = Clock()
        buffered = WavRecorder(path=tmp_path / f"b{seed}.wav", clock=clock)
        # The recorder's own buffered taps, stamped with the packets' arrival times.
        kept = {i: _rtppy.TapBuffer(segment=4000, clock=clock) for i in (0, 1)}
        buffered._buffers = kept  # type: ignore[assignment]
        last = packets[0][4]
        for index, codec, ts, payload, arrival in packets:
            # Pumped every quarter second, as on the loop; once the loop stalls for 2.5 s.
            stalled = 52.0 < arrival < 54.5
            clock.now = arrival
            if arrival - last >= 0.25 and not stalled:
                buffered.pump()
                last = arrival
            kept[index](codec, ts, payload)  # type: ignore[arg-type]
        clock.now = packets[-1][4]
        buffered.close()
        a = (tmp_path / f"d{seed}.wav").read_bytes()
        b = (tmp_path / f"b{seed}.wav").read_bytes()
        assert len(a) > 44 + 4 * 8000 * 7
        assert a == b, seed


def _segments(data: bytes) -> list[tuple[int, int, int, bytes]]:
    out, offset = [], 0
    while offset < len(data):
        ts, n, codec, _arrival = TAP_RECORD.unpack_from(data, offset)
        offset += TAP_RECORD.size
        out.append((ts, n, codec, data[offset : offset + n]))
        offset += n
    return out


def test_tap_buffers_join_contiguous_audio_into_segments_alike_in_c_and_python() -> (
    None
):
    rng = np.random.default_rng(3)
    calls = []
    ts = 0xFFFFFF00  # wraps inside the first segment
    for i in range(300):
        size = 160 if i % 50 else 80
        codec = "PCMA" if 100 <= i < 120 else "PCMU"
        if i % 37 == 0:
            ts += 160  # a lost packet: a new segment
        calls.append(
            (codec, ts & 0xFFFFFFFF, bytes(rng.integers(0, 256, size, dtype=np.uint8)))
        )
        ts += size
    results = []
    for make in (_rtppy.TapBuffer, fastpath.TapBuffer):
        buffer = make(segment=1600)
        for call in calls:
            buffer(*call)
        results.append(_segments(buffer.take()))
        assert buffer.pending == 0
    python, native = results
    assert python == native
    # Nothing lost or reordered, and every segment is contiguous audio of one law.
    assert b"".join(seg[3] for seg in python) == b"".join(c[2] for c in calls)
    assert all(n <= 1600 for _, n, _, _ in python)
    assert len(python) < len(calls) // 5
    first = python[0]
    assert (first[0], first[2]) == (calls[0][1], 0)
    assert any(ts > 0xFFFF0000 and (ts + n) & 0xFFFFFFFF < n for ts, n, _, _ in python)


def test_tap_buffer_drops_past_its_limit() -> None:
    for make in (_rtppy.TapBuffer, fastpath.TapBuffer):
        buffer = make(limit=4096, segment=1000)
        for i in range(40):  # not contiguous: one segment each
            buffer("PCMU", 1000 * i, b"\x00" * 160)
        assert buffer.dropped == 40 - 4096 // (TAP_RECORD.size + 160)
        assert len(_segments(buffer.take())) == 40 - buffer.dropped
        with pytest.raises(ValueError):
            make(limit=100)


async def test_on_the_loop_the_taps_are_buffered_and_emptied_by_the_recorder(
    tmp_path: Path,
) -> None:
    rec = WavRecorder(path=tmp_path / "live.wav")
    left, right = rec.tap("customer"), rec.tap("operator")
    assert isinstance(left, fastpath.TapBuffer) and rec.tap("customer") is left
    for i in range(50):
        left("PCMU", 160 * i, g711.ulaw_encode(tone(1000, 160, 160 * i)))
        right("PCMU", 99 + 160 * i, g711.ulaw_encode(tone(440, 160, 160 * i)))
    await asyncio.sleep(0.4)  # one pump
    assert left.pending == 0 and right.pending == 0
    rec.close()
    audio = read_wav(tmp_path / "live.wav")
    assert len(audio) >= 50 * 160
    assert abs(peak_hz(audio[:8000, 0]) - 1000) < 10
    assert abs(peak_hz(audio[:8000, 1]) - 440) < 10
