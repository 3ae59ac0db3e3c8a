#!/usr/bin/env python3
"""Issue 19's end-to-end case, three ways side by side: route, a pandas+sodapy script, the polars limit.

A 1,000,000-row CSV goes through rename + 8 casts + trim + filter + derive and is upserted in
10,000-row batches to bench/sink.py (a minimal SODA endpoint that parses every body strictly):

  route   `route execute` of the route below;
  sodapy  a pandas script doing the same work (read_csv in 50,000-row chunks, the same casts and
          rules, rows as dicts, sodapy's upsert);
  polars  the polars-pipelined limit: scan_csv -> the same transforms in polars ->
          collect_batches(50,000) -> write_json per 10,000 rows -> POST from a sender thread.

Each run is a fresh process timed whole (interpreter start and imports included, with Python's
bytecode cache warmed and on, as for an installed package), peak RSS from os.wait4; runs are
interleaved (route, sodapy, polars, route, ...) so a busy machine slows all alike, and the best of
--reps counts. The sink's row count is checked after every run.

    python bench/bench_end_to_end.py [--rows 1000000] [--reps 3] [--against TREE] [--only route,polars]

`--against TREE` also runs route from another source tree (`git archive COMMIT pipeline transforms
schemas | tar -x -C TREE`), interleaved, for before/after figures. The CSV is made with
../shared/bench/gen.py when missing. Not part of the test run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import SinkProcess, load, warm_bytecode  # noqa: E402
from bench_socrata import GEN, sized_csv, timed  # noqa: E402
from bench_startup import route_command  # noqa: E402

DATASET = "abcd-1234"
COLUMNS = [
    ("id", "number"),
    ("listed_year", "number"),
    ("recorded", "calendar_date"),
    ("town", "text"),
    ("address", "text"),
    ("assessed", "number"),
    ("amount", "number"),
    ("property_type", "text"),
    ("residential_type", "text"),
    ("remarks", "text"),
    ("latitude", "number"),
    ("longitude", "number"),
    ("updated_at", "calendar_date"),
    ("fiscal_year", "number"),
]
FIRST_YEAR = 2001  # the filter keeps list years from here on (the CSV's 2000 rows are dropped)

ROUTE = """\
name: bench-end-to-end
source:
  csv: {{path: {csv}}}
source_transforms:
  - rename: {{list_year: listed_year, date_recorded: recorded, assessed_value: assessed, sale_amount: amount}}
  - cast: {{id: integer, listed_year: integer, recorded: date, updated_at: datetime,
           assessed: number, amount: number, latitude: number, longitude: number}}
  - trim: [town, address, remarks]
  - filter: "listed_year >= {first}"
  - derive: {{fiscal_year: "if(month(recorded) >= 7, year(recorded) + 1, year(recorded))"}}
targets:
  - name: portal
    deliver:
      socrata:
        domain: {url}
        dataset: {dataset}
        mode: upsert
        row_identifier: id
        batch_rows: 10000
        auth: {{username: bench, password: bench-secret}}
"""

SODAPY = """\
import sys, numpy as np, pandas as pd, requests
from sodapy import Socrata
csv, host, dataset, first = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
client = Socrata(host, None, username="bench", password="bench-secret", timeout=300,
                 session_adapter={"prefix": "http://", "adapter": requests.adapters.HTTPAdapter()})
names = {"list_year": "listed_year", "date_recorded": "recorded", "assessed_value": "assessed",
         "sale_amount": "amount"}
