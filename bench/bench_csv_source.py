"""Rows/s and peak RSS of the csv source alone, on a generated CSV of N rows (default 1,000,000).

    python bench/bench_csv_source.py [ROWS] [--file PATH] [--engines pyarrow,python] [--candidates]
                                     [--reps N]

Each case runs in a fresh interpreter, --reps times (default 3), so that its peak RSS (ru_maxrss,
imports included) is its own; rows/s is the median run's, with the range in brackets (on a shared
2-core machine runs vary by tens of per cent; the CPU seconds vary less).
The file is generated once into the temporary folder, by ../shared/bench/gen.py when it exists
(the generator behind ../shared/measurements.md), else by bench/gendata.py (--gen to choose). --candidates also times the bare readers the source was chosen from: pandas' C
engine in 50,000-row chunks, pyarrow's streaming reader, polars' batches, all reading text only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The generator behind ../shared/measurements.md when it is there (same file, comparable figures),
# else the repository's own.
SHARED_GEN = Path(__file__).resolve().parents[2] / "shared" / "bench" / "gen.py"
GEN = SHARED_GEN if SHARED_GEN.exists() else Path(__file__).resolve().parent / "gendata.py"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_source(path: str, engine: str, chunk_rows: int) -> dict:
    from pipeline.basics.context import RunContext, StepContext
    from pipeline.basics.rejects import RejectSink
    from pipeline.sources.csv import CsvSource

    state = Path(tempfile.mkdtemp(prefix="bench-csv-"))
    run = RunContext(
        route_name="bench",
        route_file=state / "route.yaml",
        state_dir=state,
        run_id="1",
        rejects=RejectSink(state / "rejects.csv"),
        chunk_rows=chunk_rows,
    )
    src = CsvSource({"path": path, "engine": engine}, StepContext(run=run, stage="source", step="csv"))
    base, cpu = _peak_mb(), _cpu()
    t0 = time.perf_counter()
    rows = sum(len(chunk) for chunk in src.chunks())
    return {
        "case": f"route csv source, engine {engine}",
        "rows": rows,
        "seconds": time.perf_counter() - t0,
        "cpu_s": _cpu() - cpu,
        "base_mb": base,
    }


def run_candidate(path: str, name: str, chunk_rows: int) -> dict:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with open(path, encoding="utf-8") as f:
        ncols = f.readline().count(",") + 1
    base, cpu = _peak_mb(), _cpu()
    t0 = time.perf_counter()
    rows = 0
    if name == "pandas":
        for df in pd.read_csv(
            path, chunksize=chunk_rows, dtype=pd.ArrowDtype(pa.string()), keep_default_na=False, na_values=[""]
        ):
            rows += len(df)
    elif name == "pyarrow":
        names = [f"c{i}" for i in range(ncols)]
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False, skip_rows=1, column_names=names),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=lambda r: "skip"),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, null_values=[""], strings_can_be_null=True
            ),
        )
        for batch in reader:
            rows += batch.to_pandas(types_mapper=pd.ArrowDtype).shape[0]
    elif name == "polars":
        import polars as pl

        for batch in pl.scan_csv(path, infer_schema=False).collect_batches(chunk_size=chunk_rows):
            rows += len(batch.to_pandas(types_mapper=pd.ArrowDtype))
    return {
        "case": f"bare {name} reader (text columns, to pandas)",
        "rows": rows,
        "seconds": time.perf_counter() - t0,
        "cpu_s": _cpu() - cpu,
        "base_mb": base,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rows", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--file", help="use this CSV instead of generating one")
    ap.add_argument("--gen", default=str(GEN), help="the generator script (gen.py)")
    ap.add_argument("--engines", default="pyarrow,python")
    ap.add_argument("--candidates", action="store_true")
    ap.add_argument("--chunk-rows", type=int, default=50_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--one", nargs=2, metavar=("KIND", "NAME"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        kind, name = args.one
        fn = run_source if kind == "source" else run_candidate
        result = fn(args.file, name, args.chunk_rows)
        result["peak_mb"] = _peak_mb()
        print(json.dumps(result))
        return
    path = args.file
    if not path:
        path = os.path.join(tempfile.gettempdir(), f"route-bench-{args.rows}.csv")
        if not os.path.exists(path):
            gen = [sys.executable, args.gen]
            gen += (
                ["csv", "--rows", str(args.rows), "--out", path]
                if Path(args.gen).name == "gen.py"
                else [str(args.rows), path]
            )
            subprocess.run(gen, check=True)
    cases = [("source", e) for e in args.engines.split(",") if e]
    if args.candidates:
        cases += [("candidate", c) for c in ("pandas", "pyarrow", "polars")]
    print(f"{path}: {os.path.getsize(path) / 1e6:.1f} MB")
    for kind, name in cases:
        results = []
        for _ in range(max(1, args.reps)):
            out = subprocess.run(
                [sys.executable, __file__, "--file", path, "--chunk-rows", str(args.chunk_rows), "--one", kind, name],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
        results.sort(key=lambda r: r["seconds"])
        r = results[len(results) // 2]
        speeds = [x["rows"] / x["seconds"] for x in results]
        print(
            f"{r['case']:48s} {r['rows']:>10,} rows {r['seconds']:6.2f} s {r['rows'] / r['seconds']:>11,.0f} "
            f"rows/s ({min(speeds):,.0f}-{max(speeds):,.0f})  CPU {r['cpu_s']:.2f} s  "
            f"peak RSS {max(x['peak_mb'] for x in results):.0f} MB (before reading {r['base_mb']:.0f} MB)"
        )


if __name__ == "__main__":
    main()
