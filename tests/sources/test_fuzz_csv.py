"""Fuzzing the csv source: whatever the bytes, rows and rejects with their lines, or a clean error.

Property-based (hypothesis) on the source itself, with both readers (pyarrow and Python's csv
module), on random bytes and on mutations of a well-formed file (quotes, line breaks, encodings,
NUL bytes, ragged rows); then mutated files through the real `route execute`: never a traceback
or an "internal error". Bounded to a few seconds a test by default; `ROUTE_FUZZ=long` runs many
more cases (see fuzzkit).
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from fuzzkit import FUZZ, mutate, scaled
from hypothesis import given
from hypothesis import strategies as st
from sourcekit import make_ctx, rejects

from pipeline.basics.errors import RunFailed
from pipeline.sources.csv import CsvSource

WELL_FORMED = (
    "id,name,amount,note\r\n"
    '1,Ann,10.50,"a, quoted ""note"""\r\n'
    '2,Bob,,"two\nlines"\r\n'
    '3,"Çé中",-3,\r\n'
    "\r\n"
    "4,Dee,7,plain\r\n"
)
CSV_BYTES = st.binary(max_size=400)
CSV_SOUP = st.lists(
    st.sampled_from(
        [
            "a",
            "b",
            "1",
            ",",
            ";",
            "\t",
            '"',
            "'",
            "\n",
            "\r",
            "\r\n",
            " ",
            "#",
            "\x00",
            "é",
            "\ufeff",
            '""',
            '"a,b"',
            "\\",
        ]
    ),
    max_size=60,
).map("".join)
MUTATED = st.tuples(st.integers(0, 2**32), st.integers(1, 8)).map(
    lambda t: mutate(WELL_FORMED, random.Random(t[0]), t[1])
)
OPTIONS = st.sampled_from(
    [
        {},
        {"encoding": "cp1252"},
        {"encoding": "utf-16"},
        {"header": False},
        {"comment": "#"},
        {"delimiter": ";", "quote": False},
        {"escape": "\\"},
        {"null_values": ["NA"], "file_column": "f"},
        {"header_row": 2},
        {"skip_rows": 1},
    ]
)


def read_all(tmp_path: Path, content: bytes, options: dict):
    """(rows as (line, values), rejects) or the RunFailed message; nothing else may come out."""
    for old in ("data.csv", "rejects.csv"):
        (tmp_path / old).unlink(missing_ok=True)
    (tmp_path / "data.csv").write_bytes(content)
    ctx = make_ctx(tmp_path, chunk_rows=3, step="csv")
    started = time.monotonic()
    try:
        chunks = list(CsvSource({"path": "data.csv", **options}, ctx).chunks())
    except RunFailed as exc:
        message = str(exc)
        assert message.startswith("data.csv") or message.startswith("csv source:"), message
        return message
    finally:
        ctx.run.rejects.close()
        assert time.monotonic() - started < 30
    lines = [int(i) for c in chunks for i in c.index]
    assert all(line >= 1 for line in lines) and lines == sorted(lines) and len(set(lines)) == len(lines)
    bad = rejects(tmp_path)
    assert all(int(line) >= 1 and reason.startswith(f"line {line} has ") for line, reason, _ in bad)
    return [(line, tuple(c.loc[line].tolist())) for c in chunks for line in c.index], bad


def check(tmp_path: Path, content: bytes, options: dict) -> None:
    """Both readers keep the contract, and agree. Except with an escape character: after a
    closing quote, Python's csv module takes the escape character literally once, pyarrow as an
    escape (`"a"\\` at the end of a line), so on such broken text one reads a row where the other
    finds a quote never closed; both are clean answers."""
    results = {
        engine: read_all(tmp_path, content, {**options, "engine": engine})
        for engine in (["python"] if "comment" in options else ["pyarrow", "python"])
    }
    if len(results) == 2 and "escape" not in options:
        assert results["pyarrow"] == results["python"], content


# Each example in a folder of its own that goes with it: thousands of pytest tmp folders (the long
# profile) would outlive pytest's retention, which other test sessions on the machine apply.
@FUZZ
@given(CSV_BYTES | CSV_SOUP.map(lambda s: s.encode("utf-8")), OPTIONS)
def test_csv_source_on_random_bytes(content, options):
    with tempfile.TemporaryDirectory() as folder:
        check(Path(folder), content, options)


@FUZZ
@given(MUTATED, OPTIONS)
def test_csv_source_on_mutated_files(text, options):
    with tempfile.TemporaryDirectory() as folder:
        check(Path(folder), text.encode("utf-8"), options)


# -- the real command --------------------------------------------------------------------------

ROUTE = """\
name: fuzz
source:
  csv: {path: data.csv, encoding: ENCODING}
source_transforms:
  - trim: [name]
  - filter: "id is not null"
targets:
  - name: out
    deliver:
      jsonl: {path: out.jsonl}
"""


# what a header that lost a column gives: the rule's line and column, before a row is read
UNKNOWN_COLUMN = re.compile(r"route\.yaml:\d+:\d+: \S+: unknown column '")


def _files(count: int, seed: int) -> list[bytes]:
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        text = mutate(WELL_FORMED * rnd.choice([1, 1, 50]), rnd, rnd.randint(1, 8))
        raw = text.encode("utf-8")
        if rnd.random() < 0.2:  # a few broken at the byte level: cut inside a character, stray bytes
            i = rnd.randrange(len(raw) + 1)
            raw = raw[:i] + bytes([rnd.randrange(256)]) * rnd.randint(1, 3) + raw[i:]
        out.append(raw)
    return out


def test_route_execute_on_mutated_csv_files(tmp_path, route_cli):
    """Many mutated CSV files through `route execute`: exit 0, exit 1 with an error message, or
    exit 2 when the mangled header lacks a column the route reads (named at its line and column
    before a row is read); never a traceback or an internal error."""
    route = tmp_path / "route.yaml"
    route.write_text(ROUTE.replace("ENCODING", "utf-8"))
    codes = {0: 0, 1: 0, 2: 0}
    for content in _files(scaled(80, 3_000), seed=21):
        (tmp_path / "data.csv").write_bytes(content)
        (tmp_path / "out.jsonl").unlink(missing_ok=True)  # each run a first delivery
        started = time.monotonic()
        result = route_cli("execute", str(route))
        assert time.monotonic() - started < 30, content
        assert "Traceback" not in result.output and "internal error" not in result.output, (content, result.output)
        assert result.exit_code in codes, (content, result.output)
        codes[result.exit_code] += 1
        if result.exit_code == 1:  # a message to act on: the file and line, the step, the rejects
            assert any(line.startswith("error: ") for line in result.stderr.splitlines()), (content, result.stderr)
        if result.exit_code == 2:
            assert UNKNOWN_COLUMN.search(result.stderr), (content, result.stderr)
    assert codes[0] > 0 and codes[1] > 0


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_route_execute_in_subprocesses(tmp_path, encoding):
    """A few mutated CSV files through the installed command, each in its own process."""
    route = tmp_path / "route.yaml"
    route.write_text(ROUTE.replace("ENCODING", encoding))
    for content in _files(scaled(2, 50), seed=22 if encoding == "utf-8" else 23):
        (tmp_path / "data.csv").write_bytes(content)
        (tmp_path / "out.jsonl").unlink(missing_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "execute", str(route)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode in (0, 1, 2), (content, done.stderr)
        if done.returncode == 2:
            assert UNKNOWN_COLUMN.search(done.stderr), (content, done.stderr)
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr, (content, done.stderr)
