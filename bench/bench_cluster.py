"""Issue 18's benchmark: one partitioned route run locally, and with `route execute --cluster` on a
Dask LocalCluster of 1 and of 2 worker processes (one thread each).

    python bench/bench_cluster.py [ROWS]      (default 2,000,000, in 4 files)

The source is 4 CSV files of gendata.py's sales records (made once under bench/data/cluster-ROWS/ and
reused, per row count); the route renames, casts four columns, trims, filters and derives (bench_route.py's
work), routes by `when` to two CSV files. Each run is `route execute` in a process of its own;
the figures are the run's own seconds (its JSON report: reading, rules, routing and delivery, not
the start of Python) and rows read per second, the wall time of the whole command, and the ratio
to the local run. The delivered row count, and every output file byte for byte, must be the same in every run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gendata import write_csv  # noqa: E402

FILES = 4
ROUTE = """
name: bench-cluster
source:
  csv: {path: data/sales-*.csv}
source_transforms:
  - rename: {"Serial Number": serial, Town: town, ZIP: zip, "Sale Date": sale_date,
             "Recorded At": recorded_at, "Sale Amount": amount, "Property Type": property_type,
             Remarks: remarks, Latitude: latitude, Longitude: longitude}
  - cast:
      serial: integer
      amount: number
      sale_date: {type: date, formats: ["%m/%d/%Y"]}
      recorded_at: datetime
  - trim: [remarks, town]
  - filter: "amount >= 0"
  - derive:
      fiscal_year: "if(month(sale_date) >= 7, year(sale_date) + 1, year(sale_date))"
      label: "concat(town, ' ', zip)"
targets:
  - name: residential
    when: "property_type == 'Residential'"
    deliver:
      csv: {path: out/residential.csv}
  - name: other
    when: "property_type != 'Residential'"
    deliver:
      csv: {path: out/other.csv}
"""


def data(folder: Path, rows: int) -> None:
    """FILES files of rows/FILES rows each, made once."""
    per = rows // FILES
    stamp = folder / f".rows-{rows}"
    if stamp.exists():
        return
    for i in range(FILES):
        write_csv(per, folder / "data" / f"sales-{i}.csv", seed=7 + i)
    stamp.write_text("made\n")


def run(folder: Path, *args: str) -> tuple[float, dict]:
    """Wall seconds and the JSON report of `route execute ARGS route.yaml`."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "execute", "--json", "-q", *args, "route.yaml"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"route execute {' '.join(args)} failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    report = json.loads(done.stdout)
    report["outputs"] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("out/*.csv"))}
    return wall, report


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    folder = HERE / "data" / f"cluster-{rows}"
    folder.mkdir(parents=True, exist_ok=True)
    data(folder, rows)
    (folder / "route.yaml").write_text(ROUTE)
    from distributed import LocalCluster

    results = [("local", *run(folder))]
    for workers in (1, 2):
        with LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.CRITICAL,  # the workers' farewells when the cluster closes
        ) as cluster:
            run(folder, "--cluster", cluster.scheduler_address)  # warm the workers (imports) once
            results.append(
                (
                    f"--cluster, {workers} worker{'s' if workers > 1 else ''}",
                    *run(folder, "--cluster", cluster.scheduler_address),
                )
            )
    base = results[0][2]
    print(f"{rows:,} rows in {FILES} CSV files; {os.cpu_count()} CPUs (shared with other work)")
    print(f"{'run':<22} {'rows read':>10} {'delivered':>10} {'run s':>7} {'rows/s':>10} {'wall s':>7} {'vs local':>9}")
    for name, wall, report in results:
        if report["rows_delivered"] != base["rows_delivered"] or report["rows_read"] != base["rows_read"]:
            raise SystemExit(
                f"{name}: {report['rows_delivered']:,} rows delivered, the local run {base['rows_delivered']:,}"
            )
        if report["outputs"] != base["outputs"]:
            raise SystemExit(f"{name}: the output files differ from the local run's")
        seconds = report["seconds"]
        rate = report["rows_read"] / seconds
        print(
            f"{name:<22} {report['rows_read']:>10,} {report['rows_delivered']:>10,} {seconds:>7.2f} {rate:>10,.0f} "
            f"{wall:>7.2f} {base['seconds'] / seconds:>8.2f}x"
        )


if __name__ == "__main__":
    main()
