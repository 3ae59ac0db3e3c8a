"""Fuzzing route files and expressions: whatever the text, a loaded route or a positioned error.

Property-based (hypothesis) on the loader and the expression parser, then a few hundred mutated
route files through the real `route validate` (in-process, and a few as a subprocess): never a
traceback, an "internal error" or a hang. Bounded to a few seconds a test by default;
`ROUTE_FUZZ=long` runs many more cases (see fuzzkit).
"""

from __future__ import annotations

import random
import string
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from fuzzkit import FUZZ, SPICE, mutate, mutations, scaled
from hypothesis import given
from hypothesis import strategies as st

from pipeline.basics.errors import RouteInvalid
from pipeline.expressions import FUNCTIONS, ExpressionError, parse
from pipeline.route.yamlfile import Document, load_yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(ROOT.glob("routes/*/*.yaml"))
SEEDS = [p.read_text(encoding="utf-8") for p in EXAMPLES]
VARIABLES = {"SOCRATA_USERNAME": "u", "SOCRATA_PASSWORD": "p", "SOCRATA_APP_TOKEN": "t", "HOME": "/home/x"}

yaml_text = st.text(alphabet=st.sampled_from(string.printable + "\x00\x07\x1b\x7f\x85\ufeff\u2028é中"), max_size=300)
yaml_soup = st.lists(
    st.sampled_from(SPICE + ["a", "b: c", "name", "source", "targets", "\n  ", "\n- "]), max_size=40
).map("".join)


def check_loaded(text: str) -> None:
    """The loader's whole contract: a Document, or RouteInvalid whose every problem is positioned."""
    started = time.monotonic()
    try:
        doc = load_yaml(text, "route.yaml", VARIABLES)
    except RouteInvalid as exc:
        assert exc.problems, str(exc)
        for problem in exc.problems:
            assert problem.file == "route.yaml"
            assert problem.line >= 1 and problem.col >= 1
            assert problem.message
            assert str(problem).startswith(f"route.yaml:{problem.line}:{problem.col}: ")
    else:
        assert isinstance(doc, Document)
    assert time.monotonic() - started < 30  # a hang, not a benchmark: a mutation can be 1 MB of text


@FUZZ
@given(yaml_text | yaml_soup)
def test_loader_on_random_text(text):
    check_loaded(text)


@FUZZ
@given(mutations(SEEDS))
def test_loader_on_mutated_routes(text):
    check_loaded(text)


# -- expressions -------------------------------------------------------------------------------

EXPRESSION_SEEDS = [
    "gross >= 0 and `Pay Date` is not null",
    "if(month(pay_date) >= 7, year(pay_date) + 1, year(pay_date))",
    "concat(carrier, '-', flight)",
    "coalesce(a, b, 0) * 2 - -3 % 4 / 5.5e3",
    "x in [1, 2, 3] or x not in ['a', 'b'] or not (y is null)",
    "matches(name, '^[A-Z]+$') and length(trim(name)) > 2",
    "substr(name, 1, 3) == 'abc' and to_number(a) != 1.5",
    "to_date(d) - to_date('2024-01-01') > 30 and today() > d",
    "round(abs(amount), 2) <= floor(ceil(amount))",
]
TOKENS = [
    "(",
    ")",
    "[",
    "]",
    ",",
    "+",
    "-",
    "*",
    "/",
    "%",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "and",
    "or",
    "not",
    "in",
    "is",
    "null",
    "true",
    "false",
    "'text'",
    '"t"',
    "`col x`",
    "a",
    "b",
    "amount",
    "d",
    "name",
    "1",
    "0",
    "2.5",
    "1e308",
    "1e309",
    "9" * 30,
    "9" * 5000,
    ".5",
    "'",
    "`",
    "=",
    "&&",
    "!",
    "**",
    "//",
    ".",
    "__x",
    "import",
    "lambda",
    "if",
    *FUNCTIONS,
]

