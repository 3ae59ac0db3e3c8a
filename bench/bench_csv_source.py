"""Rows/s and peak RSS of the csv source alone against the limit, side by side in one run.

    python bench/bench_csv_source.py [ROWS] [--file PATH] [--cases new,old,polars,...] [--reps N]

Cases (each run in a fresh interpreter, so that its peak RSS, ru_maxrss with the imports, is its
own; the cases are interleaved, new, old, polars, new, old, polars, ..., --reps times, default 3,
and each case's best run is kept: on a shared 2-core machine the load moves from one second to the
next, so read the ratios, not the seconds):

- new: the route csv source as it reads (csv_blocks: blocks parsed on every core), chunks of
  --chunk-rows rows as pandas frames with their line numbers.
- old: the same source with pyarrow's single-threaded streaming reader (csv_readers.read_fast),
  as it read before.
- polars: polars scan_csv().collect_batches(chunk_size) reading text, each batch to pandas (the
  limit: the fastest streaming reader measured here, ../shared/measurements.md).
- polars-bare: the same batches, not converted.
- python: the source with Python's csv module (engine: python).
- pandas, pyarrow: the bare readers the source was chosen from (text, chunked, to pandas).

The file is generated once into the temporary folder by ../shared/bench/gen.py when it exists
(the generator behind ../shared/measurements.md), else by bench/gendata.py (--gen to choose).
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

SHARED_GEN = Path(__file__).resolve().parents[2] / "shared" / "bench" / "gen.py"
GEN = SHARED_GEN if SHARED_GEN.exists() else Path(__file__).resolve().parent / "gendata.py"
CASES = {
    "new": "route csv source, block reader (now)",
    "old": "route csv source, streaming reader (before)",
    "python": "route csv source, engine: python",
    "polars": "polars collect_batches, to pandas",
    "polars-bare": "polars collect_batches, bare",
    "pandas": "pandas read_csv chunks (C engine)",
    "pyarrow": "pyarrow open_csv, to pandas",
}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _use_streaming_reader() -> None:
    """The source as it read before csv_blocks: pyarrow's streaming reader on one thread."""
    from pipeline.sources import csv_blocks, csv_readers

    def streaming(stream, ncols, first_line, dialect, shown, block_size, max_record, workers=None):
        return csv_readers.read_fast(stream, ncols, first_line, dialect, shown, block_size=block_size)

    csv_blocks.read_blocks = streaming


def rows_of(path: str, case: str, chunk_rows: int) -> int:
    """Read the whole file with `case`; the rows read."""
    if case in ("new", "old", "python"):
        from pipeline.sources.csv import CsvSource
        from pipeline.testing import step_context

        if case == "old":
            _use_streaming_reader()
        folder = tempfile.mkdtemp(prefix="bench-csv-")
        ctx = step_context(folder, chunk_rows=chunk_rows, stage="source", step="csv", route_name="bench")
        engine = "python" if case == "python" else "auto"
        src = CsvSource({"path": path, "engine": engine}, ctx)
        return sum(len(chunk) for chunk in src.chunks())
    import pandas as pd
    import pyarrow as pa

    if case.startswith("polars"):
        import polars as pl

        batches = pl.scan_csv(path, infer_schema=False).collect_batches(chunk_size=chunk_rows)
        if case == "polars-bare":
            return sum(len(b) for b in batches)
        return sum(len(b.to_pandas(types_mapper=pd.ArrowDtype)) for b in batches)
    if case == "pandas":
        chunks = pd.read_csv(
            path, chunksize=chunk_rows, dtype=pd.ArrowDtype(pa.string()), keep_default_na=False, na_values=[""]
        )
        return sum(len(df) for df in chunks)
    import pyarrow.csv as pacsv

    with open(path, encoding="utf-8") as f:
        names = [f"c{i}" for i in range(f.readline().count(",") + 1)]
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(use_threads=False, skip_rows=1, column_names=names),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=lambda r: "skip"),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, null_values=[""], strings_can_be_null=True
        ),
    )
    return sum(batch.to_pandas(types_mapper=pd.ArrowDtype).shape[0] for batch in reader)


def one(path: str, case: str, chunk_rows: int) -> dict:
    import pandas  # noqa: F401 - imports are not part of the timed region
    import pyarrow  # noqa: F401

    base, cpu = _peak_mb(), _cpu()
    t0 = time.perf_counter()
    rows = rows_of(path, case, chunk_rows)
    return {
        "case": case,
        "rows": rows,
        "seconds": time.perf_counter() - t0,
        "cpu_s": _cpu() - cpu,
        "base_mb": base,
        "peak_mb": _peak_mb(),
    }


def data_file(rows: int, gen: str) -> str:
    path = os.path.join(tempfile.gettempdir(), f"route-bench-{rows}.csv")
    if not os.path.exists(path):
        cmd = [sys.executable, gen]
        cmd += ["csv", "--rows", str(rows), "--out", path] if Path(gen).name == "gen.py" else [str(rows), path]
        subprocess.run(cmd, check=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rows", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--file", help="use this CSV instead of generating one")
    ap.add_argument("--gen", default=str(GEN), help="the generator script (gen.py)")
    ap.add_argument("--cases", default="new,old,polars", help=f"of {', '.join(CASES)}")
    ap.add_argument("--chunk-rows", type=int, default=50_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--one", metavar="CASE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.file, args.one, args.chunk_rows)))
        return
    path = args.file or data_file(args.rows, args.gen)
    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case {unknown[0]!r}; cases: {', '.join(CASES)}")
    print(f"{path}: {os.path.getsize(path) / 1e6:.1f} MB; load average before: {os.getloadavg()[0]:.2f}")
    runs: dict[str, list[dict]] = {c: [] for c in cases}
    for _ in range(max(1, args.reps)):
        for case in cases:  # interleaved: every case sees the same moments of load
            cmd = [sys.executable, __file__, "--file", path, "--chunk-rows", str(args.chunk_rows), "--one", case]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            runs[case].append(json.loads(out.strip().splitlines()[-1]))
    best = {c: max(r, key=lambda x: x["rows"] / x["seconds"]) for c, r in runs.items()}
    limit = best.get("polars")
    for case in cases:
        r = best[case]
        speed = r["rows"] / r["seconds"]
        ratio = f"{speed / (limit['rows'] / limit['seconds']):5.2f} of polars" if limit else ""
        print(
            f"{CASES[case]:45s} {r['rows']:>10,} rows {r['seconds']:6.2f} s {speed:>11,.0f} rows/s {ratio}  "
            f"CPU {r['cpu_s']:.2f} s  peak RSS {max(x['peak_mb'] for x in runs[case]):.0f} MB "
            f"(before reading {r['base_mb']:.0f} MB)"
        )
    if "new" in best and "old" in best:
        ratio = (best["new"]["rows"] / best["new"]["seconds"]) / (best["old"]["rows"] / best["old"]["seconds"])
        print(f"new / old: {ratio:.2f}")
    print(f"best of {args.reps}, interleaved; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
