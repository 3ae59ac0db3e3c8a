"""Hostile route files: alias bombs, deep nesting, control characters, huge literals.

Each must be answered quickly, in bounded memory, with `file:line:col: message` and exit 2, by
`route validate` and by the scheduler (which reads every file of its folder). The bombs run in
a subprocess too, so that their time and peak memory are those a user would see.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.expressions import ExpressionError, parse
from pipeline.route.yamllimits import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES

GOOD = """\
name: t
source:
  csv: {path: data.csv}
targets:
  - name: out
    deliver:
      jsonl: {path: out.jsonl}
"""


def alias_bomb(levels: int, width: int = 9) -> str:
    """The "billion laughs" shape: each level lists the one before `width` times."""
    lines = ["name: bomb", f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def validate(route_cli, path: Path, seconds: float = 5):
    started = time.monotonic()
    result = route_cli("validate", str(path))
    elapsed = time.monotonic() - started
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    assert elapsed < seconds, f"route validate took {elapsed:.1f} s"
    return result


def one_problem(route_cli, path: Path, seconds: float = 5) -> str:
    result = validate(route_cli, path, seconds)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("levels", [6, 9, 12])
def test_alias_bomb_is_refused_at_the_alias(route_cli, tmp_path, levels):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(levels))
    line = one_problem(route_cli, path)
    # l3 stands for 9**4 values and more: the sixth alias to it, on line 6, takes the count past 50,000
    assert line == (
        f"{path}:6:35: the alias *l3 takes the file past 50,000 values once aliases are expanded "
        f"(each alias repeats everything its anchor holds); a route file needs far fewer"
    )


def test_alias_bomb_through_merge_keys_is_refused(route_cli, tmp_path):
    lines = ["name: bomb", "a0: &a0 {" + ", ".join(f"k{j}: v" for j in range(10)) + "}"]
    for i in range(1, 8):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"{{<<: *a{i - 1}}}"] * 10) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert "takes the file past 50,000 values" in one_problem(route_cli, path)


def test_a_few_aliases_as_routes_use_them_are_fine(route_cli, tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    path = tmp_path / "route.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: t
        x-out: &out {jsonl: {path: out.jsonl}}
        source:
          csv: {path: data.csv}
        targets:
          - {name: one, deliver: *out}
    """)
    )
    result = validate(route_cli, path)
    assert result.exit_code == 2  # x-out is not a route key, but the aliases themselves load
    assert "unknown key 'x-out'" in result.stderr


def test_recursive_alias_is_refused(route_cli, tmp_path):
    path = tmp_path / "route.yaml"
    path.write_text("name: t\nloop: &a [1, *a]\n")
    assert one_problem(route_cli, path) == (
        f"{path}:2:14: the alias *a is inside the node it refers to, which would make it endless; "
        f"refer to it from outside"
    )


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("shape", ["[", "{a: ", "- ", "indent"])
def test_deep_nesting_is_refused(route_cli, tmp_path, shape, depth):
    if shape == "indent":  # key: / nested mapping on the next line, one space deeper each time
        depth = min(depth, 1_000)  # the file grows with the square of the depth
        text = "".join(f"{' ' * i}k:\n" for i in range(depth)) + " " * depth + "x\n"
        where = f"{MAX_DEPTH + 1}:{MAX_DEPTH + 1}"  # the mapping that opens on that line goes one too deep
    else:
        text = "a:\n  " + shape * depth + "x\n"
        where = f"2:{3 + MAX_DEPTH - 1 if shape == '[' else 3 + len(shape) * (MAX_DEPTH - 1)}"
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    assert one_problem(route_cli, path) == (
        f"{path}:{where}: lists and mappings are nested more than {MAX_DEPTH} levels deep here; "
        f"a route file needs far fewer"
    )


@pytest.mark.parametrize(
    "char,name", [("\x00", "U+0000 (NUL)"), ("\x07", "U+0007"), ("\x1b", "U+001B (ESC)"), ("\x7f", "U+007F (DEL)")]
)
def test_control_characters_are_refused_at_their_place(route_cli, tmp_path, char, name):
    path = tmp_path / "route.yaml"
    path.write_text(GOOD.replace("name: t", f"name: t{char}t"))
    assert one_problem(route_cli, path) == (
        f"{path}:1:8: the control character {name} is not allowed in a YAML file; remove it "
        f"(a NUL often means the file is binary, or saved as UTF-16)"
    )


def test_a_binary_file_is_refused(route_cli, tmp_path):
    path = tmp_path / "route.yaml"
    path.write_bytes(b"name: t\n" + bytes(range(256)))
    assert "not UTF-8 text" in one_problem(route_cli, path)


