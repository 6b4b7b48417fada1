"""Pacing, WAV conversion, the built-in hold melody, and the player as a bridge leg."""

from __future__ import annotations

import asyncio
import itertools
import random
import wave
from pathlib import Path

import numpy as np
import pytest

from sipspeak.media import g711
from sipspeak.media.audio import WavFormatError, hold_melody, load_wav
from sipspeak.media.bridge import Bridge
from sipspeak.media.pacer import FramePacer
from sipspeak.media.player import Player
from sipspeak.media.rtp import RtpPacket, seq_diff, ts_diff


def peak_hz(x: np.ndarray, rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(float) * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


def test_pacer_is_drift_free_under_late_wakeups() -> None:
    pacer = FramePacer(start=10.0, ptime=0.02, max_burst=5)
    rng = random.Random(5)
    now = 10.0
    sent = 0
    while now < 70.0:
        sent += pacer.due(now)
        # Sleep "until the next deadline" but wake up 0-3 ms late, like a busy loop.
        now = pacer.next_deadline + rng.uniform(0, 0.003)
    # After a minute every frame up to now has been sent: no accumulated drift.
    assert sent == int((now - 10.0 - 0.003) / 0.02) + 1 or sent == int(
        (now - 10.0) / 0.02
    )
    assert pacer.skipped == 0


def test_pacer_bursts_at_most_max_burst_then_skips() -> None:
    pacer = FramePacer(start=0.0, ptime=0.02, max_burst=3)
    assert pacer.due(0.0) == 1
    assert pacer.due(0.01) == 0
    assert pacer.due(0.2) == 3  # 10 frames due, only 3 sent
    assert pacer.skipped == 7
    assert pacer.next_deadline == pytest.approx(0.22)


def write_wav(
    path: Path, samples: np.ndarray, rate: int, width: int, channels: int
) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        if channels > 1:
            samples = np.repeat(samples[:, None], channels, axis=1).ravel()
        if width == 1:
            data = (samples / 256 + 128).astype(np.uint8).tobytes()
        elif width == 2:
            data = samples.astype("<i2").tobytes()
        elif width == 3:
            v = (samples.astype(np.int32) * 256).astype("<i4").tobytes()
            data = b"".join(v[i : i + 3] for i in range(0, len(v), 4))
        else:
            data = (samples.astype(np.int32) * 65536).astype("<i4").tobytes()
        w.writeframes(data)


@pytest.mark.parametrize(
    ("rate", "width", "channels"),
    [(44100, 2, 2), (16000, 2, 1), (8000, 1, 1), (48000, 3, 1), (22050, 4, 2)],
)
def test_any_wav_becomes_8khz_mono_with_the_same_tone(
    tmp_path: Path, rate: int, width: int, channels: int
) -> None:
    t = np.arange(rate) / rate  # one second
    tone = 12000 * np.sin(2 * np.pi * 1000 * t)
    path = tmp_path / "in.wav"
    write_wav(path, tone, rate, width, channels)
    out = load_wav(path)
    assert out.dtype == np.int16
    assert abs(len(out) - 8000) <= 1
    assert abs(peak_hz(out) - 1000) < 5
    assert 9000 < np.max(np.abs(out[100:-100])) < 13000


def test_downsampling_removes_content_above_the_new_nyquist(tmp_path: Path) -> None:
    rate = 44100
    t = np.arange(rate) / rate
    # 6 kHz would alias to 2 kHz at 8 kHz without the low-pass.
    path = tmp_path / "hi.wav"
    write_wav(path, 12000 * np.sin(2 * np.pi * 6000 * t), rate, 2, 1)
    out = load_wav(path)
    assert np.sqrt(np.mean(out[200:-200].astype(float) ** 2)) < 12000 * 0.707 * 0.05


def test_not_a_wav_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"definitely not RIFF")
    with pytest.raises(WavFormatError):
        load_wav(bad)


def test_hold_melody_is_audible_music_in_the_telephone_band() -> None:
    melody = hold_melody()
    assert 6 * 8000 < len(melody) < 12 * 8000
    assert np.max(np.abs(melody)) > 4000
    # Several distinct notes: the dominant frequency changes over time.
    peaks = {
        round(peak_hz(melody[i : i + 2400]), -1)
        for i in range(0, len(melody) - 2400, 3200)
    }
    assert len(peaks) >= 4
    assert all(200 < p < 3400 for p in peaks)


async def test_prompt_plays_every_frame_once_as_one_continuous_stream() -> None:
    audio = (8000 * np.sin(2 * np.pi * 440 * np.arange(8000 // 2) / 8000)).astype(
        np.int16
    )
    player = Player(codec="PCMA", audio=audio, loop=False)
    got: list[RtpPacket] = []
    player.set_receiver(got.append)
    player.start()
    await asyncio.wait_for(player.done.wait(), 10)
    await player.stop()
    assert len(got) == 25  # 0.5 s in 20 ms frames
    assert got[0].marker and not any(p.marker for p in got[1:])
    assert all(p.payload_type == 8 and len(p.payload) == 160 for p in got)
    assert all(
        seq_diff(b.sequence_number, a.sequence_number) == 1
        for a, b in itertools.pairwise(got)
    )
    assert all(
        ts_diff(b.timestamp, a.timestamp) == 160 for a, b in itertools.pairwise(got)
    )
    assert b"".join(p.payload for p in got) == g711.alaw_encode(audio)


async def test_music_on_hold_loops_and_hands_over_to_the_operator() -> None:
    class Sink:
        codec = "PCMU"
        dtmf_payload_type = 101

        def __init__(self) -> None:
            self.sent: list[RtpPacket] = []

        def send(self, packet: RtpPacket) -> None:
            self.sent.append(packet)

        def set_receiver(self, cb: object) -> None:
            self.cb = cb

    short = np.zeros(160 * 3, dtype=np.int16)  # a 60 ms "melody" so it loops quickly
    music = Player(codec="PCMU", audio=short, loop=True)
    customer = Sink()
    bridge = Bridge(customer=customer, operator=music)  # type: ignore[arg-type]
    music.start()
    async with asyncio.timeout(10):
        while len(customer.sent) < 8:
            await asyncio.sleep(0.01)
    await music.stop()
    assert music.frames_sent >= 8  # looped past its three frames
    operator = Player(
        codec="PCMU", audio=np.ones(160 * 4, dtype=np.int16) * 1000, loop=False
    )
    bridge.replace("operator", operator)
    operator.start()
    await asyncio.wait_for(operator.done.wait(), 10)
    out = customer.sent
    assert len({p.ssrc for p in out}) == 1
    assert all(
        seq_diff(b.sequence_number, a.sequence_number) == 1
        for a, b in itertools.pairwise(out)
    )
    assert all(
        ts_diff(b.timestamp, a.timestamp) >= 160 for a, b in itertools.pairwise(out)
    )
