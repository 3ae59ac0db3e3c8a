"""The public plugin API: signatures checked at plan time, the conformance kits, the example plugins."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pandas as pd
import pytest

import pipeline.api as api
from pipeline.api import (
    TEXT,
    Delivery,
    DeliveryResult,
    Source,
    SourceProtocol,
    check_delivery,
    check_rule,
    check_source,
    delivery,
    rule,
    source,
    step_context,
)
from pipeline.deliveries.files import CsvDelivery, JsonlDelivery
from pipeline.sources.csv import CsvSource

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "route-rules-example" / "route_rules_example"


def _validate(route_cli, write_route, source: str, steps: str = "", deliver: str = "{jsonl: {path: out.jsonl}}"):
    path = write_route(
        f"""
        name: shapes
        source:
          {source}
        source_transforms:
          {steps or "[]"}
        targets:
          - name: out
            deliver: {deliver}
    """,
        **{"data.csv": "a\n1\n"},
    )
    return path, route_cli("validate", str(path))


CSV = "csv: {path: data.csv}"


def test_a_chunk_rule_without_ctx_is_reported_at_its_line(route_cli, write_route):
    path, result = _validate(route_cli, write_route, CSV, "- plugins_for_tests:two_args: {}")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{path}:5:5: source_transforms[0].plugins_for_tests:two_args: rule 'plugins_for_tests:two_args' "
        "cannot be used: a chunk rule is called as fn(chunk, options, ctx), but two_args takes (chunk, options)"
    )


def test_a_stream_rule_is_expected_to_take_the_stream_options_and_ctx(route_cli, write_route):
    path, result = _validate(route_cli, write_route, CSV, "- plugins_for_tests:stream_one_arg: {}")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{path}:5:5: source_transforms[0].plugins_for_tests:stream_one_arg: rule "
        "'plugins_for_tests:stream_one_arg' cannot be used: a stream rule is called as "
        "fn(chunks, options, ctx), but stream_one_arg takes (chunks)"
    )


def test_a_source_whose_constructor_does_not_take_ctx_is_reported(route_cli, write_route):
    path, result = _validate(route_cli, write_route, "plugins_for_tests:NoCtxSource: {}")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{path}:3:3: source.plugins_for_tests:NoCtxSource: source 'plugins_for_tests:NoCtxSource' "
        "cannot be used: a source is built as Source(options, ctx), but NoCtxSource.__init__ takes (options)"
    )


def test_a_source_without_chunks_is_reported(route_cli, write_route):
    path, result = _validate(route_cli, write_route, "plugins_for_tests:NoChunksSource: {}")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{path}:3:3: source.plugins_for_tests:NoChunksSource: source 'plugins_for_tests:NoChunksSource' "
        "cannot be used: it has no chunks() method; a source needs chunks()"
    )


def test_a_delivery_without_abort_and_with_a_wrong_write_is_reported_once_with_both(route_cli, write_route):
    path, result = _validate(route_cli, write_route, CSV, deliver="{plugins_for_tests:HalfDelivery: {}}")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{path}:8:15: targets[0].deliver.plugins_for_tests:HalfDelivery: delivery "
        "'plugins_for_tests:HalfDelivery' cannot be used: it has no abort() method; a delivery needs "
        "open(columns), write(chunk), close(), abort(exc); the executor calls write(chunk), but "
        "HalfDelivery.write takes ()"
    )


def test_every_problem_in_the_route_is_reported_at_once(route_cli, write_route):
    path, result = _validate(
        route_cli, write_route, "plugins_for_tests:NoCtxSource: {}", "- plugins_for_tests:two_args: {}"
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert [line.split(": ")[0] for line in lines] == [f"{path}:3:3", f"{path}:5:5"]


# -- the public module -------------------------------------------------------------------------


def test_every_public_name_exists_and_is_documented():
    docs = (ROOT / "docs" / "plugins.md").read_text()
    missing = [name for name in api.__all__ if not hasattr(api, name)]
    undocumented = [name for name in api.__all__ if f"`{name}" not in docs]
    assert (missing, undocumented) == ([], [])


def test_the_readme_points_plugin_authors_at_the_public_api():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Writing your own rule") :]
    section = section[: section.index("\n## ", 4)] if "\n## " in section[4:] else section
    assert "docs/plugins.md" in section and "from pipeline.api import" in section
    assert "pipeline.basics.plugins" not in section and "pipeline.basics.dtypes" not in section


def test_the_example_plugin_imports_only_the_public_api():
    imported = set()
    for path in EXAMPLE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    assert {m for m in imported if m.split(".")[0] == "pipeline"} == {"pipeline.api"}


def test_built_in_sources_are_sources(tmp_path):
    (tmp_path / "data.csv").write_text("a\n1\n")
    csv = CsvSource({"path": "data.csv"}, step_context(tmp_path, stage="source"))
    assert isinstance(csv, Source) and isinstance(csv, SourceProtocol)
    assert csv.incremental is False


# -- the kits pass components that keep the contract --------------------------------------------

TOWNS = "001 hartford     121054\n002 W HARTFORD    64083\n003 NEW HAVEN   134023 and more\n004 ansonia\n"


def test_the_example_rule_and_source_pass_the_kits(example_plugin_installed):  # noqa: F811
    from route_rules_example.rules import fix_town
    from route_rules_example.sources import FixedWidthSource

    options = {"path": "towns.txt", "fields": {"code": 4, "town": 12, "population": 7}}
    read = check_source(
        FixedWidthSource, options, empty={**options, "path": "empty.txt"}, files={"towns.txt": TOWNS, "empty.txt": ""}
    )
    assert read.rejected == 1 and read.chunks == 1
    assert read.output.to_dict("index") == {
        1: {"code": "001", "town": "hartford", "population": "121054"},
        2: {"code": "002", "town": "W HARTFORD", "population": "64083"},
        4: {"code": "004", "town": "ansonia", "population": None},
    }
    fixed = check_rule(fix_town, {"column": "town"}, read.output)
    assert fixed.output["town"].tolist() == ["Hartford", "West Hartford", "Ansonia"]


def test_built_in_csv_source_and_file_deliveries_pass_the_kits():
    read = check_source(
        CsvSource,
        {"path": "data.csv"},
        empty={"path": "empty.csv"},
        files={"data.csv": "a,b\n1,x\n2,\n3,z\n", "empty.csv": "a,b\n"},
    )
    assert list(read.output.index) == [2, 3, 4]
    for cls, name in ((CsvDelivery, "out.csv"), (JsonlDelivery, "out.jsonl")):
        checked = check_delivery(cls, {"path": name}, read.output, read_back=_file(name))
        assert checked.result.delivered == 3 and checked.output.count("\n") == (4 if name == "out.csv" else 3)
        assert checked.results["an empty chunk"].delivered == 0


def _file(name):
    return lambda folder: (folder / name).read_text() if (folder / name).exists() else None


# -- and name what others break -------------------------------------------------------------------

SCHEMA = {"type": "object"}


def _frame(values, start=1):
    return pd.DataFrame({"a": pd.Series(values, dtype=TEXT)}).set_axis(pd.RangeIndex(start, start + len(values)))


@source(SCHEMA)
class OneBigChunk(Source):
    def chunks(self):
        yield _frame(["1", "2", "3", "4"])


@source(SCHEMA)
class Renumbers(Source):
    def chunks(self):
        size = self.ctx.run.chunk_rows
        values = ["1", "2", "3", "4"]
        for i in range(0, 4, size):
            yield _frame(values[i : i + size])  # every chunk starts again at line 1


@source(SCHEMA)
class GuessesTypes(Source):
    def chunks(self):
        size = self.ctx.run.chunk_rows
        for i in range(0, 4, size):
            part = _frame(["1", "2", "x", "4"][i : i + size], start=i + 1)
            yield part if (part["a"] == "x").any() else part.astype("int64[pyarrow]")


@source(SCHEMA)
class WrongColumns(Source):
    def chunks(self):
        yield _frame(["1", "2"])

    def columns(self):
        return ["b"]


@pytest.mark.parametrize(
    "cls, message",
    [
        (
            OneBigChunk,
            "OneBigChunk yielded a chunk of 4 rows for chunks of 2 rows; sources yield at most ctx.run.chunk_rows (2)",
        ),
        (
            Renumbers,
            "Renumbers repeated index values across chunks for chunks of 2 rows: the index is the source "
            "line (or record number) and goes on from chunk to chunk",
        ),
        (
            GuessesTypes,
            "GuessesTypes changed dtypes between chunks: 'a': int64[pyarrow] for its first chunk, "
            "string[pyarrow] for a later chunk of chunks of 2 rows",
        ),
        (WrongColumns, "WrongColumns.columns() says ['b'] but its chunks have ['a'] for a normal input"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_check_source_names_the_broken_contract(cls, message):
    with pytest.raises(AssertionError, match="^" + re.escape(message)):
        check_source(cls, {})


@delivery(SCHEMA)
class Recorder(Delivery):
    """Keeps rows in memory; the subclasses below each break one part of the contract."""

    def open(self, columns):
        self.rows = 0

    def write(self, chunk):
        self.rows += len(chunk)

    def close(self):
        return DeliveryResult(delivered=self.rows)


@delivery(SCHEMA)
class Mutates(Recorder):
    def write(self, chunk):
        chunk["a"] = chunk["a"].str.upper()
        super().write(chunk)


@delivery(SCHEMA)
class ReturnsNothing(Recorder):
    def close(self):
        return None


@delivery(SCHEMA)
class Miscounts(Recorder):
    def close(self):
        return DeliveryResult(delivered=1)


@delivery(SCHEMA)
class WritesOnDryRun(Recorder):
    def open(self, columns):
        super().open(columns)
        self.ctx.resolve_path("out.txt").write_text("rows\n")


@delivery(SCHEMA)
class LeavesTempFile(Recorder):
    def write(self, chunk):
        super().write(chunk)
        if not self.ctx.run.options.dry_run:
            self.ctx.resolve_path(f"part-{self.rows}.tmp").write_text("half\n")

    def close(self):
        for part in self.ctx.route_dir.glob("part-*.tmp"):
            part.unlink()
        return super().close()


@pytest.mark.parametrize(
    "cls, message",
    [
        (Mutates, "Mutates.write changed its chunk (a dry run): copy before changing"),
        (ReturnsNothing, "ReturnsNothing.close() returned NoneType for a dry run; it must return a DeliveryResult"),
        (
            Miscounts,
            "Miscounts.close() reported 1 delivered and 0 rejected for an empty chunk, but 0 rows were written",
        ),
        (WritesOnDryRun, "WritesOnDryRun changed out.txt in a dry run: a dry run writes nothing"),
        (
            LeavesTempFile,
            "LeavesTempFile changed part-2.tmp in an aborted run: abort() leaves the last good state in place",
        ),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_check_delivery_names_the_broken_contract(cls, message):
    with pytest.raises(AssertionError, match="^" + re.escape(message)):
        check_delivery(cls, {}, _frame(["a", "b", "c", "d"]))


def test_a_kit_refuses_a_component_with_the_wrong_signature():
    @rule(SCHEMA)
    def no_ctx(chunk, options):
        return chunk

    with pytest.raises(
        AssertionError,
        match=re.escape(
            "no_ctx: a chunk rule is called as fn(chunk, options, ctx), but "
            "test_a_kit_refuses_a_component_with_the_wrong_signature.<locals>.no_ctx takes (chunk, options)"
        ),
    ):
        check_rule(no_ctx, {}, _frame(["1", "2"]))


def test_the_example_packages_own_tests_pass(example_plugin_installed):  # noqa: F811
    """The example's tests show a plugin author how to use the kits; run them as they stand."""
    import importlib.util

    path = EXAMPLE.parent / "tests" / "test_contract.py"
    spec = importlib.util.spec_from_file_location("route_rules_example_contract", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tests = [getattr(module, name) for name in dir(module) if name.startswith("test_")]
    assert len(tests) == 2
    for test in tests:
        test()
