"""Answering-machine detection benchmark (docs/benchmarks-protocol.md).

1. Generates the held-out part of the project's corpus (scripts/amd_corpus.py, split
   ``heldout``: voices, phrases, speeds and pitches never used for tuning, a seed of its own)
   and runs ``sipspeak amd-eval`` over it as live streams: accuracy, human / machine recall,
   median and p90 decision time per class, HUMAN decision time after the greeting ends.
2. When Debian's asterisk-core-sounds-{en,ru}-wav are installed, the same over the
   ``recorded`` split (real recorded voices instead of espeak-ng), as a second opinion.
3. With ``--other-tts N``, the same over N files of the ``othertts`` split (flite and
   Festival voices; slow to synthesise, ~1.5 s a file), a third opinion.
4. Cost: every file streamed through a fresh detector in 20 ms frames on one core, CPU time
   measured around the detector only, until each decision ("decision": real use) and over
   whole files with limits that never decide ("worst": the detector busy for the whole
   stream; only a SIT still ends one early). Streams per core in real time = frames per
   CPU-second / 50. Median of ``--repeat`` runs.

    python bench/amd.py                  # 150 held-out files, 3 repeats
    python bench/amd.py --count 300 --repeat 5 --other-tts 100

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sipspeak.media.amd.detector import SAMPLE_RATE, AnsweringMachineDetector
from sipspeak.media.amd.evaluate import evaluate, print_report, read_labels, summarize
from sipspeak.media.amd.params import AmdParams
from sipspeak.media.amd.wav import read_wav_8k_mono

ROOT = Path(__file__).resolve().parents[1]
HELDOUT_SEED = 1126  # the seed of tests/amd/test_corpus_heldout.py
RECORDED_SEED = 3
OTHER_TTS_SEED = 11
SOUNDS = Path("/usr/share/asterisk/sounds")
FRAME = SAMPLE_RATE * 20 // 1000
NEVER_DECIDE = AmdParams(
    initial_silence=30000,
    greeting=30000,
    greeting_span=60000,
    after_greeting_silence=10000,
    after_long_greeting_silence=10000,
    total_analysis_time=60000,
    maximum_number_of_words=100,
    maximum_word_length=60000,
    min_tone_ms=2000,
)


def log(message: str) -> None:
    print(message, flush=True)


def generate(out: Path, *, split: str, seed: int, count: int) -> None:
    started = time.monotonic()
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "amd_corpus.py"), "--out", str(out),
         "--seed", str(seed), "--count", str(count), "--split", split],
        check=True, timeout=600,
    )  # fmt: skip
    log(f"generated {count} {split} files in {time.monotonic() - started:.1f} s")


def eval_split(directory: Path) -> dict[str, Any]:
    rows = read_labels(directory / "labels.csv")
    outcomes, _ = evaluate(directory, rows, params=AmdParams())
    figures = summarize(outcomes)
    print_report(figures)
    return figures


def cost(directory: Path, params: AmdParams, *, until_decision: bool) -> tuple[int, float]:
    """Frames analysed and detector CPU seconds over every file of ``directory``."""
    frames = 0
    cpu = 0.0
    for path in sorted(directory.glob("*.wav")):
        samples = read_wav_8k_mono(path)
        chunks = [samples[i : i + FRAME] for i in range(0, len(samples) - FRAME + 1, FRAME)]
        detector = AnsweringMachineDetector(params=params)
        started = time.process_time()
        for n, chunk in enumerate(chunks):
            result = detector.feed(chunk, n * 0.02)
            if result is not None and until_decision:
                frames += n + 1
                break
        else:
            frames += len(chunks)
        cpu += time.process_time() - started
    return frames, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=150, help="held-out files")
    parser.add_argument("--repeat", type=int, default=3, help="cost runs (median quoted)")
    parser.add_argument("--no-recorded", action="store_true", help="skip the recorded split")
    parser.add_argument("--other-tts", type=int, default=0, metavar="N", help="othertts files")
    args = parser.parse_args()
    figures: dict[str, Any] = {
        "benchmark": "amd",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }
    with tempfile.TemporaryDirectory(prefix="amd-bench-") as tmp:
        heldout = Path(tmp) / "heldout"
        generate(heldout, split="heldout", seed=HELDOUT_SEED, count=args.count)
        log("== held-out split (synthetic voices never used for tuning) ==")
        figures["heldout"] = _headline(eval_split(heldout))

        if not args.no_recorded and (SOUNDS / "en_US_f_Allison").is_dir():
            recorded = Path(tmp) / "recorded"
            generate(recorded, split="recorded", seed=RECORDED_SEED, count=args.count)
            log("== recorded split (asterisk-core-sounds prompts: real voices) ==")
            figures["recorded"] = _headline(eval_split(recorded))
        else:
            log("recorded split skipped (asterisk-core-sounds-en-wav / -ru-wav not installed)")

        if args.other_tts and shutil.which("flite") and shutil.which("text2wave"):
            other = Path(tmp) / "othertts"
            generate(other, split="othertts", seed=OTHER_TTS_SEED, count=args.other_tts)
            log("== othertts split (flite and Festival voices) ==")
            figures["othertts"] = _headline(eval_split(other))
        elif args.other_tts:
            log("othertts split skipped (flite, festival, festvox-ru, festvox-us-slt-hts needed)")

        for mode, params, until in (
            ("decision", AmdParams(), True),
            ("worst", NEVER_DECIDE, False),
        ):
            rates = []
            for run in range(args.repeat):
                frames, cpu = cost(heldout, params, until_decision=until)
                rates.append(frames / cpu)
                log(f"cost[{mode}] run {run + 1}: {frames} frames in {cpu:.3f} CPU-s "
                    f"= {frames / cpu:,.0f} frames/s")  # fmt: skip
            rate = statistics.median(rates)
            figures[f"cost_{mode}"] = {
                "frames_per_cpu_s": round(rate),
                "us_per_frame": round(1e6 / rate, 1),
                "streams_per_core": round(rate / 50),
                "core_share_per_stream_pct": round(100 * 50 / rate, 3),
            }
    figures["accuracy"] = figures["heldout"]["accuracy"]
    figures["human_recall"] = figures["heldout"]["human_recall"]
    figures["machine_recall"] = figures["heldout"]["machine_recall"]
    figures["median_human_after_greeting_s"] = figures["heldout"]["median_human_after_greeting_s"]
    figures["streams_per_core"] = figures["cost_worst"]["streams_per_core"]
    log(
        f"held-out: accuracy {figures['accuracy']:.4f}, human recall {figures['human_recall']:.4f}, "
        f"HUMAN {figures['median_human_after_greeting_s']} s after the greeting (median); "
        f"{figures['streams_per_core']} streams per core (worst case)"
    )
    print(json.dumps(figures, ensure_ascii=False, sort_keys=True))
    return 0


def _headline(figures: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "files", "accuracy", "human_recall", "machine_recall", "silence_recall",
        "median_decision_s_human", "p90_decision_s_human", "median_decision_s_machine",
        "p90_decision_s_machine", "median_decision_s_silence", "p90_decision_s_silence",
        "median_human_after_greeting_s", "p90_human_after_greeting_s", "confusion", "reasons",
    )  # fmt: skip
    return {k: figures[k] for k in keys}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
