#!/usr/bin/env python3
"""How fast the local portal takes upserts: 1,000,000 rows in 10,000-row batches (issue 3).

The portal runs in its own process (as `route portal serve` would), on a fresh SQLite file, with a
dataset shaped like the CT real-estate test data (13 columns, row identifier `id`). The client
pre-encodes every batch before the clock starts and posts them over keep-alive sessions, so the
figure is the portal's, not the client's. Two passes: inserts (new keys), then updates (same keys).

    python bench/bench_portal.py [--rows 1000000] [--batch 10000] [--clients 2] [--numbers json|text]

`--numbers text` sends every number as a JSON string ("93755.88"), as a client that keeps the
source's decimal text does; the default sends JSON numbers. Prints rows/s for each pass and the
portal process's CPU seconds (per 1M rows too, so the two forms can be compared).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import orjson
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


def serve(path: str, ready, stop) -> None:
    from pipeline.portal import LocalPortal

    portal = LocalPortal(path, users={"bench": "secret"})
    ff = portal.create_dataset(
        name="bench", columns=[{"fieldName": f, "name": f, "dataTypeName": t} for f, t in COLUMNS], row_identifier="id"
    )
    server = portal.serve()
    ready.send((server.url, ff))
    stop.recv()
    cpu = time.process_time()
    server.stop()
    ready.send(cpu)


def post_all(url: str, ff: str, payloads: list[bytes], clients: int) -> float:
    todo = list(enumerate(payloads))
    lock = threading.Lock()
    errors = []

    def worker():
        session = requests.Session()
        session.auth = ("bench", "secret")
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


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=2, help="requests in flight at once")
    ap.add_argument("--numbers", choices=("json", "text"), default="json", help="numbers as JSON numbers or as text")
    a = ap.parse_args(argv)
    print(f"encoding {a.rows:,} rows in batches of {a.batch:,}, numbers as {a.numbers} ...", flush=True)
    payloads = bodies(a.rows, a.batch, numbers=a.numbers)
    size = sum(map(len, payloads))
    with tempfile.TemporaryDirectory(prefix="bench-portal-") as tmp:
        ctx = mp.get_context("spawn")
        ready_parent, ready_child = ctx.Pipe()
        stop_parent, stop_child = ctx.Pipe()
        proc = ctx.Process(target=serve, args=(os.path.join(tmp, "portal.sqlite"), ready_child, stop_child))
        proc.start()
        url, ff = ready_parent.recv()
        results = []
        for label in ("insert (new keys)", "update (same keys)"):
            seconds = post_all(url, ff, payloads, a.clients)
            results.append((label, seconds))
            print(
                f"{label:20s} {a.rows:,} rows, {size / 1e6:.0f} MB JSON in {seconds:.2f} s: "
                f"{a.rows / seconds:,.0f} rows/s",
                flush=True,
            )
        count = requests.get(f"{url}/resource/{ff}.json", params={"$select": "count(*)"}).json()[0]["count"]
        stop_parent.send(True)
        cpu = ready_parent.recv()
        proc.join()
    assert int(count) == a.rows, f"portal holds {count} rows, expected {a.rows}"
    print(
        f"portal CPU {cpu:.1f} s for both passes ({cpu / 2 / a.rows * 1e6:.1f} CPU-s per 1M rows); "
        f"rows in the dataset: {int(count):,}"
    )
    print(f"UPSERT_ROWS_PER_S {a.rows / min(s for _, s in results):,.0f}")


if __name__ == "__main__":
    main()
