"""How fast the excel source reads, against the readers it could be built on.

    python bench/bench_excel.py [--rows 100000] [--reps 3] [--file path.xlsx] [--against TREE]

Writes a typed workbook (int, float, date, datetime, text, text codes, empty cells; about 13
columns like shared/bench/gen.py) once, then times each case in a fresh interpreter and prints the
best and median seconds, rows/s (of the best), peak RSS, the RSS before the timed region (imports
done), the speed as a fraction of calamine_iter's (best against best), the best process CPU
seconds and the same fraction by CPU (steadier than wall time when other work shares the cores;
the excel source overlaps the inflating of its sheet scan in a second thread, so its CPU
seconds can exceed its wall seconds). The cases run
interleaved, one repetition of each in turn, and the load average is printed before and after
(the machine may be shared):

    openpyxl_ro      openpyxl load_workbook(read_only=True, data_only=True) + iter_rows(values_only)
    calamine_iter    python_calamine sheet.iter_rows(), rows as Python lists (the yardstick)
    fastexcel        fastexcel read_excel().load_sheet(0).to_arrow(): calamine straight into Arrow
    excel_source     pipeline.sources.excel.ExcelSource: typed Arrow-backed chunks of 50,000 rows
    excel_before     the same from another source tree (--against TREE, made with
                     `git archive COMMIT pipeline | tar -x -C TREE`), in the same interleaving
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = ("calamine_iter", "fastexcel", "excel_source", "openpyxl_ro")
HEADER = [
    "id",
    "list_year",
    "date_recorded",
    "town",
    "zip",
    "address",
    "assessed_value",
    "sale_amount",
    "property_type",
    "remarks",
    "latitude",
    "longitude",
    "updated_at",
]


def write_workbook(path: Path, rows: int) -> None:
    import random

    from openpyxl import Workbook

    rnd = random.Random(20240601)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("sales")
    ws.append(HEADER)
    base = dt.datetime(2001, 1, 1)
    towns = ["Hartford", "New Haven", "Stamford", "West Hartford", "Bridgeport", "Waterbury"]
    for i in range(1, rows + 1):
        day = base + dt.timedelta(days=rnd.randrange(8400))
        value = round(rnd.lognormvariate(11.8, 0.8), 2)
        ws.append(
            [
                i,
                day.year,
                day.date(),
                rnd.choice(towns),
                f"{rnd.randrange(6001, 6999):05d}",
                f"{rnd.randrange(1, 2500)} MAIN ST",
                value,
                None if rnd.random() < 0.01 else round(value * 1.4, 2),
                rnd.choice(["Residential", "Commercial", "Vacant Land", None]),
                None if rnd.random() < 0.45 else 'Short sale, lender approved, "as is"',
                None if rnd.random() < 0.08 else round(41.5 + rnd.random(), 6),
                None if rnd.random() < 0.08 else round(-72.5 + rnd.random(), 6),
                day + dt.timedelta(days=rnd.randrange(30, 400), seconds=rnd.randrange(86400)),
            ]
        )
    wb.save(path)


def run_case(case: str, path: str, tree: str | None = None) -> dict:
    """One repetition, in this (fresh) process; imports are outside the timed region."""
    if tree:
        sys.path.insert(0, tree)
    if case in ("excel_source", "excel_before"):
        from pipeline.basics.context import RunContext, StepContext
        from pipeline.sources.excel import ExcelSource
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start, cpu = time.perf_counter(), time.process_time()
    rows = 0
    if case == "openpyxl_ro":
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        for _ in wb.worksheets[0].iter_rows(values_only=True):
            rows += 1
        rows -= 1
    elif case == "fastexcel":
        import fastexcel

        rows = fastexcel.read_excel(path).load_sheet(0).to_arrow().num_rows
    elif case == "calamine_iter":
        from python_calamine import CalamineWorkbook

        for _ in CalamineWorkbook.from_path(path).get_sheet_by_index(0).iter_rows():
            rows += 1
        rows -= 1
    else:
        run = RunContext("bench", Path(path).parent / "route.yaml", Path(tempfile.gettempdir()), "bench")
        for chunk in ExcelSource({"path": path}, StepContext(run, "source", "excel")).chunks():
            rows += len(chunk)
    seconds = time.perf_counter() - start
    return {
        "case": case,
        "rows": rows,
        "seconds": seconds,
        "cpu_s": time.process_time() - cpu,
        "base_rss_mb": base,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--file", help="an existing workbook to read instead of a generated one")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--against", help="also time the excel source of this source tree (excel_before)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--tree", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_case(args.one, args.file, args.tree)))
        return
    path = Path(args.file) if args.file else Path(tempfile.gettempdir()) / f"route_bench_{args.rows}.xlsx"
    if not path.exists():
        print(f"writing {path} ({args.rows:,} rows) ...", file=sys.stderr)
        write_workbook(path, args.rows)
    print(
        f"{path}: {path.stat().st_size / 1e6:.1f} MB, {args.reps} fresh processes per case, "
        f"interleaved (case after case, rep after rep); load average before: {_load()}\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    cases = args.cases.split(",") + (["excel_before"] if args.against else [])
    runs: dict[str, list[dict]] = {case: [] for case in cases}
    for _ in range(args.reps):
        for case in cases:
            out = subprocess.run(
                [sys.executable, __file__, "--one", case, "--file", str(path)]
                + (["--tree", str(Path(args.against).resolve())] if case == "excel_before" else []),
                check=True,
                capture_output=True,
                text=True,
                env=env,
            ).stdout
            runs[case].append(json.loads(out))
    print(
        f"{'case':<15} {'rows':>9} {'best s':>7} {'median s':>9} {'best rows/s':>12} {'peak RSS MB':>12} "
        f"{'RSS before':>11} {'x calamine':>11} {'best CPU s':>11} {'x cal. CPU':>11}"
    )
    best = {case: min(r["seconds"] for r in got) for case, got in runs.items()}
    cpu = {case: min(r["cpu_s"] for r in got) for case, got in runs.items()}
    for case, got in runs.items():
        rows = got[0]["rows"]
        ratio = f"{best['calamine_iter'] / best[case]:.2f}" if "calamine_iter" in best else "-"
        cpu_ratio = f"{cpu['calamine_iter'] / cpu[case]:.2f}" if "calamine_iter" in cpu else "-"
        print(
            f"{case:<15} {rows:>9,} {best[case]:>7.3f} {statistics.median(r['seconds'] for r in got):>9.3f} "
            f"{rows / best[case]:>12,.0f} {max(r['peak_rss_mb'] for r in got):>12.0f} "
            f"{got[0]['base_rss_mb']:>11.0f} {ratio:>11} {cpu[case]:>11.3f} {cpu_ratio:>11}"
        )
    print(f"\nload average after: {_load()}")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
