"""Issue 19 item 5's benchmark: how fast commands start, and how much memory they take.

    python bench/bench_startup.py [--runs N] [--against TREE]

Times `route --help`, `route validate` of the payroll example (routes/payroll) and `route execute`
of the same route (on a copy in a temporary folder, so the run's files and local portal stay out
of the repository), each in a fresh process. Prints the best wall time of N runs (default 5), with
that run's CPU time (user + system: less swayed by other work on the machine) and peak RSS. With `--against TREE` (a checkout of another commit, e.g. made with
`git archive COMMIT pipeline transforms | tar -x -C TREE`), TREE's pipeline/ and transforms/ are put
first on PYTHONPATH for a second column, with the runs interleaved so that load on the machine
falls on both alike, and the ratio is printed.

Python's bytecode cache is on for these runs (PYTHONDONTWRITEBYTECODE is cleared, and one run of
each command warms it), as it is for an installed route: without it every module is compiled
again on every start, which adds about 0.1 s to `route validate` here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _common import bytecode_env  # noqa: E402

PAYROLL = ROOT / "routes" / "payroll"


def route_command() -> list[str]:
    """The installed `route` script beside this interpreter, else `python -m pipeline.cli`."""
    script = Path(sys.executable).parent / "route"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipeline.cli"]


def run_once(args: list[str], cwd: Path, tree: str | None) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds, peak RSS in MB, exit code) of one run in a fresh process."""
    env = bytecode_env()
    if tree:
        env["PYTHONPATH"] = os.pathsep.join([tree, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--against", help="another source tree to compare with (interleaved)")
    opts = parser.parse_args()
    route = route_command()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("payroll.yaml", "payroll.csv"):
            shutil.copy(PAYROLL / name, work / name)
        commands = {
            "route --help": route + ["--help"],
            "route validate (payroll)": route + ["validate", "payroll.yaml"],
            "route execute (payroll)": route + ["execute", "-q", "payroll.yaml"],
        }
        trees = {"this tree": None, **({"against": opts.against} if opts.against else {})}
        best: dict[tuple[str, str], tuple[float, float, int]] = {}
        for label, args in commands.items():
            for tree in trees.values():
                run_once(args, work, tree)  # writes the bytecode cache
            for _ in range(opts.runs):
                for tree_label, tree in trees.items():  # interleaved: load hits both alike
                    wall, cpu, rss, code = run_once(args, work, tree)
                    if code != 0:
                        sys.exit(f"{label} ({tree_label}) exited {code}")
                    key = (label, tree_label)
                    if key not in best or wall < best[key][0]:
                        best[key] = (wall, cpu, rss)
    print(f"best of {opts.runs}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    for label in commands:
        wall, cpu, rss = best[(label, "this tree")]
        line = f"{label:28} {wall:6.2f} s (cpu {cpu:5.2f} s) {rss:5d} MB"
        if opts.against:
            other, other_cpu, other_rss = best[(label, "against")]
            line += f"   against: {other:6.2f} s (cpu {other_cpu:5.2f} s) {other_rss:5d} MB   ({other / wall:.1f}x)"
        print(line)


if __name__ == "__main__":
    main()
