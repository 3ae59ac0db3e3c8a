#!/usr/bin/env python3
"""How fast the local portal takes upserts, and a route to it beside a sodapy script (issue 19).

The portal runs in its own process (as `route portal serve` would) on a fresh SQLite file; every run
gets a fresh dataset shaped like the CT real-estate data (13 columns, row identifier `id`). Three
cases, interleaved (portal, route, sodapy, portal, ...) so that a busy machine slows them alike, and
the best of `--reps` of each:

  portal  the portal alone: 10,000-row bodies encoded before the clock starts, posted by `--clients`
          keep-alive sessions; two passes on one dataset, inserts (new keys) then updates (same keys).
  route   `route execute` of a route that reads the CSV, casts ids, years, dates and amounts, and
          upserts to the portal at the socrata delivery's defaults (10,000-row batches, 4 in flight).
  sodapy  bench_socrata.py's plain script doing the same work: pandas chunks, the same conversions,
          sodapy's upsert at its defaults (10,000-row batches, one at a time).

route and sodapy are whole processes (imports included), rows / wall seconds. Prints rows/s, the
portal process's CPU seconds per 1M rows for each case, and route / sodapy.

    python bench/bench_portal.py [--rows 1000000] [--reps 3] [--clients 2] [--numbers json|text]
    python bench/bench_portal.py --only portal     # the portal alone, as before
    python bench/bench_portal.py --only portal --baseline /tmp/old   # ... beside an older portal

`--baseline DIR` serves a second portal from another source tree (DIR/pipeline, e.g. made with
`git archive OLD pipeline | tar -x -C DIR`) and adds a case `baseline`, the portal alone on it,
interleaved with the others, so a change to the portal is measured against what it replaces in the
same run: on a shared machine only such ratios mean anything.

`--numbers text` has the portal case send every number as a JSON string ("93755.88"); the default
sends JSON numbers. The CSV is made with ../shared/bench/gen.py when it is missing (as bench_socrata.py
does). Not part of the test run.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import orjson
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(1, str(HERE))  # bench_socrata: the route and the sodapy script
from _common import PortalDatasets  # noqa: E402

GEN = Path(os.environ.get("ROUTE_BENCH_GEN", "/work/shared/bench/gen.py"))
USER, SECRET = "bench", "bench-secret"

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
TOWNS = [
    "Andover",
    "Ansonia",
    "Ashford",
    "Avon",
    "Berlin",
    "Bethel",
    "Bristol",
    "Canton",
    "Darien",
    "Enfield",
    "Hartford",
    "New Haven",
    "Stamford",
    "West Haven",
    "Windsor",
]
TYPES = ["Residential", "Commercial", "Vacant Land", "Condo", "Single Family", None]


NUMBER_FIELDS = [f for f, t in COLUMNS if t == "number"]


def bodies(rows: int, batch: int, seed: int = 1, numbers: str = "json") -> list[bytes]:
    """Request bodies like route sends them: numbers as JSON numbers (or as text), ISO dates, nulls present."""
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        ids = np.arange(start + 1, start + n + 1).tolist()
        years = rng.integers(2001, 2024, n).tolist()
        days = rng.integers(0, 8000, n)
        dates = np.datetime_as_string(np.datetime64("2001-01-01") + days.astype("timedelta64[D]"), unit="D").tolist()
        stamps = np.datetime_as_string(
            np.datetime64("2001-01-01T00:00:00") + (days * 86400 + rng.integers(0, 86400, n)).astype("timedelta64[s]"),
            unit="s",
        ).tolist()
        assessed = np.round(rng.lognormal(11.8, 0.8, n), 2).tolist()
        sale = np.round(rng.lognormal(12.1, 0.8, n), 2).tolist()
        lat = np.round(rng.uniform(40.98, 42.05, n), 6).tolist()
        lon = np.round(rng.uniform(-73.73, -71.79, n), 6).tolist()
        town = [TOWNS[i] for i in rng.integers(0, len(TOWNS), n)]
        ptype = [TYPES[i] for i in rng.integers(0, len(TYPES), n)]
        number = rng.integers(1, 2500, n).tolist()
        records = [
            {
                "id": ids[i],
                "list_year": years[i],
                "date_recorded": dates[i],
                "town": town[i],
                "address": f"{number[i]} MAIN ST",
                "assessed_value": assessed[i],
                "sale_amount": sale[i],
                "property_type": ptype[i],
                "residential_type": None,
                "remarks": 'Short sale, "as is", lender approved' if i % 2 else None,
                "latitude": lat[i],
                "longitude": lon[i],
                "updated_at": stamps[i],
            }
            for i in range(n)
        ]
        if numbers == "text":
            for r in records:
                for f in NUMBER_FIELDS:
                    r[f] = str(r[f])
        out.append(orjson.dumps(records))
    return out


def serve(path: str, ready, stop, tree: str | None = None) -> None:
    if tree:  # the portal of another source tree (--baseline)
        sys.path.insert(0, tree)
    from pipeline.portal import LocalPortal

    portal = LocalPortal(path, users={USER: SECRET})
    server = portal.serve()
    ready.send((server.url, os.getpid()))
    stop.recv()
    server.stop()
    ready.send(True)


class Portal(PortalDatasets):
    """The portal process, and a session that makes its datasets and counts their rows."""

    columns = COLUMNS

    def __init__(self, folder: str, tree: str | None = None):
        ctx = mp.get_context("spawn")
        self._ready, ready_child = ctx.Pipe()
        self._stop, stop_child = ctx.Pipe()
        name = "baseline.sqlite" if tree else "portal.sqlite"
        self.proc = ctx.Process(target=serve, args=(os.path.join(folder, name), ready_child, stop_child, tree))
        self.proc.start()
        url, self.pid = self._ready.recv()
        self.connect(url, USER, SECRET)

    def cpu(self) -> float:
        """The portal process's CPU seconds so far (user + system)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self._stop.send(True)
        self._ready.recv()
        self.proc.join()


