"""Time and peak RSS of the stream rules (dedupe, unique, sort, aggregate, pivot) on a generated
stream of N rows (default 5,000,000) in 50,000-row chunks.

    python bench/bench_stream_rules.py [ROWS] [--cases dedupe-first,sort,...] [--chunk-rows N]
                                       [--repeat N] [--against FOLDER]

Each case runs in a fresh interpreter so that its peak RSS (ru_maxrss, imports included) is its
own, with Arrow's jemalloc pool as `route` uses it. `passthrough` only generates and consumes the
stream: the difference between a case's peak and passthrough's is what the rule itself holds.
`--against FOLDER` runs every case also with the code of another checkout (e.g. `git worktree` or
`git archive` of an earlier commit), interleaved with this one, and prints both and their ratio;
`--repeat N` keeps the best time of N runs (and the peak of that run). aggregate-parcels and
pivot-parcels have about 0.43 x ROWS groups (2.2 million at 5 million rows). The stream is
generated chunk by chunk (never whole), Arrow-backed like a source's chunks:
  id      integer, unique except for 1 % repeats (unique's duplicates)
  parcel  text, about 0.4 x ROWS distinct values (dedupe's keys, half the rows repeat one)
  town    text, one of 169;  year integer 2000-2024;  amount number;  remarks text (~40 chars)
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

CASES = {
    "passthrough": None,
    "dedupe-first": ("transforms.rows:dedupe", {"keys": ["parcel"]}),
    "dedupe-last": ("transforms.rows:dedupe", {"keys": ["parcel"], "keep": "last"}),
    "unique": ("transforms.validate:unique", {"columns": ["id"]}),
    "sort": ("transforms.rows:sort", {"by": ["town", "amount"]}),
    "aggregate-towns": (
        "transforms.reshape:aggregate",
        {
            "by": ["town", "year"],
            "compute": {
                "sales": "count",
                "total": {"sum": "amount"},
                "mean": {"mean": "amount"},
                "low": {"min": "amount"},
                "high": {"max": "amount"},
                "first_remark": {"first": "remarks"},
            },
        },
    ),
    "aggregate-parcels": (
        "transforms.reshape:aggregate",
        {"by": ["parcel"], "compute": {"sales": "count", "total": {"sum": "amount"}, "last_year": {"max": "year"}}},
    ),
    "pivot-parcels": (
        "transforms.reshape:pivot",
        {"index": ["parcel"], "name": "year", "value": "amount", "agg": "sum"},
    ),
}


def chunks(rows: int, chunk_rows: int):
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipeline.basics.dtypes import INTEGER, NUMBER

    rng = np.random.default_rng(2024)
    towns = pa.array([f"Town {i:03d}" for i in range(169)])
    words = "short sale estate lender approved vacant family transfer deed quit claim".split()
    remarks = pa.array(
        [f"{words[i % 11]} {words[i // 11 % 11]} MLS #{rng.integers(1000, 99999)}" for i in range(10_000)]
    )
    for start in range(0, rows, chunk_rows):
        n = min(chunk_rows, rows - start)
        ids = np.arange(start, start + n)
        repeat = rng.random(n) < 0.01
        ids[repeat] = rng.integers(0, max(1, start + 1), int(repeat.sum()))
        parcel = pc.binary_join_element_wise(
            "P-", pc.cast(pa.array(rng.integers(0, int(rows * 0.5), n)), pa.string()), ""
        )
        df = pd.DataFrame(
            {
                "id": pd.array(ids, dtype=INTEGER),
                "parcel": pd.arrays.ArrowExtensionArray(parcel),
                "town": pd.arrays.ArrowExtensionArray(towns.take(pa.array(rng.integers(0, 169, n)))),
                "year": pd.array(rng.integers(2000, 2025, n), dtype=INTEGER),
                "amount": pd.array(np.round(rng.random(n) * 900_000, 2), dtype=NUMBER),
                "remarks": pd.arrays.ArrowExtensionArray(remarks.take(pa.array(rng.integers(0, 10_000, n)))),
            },
            index=pd.RangeIndex(start + 2, start + n + 2),
        )
        df.attrs["source"] = "generated.csv"
        yield df


def run_case(name: str, rows: int, chunk_rows: int) -> dict:
    from pipeline.basics.plugins import load_reference
    from pipeline.testing import bind_options, step_context

    folder = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    ctx = step_context(folder, chunk_rows=chunk_rows, step=name)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    out_rows, out_chunks, biggest = 0, 0, 0
    if CASES[name] is None:
        stream = chunks(rows, chunk_rows)
    else:
        ref, options = CASES[name]
        fn = load_reference(ref)
        stream = fn(chunks(rows, chunk_rows), bind_options(fn, options, ctx), ctx)
    for out in stream:
        out_rows += len(out)
        out_chunks += 1
        biggest = max(biggest, len(out))
    seconds = time.perf_counter() - t0
    return {
        "case": name,
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": int(rows / seconds),
        "rows_out": out_rows,
        "rejected": ctx.rejected,
        "biggest_chunk": biggest,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "base_rss_mb": round(base, 1),
    }


def measure(name: str, args, code: str | None = None) -> dict | str:
    """One case in a fresh interpreter (with the code in folder `code` when given): its figures,
    or its error output."""
    env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": os.environ.get("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")}
    script = __file__
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join([code, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    best = None
    for _ in range(args.repeat):
        done = subprocess.run(
            [sys.executable, script, str(args.rows), "--one", name, "--chunk-rows", str(args.chunk_rows)],
            capture_output=True,
            text=True,
            env=env,
        )
        if done.returncode:
            return done.stderr
        r = json.loads(done.stdout.strip().splitlines()[-1])
        best = r if best is None or r["seconds"] < best["seconds"] else best
    return best


def _line(label: str, r: dict) -> str:
    return (
        f"{label:<30} {r['seconds']:>8} {r['rows_per_s']:>10,} {r['rows_out']:>10,} {r['rejected']:>9,} "
        f"{r['peak_rss_mb']:>8} {r['biggest_chunk']:>9,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", nargs="?", type=int, default=5_000_000)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--against", help="a folder holding other code (pipeline/, transforms/) to compare with")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_case(args.one, args.rows, args.chunk_rows)))
        return
    print(
        f"{'case':<30} {'seconds':>8} {'rows/s':>10} {'rows out':>10} {'rejected':>9} {'peak MB':>8} {'max chunk':>9}"
    )
    for name in args.cases.split(","):
        runs = [("", None)] + ([(" (against)", args.against)] if args.against else [])
        results = {}
        for label, code in runs:
            r = measure(name, args, code)
            if isinstance(r, str):
                print(f"{name + label:<30} failed:\n{r}")
                continue
            results[label] = r
            print(_line(name + label, r), flush=True)
        if len(results) == 2:
            new, old = results[""], results[" (against)"]
            print(
                f"{'  ratio (this / against)':<30} {new['seconds'] / old['seconds']:>8.2f} "
                f"{new['rows_per_s'] / old['rows_per_s']:>10.2f} {'':>10} {'':>9} "
                f"{new['peak_rss_mb'] / old['peak_rss_mb']:>8.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
