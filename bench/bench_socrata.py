#!/usr/bin/env python3
"""Upsert a 1,000,000-row CSV through route, and through a plain sodapy script doing the same work.

Both read the same CSV, apply the same rules (casts of ids, years, dates, timestamps, amounts and
coordinates) and upsert in 10,000-row batches to a dataset keyed by `id`, sent to:

  (a) bench/sink.py, a minimal endpoint that parses each JSON body and answers like an upsert:
      this isolates the client's own cost;
  (b) the local portal (pipeline.portal), served in its own process, a fresh dataset per run.

Every case runs in a fresh process; wall time covers the whole process (imports included) and peak
RSS is that process's maximum resident set (os.wait4). The receivers' row counts are checked.

    python bench/bench_socrata.py [--rows 1000000] [--reps 3] [--only sink|portal] [--data DIR]
    python bench/bench_socrata.py --encoders [--reps 15]   # body encoders and float -> text, in-process
    python bench/bench_socrata.py --memory 250000,1000000,3000000 [--reps 2] [--against TREE]
                                  [--to sink|portal] [--mode upsert|replace]

--memory runs route alone to the sink (or the local portal, a fresh dataset per run) for each size
(the CSV of a size beyond the generated file repeats its rows) and prints peak RSS and rows/s; with
`--against TREE` (a checkout of another commit: `git archive COMMIT pipeline transforms schemas |
tar -x -C TREE`) TREE's code runs too, interleaved, for before/after figures. A replace goes to the
local portal only (the sink speaks no revisions).

The CSV is made with ../shared/bench/gen.py when it is missing. Not part of the test run.
"""

# Longer than 400 lines because the three comparisons (against sodapy, of the encoders, of memory)
# share the sink, the route and the runner, and read best next to them.

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import PortalDatasets, bytecode_env  # noqa: E402

GEN = Path(os.environ.get("ROUTE_BENCH_GEN", "/work/shared/bench/gen.py"))
COLUMNS = [
    ("id", "number"),
    ("list_year", "number"),
    ("date_recorded", "calendar_date"),
    ("town", "text"),
    ("address", "text"),
    ("assessed_value", "number"),
    ("sale_amount", "number"),
    ("property_type", "text"),
    ("residential_type", "text"),
    ("remarks", "text"),
    ("latitude", "number"),
    ("longitude", "number"),
    ("updated_at", "calendar_date"),
]
USER, SECRET = "bench", "bench-secret"

ROUTE = """\
name: bench-socrata
source:
  csv: {{path: {csv}}}
source_transforms:
  - cast: {{id: integer, list_year: integer, date_recorded: date, updated_at: datetime,
           assessed_value: number, sale_amount: number, latitude: number, longitude: number}}
targets:
  - name: portal
    deliver:
      {delivery}:
        domain: {url}
        dataset: {dataset}
        mode: {mode}
        batch_rows: 10000
        auth: {{username: {user}, password: {secret}}}
"""

SODAPY = """\
import sys, numpy as np, pandas as pd, requests
from sodapy import Socrata
csv, host, dataset, user, secret = sys.argv[1:6]
client = Socrata(host, None, username=user, password=secret, timeout=300,
                 session_adapter={"prefix": "http://", "adapter": requests.adapters.HTTPAdapter()})
for chunk in pd.read_csv(csv, chunksize=50_000, dtype=str, keep_default_na=False, na_values=[""]):
    # the same rules as the route: integers, numbers, a date and a date-time, sent as Socrata wants them
    for c in ("id", "list_year"):
        chunk[c] = pd.to_numeric(chunk[c]).astype("Int64")
    for c in ("assessed_value", "sale_amount", "latitude", "longitude"):
        chunk[c] = pd.to_numeric(chunk[c])
    chunk["date_recorded"] = pd.to_datetime(chunk["date_recorded"], format="%Y-%m-%d").dt.strftime("%Y-%m-%dT00:00:00")
    chunk["updated_at"] = pd.to_datetime(chunk["updated_at"], format="%Y-%m-%dT%H:%M:%S").dt.strftime("%Y-%m-%dT%H:%M:%S")
    # rows as dicts, nulls as None (NaN is not JSON); per-column lists + zip is the fastest plain way
    names = list(chunk.columns)
    values = [chunk[c].astype(object).where(chunk[c].notna(), None).tolist() for c in names]
    records = [dict(zip(names, row)) for row in zip(*values)]
    for i in range(0, len(records), 10_000):
        client.upsert(dataset, records[i:i + 10_000])
"""