def test_a_huge_file_is_refused_unread(route_cli, tmp_path):
    path = tmp_path / "route.yaml"
    with open(path, "wb") as f:
        f.write(GOOD.encode())
        f.truncate(MAX_FILE_BYTES + 1)
    assert one_problem(route_cli, path) == f"{path}:1:1: the file is 1.0 MiB; a route file is at most 1 MiB"


def test_a_file_of_too_many_values_is_refused(route_cli, tmp_path):
    path = tmp_path / "route.yaml"
    path.write_text("name: t\nmany: [" + ", ".join(["1"] * (MAX_VALUES + 10)) + "]\n")
    # PyYAML's pure-Python parser takes a few seconds for 50,000 values: more on a busy machine
    assert one_problem(route_cli, path, seconds=30) == (
        f"{path}:2:{8 + 3 * (MAX_VALUES - 3)}: the file holds more than "
        f"{MAX_VALUES:,} values; a route file needs far fewer"
    )


def test_huge_whole_number_in_the_route(route_cli, tmp_path):
    path = tmp_path / "route.yaml"
    path.write_text(GOOD + "on_error:\n  max_rejects: " + "9" * 5_000 + "\n")
    assert one_problem(route_cli, path) == (
        f"{path}:9:16: on_error.max_rejects: a whole number of 5,000 digits is too long; quote it if it is text"
    )


def test_huge_hexadecimal_number_in_the_route(route_cli, tmp_path):
    path = tmp_path / "route.yaml"
    path.write_text(GOOD + "on_error:\n  max_rejects: 0x" + "f" * 5_000 + "\n")
    assert one_problem(route_cli, path) == (
        f"{path}:9:16: on_error.max_rejects: this whole number has more than 300 digits; quote it if it is text"
    )


def test_a_date_that_is_not_one(route_cli, tmp_path):
    path = tmp_path / "route.yaml"
    path.write_text(GOOD + "description: 2024-13-45\n")
    assert one_problem(route_cli, path) == (
        f"{path}:8:14: description: '2024-13-45' reads as a date but is not a valid one "
        f"(month must be in 1..12); quote it to keep it as text"
    )


@pytest.mark.parametrize(
    "value,message",
    [
        ("!!float", "'' reads as a number but is not a valid one; quote it to keep it as text"),
        ("!!bool maybe", "'maybe' reads as true/false but is not a valid one; quote it to keep it as text"),
        (
            "!!int 0x",
            "'0x' reads as a whole number but is not a valid one (invalid literal for int() with "
            "base 16: ''); quote it to keep it as text",
        ),
    ],
)
def test_a_tagged_value_that_is_not_one(route_cli, tmp_path, value, message):
    path = tmp_path / "route.yaml"
    path.write_text(GOOD + f"description: {value}\n")
    assert one_problem(route_cli, path) == f"{path}:8:14: description: {message}"


@pytest.mark.parametrize("step", ["filter", "derive"])
def test_huge_number_in_an_expression(route_cli, tmp_path, step):
    expression = "amount > " + "1" * 5_000
    body = f'"{expression}"' if step == "filter" else f'{{big: "{expression}"}}'
    path = tmp_path / "route.yaml"
    path.write_text(GOOD.replace("targets:", f"source_transforms:\n  - {step}: {body}\ntargets:"))
    col = 23 if step == "filter" else 29
    where = "source_transforms[0].filter" if step == "filter" else "source_transforms[0].derive.big"
    assert one_problem(route_cli, path) == (
        f"{path}:5:{col}: {where}: the number 1111111111...111111 (5,000 characters) is too large; "
        f"the largest is about 1.8e308"
    )


@pytest.mark.parametrize(
    "text,column",
    [
        ("(" * 1_000 + "a" + ")" * 1_000, 51),
        ("a" + " + a" * 5_000, 399),
        ("-" * 5_000 + "a", 51),
        ("not " * 3_000 + "a", 201),
        ("if(a, 1, " * 500 + "2" + ")" * 500, 453),
        ("a in [" + "1, " * 10_000 + "2]", None),
        ("coalesce(" + "a, " * 10_000 + "a)", None),
    ],
    ids=["parentheses", "long-sum", "minus-signs", "nots", "nested-ifs", "long-list", "many-arguments"],
)
def test_deep_and_long_expressions(text, column):
    """Depth is refused where it goes too deep; length alone (long lists, many arguments) is fine,
    and whatever parses also evaluates without running out of stack."""
    if column is None:
        expr = parse(text)
        import pandas as pd

        assert len(expr.evaluate(pd.DataFrame({"a": ["1", "2"]}))) == 2
        return
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert str(caught.value) == (
        f"at column {column}: the expression is nested too deeply; split it into several derive steps"
    )


