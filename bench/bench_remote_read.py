"""Peak RSS and MB/s of the csv source reading one large CSV from this machine, over HTTP and over
SFTP: a remote file must stream in the same bounded memory as a local one.

    python bench/bench_remote_read.py [--mb 200] [--protocols local,http,sftp] [--chunk-rows 50000]

The file (default 200 MB) is generated once into a temporary folder; an HTTP server and an SFTP
server (tests/remotekit.py, the test suite's own) serve it on 127.0.0.1 from this process. Each
case reads it in a fresh interpreter (the csv source alone, every chunk, nothing kept), whose
peak RSS (ru_maxrss, imports included) is printed, with the rows and seconds; the servers'
memory is this process's, not the reader's.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))


def generate(path: Path, mb: int) -> int:
    """A CSV of about `mb` MB: id, a town, an amount, a date and 60 characters of text."""
    towns = ["Hartford", "New Haven", "Stamford", "Waterbury", "Norwalk", "Danbury", "Bristol"]
    rows, size, target = 0, 0, mb << 20
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("id,town,amount,date,note\n")
        while size < target:
            lines = [
                f"{i},{towns[i % 7]},{i % 9973}.{i % 100:02d},2024-{1 + i % 12:02d}-{1 + i % 28:02d},"
                f"{'payment for services rendered in quarter ' + str(i % 4 + 1):<60}\n"
                for i in range(rows, rows + 100_000)
            ]
            block = "".join(lines)
            f.write(block)
            size += len(block)
            rows += len(lines)
    return rows


def child(path: str, auth: str, chunk_rows: int) -> None:
    """Read every chunk of `path` with the csv source; print rows, seconds, peak RSS as JSON."""
    from pipeline.sources.csv import CsvSource
    from pipeline.testing import step_context

    folder = tempfile.mkdtemp(prefix="bench-remote-")
    ctx = step_context(folder, chunk_rows=chunk_rows, stage="source", step="csv", route_name="bench")
    options = {"path": path, **({"auth": json.loads(auth)} if auth else {})}
    source = CsvSource(options, ctx)
    t0, rows = time.perf_counter(), 0
    for chunk in source.chunks():
        rows += len(chunk)
    source.close()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--protocols", default="local,http,sftp")
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.chunk_rows)
        return
    from remotekit import PASSWORD, USER, HttpFiles, SftpFiles

    folder = Path(tempfile.mkdtemp(prefix="bench-remote-files-"))
    data = folder / "big.csv"
    t0 = time.perf_counter()
    rows = generate(data, args.mb)
    size = data.stat().st_size
    print(f"generated {size / 2**20:,.0f} MiB, {rows:,} rows in {time.perf_counter() - t0:.1f} s")
    servers, cases = [], []
    for protocol in args.protocols.split(","):
        if protocol == "local":
            cases.append(("local", str(data), ""))
        elif protocol == "http":
            servers.append(http := HttpFiles(folder))
            cases.append(("http", http.url("big.csv"), ""))
        elif protocol == "sftp":
            servers.append(sftp := SftpFiles(folder))
            cases.append(("sftp", sftp.url("big.csv"), json.dumps({"username": USER, "password": PASSWORD})))
    print(f"{'case':<6} {'rows':>12} {'seconds':>8} {'MB/s':>7} {'peak RSS MB':>12}")
    try:
        for name, path, auth in cases:
            out = subprocess.run(
                [sys.executable, __file__, "--chunk-rows", str(args.chunk_rows), "--child", path, auth],
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(HERE.parent)},
            )
            if out.returncode:
                print(f"{name}: failed\n{out.stderr[-2000:]}")
                continue
            got = json.loads(out.stdout.strip().splitlines()[-1])
            rate = size / 2**20 / got["seconds"]
            print(f"{name:<6} {got['rows']:>12,} {got['seconds']:>8.1f} {rate:>7.1f} {got['peak_mb']:>12.0f}")
    finally:
        for server in servers:
            server.stop()
        data.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