PORTAL = """\
import sys, time
from pipeline.portal import LocalPortal
portal = LocalPortal(sys.argv[1], users={sys.argv[2]: sys.argv[3]})
server = portal.serve(host="127.0.0.1", port=0, tls=False)
print(server.url, flush=True)
try:
    time.sleep(float(sys.argv[4]))
finally:
    server.stop()
"""


def timed(cmd: list[str], cwd: Path) -> dict:
    """Run `cmd`; wall seconds and the process's own peak RSS (MB). With Python's bytecode cache on,
    as for an installed package (see _common.bytecode_env)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=bytecode_env())
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-2000:]}\n{err[-2000:]}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "cpu_s": usage.ru_utime + usage.ru_stime}


def start(cmd: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return proc, proc.stdout.readline().strip()


def delivery_name() -> str:
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="route.deliveries")}
    return "socrata" if "socrata" in names else "pipeline.deliveries.socrata:SocrataDelivery"


class Sink:
    def __init__(self):
        spec = ",".join(f"{f}:{t}" for f, t in COLUMNS)
        self.proc, line = start(
            [sys.executable, str(HERE / "sink.py"), "--columns", spec, "--row-id", "id", "--max-seconds", "3600"]
        )
        self.url = f"http://127.0.0.1:{line.split()[1]}"

    def dataset(self) -> str:
        requests.post(self.url + "/reset", timeout=10)
        return "abcd-1234"

    def rows(self, dataset: str) -> int:
        return requests.get(self.url + "/stats", timeout=10).json()["rows"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Portal(PortalDatasets):
    columns = COLUMNS

    def __init__(self, folder: Path):
        self.proc, url = start([sys.executable, "-c", PORTAL, str(folder / "portal.sqlite"), USER, SECRET, "3600"])
        self.connect(url, USER, SECRET)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def run_case(client: str, target, csv: Path, work: Path, rows: int) -> dict:
    dataset = target.dataset()
    if client == "route":
        route = work / "route.yaml"
        route.write_text(
            ROUTE.format(
                csv=csv,
                delivery=delivery_name(),
                url=target.url,
                dataset=dataset,
                user=USER,
                secret=SECRET,
                mode="upsert",
            )
        )
        result = timed(["route", "execute", str(route), "--state", str(work / "state")], work)
    else:
        script = work / "sodapy_upsert.py"
        script.write_text(SODAPY)
        host = target.url.split("://", 1)[1]
        result = timed([sys.executable, str(script), str(csv), host, dataset, USER, SECRET], work)
    got = target.rows(dataset)
    if got != rows:
        raise SystemExit(f"{client}: the receiver has {got} rows, expected {rows}")
    result["rows_per_s"] = rows / result["seconds"]
    return result


def _encode_polars_json(table):
    import io

    import polars as pl

    buf = io.BytesIO()
    pl.from_arrow(table, rechunk=False).write_json(buf)
    return buf.getvalue()


def _encode_polars_ndjson(table):
    import io

    import polars as pl

    buf = io.BytesIO()
    buf.write(b"[")
    pl.from_arrow(table, rechunk=False).write_ndjson(buf)
    if buf.tell() == 1:
        return b"[]"
    buf.seek(-1, io.SEEK_END)
    buf.write(b"]")
    return buf.getvalue().replace(b"\n", b",")  # a raw newline only separates rows: JSON escapes it in text


def _encode_orjson_rows(table):
    import orjson

    return orjson.dumps(table.to_pylist())


def encoders(csv: Path, reps: int) -> None:
    """Candidate ways to write the request bodies and the float text, on the first 50,000 rows of the
    bench CSV as route converts them (10,000-row batches): best of `reps`, interleaved, and whether
    each gives today's bytes. Today's are polars' write_json and Arrow's float cast."""
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    from pipeline.socrata import wire
    from pipeline.socrata.soda import encode_json

    chunk = pa.Table.from_pandas(pd.read_csv(csv, nrows=50_000, dtype_backend="pyarrow"), preserve_index=False)
    chunk = chunk.set_column(2, "date_recorded", chunk["date_recorded"].cast(pa.timestamp("s")).cast(pa.date32()))
    chunk = chunk.set_column(12, "updated_at", chunk["updated_at"].cast(pa.timestamp("us")))
    table = pa.table({f: wire.convert(chunk[f], t).values for f, t in COLUMNS})
    batches = [table.slice(i, 10_000) for i in range(0, table.num_rows, 10_000)]
    floats = [chunk[f].combine_chunks().cast(pa.float64()) for f, t in COLUMNS if chunk[f].type == pa.float64()]
    cases = {
        "body: polars write_json": lambda: [_encode_polars_json(b) for b in batches],
        "body: polars write_ndjson, joined": lambda: [_encode_polars_ndjson(b) for b in batches],
        "body: orjson over to_pylist": lambda: [_encode_orjson_rows(b) for b in batches],
        "float text: arrow cast": lambda: [a.cast(pa.string()) for a in floats],
        "float text: polars cast": lambda: [pl.from_arrow(a).cast(pl.String).to_arrow() for a in floats],
        "float text: route's number form": lambda: [wire.convert(a, "number") for a in floats],
    }
    today = [encode_json(b) for b in batches]
    arrow_text = [a.cast(pa.string()) for a in floats]
    same = {
        "body: polars write_json": [_encode_polars_json(b) for b in batches] == today,
        "body: polars write_ndjson, joined": [_encode_polars_ndjson(b) for b in batches] == today,
        "body: orjson over to_pylist": [_encode_orjson_rows(b) for b in batches] == today,
        "float text: arrow cast": True,
        "float text: route's number form": True,  # tests/socrata/test_socrata_wire.py checks it
        "float text: polars cast": all(
            pl.from_arrow(a).cast(pl.String).to_arrow().cast(pa.string()).equals(t) for a, t in zip(floats, arrow_text)
        ),
    }
    times = {name: [] for name in cases}
    for _ in range(reps):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    for name, runs in times.items():
        print(
            f"{name:36} best {min(runs) * 1000:7.2f} ms  median {statistics.median(runs) * 1000:7.2f} ms per 50k rows"
            f"  {'same bytes as today' if same[name] else 'DIFFERENT from today'}"
        )


def sized_csv(data: Path, rows: int) -> Path:
    """A CSV of `rows` rows: the first rows of the 1,000,000-row CSV, or its rows repeated with their
    ids (the first field) moved on by 1,000,000 each time, so that every row is a new row to an upsert
    or a replace (repeated ids would leave the portal with 1,000,000 rows)."""
    csv = data / f"ct_{rows}.csv"
    base = data / "ct_1000000.csv"
    if not base.exists():
        subprocess.run([sys.executable, str(GEN), "csv", "--rows", "1000000", "--out", str(base)], check=True)
    if csv.exists():  # (the base itself, when 1,000,000 rows are asked for)
        return csv
    with base.open("rb") as src, csv.open("wb") as out:
        header = src.readline()
        out.write(header)
        left, shift = rows, 0
        while left:
            src.seek(len(header))
            for line in src:
                if shift:
                    first, rest = line.split(b",", 1)
                    line = b"%d,%s" % (int(first) + shift, rest)
                out.write(line)
                left -= 1
                if not left:
                    break
            shift += 1_000_000
    return csv


def memory(
    data: Path, sizes: list[int], reps: int, against: str | None, to: str = "sink", mode: str = "upsert"
) -> None:
    """Peak RSS and rows/s of route delivering each size to the sink or the local portal (upsert or
    replace), this tree (and TREE), interleaved."""
    trees = {"this tree": ["route"]}
    if against:
        boot = (
            f"import sys; sys.path.insert(0, {against!r}); sys.argv[0] = 'route'; from pipeline.cli import main; main()"
        )
        trees["against"] = [sys.executable, "-c", boot]
    results: dict[tuple[int, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        target = Sink() if to == "sink" else Portal(work)
        try:
            for _ in range(reps):
                for rows in sizes:
                    csv = sized_csv(data, rows)
                    route = work / f"route_{rows}.yaml"
                    for label, cmd in trees.items():
                        dataset = target.dataset()
                        route.write_text(
                            ROUTE.format(
                                csv=csv,
                                delivery=delivery_name(),
                                url=target.url,
                                dataset=dataset,
                                user=USER,
                                secret=SECRET,
                                mode=mode,
                            )
                        )
                        result = timed([*cmd, "execute", str(route), "--state", str(work / "state"), "-q"], work)
                        if target.rows(dataset) != rows:
                            raise SystemExit(f"{label}: {to} has {target.rows(dataset)} rows, expected {rows}")
                        results.setdefault((rows, label), []).append(result)
        finally:
            target.stop()
    print(f"route {mode} to the {to}, best of {reps}, interleaved; load average {os.getloadavg()}", flush=True)
    for rows in sizes:
        line = f"{rows:>10,} rows"
        for label in trees:
            runs = results[(rows, label)]
            line += (
                f"   {label}: peak RSS {max(r['peak_rss_mb'] for r in runs):4.0f} MB"
                f" ({', '.join(format(r['peak_rss_mb'], '.0f') for r in runs)}),"
                f" best {rows / min(r['seconds'] for r in runs):>9,.0f} rows/s,"
                f" CPU {min(r['cpu_s'] for r in runs):5.1f} s"
            )
        print(line, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", choices=["sink", "portal"])
    ap.add_argument("--encoders", action="store_true", help="compare body encoders and float text in-process")
    ap.add_argument("--memory", help="sizes (e.g. 250000,1000000): peak RSS of route to the sink for each")
    ap.add_argument("--against", help="with --memory: another source tree to compare with (interleaved)")
    ap.add_argument("--to", choices=["sink", "portal"], default="sink", help="with --memory: where to deliver")
    ap.add_argument("--mode", choices=["upsert", "replace"], default="upsert", help="with --memory: how")
    ap.add_argument(
        "--data", default=os.environ.get("ROUTE_BENCH_DATA", str(Path(tempfile.gettempdir()) / "route-bench"))
    )
    args = ap.parse_args()
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    if args.memory:
        if args.mode == "replace" and args.to == "sink":
            raise SystemExit("a replace goes to the local portal: add --to portal")
        memory(data, [int(n) for n in args.memory.split(",")], args.reps, args.against, args.to, args.mode)
        return 0
    csv = data / f"ct_{args.rows}.csv"
    if not csv.exists():
        subprocess.run([sys.executable, str(GEN), "csv", "--rows", str(args.rows), "--out", str(csv)], check=True)
    if args.encoders:
        encoders(csv, max(args.reps, 5))
        return 0
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("sink", "portal"):
            if args.only and args.only != name:
                continue
            target = Sink() if name == "sink" else Portal(work)
            try:
                # Interleaved (route, sodapy, route, ...) so that a busy machine slows both alike.
                for _ in range(args.reps):
                    for client in ("route", "sodapy"):
                        results.setdefault((name, client), []).append(run_case(client, target, csv, work, args.rows))
                for client in ("route", "sodapy"):
                    runs = results[(name, client)]
                    med = statistics.median(r["seconds"] for r in runs)
                    print(
                        f"{name:6} {client:6} median {med:6.2f} s  {args.rows / med:>9,.0f} rows/s  "
                        f"peak RSS {max(r['peak_rss_mb'] for r in runs):5.0f} MB  "
                        f"CPU {statistics.median(r['cpu_s'] for r in runs):5.1f} s  "
                        f"(runs: {', '.join(format(r['seconds'], '.2f') for r in runs)})",
                        flush=True,
                    )
            finally:
                target.stop()
    for name in ("sink", "portal"):
        if (name, "route") in results:
            r = statistics.median(x["seconds"] for x in results[(name, "route")])
            s = statistics.median(x["seconds"] for x in results[(name, "sodapy")])
            goal = 2.0 if name == "sink" else 1.5
            print(f"{name}: route is {s / r:.2f}x as fast as sodapy (goal {goal}x)")
    print(json.dumps({f"{k[0]}/{k[1]}": v for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