for chunk in pd.read_csv(csv, chunksize=50_000, dtype=str, keep_default_na=False, na_values=[""]):
    chunk = chunk.rename(columns=names)
    for c in ("id", "listed_year"):
        chunk[c] = pd.to_numeric(chunk[c]).astype("Int64")
    for c in ("assessed", "amount", "latitude", "longitude"):
        chunk[c] = pd.to_numeric(chunk[c])
    recorded = pd.to_datetime(chunk["recorded"], format="%Y-%m-%d")
    updated = pd.to_datetime(chunk["updated_at"], format="%Y-%m-%dT%H:%M:%S")
    for c in ("town", "address", "remarks"):
        chunk[c] = chunk[c].str.strip()
    keep = (chunk["listed_year"] >= first).fillna(False).to_numpy(bool)
    chunk, recorded, updated = chunk[keep], recorded[keep], updated[keep]
    chunk["fiscal_year"] = np.where(recorded.dt.month >= 7, recorded.dt.year + 1, recorded.dt.year)
    chunk["recorded"] = recorded.dt.strftime("%Y-%m-%dT00:00:00")
    chunk["updated_at"] = updated.dt.strftime("%Y-%m-%dT%H:%M:%S")
    # rows as dicts, nulls as None (NaN is not JSON); per-column lists + zip is the fastest plain way
    cols = list(chunk.columns)
    values = [chunk[c].astype(object).where(chunk[c].notna(), None).tolist() for c in cols]
    records = [dict(zip(cols, row)) for row in zip(*values)]
    for i in range(0, len(records), 10_000):
        client.upsert(dataset, records[i:i + 10_000])
"""

POLARS = """\
import io, queue, sys, threading, polars as pl, requests
csv, url, dataset, first = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
session = requests.Session()
bodies = queue.Queue(maxsize=2)
failed = []

def send():
    while (body := bodies.get()) is not None:
        r = session.post(f"{url}/resource/{dataset}.json", data=body,
                         headers={"Content-Type": "application/json"}, timeout=300)
        if r.status_code != 200:
            failed.append(r.text)

sender = threading.Thread(target=send)
sender.start()
recorded = pl.col("recorded")
frame = (
    pl.scan_csv(csv, infer_schema=False)
    .rename({"list_year": "listed_year", "date_recorded": "recorded", "assessed_value": "assessed",
             "sale_amount": "amount"})
    .with_columns(
        pl.col("id", "listed_year").cast(pl.Int64),
        pl.col("assessed", "amount", "latitude", "longitude").cast(pl.Float64),
        recorded.str.to_date("%Y-%m-%d"),
        pl.col("updated_at").str.to_datetime("%Y-%m-%dT%H:%M:%S"),
        pl.col("town", "address", "remarks").str.strip_chars(),
    )
    .filter(pl.col("listed_year") >= first)
    .with_columns(
        fiscal_year=pl.when(recorded.dt.month() >= 7).then(recorded.dt.year() + 1).otherwise(recorded.dt.year()),
        recorded=recorded.dt.strftime("%Y-%m-%dT00:00:00"),
        updated_at=pl.col("updated_at").dt.strftime("%Y-%m-%dT%H:%M:%S"),
    )
)
for chunk in frame.collect_batches(chunk_size=50_000):
    for i in range(0, chunk.height, 10_000):
        buf = io.BytesIO()
        chunk.slice(i, 10_000).write_json(buf)
        bodies.put(buf.getvalue())
