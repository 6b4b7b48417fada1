"""Contact import benchmark (docs/benchmarks-protocol.md, "Contact import").

    python bench/import_contacts.py [--rows 100000] [--repeat 3] [--seed 20260426]

Generates an XLSX of ``--rows`` rows (2 % invalid numbers, 1 % duplicates, fixed seed), then
imports it ``--repeat`` times, each run in a fresh process into a fresh SQLite file, and
measures the wall time of the import (file reading, validation, enrichment, writing), the CPU
time of that process (all threads), the wall time of the database write stage (the time the
single writer is held) and the peak resident memory of the process. On a shared machine the
wall times follow the load average, which is printed too; the CPU time is the steadier figure.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BAR_SECONDS = 20.0
BAR_RSS_MB = 300.0


async def _import_once(xlsx: Path, db_path: Path) -> dict[str, object]:
    from sipspeak.crm.contacts_import import ImportProgress
    from sipspeak.crm.contacts_store import import_into_project
    from sipspeak.storage import Database

    db = await Database.open(db_path)
    try:
        project_id = await db.projects.create(name="Бенчмарк загрузки")
        last_report = [0.0]
        reading_done = [0.0]

        def progress(p: ImportProgress) -> None:
            now = time.monotonic()
            if p.stage == "reading":
                reading_done[0] = time.perf_counter()
            if now - last_report[0] >= 2.0:
                last_report[0] = now
                print(
                    f"  … {p.stage}: {p.rows_done} / {p.total_estimate} строк, "
                    f"записано {p.written}",
                    file=sys.stderr,
                    flush=True,
                )

        started = time.perf_counter()
        cpu_started = time.process_time()
        result = await import_into_project(db, project_id, xlsx, progress=progress)
        finished = time.perf_counter()
        seconds = finished - started
        write_seconds = finished - reading_done[0]
        cpu_seconds = time.process_time() - cpu_started
        stored = len(await db.contacts.existing_phones(project_id))
    finally:
        await db.close()
    return {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "write_stage_seconds": round(write_seconds, 3),
        "peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
        "rows": result.rows,
        "accepted": result.accepted,
        "rejected": result.rejected_count,
        "invalid": result.invalid,
        "duplicates_in_file": result.duplicates_in_file,
        "stored": stored,
    }


def _child(xlsx: Path, db_path: Path) -> int:
    figures = asyncio.run(_import_once(xlsx, db_path))
    print(json.dumps(figures))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20260426)
    parser.add_argument(
        "--child", nargs=2, metavar=("XLSX", "DB"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        return _child(Path(args.child[0]), Path(args.child[1]))

    # Imported here, not at the top: the measured child process must not carry openpyxl.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from import_base_generator import generate_base

    with tempfile.TemporaryDirectory(prefix="sipspeak-import-bench-") as tmp:
        workdir = Path(tmp)
        xlsx = workdir / "base.xlsx"
        print(f"Генерация {args.rows} строк (seed {args.seed})…", flush=True)
        started = time.perf_counter()
        base = generate_base(xlsx, rows=args.rows, seed=args.seed)
        print(
            f"  {time.perf_counter() - started:.1f} с, {xlsx.stat().st_size / 1e6:.1f} МБ; "
            f"неверных {base.invalid}, дублей {base.duplicates}, ожидается принятых {base.accepted}",
            flush=True,
        )
        runs: list[dict[str, object]] = []
        for n in range(args.repeat):
            db_path = workdir / f"run{n}.sqlite3"
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(xlsx), str(db_path)],
                check=True,
                capture_output=False,
                stdout=subprocess.PIPE,
                text=True,
            )
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            runs.append(figures)
            print(
                f"Прогон {n + 1}: {figures['seconds']} с (ЦП {figures['cpu_seconds']} с, "
                f"запись в БД {figures['write_stage_seconds']} с), пик RSS {figures['peak_rss_mb']} МБ, "
                f"принято {figures['accepted']}, отклонено {figures['rejected']}",
                flush=True,
            )
    seconds = statistics.median(float(str(r["seconds"])) for r in runs)
    rss = statistics.median(float(str(r["peak_rss_mb"])) for r in runs)
    last = runs[-1]
    summary = {
        "benchmark": "contact_import",
        "rows": args.rows,
        "seed": args.seed,
        "repeat": args.repeat,
        "seconds_median": seconds,
        "seconds_runs": [r["seconds"] for r in runs],
        "cpu_seconds_median": statistics.median(
            float(str(r["cpu_seconds"])) for r in runs
        ),
        "write_stage_seconds_median": statistics.median(
            float(str(r["write_stage_seconds"])) for r in runs
        ),
        "load_average_1m": os.getloadavg()[0],
        "peak_rss_mb_median": rss,
        "accepted": last["accepted"],
        "rejected": last["rejected"],
        "expected_accepted": base.accepted,
        "expected_rejected": base.invalid + base.duplicates,
        "counts_match": last["accepted"] == base.accepted
        and last["rejected"] == base.invalid + base.duplicates
        and last["stored"] == base.accepted,
        "within_bar": seconds <= BAR_SECONDS and rss <= BAR_RSS_MB,
    }
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