def test_the_deepest_expression_allowed_evaluates():
    import pandas as pd

    frame = pd.DataFrame({"a": ["1", "2"]})
    assert list(parse("a" + " + a" * 99).evaluate(frame)) == [100, 200]
    assert list(parse("(" * 49 + "a" + ")" * 49).evaluate(frame)) == ["1", "2"]


def test_scheduler_reports_bombs_as_invalid_routes(route_cli, tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    (tmp_path / "good.yaml").write_text(GOOD.replace("name: t", 'name: good\nschedule: "0 6 * * *"'))
    (tmp_path / "bomb.yaml").write_text(alias_bomb(9))
    (tmp_path / "deep.yaml").write_text("a: " + "[" * 100_000 + "\n")
    (tmp_path / "nul.yaml").write_text("name: a\x00\n")
    started = time.monotonic()
    result = route_cli("status", "--json", str(tmp_path))
    assert time.monotonic() - started < 10
    assert "Traceback" not in result.output and "internal error" not in result.output
    statuses = {s["route"]: s for s in json.loads(result.stdout)}
    assert statuses["good"]["state"] != "invalid"
    assert {statuses[name]["state"] for name in ("bomb", "deep", "nul")} == {"invalid"}
    assert statuses["bomb"]["reason"].startswith(f"{tmp_path / 'bomb.yaml'}:6:35: the alias *l3 takes the file past")
    assert statuses["deep"]["reason"].startswith(f"{tmp_path / 'deep.yaml'}:1:67: lists and mappings are nested")
    assert statuses["nul"]["reason"].startswith(f"{tmp_path / 'nul.yaml'}:1:8: the control character U+0000")


def test_route_schedule_once_runs_the_good_route_and_names_the_bombs(route_cli, tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    (tmp_path / "good.yaml").write_text(GOOD.replace("name: t", 'name: good\nschedule: "0 6 * * *"'))
    (tmp_path / "bomb.yaml").write_text(alias_bomb(9))
    (tmp_path / "deep.yaml").write_text("a: " + "{a: " * 100_000 + "\n")
    started = time.monotonic()
    result = route_cli("schedule", "--once", "--isolation", "thread", str(tmp_path))
    assert time.monotonic() - started < 30
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert f"bomb.yaml cannot be scheduled: {tmp_path / 'bomb.yaml'}:6:35: the alias *l3" in result.output
    assert f"deep.yaml cannot be scheduled: {tmp_path / 'deep.yaml'}:1:256: lists and mappings" in result.output
    assert (tmp_path / "out.jsonl").exists()  # the good route ran


# Runs `route validate FILE` as a child and reports its exit code, time and peak memory (MB).
MEASURE = """
import json, resource, subprocess, sys, time
started = time.monotonic()
done = subprocess.run([sys.executable, "-m", "pipeline.cli", "validate", sys.argv[1]], capture_output=True, text=True)
elapsed = time.monotonic() - started
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
print(json.dumps({"code": done.returncode, "elapsed": elapsed, "peak_mb": peak, "stderr": done.stderr}))
"""


HOSTILE = {
    "bomb": alias_bomb(9),
    "wide-bomb": alias_bomb(6, width=40),
    "deep": "a: " + "[" * 100_000 + "\n",
    "nul": GOOD + "\x00" * 1_000,
    "huge-number": GOOD.replace("targets:", 'source_transforms:\n  - filter: "a > ' + "9" * 5_000 + '"\ntargets:'),
}


def measure(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> dict:
    """`route validate` of a small valid route: starting Python and importing route is most of
    the time, and on a busy machine it alone can take seconds."""
    folder = tmp_path_factory.mktemp("baseline")
    (folder / "data.csv").write_text("a\n1\n")
    (folder / "route.yaml").write_text(GOOD)
    return measure(folder / "route.yaml")


@pytest.mark.parametrize("name", list(HOSTILE))
def test_route_validate_answers_fast_in_little_memory(tmp_path, name, baseline):
    """The real command in its own process: exit 2 with file:line, under 5 s (or twice the time of
    a valid route, on a busy machine) and 200 MB."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(HOSTILE[name])
    measured = measure(path)
    assert measured["code"] == 2, measured["stderr"]
    assert measured["stderr"].startswith(f"{path}:"), measured["stderr"]
    assert "internal error" not in measured["stderr"]
    assert measured["elapsed"] < max(5, 2 * baseline["elapsed"]), (measured, baseline)
    assert measured["peak_mb"] < 200, measured
