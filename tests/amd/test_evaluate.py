"""amd-eval on a small labelled folder of synthesised calls, and WAV reading."""

from __future__ import annotations

import csv
import json
import wave
from pathlib import Path

import numpy as np
import pytest

from sipspeak.media.amd import evaluate
from sipspeak.media.amd.wav import WavError, read_wav_8k_mono, resample, write_wav


def write_pcm(
    path: Path, x: np.ndarray, *, rate: int = 8000, channels: int = 1, width: int = 2
) -> None:
    data = np.repeat(x[:, None], channels, axis=1).reshape(-1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        if width == 1:
            w.writeframes((np.clip(data / 256 + 128, 0, 255)).astype(np.uint8).tobytes())
        else:
            w.writeframes(np.clip(np.round(data), -32768, 32767).astype("<i2").tobytes())


@pytest.fixture
def folder(tmp_path: Path, sig) -> Path:
    human = sig.concat([sig.noise(0.6), sig.word(0.45), sig.noise(4.5)])
    machine = sig.concat([sig.noise(0.3), sig.sentence(5.0), sig.noise(0.5)])
    silence = sig.noise(5.5, level_db=-50)
    write_wav(tmp_path / "human.wav", sig.pcm(human))
    write_wav(tmp_path / "machine.wav", sig.pcm(machine))
    write_wav(tmp_path / "silence.wav", sig.pcm(silence))
    # The same person, recorded at 16 kHz in stereo: converted on reading.
    t16 = np.arange(int(len(human) * 2)) / 16000
    human16 = np.interp(t16, np.arange(len(human)) / 8000, human)
    write_pcm(tmp_path / "human16k.wav", human16, rate=16000, channels=2)
    with (tmp_path / "labels.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "class", "greeting_end_s", "comment"])
        w.writerow(["human.wav", "HUMAN", "1.05", "x"])
        w.writerow(["machine.wav", "MACHINE", "", "y"])
        w.writerow(["silence.wav", "SILENCE", "", ""])
        w.writerow(["human16k.wav", "human", "1.05", ""])
    return tmp_path


def test_main_prints_figures_and_writes_per_file(folder: Path, capsys):
    out = folder / "per_file.csv"
    code = evaluate.main([str(folder), str(folder / "labels.csv"), "--per-file", str(out)])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert figures["files"] == 4
    assert figures["accuracy"] == 1.0  # SILENCE answered NOTSURE counts as right
    assert figures["human_recall"] == 1.0 and figures["machine_recall"] == 1.0
    assert figures["confusion"]["SILENCE"]["NOTSURE"] == 1
    assert 0.6 <= figures["median_human_after_greeting_s"] <= 1.0
    assert figures["median_decision_s_machine"] > figures["median_decision_s_human"] - 1.0
    assert any("confusion" in line for line in lines)
    with out.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["file", "predicted", "reason", "decision_s"]
    by_file = {r[0]: r for r in rows[1:]}
    assert set(by_file) == {"human.wav", "machine.wav", "silence.wav", "human16k.wav"}
    assert by_file["human.wav"][1:3] == ["HUMAN", "human-short-greeting"]
    assert by_file["machine.wav"][1] == "MACHINE"
    assert by_file["silence.wav"][1:3] == ["NOTSURE", "no-speech"]
    # decision_s is from the start of the audio: after the greeting ended at 1.05 s.
    assert 1.05 < float(by_file["human.wav"][3]) < 2.1
    assert float(by_file["human16k.wav"][3]) == pytest.approx(
        float(by_file["human.wav"][3]), abs=0.05
    )


def test_wrong_answers_lower_the_figures(folder: Path, capsys):
    labels = folder / "swapped.csv"
    labels.write_text("file,class\nhuman.wav,MACHINE\nmachine.wav,HUMAN\nsilence.wav,SILENCE\n")
    assert evaluate.main([str(folder), str(labels)]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["accuracy"] == pytest.approx(1 / 3, abs=1e-3)
    assert figures["human_recall"] == 0.0 and figures["machine_recall"] == 0.0


def test_parameter_overrides_reach_the_detector(folder: Path, capsys):
    # A person's 0.45 s answer counts as a long greeting when the greeting is 300 ms.
    overrides = json.dumps({"greeting": 300})
    assert evaluate.main([str(folder), str(folder / "labels.csv"), "--params", overrides]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["human_recall"] == 0.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name,kind\nhuman.wav,HUMAN\n", "header"),
        ("file,class\nhuman.wav,ROBOT\n", "class must be"),
    ],
)
def test_bad_labels_are_an_error(folder: Path, capsys, content: str, message: str):
    labels = folder / "bad.csv"
    labels.write_text(content)
    assert evaluate.main([str(folder), str(labels)]) == 2
    assert message in capsys.readouterr().err


def test_bad_params_and_missing_files_are_errors(folder: Path, capsys):
    assert (
        evaluate.main([str(folder), str(folder / "labels.csv"), "--params", '{"vad_mode": 9}']) == 2
    )
    assert "vad_mode" in capsys.readouterr().err
    labels = folder / "missing.csv"
    labels.write_text("file,class\nnothere.wav,HUMAN\n")
    assert evaluate.main([str(folder), str(labels)]) == 2


def test_read_wav_converts_rate_channels_and_width(tmp_path: Path):
    t = np.arange(16000) / 16000
    x = 8000 * np.sin(2 * np.pi * 500 * t)
    write_pcm(tmp_path / "a.wav", x, rate=16000, channels=2)
    y = read_wav_8k_mono(tmp_path / "a.wav")
    assert y.dtype == np.int16 and len(y) == 8000
    assert np.sqrt(np.mean(y[100:-100].astype(float) ** 2)) == pytest.approx(
        8000 / np.sqrt(2), rel=0.05
    )
    write_pcm(tmp_path / "b.wav", x[::2], rate=8000, width=1)
    z = read_wav_8k_mono(tmp_path / "b.wav")
    assert len(z) == 8000 and np.abs(z.astype(float) - x[::2]).max() < 300


def test_resampling_removes_what_8_khz_cannot_carry():
    t = np.arange(44100) / 44100
    high = np.sin(2 * np.pi * 6000 * t) * 10000
    assert np.abs(resample(high, 44100, 8000)[10:-10]).max() < 1500  # would alias to 2 kHz


def test_not_a_wav_file(tmp_path: Path):
    (tmp_path / "x.wav").write_bytes(b"not a wav at all")
    with pytest.raises(WavError):
        read_wav_8k_mono(tmp_path / "x.wav")
