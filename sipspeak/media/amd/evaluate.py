"""``sipspeak amd-eval DIR LABELS.csv``: run the detector over labelled WAV files, as streams.

Each file is fed to a fresh :class:`~.detector.AnsweringMachineDetector` frame by frame, as a
call would deliver it, and the first decision counts (never a look at the whole file). The
labels CSV has a header with at least ``file,class``; class is HUMAN, MACHINE or SILENCE, and
SILENCE is right when the answer is NOTSURE. An optional ``greeting_end_s`` column (stream
time at which a person's greeting ends) gives the HUMAN decision time after the greeting.
Other columns are ignored. The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from .detector import SAMPLE_RATE, AmdResult, AnsweringMachineDetector
from .params import AmdParams, AmdParamsError
from .wav import WavError, read_wav_8k_mono

CLASSES: Final = ("HUMAN", "MACHINE", "SILENCE")
PREDICTIONS: Final = ("HUMAN", "MACHINE", "NOTSURE")
EXPECTED: Final = {"HUMAN": "HUMAN", "MACHINE": "MACHINE", "SILENCE": "NOTSURE"}


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """The detector's answer on one labelled file."""

    file: str
    label: str
    predicted: str
    reason: str
    decision_s: float
    greeting_end_s: float | None
    frames: int

    @property
    def correct(self) -> bool:
        return EXPECTED[self.label] == self.predicted


def detect_stream(
    samples: np.ndarray[Any, np.dtype[np.int16]], *, params: AmdParams, frame_ms: int = 20
) -> tuple[AmdResult, int]:
    """Feed ``samples`` frame by frame until a decision; returns it and the frames fed."""
    detector = AnsweringMachineDetector(params=params, start_time=0.0)
    step = SAMPLE_RATE * frame_ms // 1000
    frames = 0
    for offset in range(0, len(samples) - step + 1, step):
        frames += 1
        result = detector.feed(samples[offset : offset + step], offset / SAMPLE_RATE)
        if result is not None:
            return result, frames
    # The stream ended undecided: the call layer's timer fires at its deadline.
    final = detector.handle_timer(max(len(samples) / SAMPLE_RATE, detector.get_timer()))
    if final is None:
        raise RuntimeError("the detector did not decide at its own deadline")
    return final, frames