expression_text = st.text(alphabet=st.sampled_from(string.printable + "é中\x00"), max_size=200)
expression_soup = st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join)
FRAME = pd.DataFrame(
    {
        "a": ["1", None, "x"],
        "b": ["2", "3", None],
        "amount": ["1.5", "-2", None],
        "d": ["2024-01-05", None, "2024-13-45"],
        "name": ["ABC", "de", None],
        "col x": ["1", "2", "3"],
    }
)


def check_expression(text: str) -> None:
    """Only ExpressionError, with a position inside the text, ever leaves parse() or evaluate()."""
    try:
        expr = parse(text)
        expr.evaluate(FRAME)
        if expr.kind in ("boolean", "any", "null"):
            expr.mask(FRAME)
    except ExpressionError as exc:
        assert exc.message
        assert exc.position is None or 0 <= exc.position <= len(text), (exc.position, len(text))


@FUZZ
@given(expression_text | expression_soup)
def test_expressions_on_random_text(text):
    check_expression(text)


@FUZZ
@given(mutations(EXPRESSION_SEEDS))
def test_expressions_on_mutated_text(text):
    check_expression(text)


@FUZZ
@given(st.integers(1, 3000), st.sampled_from(["(", "-", "not ", "+ a ", "abs(", "if(a, 1, ", "a * "]))
def test_expressions_of_any_depth(depth, piece):
    check_expression(piece * depth + "a" + ")" * (depth if "(" in piece else 0))


# -- the real command --------------------------------------------------------------------------


def _cases(count: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    return [mutate(rnd.choice(SEEDS), rnd, rnd.randint(1, 6)) for _ in range(count)]


def test_route_validate_on_mutated_routes(tmp_path, route_cli):
    """Many mutated example routes through `route validate`: exit 0 or 2, never a
    traceback or an internal error, and file:line:col on every problem line."""
    folder = tmp_path / "routes"
    folder.mkdir()
    for example in EXAMPLES:  # their data files, so that valid mutations stay valid
        for data in example.parent.iterdir():
            if data.is_file() and data.suffix != ".yaml" and not (folder / data.name).exists():
                (folder / data.name).write_bytes(data.read_bytes())
    counts = {0: 0, 2: 0}
    for i, text in enumerate(_cases(scaled(120, 5_000), seed=11)):
        path = folder / f"r{i}.yaml"
        path.write_text(text, encoding="utf-8")
        started = time.monotonic()
        result = route_cli("validate", str(path), env=VARIABLES)
        assert time.monotonic() - started < 30, text
        assert "Traceback" not in result.output and "internal error" not in result.output, (text, result.output)
        assert result.exit_code in counts, (text, result.output)
        counts[result.exit_code] += 1
        if result.exit_code == 2:
            first = result.stderr.splitlines()[0]
            assert first.startswith(f"{path}:") or first.startswith("error:"), (text, result.stderr)
    assert counts[2] > counts[0] > 0  # most mutations break a route, some do not


def test_route_validate_in_subprocesses(tmp_path):
    """A few mutated routes through the installed command, each in its own process."""
    for i, text in enumerate(_cases(scaled(4, 100), seed=12)):
        path = tmp_path / f"r{i}.yaml"
        path.write_text(text, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "validate", str(path)], capture_output=True, text=True, timeout=30
        )
        assert done.returncode in (0, 2), (text, done.stderr)
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr, (text, done.stderr)


SPICES = {
    "nul": "\x00",
    "recursive-alias": "&a [*a]",
    "long-number": "9" * 5000,
    "deep-list": "[" * 5000,
    "deep-map": "{a: " * 5000,
    "bad-date": "2024-13-45",
}


@pytest.mark.parametrize("spice", list(SPICES))
def test_route_validate_on_each_spice(tmp_path, route_cli, spice):
    """Each hostile piece, put into a real route at a value's place, is a positioned problem."""
    text = SEEDS[0].replace("name:", f"x-spice: {SPICES[spice]}\nname:", 1)
    path = tmp_path / "route.yaml"
    path.write_text(text, encoding="utf-8")
    result = route_cli("validate", str(path), env=VARIABLES)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{path}:"), result.stderr
    assert "internal error" not in result.output
