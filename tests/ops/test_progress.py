"""What a person watching a run sees: the phases as they come, off a terminal too (piped, under
cron), and a summary whose rows/s is the rate the progress showed while reading."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap


def test_piped_output_names_each_phase_and_the_summary_times_each_target(write_route, tmp_path):
    rows = "".join(f"{i},name {i}\n" for i in range(50_000))
    path = write_route(
        """
        name: phases
        chunk_rows: 5000
        source: {csv: {path: data.csv}}
        targets:
          - name: archive
            deliver: {jsonl: {path: out/archive.jsonl}}
          - name: table
            deliver: {csv: {path: out/table.csv}}
        """,
        **{"data.csv": "id,name\n" + rows},
    )
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "execute", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, ROUTE_PROGRESS_AFTER="0"),  # every phase, however quick the run
    )
    assert done.returncode == 0, done.stderr
    phases = [m.group(1) for m in re.finditer(r"^phases: (\w+): ", done.stderr, re.M)]
    assert phases[:1] == ["reading"] and "sending" in phases and "committing" in phases, done.stderr
    assert phases.index("reading") < phases.index("sending") < phases.index("committing")
    assert re.search(r"^phases: committing: 50,000 rows read \([\d,]+ rows/s\); archive", done.stderr, re.M)
    head = done.stdout.splitlines()[0]
    assert re.search(r"\(50,000 rows read at [\d,]+ rows/s\)$", head), head
    lines = done.stdout.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("target ")) :]
    assert "seconds" in table[0] and "rows/s" in table[0]
    assert table[1].split()[:2] == ["archive", "jsonl"] and table[2].split()[:2] == ["table", "csv"]


def test_a_quick_run_prints_only_its_summary_when_piped(write_route):
    path = write_route(
        """
        name: quick
        source: {csv: {path: data.csv}}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
        """,
        **{"data.csv": "id\n1\n"},
    )
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "execute", str(path)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.startswith("route quick run ")


def test_quiet_prints_no_progress(route_cli, write_route):
    path = write_route(
        """
        name: hush
        source: {csv: {path: data.csv}}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
        """,
        **{"data.csv": "id\n1\n"},
    )
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "execute", "-q", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "reading" not in done.stderr and done.stderr.strip() == ""


def test_a_replace_says_when_it_uploads_and_applies_its_revision(portal, tmp_path):
    ds = portal.create()
    rows = "".join(f"C-{i},open,{i},2024-01-01,false\n" for i in range(2_000))
    (tmp_path / "cases.csv").write_text("case_id,status,amount,opened,closed\n" + rows)
    target = textwrap.indent(portal.target(ds) + "mode: replace\n", " " * 8)
    path = tmp_path / "swap.yaml"
    path.write_text(
        "name: swap\nsource: {csv: {path: cases.csv}}\ntargets:\n  - name: portal\n    deliver:\n"
        "      socrata:\n" + target
    )
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "execute", str(path), *portal.route_args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, ROUTE_PROGRESS_AFTER="0"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    uploading = done.stderr.find("portal uploading 2,000 rows")
    applying = done.stderr.find("portal applying the revision")
    assert 0 <= uploading < applying, done.stderr