bodies.put(None)
sender.join()
sys.exit("refused: " + failed[0][:500] if failed else 0)
"""


def expected_rows(csv: Path) -> int:
    import polars as pl

    years = pl.scan_csv(csv, infer_schema=False).select(pl.col("list_year").cast(pl.Int64))
    return years.filter(pl.col("list_year") >= FIRST_YEAR).select(pl.len()).collect().item()


def commands(work: Path, csv: Path, url: str, against: str | None) -> dict[str, list[str]]:
    route = work / "route.yaml"
    route.write_text(ROUTE.format(csv=csv, url=url, dataset=DATASET, first=FIRST_YEAR))
    (work / "sodapy_upsert.py").write_text(SODAPY)
    (work / "polars_limit.py").write_text(POLARS)
    run = ["execute", str(route), "--state", str(work / "state"), "-q"]
    host = url.split("://", 1)[1]
    cases = {
        "route": [*route_command(), *run],  # the script itself, as the others run python itself
        "sodapy": [sys.executable, str(work / "sodapy_upsert.py"), str(csv), host, DATASET, str(FIRST_YEAR)],
        "polars": [sys.executable, str(work / "polars_limit.py"), str(csv), url, DATASET, str(FIRST_YEAR)],
    }
    if against:
        boot = (
            f"import sys; sys.path.insert(0, {against!r}); sys.argv[0] = 'route'; from pipeline.cli import main; main()"
        )
        cases["route-before"] = [sys.executable, "-c", boot, *run]
    return cases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--against", help="another source tree whose route runs too (before/after)")
    ap.add_argument("--only", help="comma-separated cases to run (route, sodapy, polars, route-before)")
    ap.add_argument(
        "--data", default=os.environ.get("ROUTE_BENCH_DATA", str(Path(tempfile.gettempdir()) / "route-bench"))
    )
    args = ap.parse_args()
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    csv = data / f"ct_{args.rows}.csv"
    if args.rows != 1_000_000:
        csv = sized_csv(data, args.rows)  # the first rows of the 1M-row file, or its rows repeated
    elif not csv.exists():
        subprocess.run([sys.executable, str(GEN), "csv", "--rows", str(args.rows), "--out", str(csv)], check=True)
    rows = expected_rows(csv)
    warm_bytecode(HERE.parent, *([Path(args.against)] if args.against else []))
    sink = SinkProcess(COLUMNS, row_id="id")
    results: dict[str, list[dict]] = {}
    print(f"{args.rows:,} CSV rows ({rows:,} after the filter), {csv.stat().st_size / 1e6:.0f} MB; load {load()}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cases = commands(Path(tmp), csv, sink.url, args.against)
            if args.only:
                cases = {k: v for k, v in cases.items() if k in args.only.split(",")}
            for rep in range(args.reps):
                for name, cmd in cases.items():
                    sink.reset()
                    result = timed(cmd, Path(tmp))
                    got = sink.stats()["rows"]
                    if got != rows:
                        raise SystemExit(f"{name}: the sink has {got} rows, expected {rows}")
                    result["load"] = os.getloadavg()[0]
                    results.setdefault(name, []).append(result)
                    print(
                        f"  rep {rep + 1} {name:12} {result['seconds']:6.2f} s  {rows / result['seconds']:>9,.0f} rows/s"
                        f"  peak RSS {result['peak_rss_mb']:4.0f} MB  CPU {result['cpu_s']:5.1f} s  load {load()}",
                        flush=True,
                    )
    finally:
        sink.stop()
    best = {name: min(r["seconds"] for r in runs) for name, runs in results.items()}
    print(f"\nbest of {args.reps}, whole process, {rows:,} rows to the sink (load at the end {load()}):")
    cpu = {name: min(r["cpu_s"] for r in runs) for name, runs in results.items()}
    for name, runs in results.items():
        print(
            f"  {name:12} {rows / best[name]:>9,.0f} rows/s  ({best[name]:.2f} s)"
            f"  peak RSS {max(r['peak_rss_mb'] for r in runs):4.0f} MB  CPU {cpu[name]:5.1f} s (least of the runs)"
        )
    for name in ("route", "route-before"):
        if name not in best:
            continue
        if "polars" in best:
            print(f"  {name}/polars (speed): {best['polars'] / best[name]:.2f}  (goal >= 0.9)")
        if "sodapy" in best:
            print(f"  {name}/sodapy (speed): {best['sodapy'] / best[name]:.2f}  (goal >= 5)")
    if "route" in best and "route-before" in best:
        print(f"  route/route-before (speed): {best['route-before'] / best['route']:.2f}")
    # On a busy machine wall time says little; the CPU each one spends says more (the sink's not counted).
    for name in ("route", "route-before"):
        if name in cpu and "polars" in cpu:
            print(f"  {name}/polars (CPU, lower is better): {cpu[name] / cpu['polars']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
