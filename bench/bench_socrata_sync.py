#!/usr/bin/env python3
"""Mode sync against mode replace on the local portal: 1,000,000 rows, then 1 % of them changed,
0.5 % removed and 0.5 % added.

Three datasets get the same first load; then the changed source goes

  (a) by sync, with the hashes the first sync kept (the usual case),
  (b) by sync, with the state folder deleted first (the hashes are read back from the portal),
  (c) by replace (a revision with every row).

Each `route execute` runs in a process of its own (the portal in another, as `route portal serve`
would run it); wall seconds and peak RSS are that process's, bytes sent and counts come from its
`--json` report. The three datasets are checked to end alike (row count, sum of amounts, rows per
status). Not part of the test run.

    python bench/bench_socrata_sync.py [--rows 1000000] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PortalDatasets  # noqa: E402

USER, SECRET = "bench", "bench-secret"
COLUMNS = [
    ("case_id", "number"),
    ("town", "text"),
    ("address", "text"),
    ("status", "text"),
    ("amount", "number"),
    ("opened", "calendar_date"),
    ("closed", "checkbox"),
    ("remarks", "text"),
]
PORTAL = """\
import sys, time
from pipeline.portal import LocalPortal
portal = LocalPortal(sys.argv[1], users={sys.argv[2]: sys.argv[3]})
server = portal.serve(host="127.0.0.1", port=0, tls=False)
print(server.url, flush=True)
time.sleep(36000)
"""
ROUTE = """\
name: {name}
source:
  csv: {{path: {csv}}}
source_transforms:
  - cast: {{case_id: integer, amount: number, opened: date, closed: boolean}}
targets:
  - name: portal
    deliver:
      socrata:
        domain: {url}
        dataset: {dataset}
        mode: {mode}
        {ri}
        auth: {{username: {user}, password: {secret}}}
"""
TOWNS = np.array(["Hartford", "New Haven", "Stamford", "Waterbury", "Norwalk", "Danbury", "Bristol", "Milford"])


def source(ids: np.ndarray, bump: np.ndarray, status: np.ndarray) -> pd.DataFrame:
    st = np.array(["open", "closed", "pending", "appealed"])[ids % 4]
    return pd.DataFrame(
        {
            "case_id": ids,
            "town": TOWNS[ids % len(TOWNS)],
            "address": pd.Series(ids % 997 + 1).astype(str) + " " + pd.Series(TOWNS[(ids // 7) % len(TOWNS)]) + " St",
            "status": np.where(np.isin(ids, status), "reopened", st),
            "amount": ids * 0.25 + np.where(np.isin(ids, bump), 1000, 0),
            "opened": (pd.Timestamp("2020-01-01") + pd.to_timedelta(ids % 1500, unit="D")).strftime("%Y-%m-%d"),
            "closed": np.where(ids % 3 == 0, "true", "false"),
            "remarks": np.where(ids % 5 == 0, "", "inspection " + pd.Series(ids % 40).astype(str)),
        }
    )


def timed(cmd: list[str], cwd: Path) -> tuple[dict, dict]:
    """Run `cmd` (a `route execute --json`); its wall seconds and peak RSS, and its report's target."""
    out, err = cwd / "out.json", cwd / "err.txt"
    start = time.perf_counter()
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=o, stderr=e)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.read_text()[-3000:]}\n{err.read_text()[-3000:]}")
    report = json.loads(out.read_text())
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}, report["targets"][0]


class Portal(PortalDatasets):
    columns = COLUMNS
    row_id = "case_id"

    def __init__(self, folder: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PORTAL, str(folder / "portal.sqlite"), USER, SECRET],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.connect(self.proc.stdout.readline().strip(), USER, SECRET)

    def summary(self, ds: str) -> tuple:
        get = self.session.get
        total = get(
            f"{self.url}/resource/{ds}.json", params={"$select": "count(*) AS n, sum(amount) AS s"}, timeout=600
        ).json()[0]
        per = get(
            f"{self.url}/resource/{ds}.json",
            params={"$select": "status, count(*) AS n", "$group": "status", "$order": "status"},
            timeout=600,
        ).json()
        return int(total["n"]), float(total["s"]), tuple((r["status"], int(r["n"])) for r in per)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--work", type=Path)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-sync-"))
    work.mkdir(parents=True, exist_ok=True)
    n = args.rows
    ids = np.arange(1, n + 1)
    none = np.array([], dtype=np.int64)
    source(ids, none, none).to_csv(work / "first.csv", index=False)
    step = 200  # 0.5 % of the rows each: removed, amount changed, status changed; 0.5 % added
    removed, bump, status = ids[7::step], ids[3::step], ids[5::step]
    second = np.concatenate([ids[~np.isin(ids, removed)], np.arange(n + 1, n + 1 + len(removed))])
    source(second, bump, status).to_csv(work / "second.csv", index=False)

    portal = Portal(work)
    results = {}
    try:
        names = {"sync": "kept", "rebuilt": "rebuilt", "replace": "replace"}
        datasets = {k: portal.dataset(f"bench {k}") for k in names}

        def run(key: str, csv: str, mode: str) -> tuple[dict, dict]:
            route = work / f"{key}.yaml"
            route.write_text(
                ROUTE.format(
                    name=names[key],
                    csv=work / csv,
                    url=portal.url,
                    dataset=datasets[key],
                    mode=mode,
                    ri="row_identifier: case_id" if mode == "sync" else "",
                    user=USER,
                    secret=SECRET,
                )
            )
            state = work / f"state-{key}"
            return timed(["route", "execute", str(route), "--state", str(state), "--json", "-q"], work)

        for key in names:
            first, target = run(key, "first.csv", "sync" if key != "replace" else "replace")
            sent = target["details"].get("bytes_sent", 0)
            print(f"first load {key:8} {first['seconds']:7.1f} s {first['peak_rss_mb']:6.0f} MB {sent:>14,} bytes")
        shutil.rmtree(work / "state-rebuilt" / "socrata-sync")
        for key in names:
            results[key] = run(key, "second.csv", "sync" if key != "replace" else "replace")
        summaries = {k: portal.summary(ds) for k, ds in datasets.items()}
    finally:
        portal.stop()
    assert len(set(summaries.values())) == 1, summaries
    print(f"\n{n:,} rows; then {len(bump) + len(status):,} changed, {len(removed):,} removed, {len(removed):,} added")
    print(
        f"{'second run':24} {'seconds':>8} {'peak MB':>8} {'bytes sent':>14} {'created':>8} {'updated':>8} "
        f"{'deleted':>8}"
    )
    for key, label in (
        ("sync", "sync (hashes kept)"),
        ("rebuilt", "sync (state deleted)"),
        ("replace", "replace"),
    ):
        t, r = results[key]
        print(
            f"{label:24} {t['seconds']:8.1f} {t['peak_rss_mb']:8.0f} {r['details'].get('bytes_sent', 0):14,} "
            f"{r['created']:8,} "
            f"{r['updated']:8,} {r['deleted']:8,}"
        )
    print(f"every dataset ends alike: {summaries['sync'][:2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
