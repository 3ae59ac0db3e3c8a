"""A sql sync against a replace of the same export: seconds, on SQLite by default.

    python bench/bench_sql_sync.py [--rows 200000] [--changed 0.01] [--reps 3] [--url URL]

A table of `--rows` rows of 8 columns (bench/bench_sql.py's rows) is loaded once; the next export
has `--changed` of its rows changed (one column), a thousandth removed and a thousandth added.
Each repetition puts the table back as loaded (outside the timed region), then times the sync of
the next export, then, after another reset, its replace, through SqlDelivery driven as the
executor drives it (open, 50,000-row chunks, prepare_commit, close: one transaction, committed).
Prints the median seconds of each, what the sync wrote, and the peak RSS of the process (which
holds the pre-built chunks: about 250 MB for 1,000,000 rows).
--url runs the same against PostgreSQL or MariaDB (a table bench_sql_sync_<pid> is made and
dropped).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def exports(rows: int, changed: float):
    """The first export's chunks and the next export's (changed, removed, added rows)."""
    import numpy as np
    import pandas as pd
    from bench_sql import frames

    first = frames(rows)
    step = max(int(round(1 / changed)), 1) if changed > 0 else 0
    gone = max(rows // 1000, 1)
    nxt = []
    for chunk in first:
        c = chunk.copy()
        ids = c["id"].to_numpy(dtype="int64")
        if step:
            hit = ids % step == 0
            c.loc[hit, "amount"] = c.loc[hit, "amount"] + 1
        nxt.append(c[ids % 1000 != 1].reset_index(drop=True))  # a thousandth removed
    added = frames(gone)[0]
    added["id"] = pd.array(np.arange(rows + 1, rows + gone + 1), dtype=added["id"].dtype)
    nxt.append(added)
    return first, nxt


def deliver(url: str, table: str, mode: str, chunks, tmp: Path):
    from pipeline.basics.context import RunContext, RunOptions, StepContext
    from pipeline.deliveries.sql import SqlDelivery

    run = RunContext("bench", tmp / "route.yaml", tmp / ".route", "bench", options=RunOptions(force=True))
    d = SqlDelivery({"url": url, "table": table, "key": "id", "mode": mode}, StepContext(run, "deliver", mode))
    d.open(list(chunks[0].columns))
    for c in chunks:
        d.write(c)
    d.prepare_commit()
    return d.close()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--changed", type=float, default=0.01)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--url", help="a PostgreSQL or MariaDB URL (default: a SQLite file)")
    args = ap.parse_args(argv)

    import os

    from pipeline.basics.sqlurls import make_engine

    tmp = Path(tempfile.mkdtemp(prefix="route-bench-sync-"))
    first, nxt = exports(args.rows, args.changed)
    table = f"bench_sql_sync_{os.getpid()}"
    sqlite = args.url is None
    url = f"sqlite:///{tmp / 'work.db'}" if sqlite else args.url
    pristine = tmp / "loaded.db"
    if sqlite:  # load once, copy the file back before each run
        deliver(f"sqlite:///{pristine}", table, "sync", first, tmp)

    def reset() -> None:
        if sqlite:
            shutil.copyfile(pristine, tmp / "work.db")
        else:
            deliver(url, table, "replace", first, tmp)

    times = {"sync": [], "replace": []}
    result = None
    try:
        for _ in range(args.reps):
            for mode in ("sync", "replace"):
                reset()
                start = time.perf_counter()
                out = deliver(url, table, mode, nxt, tmp)
                times[mode].append(time.perf_counter() - start)
                result = out if mode == "sync" else result
    finally:
        if not sqlite:
            engine = make_engine(url)
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    where = "SQLite" if sqlite else make_engine(url).dialect.name
    print(
        f"{where}: {args.rows:,} rows of 8 columns; next export: {args.changed:.0%} changed, "
        f"{args.rows // 1000:,} removed, {args.rows // 1000:,} added; median of {args.reps}"
    )
    for mode, secs in times.items():
        print(f"{mode:<8} {statistics.median(secs):7.2f} s   (min {min(secs):.2f}, max {max(secs):.2f})")
    print(
        f"sync wrote: {result.created:,} created, {result.updated:,} updated, {result.deleted:,} deleted, "
        f"{result.details.get('unchanged', 0):,} unchanged"
    )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
