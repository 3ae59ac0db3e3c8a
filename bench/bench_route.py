"""Issue 2's benchmark: `route execute` against a plain pandas script doing the same work.

    python bench/bench_route.py [ROWS]      (default 1,000,000)

Both read the same generated CSV, rename, cast four columns (integer, number, date, datetime),
trim, filter and derive, and write JSON Lines. Prints rows/s for both, their ratio, and each
one's peak RSS. Each runs in its own process, measured the same way.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gendata import write_csv  # noqa: E402

ROUTE = """
name: bench-sales
source:
  csv: {path: sales.csv}
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
  - name: out
    deliver:
      jsonl: {path: out.jsonl}
"""

PANDAS = textwrap.dedent("""
    import sys, numpy as np, pandas as pd
    src, out = sys.argv[1], sys.argv[2]
    df = pd.read_csv(src, dtype=str, keep_default_na=False, na_values=[""])
    df = df.rename(columns={"Serial Number": "serial", "Town": "town", "ZIP": "zip", "Sale Date": "sale_date",
                            "Recorded At": "recorded_at", "Sale Amount": "amount", "Property Type": "property_type",
                            "Remarks": "remarks", "Latitude": "latitude", "Longitude": "longitude"})
    df["serial"] = pd.to_numeric(df["serial"]).astype("Int64")
    df["amount"] = pd.to_numeric(df["amount"])
    df["sale_date"] = pd.to_datetime(df["sale_date"], format="%m/%d/%Y")
    df["recorded_at"] = pd.to_datetime(df["recorded_at"], format="ISO8601")
    df["remarks"] = df["remarks"].str.strip()
    df["town"] = df["town"].str.strip()
    df = df[df["amount"] >= 0]
    month, year = df["sale_date"].dt.month, df["sale_date"].dt.year
    df["fiscal_year"] = np.where(month >= 7, year + 1, year)
    df["label"] = df["town"] + " " + df["zip"]
    df["sale_date"] = df["sale_date"].dt.strftime("%Y-%m-%d")
    df.to_json(out, orient="records", lines=True, date_format="iso")
""")


_WRAP = (
    "import resource, runpy, sys\n"
    "sys.argv = sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_module(sys.argv[0], run_name='__main__') if not sys.argv[0].endswith('.py') "
    "else runpy.run_path(sys.argv[0], run_name='__main__')\n"
    "except SystemExit as exc:\n"
    "    if exc.code not in (0, None): raise\n"
    "finally:\n"
    "    print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def measure(args: list[str], cwd: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (MB) of one child process running `args` (a script or module)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _WRAP, *args], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    kb = [int(l.split()[1]) for l in proc.stderr.splitlines() if l.startswith("PEAK_RSS_KB")][-1]
    return seconds, kb // 1024


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    work = HERE / "data" / f"route-{rows}"
    work.mkdir(parents=True, exist_ok=True)
    csv = work / "sales.csv"
    if not csv.exists():
        print(f"generating {rows:,} rows ...", flush=True)
        write_csv(rows, csv)
    (work / "bench.yaml").write_text(ROUTE)
    (work / "plain_pandas.py").write_text(PANDAS)
    size = csv.stat().st_size / 1e6
    p_sec, p_rss = measure(["plain_pandas.py", "sales.csv", "pandas.jsonl"], work)
    r_sec, r_rss = measure(["pipeline.cli", "execute", "-q", "bench.yaml"], work)
    print(f"input: {rows:,} rows, {size:.0f} MB CSV")
    print(f"plain pandas : {p_sec:6.2f} s  {rows / p_sec:10,.0f} rows/s  peak RSS {p_rss} MB")
    print(f"route execute: {r_sec:6.2f} s  {rows / r_sec:10,.0f} rows/s  peak RSS {r_rss} MB")
    print(f"ratio route/pandas (speed): {p_sec / r_sec:.2f}")


if __name__ == "__main__":
    main()