def read_labels(path: Path) -> list[dict[str, str]]:
    """Rows of a labels CSV; checks the header and the classes."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        if "file" not in fields or "class" not in fields:
            raise ValueError(f"{path}: header must contain 'file' and 'class', got {fields}")
        rows = []
        for line, row in enumerate(reader, start=2):
            label = (row.get("class") or "").strip().upper()
            if label not in CLASSES:
                raise ValueError(
                    f"{path}:{line}: class must be one of {CLASSES}, got {row.get('class')!r}"
                )
            rows.append({**row, "class": label})
    return rows


def evaluate(
    directory: Path, rows: Sequence[dict[str, str]], *, params: AmdParams, frame_ms: int = 20
) -> tuple[list[FileOutcome], float]:
    """Run the detector over every labelled file; returns the outcomes and detector CPU seconds."""
    outcomes: list[FileOutcome] = []
    cpu = 0.0
    for row in rows:
        samples = read_wav_8k_mono(directory / row["file"])
        started = time.process_time()
        result, frames = detect_stream(samples, params=params, frame_ms=frame_ms)
        cpu += time.process_time() - started
        greeting = (row.get("greeting_end_s") or "").strip()
        outcomes.append(
            FileOutcome(
                file=row["file"],
                label=row["class"],
                predicted=result.decision.value,
                reason=result.reason.value,
                decision_s=round(result.time, 3),
                greeting_end_s=float(greeting) if greeting else None,
                frames=frames,
            )
        )
    return outcomes, cpu


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    return round(float(np.quantile(np.asarray(values, dtype=np.float64), q)), 3)


def summarize(outcomes: Sequence[FileOutcome]) -> dict[str, Any]:
    """The figures of a run (all fractions in 0..1, times in seconds of stream time)."""
    total = len(outcomes)
    figures: dict[str, Any] = {
        "files": total,
        "accuracy": round(sum(o.correct for o in outcomes) / total, 4) if total else 0.0,
    }
    for label in CLASSES:
        mine = [o for o in outcomes if o.label == label]
        key = label.lower()
        figures[f"{key}_files"] = len(mine)
        figures[f"{key}_recall"] = (
            round(sum(o.correct for o in mine) / len(mine), 4) if mine else None
        )
        times = [o.decision_s for o in mine]
        figures[f"median_decision_s_{key}"] = _quantile(times, 0.5)
        figures[f"p90_decision_s_{key}"] = _quantile(times, 0.9)
    after = [
        o.decision_s - o.greeting_end_s
        for o in outcomes
        if o.label == "HUMAN" and o.predicted == "HUMAN" and o.greeting_end_s is not None
    ]
    figures["median_human_after_greeting_s"] = _quantile(after, 0.5)
    figures["p90_human_after_greeting_s"] = _quantile(after, 0.9)
    figures["max_human_after_greeting_s"] = round(max(after), 3) if after else None
    figures["confusion"] = {
        label: {
            p: sum(1 for o in outcomes if o.label == label and o.predicted == p)
            for p in PREDICTIONS
        }
        for label in CLASSES
    }
    reasons: dict[str, int] = {}
    for o in outcomes:
        reasons[o.reason] = reasons.get(o.reason, 0) + 1
    figures["reasons"] = dict(sorted(reasons.items()))
    return figures


def write_per_file(path: Path, outcomes: Sequence[FileOutcome]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "predicted", "reason", "decision_s"])
        for o in outcomes:
            writer.writerow([o.file, o.predicted, o.reason, f"{o.decision_s:.3f}"])


def _load_params(text: str | None) -> AmdParams:
    if text is None:
        return AmdParams()
    source = Path(text)
    raw = source.read_text(encoding="utf-8") if source.is_file() else text
    try:
        mapping = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise AmdParamsError(f"--params is neither a JSON file nor a JSON object: {exc}") from exc
    return AmdParams.from_mapping(mapping)


def _fmt(value: float | None) -> str:
    return (
        "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"
    )


def print_report(figures: dict[str, Any], out: Any = sys.stdout) -> None:
    print(f"files: {figures['files']}  accuracy: {figures['accuracy']:.4f}", file=out)
    print("confusion (rows: label, columns: answer):", file=out)
    print(f"  {'':8}" + "".join(f"{p:>9}" for p in PREDICTIONS), file=out)
    for label in CLASSES:
        row = figures["confusion"][label]
        print(f"  {label:8}" + "".join(f"{row[p]:>9}" for p in PREDICTIONS), file=out)
    for label in CLASSES:
        key = label.lower()
        print(
            f"  {label:8} recall {_fmt(figures[f'{key}_recall'])}  decision median "
            f"{_fmt(figures[f'median_decision_s_{key}'])} s  p90 {_fmt(figures[f'p90_decision_s_{key}'])} s",
            file=out,
        )
    print(
        f"  HUMAN decision after the greeting: median {_fmt(figures['median_human_after_greeting_s'])} s"
        f"  p90 {_fmt(figures['p90_human_after_greeting_s'])} s",
        file=out,
    )
    print("reasons: " + ", ".join(f"{k}={v}" for k, v in figures["reasons"].items()), file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sipspeak amd-eval",
        description="Run answering-machine detection over labelled WAV files, as live streams.",
    )
    parser.add_argument("directory", type=Path, help="folder holding the WAV files")
    parser.add_argument(
        "labels", type=Path, help="CSV with header file,class (HUMAN/MACHINE/SILENCE)"
    )
    parser.add_argument(
        "--per-file", type=Path, metavar="OUT.csv", help="write file,predicted,reason,decision_s"
    )
    parser.add_argument(
        "--frame-ms", type=int, choices=(10, 20, 30), default=20, help="frame size fed"
    )
    parser.add_argument(
        "--params", metavar="JSON", help="parameter overrides: a JSON object or a JSON file"
    )
    args = parser.parse_args(argv)
    try:
        params = _load_params(args.params)
        rows = read_labels(args.labels)
        outcomes, _ = evaluate(args.directory, rows, params=params, frame_ms=args.frame_ms)
    except (OSError, ValueError, WavError) as exc:
        print(f"sipspeak amd-eval: {exc}", file=sys.stderr)
        return 2
    if args.per_file is not None:
        write_per_file(args.per_file, outcomes)
    figures = summarize(outcomes)
    print_report(figures)
    print(json.dumps(figures, ensure_ascii=False, sort_keys=True))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # piped into head
        sys.exit(0)
