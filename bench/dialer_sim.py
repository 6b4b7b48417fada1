"""Dialer pacing benchmark: the standard simulated world of docs/benchmarks-protocol.md.

Runs the real pacers, ACD queue and agent state machines (sipspeak.dialer.simulation) for
10 and 50 operators at answer rates 0.15 and 0.35, an 8-hour shift, 5 seeds each, and prints
per pacer and scenario the mean ± sd of: talk minutes per agent-hour, utilisation (talk +
wrap-up over on-line time), abandonment rate (abandoned / persons), dials per agent-hour and
idle share. The last line is one JSON object with every figure.

The unlimited pacer needs a number of lines; an administrator would set one for the base, so it
is fixed here at 1.5 lines per operator for every scenario, which shows what not adapting costs.
``predictive`` may withdraw a dial that has rung 15 s unanswered (the product's default);
``predictive-nw`` is the same pacer never withdrawing, for comparison. ``withdrawn`` is the
share of dials withdrawn.

    python bench/dialer_sim.py            # full protocol
    python bench/dialer_sim.py --quick    # 2 seeds, 2-hour shift
"""

from __future__ import annotations

import os

os.environ.setdefault(
    "OPENBLAS_NUM_THREADS", "1"
)  # one process per core, no BLAS threads
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict

from sipspeak.dialer.pacing import Pacer, ProgressivePacer, UnlimitedPacer
from sipspeak.dialer.predictive import PredictivePacer
from sipspeak.dialer.simulation import ShiftFigures, WorldParameters, simulate_shift

PACERS = ("unlimited", "progressive", "predictive", "predictive-nw")
SCENARIOS = ((10, 0.15), (10, 0.35), (50, 0.15), (50, 0.35))
FIGURES = (
    "talk_minutes_per_agent_hour",
    "utilisation",
    "abandonment_rate",
    "dials_per_agent_hour",
    "idle_share",
    "withdrawn_share",
)
UNLIMITED_LINES_PER_OPERATOR = 1.5


def make_pacer(name: str, agents: int) -> Pacer:
    if name == "unlimited":
        return UnlimitedPacer(lines=round(agents * UNLIMITED_LINES_PER_OPERATOR))
    if name == "progressive":
        return ProgressivePacer()
    if name in ("predictive", "predictive-nw"):
        return PredictivePacer()
    raise ValueError(f"unknown pacer {name!r}")


def _figure(figures: ShiftFigures, name: str) -> float:
    if name == "withdrawn_share":
        return figures.withdrawn / figures.dials if figures.dials else 0.0
    value: float = asdict(figures)[name]
    return value


def run_one(
    job: tuple[str, int, float, int, float],
) -> tuple[str, int, float, int, ShiftFigures, float]:
    name, agents, answer_rate, seed, shift_s = job
    started = time.process_time()
    params = WorldParameters(
        agents=agents,
        answer_rate=answer_rate,
        shift_s=shift_s,
        withdraw_after_s=None if name == "predictive-nw" else 15.0,
    )
    figures = simulate_shift(params, make_pacer(name, agents), seed)
    return name, agents, answer_rate, seed, figures, time.process_time() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="2 seeds and a 2-hour shift"
    )
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--hours", type=float, default=None)
    parser.add_argument("--pacers", default=",".join(PACERS))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    seeds = args.seeds or (2 if args.quick else 5)
    hours = args.hours or (2.0 if args.quick else 8.0)
    pacers = [p for p in args.pacers.split(",") if p]
    jobs = [
        (name, agents, rate, seed, hours * 3600)
        for agents, rate in SCENARIOS
        for name in pacers
        for seed in range(1, seeds + 1)
    ]
    # Longest runs first so the pool finishes together.
    jobs.sort(key=lambda j: (-j[1], not j[0].startswith("predictive")))
    print(
        f"dialer_sim: {len(jobs)} shifts of {hours:g} h, {seeds} seeds, {args.jobs} processes",
        flush=True,
    )
    results: dict[tuple[str, int, float], list[ShiftFigures]] = {}
    wall = time.monotonic()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for done, (name, agents, rate, seed, figures, cpu) in enumerate(
            pool.map(run_one, jobs), start=1
        ):
            results.setdefault((name, agents, rate), []).append(figures)
            print(
                f"[{done:3d}/{len(jobs)}] {name:13s} agents={agents:2d} A={rate:.2f} seed={seed}"
                f"  talk={figures.talk_minutes_per_agent_hour:5.2f} min/agent-h"
                f"  abandon={figures.abandonment_rate * 100:5.2f}%  ({cpu:.1f} s cpu)",
                flush=True,
            )
    summary: dict[str, dict[str, dict[str, float]]] = {}
    print()
    print(
        f"{'pacer':13s} {'scenario':12s} {'talk min/ag-h':>15s} {'utilisation':>13s}"
        f" {'abandon %':>12s} {'dials/ag-h':>13s} {'idle':>13s} {'withdrawn %':>13s}"
    )
    for agents, rate in SCENARIOS:
        for name in pacers:
            runs = results[(name, agents, rate)]
            key = f"{name}/{agents}agents/A{rate:.2f}"
            cells: dict[str, float] = {}
            row = []
            for figure in FIGURES:
                values = [_figure(r, figure) for r in runs]
                mean = statistics.fmean(values)
                sd = statistics.stdev(values) if len(values) > 1 else 0.0
                cells[figure] = round(mean, 4)
                cells[figure + "_sd"] = round(sd, 4)
                scale = 100.0 if figure in ("abandonment_rate", "withdrawn_share") else 1.0
                row.append(f"{mean * scale:6.2f} ± {sd * scale:4.2f}")
            cells["worst_seed_abandonment_rate"] = round(
                max(r.abandonment_rate for r in runs), 4
            )
            summary[key] = cells
            print(
                f"{name:13s} {agents:2d} A={rate:.2f}    "
                + "  ".join(f"{c:>13s}" for c in row)
            )
    print(f"\nwall {time.monotonic() - wall:.1f} s", flush=True)
    print(
        json.dumps(
            {
                "benchmark": "dialer_sim",
                "hours": hours,
                "seeds": seeds,
                "results": summary,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
