#!/usr/bin/env python3
"""What the delivery journal costs: the same upsert with the journal on and off, interleaved.

Upserts a CSV (1,000,000 rows by default) in 10,000-row batches to bench/sink.py, a minimal SODA
endpoint, so that the client's own cost is what is measured. With the journal on (as route always
runs) every batch writes two fsynced records (sent, confirmed); "off" replaces the journal with
the no-op one previews use. Runs alternate on/off so that load on the machine hits both alike;
the goal is a cost under 5 % of throughput.

    python bench/bench_journal.py [--rows 1000000] [--reps 3] [--data DIR]

Not part of the test run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_socrata import GEN, ROUTE, SECRET, USER, Sink, delivery_name, timed  # noqa: E402

# `route execute` with the journal replaced by the no-op one (for the "off" runs only).
NO_JOURNAL = (
    "import sys, pipeline.basics.context as c, pipeline.runs.journal as j\n"
    "j.Journal = lambda *a, **k: c.NoJournal()\n"
    "from pipeline.cli import main\n"
    "sys.argv = ['route'] + sys.argv[1:]\n"
    "main()\n"
)


def make_csv(path: Path, rows: int) -> Path:
    if not path.exists():
        import subprocess

        subprocess.run([sys.executable, str(GEN), "csv", "--rows", str(rows), "--out", str(path)], check=True)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--data", type=Path, help="folder for the generated CSV (kept between runs)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-journal-"))
    csv = make_csv((args.data or work) / f"sales-{args.rows}.csv", args.rows)
    sink = Sink()
    results: dict[str, list[float]] = {"on": [], "off": []}
    try:
        for rep in range(args.reps):
            for mode in ("on", "off") if rep % 2 == 0 else ("off", "on"):
                dataset = sink.dataset()
                route = work / "route.yaml"
                route.write_text(
                    ROUTE.format(
                        csv=csv, delivery=delivery_name(), url=sink.url, dataset=dataset, user=USER, secret=SECRET
                    )
                )
                cmd = [sys.executable, "-m", "pipeline.cli"] if mode == "on" else [sys.executable, "-c", NO_JOURNAL]
                result = timed([*cmd, "execute", str(route), "--state", str(work / f"state-{mode}"), "-q"], work)
                got = sink.rows(dataset)
                if got != args.rows:
                    raise SystemExit(f"journal {mode}: the sink has {got} rows, expected {args.rows}")
                results[mode].append(args.rows / result["seconds"])
                print(
                    f"rep {rep + 1} journal {mode:3}: {args.rows / result['seconds']:>10,.0f} rows/s "
                    f"({result['seconds']:.2f} s, peak RSS {result['peak_rss_mb']:.0f} MB)",
                    flush=True,
                )
    finally:
        sink.stop()
    on, off = statistics.median(results["on"]), statistics.median(results["off"])
    cost = (off - on) / off
    print(
        f"median: journal on {on:,.0f} rows/s, off {off:,.0f} rows/s: the journal costs {cost:.1%} "
        f"of throughput (goal < 5%)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
