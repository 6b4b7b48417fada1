"""End to end: generate the held-out corpus with espeak-ng and sox, run amd-eval, check the bar.

The held-out split uses voices, phrases, speeds and pitches never used for tuning
(scripts/amd_corpus.py), and a seed of its own.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "amd_corpus.py"
HELDOUT_SEED = 1126
HELDOUT_COUNT = 150

@pytest.fixture(autouse=True)
def _corpus_tools() -> None:
    # The bar is not optional: a machine without the tools fails here, it does not skip.
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{' and '.join(missing)} (Debian packages) generate the corpus: "
                    "install them (scripts/test.sh does)")


def generate(out: Path, *, seed: int, count: int, split: str) -> None:
    subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--out",
            str(out),
            "--seed",
            str(seed),
            "--count",
            str(count),
            "--split",
            split,
            "--jobs",
            "4",  # the work is mostly espeak-ng and sox processes; 4 keep 2 cores busy
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def heldout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("amd_heldout")
    generate(out, seed=HELDOUT_SEED, count=HELDOUT_COUNT, split="heldout")
    return out


def test_heldout_corpus_meets_the_bar(heldout: Path, tmp_path: Path):
    per_file = tmp_path / "per_file.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sipspeak.media.amd.evaluate",
            str(heldout),
            str(heldout / "labels.csv"),
            "--per-file",
            str(per_file),
        ],
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["files"] == HELDOUT_COUNT
    assert figures["accuracy"] >= 0.97, done.stdout
    assert figures["human_recall"] >= 0.98, done.stdout
    assert figures["median_human_after_greeting_s"] <= 1.0, done.stdout
    assert figures["machine_recall"] >= 0.9, done.stdout
    assert {"median_decision_s_human", "median_decision_s_machine"} <= set(figures)

    with (heldout / "labels.csv").open(newline="", encoding="utf-8") as fh:
        labels = {row["file"]: row for row in csv.DictReader(fh)}
    with per_file.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        assert next(reader) == ["file", "predicted", "reason", "decision_s"]
        rows = list(reader)
    assert sorted(r[0] for r in rows) == sorted(labels)
    for name, predicted, reason, decision_s in rows:
        assert predicted in ("HUMAN", "MACHINE", "NOTSURE")
        assert 0.0 < float(decision_s) <= 5.0 + 1e-6  # total analysis time, from the audio's start
        label = labels[name]
        if predicted == "HUMAN":
            assert reason == "human-short-greeting"
            if label["class"] == "HUMAN":
                # Streaming: the answer comes after the greeting, never after the whole file.
                assert (
                    float(label["greeting_end_s"])
                    < float(decision_s)
                    < float(label["greeting_end_s"]) + 2.0
                )
        if label["kind"].startswith("sit"):
            assert (predicted, reason) == ("MACHINE", "sit")


def test_every_kind_of_call_is_in_the_heldout_corpus(heldout: Path):
    with (heldout / "labels.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    kinds = {r["kind"].split("/")[0].split("+")[0] for r in rows}
    assert {"human", "human-long", "voicemail", "sit", "silence"} <= kinds
    assert {r["class"] for r in rows} == {"HUMAN", "MACHINE", "SILENCE"}
    assert len({r["voice"] for r in rows if r["voice"]}) >= 6


def test_corpus_is_reproducible_and_splits_do_not_share_voices_or_phrases(tmp_path: Path):
    generate(tmp_path / "a", seed=5, count=6, split="tune")
    generate(tmp_path / "b", seed=5, count=6, split="tune")
    for wav in sorted((tmp_path / "a").glob("*.wav")):
        assert wav.read_bytes() == (tmp_path / "b" / wav.name).read_bytes()
    assert (tmp_path / "a" / "labels.csv").read_text() == (
        tmp_path / "b" / "labels.csv"
    ).read_text()

    spec = importlib.util.spec_from_file_location("amd_corpus", SCRIPT)
    assert spec is not None and spec.loader is not None
    corpus = importlib.util.module_from_spec(spec)
    sys.modules["amd_corpus"] = corpus
    spec.loader.exec_module(corpus)
    tune, held = corpus.TUNE, corpus.HELDOUT
    assert not set(tune.voices) & set(held.voices)
    assert not set(tune.human + tune.human_long) & set(held.human + held.human_long)
    assert not set(tune.machine) & set(held.machine)
    tune_speeds = {s for lo, hi in tune.speeds for s in range(lo, hi + 1)}
    assert not tune_speeds & {s for lo, hi in held.speeds for s in range(lo, hi + 1)}