def post_all(url: str, ff: str, payloads: list[bytes], clients: int) -> float:
    todo = list(enumerate(payloads))
    lock = threading.Lock()
    errors = []

    def worker():
        session = requests.Session()
        session.auth = (USER, SECRET)
        while True:
            with lock:
                if not todo:
                    return
                _, body = todo.pop(0)
            r = session.post(f"{url}/resource/{ff}.json", data=body, headers={"Content-Type": "application/json"})
            if r.status_code != 200:
                errors.append(r.text)
                return

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"portal refused a batch: {errors[0][:300]}")
    return time.perf_counter() - start


def portal_case(portal: Portal, payloads: list[bytes], rows: int, clients: int) -> dict:
    """Both passes on a fresh dataset; the faster pass counts (as UPSERT_ROWS_PER_S always did)."""
    ff = portal.dataset()
    cpu = portal.cpu()
    passes = [post_all(portal.url, ff, payloads, clients) for _ in ("insert", "update")]
    cpu = portal.cpu() - cpu
    got = portal.rows(ff)
    if got != rows:
        raise SystemExit(f"portal: the dataset has {got} rows, expected {rows}")
    return {"seconds": min(passes), "passes": passes, "portal_cpu": cpu / 2}


def client_case(client: str, portal: Portal, csv: Path, work: Path, rows: int) -> dict:
    from bench_socrata import ROUTE, SODAPY, delivery_name, timed

    ff = portal.dataset()
    cpu = portal.cpu()
    if client == "route":
        route = work / "route.yaml"
        # the socrata delivery's defaults: batch_rows and concurrency are left out
        text = ROUTE.format(
            csv=csv, delivery=delivery_name(), url=portal.url, dataset=ff, mode="upsert", user=USER, secret=SECRET
        )
        route.write_text(text.replace("        batch_rows: 10000\n", ""))
        result = timed(["route", "execute", str(route), "--state", str(work / "state")], work)
    else:
        script = work / "sodapy_upsert.py"
        script.write_text(SODAPY)
        host = portal.url.split("://", 1)[1]
        result = timed([sys.executable, str(script), str(csv), host, ff, USER, SECRET], work)
    result["portal_cpu"] = portal.cpu() - cpu
    got = portal.rows(ff)
    if got != rows:
        raise SystemExit(f"{client}: the dataset has {got} rows, expected {rows}")
    return result


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000, help="rows per request in the portal case")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--clients", type=int, default=2, help="requests in flight at once in the portal case")
    ap.add_argument("--numbers", choices=("json", "text"), default="json", help="numbers as JSON numbers or as text")
    ap.add_argument("--only", choices=CASES)
    ap.add_argument("--baseline", metavar="DIR", help="also time the portal alone as served from DIR/pipeline")
    ap.add_argument(
        "--data", default=os.environ.get("ROUTE_BENCH_DATA", str(Path(tempfile.gettempdir()) / "route-bench"))
    )
    a = ap.parse_args(argv)
    cases = [a.only] if a.only else list(CASES)
    if a.baseline:
        cases.insert(cases.index("portal") + 1 if "portal" in cases else 0, "baseline")
    payloads, csv = [], None
    if "portal" in cases or "baseline" in cases:
        print(f"encoding {a.rows:,} rows in batches of {a.batch:,}, numbers as {a.numbers} ...", flush=True)
        payloads = bodies(a.rows, a.batch, numbers=a.numbers)
    if "route" in cases or "sodapy" in cases:
        data = Path(a.data)
        data.mkdir(parents=True, exist_ok=True)
        csv = data / f"ct_{a.rows}.csv"
        if not csv.exists():
            subprocess.run([sys.executable, str(GEN), "csv", "--rows", str(a.rows), "--out", str(csv)], check=True)
    results: dict[str, list[dict]] = {c: [] for c in cases}
    with tempfile.TemporaryDirectory(prefix="bench-portal-") as tmp:
        portal = Portal(tmp)
        baseline = Portal(tmp, a.baseline) if a.baseline else None
        try:
            for rep in range(a.reps):
                for case in cases:
                    if case in ("portal", "baseline"):
                        r = portal_case(portal if case == "portal" else baseline, payloads, a.rows, a.clients)
                        detail = "insert {:.2f} s, update {:.2f} s".format(*r["passes"])
                    else:
                        r = client_case(case, portal, csv, Path(tmp), a.rows)
                        # no peak RSS: a child forked from this process, which holds the encoded
                        # bodies, is charged their pages until it execs (route's own peak comes
                        # from bench_socrata.py --memory, whose parent is small)
                        detail = f"client CPU {r['cpu_s']:.1f} s"
                    results[case].append(r)
                    print(
                        f"run {rep + 1} {case:7s} {a.rows / r['seconds']:>9,.0f} rows/s  "
                        f"portal CPU {r['portal_cpu'] / a.rows * 1e6:4.1f} s per 1M rows  ({detail})",
                        flush=True,
                    )
        finally:
            portal.stop()
            if baseline is not None:
                baseline.stop()
    best = {c: min(results[c], key=lambda r: r["seconds"]) for c in cases}
    print(f"best of {a.reps}, {a.rows:,} rows:")
    for c in cases:
        print(f"  {c:7s} {a.rows / best[c]['seconds']:>9,.0f} rows/s  ({LABELS[c]})")
    if "route" in best and "sodapy" in best:
        ratio = best["sodapy"]["seconds"] / best["route"]["seconds"]
        print(f"  route / sodapy: {ratio:.2f}x (goal 2x)")
    if "portal" in best and "baseline" in best:
        ratio = best["baseline"]["seconds"] / best["portal"]["seconds"]
        cpu = best["portal"]["portal_cpu"] / best["baseline"]["portal_cpu"]
        print(f"  portal / baseline: {ratio:.2f}x rows/s, {cpu:.2f}x the portal CPU per row")
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if "portal" in best:
        print(f"UPSERT_ROWS_PER_S {a.rows / best['portal']['seconds']:,.0f}")


CASES = ("portal", "route", "sodapy")
LABELS = {
    "baseline": "the portal alone as served from --baseline, same bodies",
    "portal": "the portal alone, pre-encoded bodies, the faster of inserts and updates",
    "route": "route execute, CSV to the portal, whole process",
    "sodapy": "a pandas + sodapy script, CSV to the portal, whole process",
}


if __name__ == "__main__":
    main()
