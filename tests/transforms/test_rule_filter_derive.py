"""The `filter` and `derive` rules: options bound once, rows kept/rejected, columns computed."""

from __future__ import annotations

import csv
import datetime as dt
import inspect
import re

import pandas as pd
import pytest
import yaml

from pipeline.basics.dtypes import DATE, INTEGER, NUMBER, TEXT
from pipeline.basics.errors import OptionError, RunFailed
from pipeline.testing import bind_options, check_rule, run_rule, step_context
from transforms.expressions import derive, filter


def chunk(lines=None, **columns) -> pd.DataFrame:
    first = next(iter(columns.values()))
    n = len(first[0] if isinstance(first, tuple) else first)
    index = pd.Index(lines if lines is not None else range(2, n + 2), dtype="int64")
    data = {}
    for name, spec in columns.items():
        vals, dtype = spec if isinstance(spec, tuple) else (spec, TEXT)
        data[name] = pd.Series(vals, dtype=dtype, index=index)
    frame = pd.DataFrame(data, index=index)
    frame.attrs["source"] = "payroll.csv"
    return frame


def values(series: pd.Series) -> list:
    return [None if v is pd.NA or v is None else v for v in series.astype(object).tolist()]


@pytest.fixture
def ctx(tmp_path):
    context = step_context(tmp_path, step="filter")
    yield context
    context.run.rejects.close()


def run(rule_fn, options, frame, ctx) -> pd.DataFrame:
    prepared = bind_options(rule_fn, options, ctx)
    return run_rule(rule_fn, prepared, [frame], ctx)[0]


def rejects(ctx) -> list[dict]:
    ctx.run.rejects.close()
    path = ctx.run.rejects.path
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: r[k] for k in ("line", "reason", "source")} for r in csv.DictReader(f)]


PAYROLL = dict(gross=(["100.50", "-3", None, "0"], TEXT), dept=(["Parks", "Police", "Parks", None], TEXT))


# -- filter --------------------------------------------------------------------------------------


def test_filter_keeps_rows_where_true_and_drops_false_and_null(ctx):
    frame = chunk(lines=[11, 12, 13, 14], **PAYROLL)
    out = run(filter, "gross >= 0", frame, ctx)
    assert list(out.index) == [11, 14]
    assert values(out["gross"]) == ["100.50", "0"]
    assert out.attrs["source"] == "payroll.csv"
    assert list(out.dtypes) == list(frame.dtypes)
    assert rejects(ctx) == [] and ctx.rejected == 0


def test_filter_mapping_form_with_reject_sends_the_other_rows_to_the_rejects_file(ctx):
    frame = chunk(lines=[11, 12, 13, 14], **PAYROLL)
    out = run(filter, {"expression": "gross >= 0 and dept == 'Parks'", "reject": True}, frame, ctx)
    assert list(out.index) == [11]
    reason = "filter: gross >= 0 and dept == 'Parks' is not true"
    assert rejects(ctx) == [
        {"line": "12", "reason": reason, "source": "payroll.csv"},
        {"line": "13", "reason": reason, "source": "payroll.csv"},
        {"line": "14", "reason": reason, "source": "payroll.csv"},
    ]
    assert ctx.rejected == 3


def test_filter_does_not_change_its_input(ctx):
    frame = chunk(**PAYROLL)
    before = frame.copy()
    run(filter, {"expression": "gross > 0", "reject": True}, frame, ctx)
    pd.testing.assert_frame_equal(frame, before)


def test_filter_keeping_everything_or_nothing_and_empty_chunks(ctx):
    frame = chunk(**PAYROLL)
    assert len(run(filter, "true", frame, ctx)) == 4
    none = run(filter, "false", frame, ctx)
    assert len(none) == 0 and list(none.dtypes) == list(frame.dtypes)
    empty = frame.iloc[:0]
    assert len(run(filter, "gross > 0 and upper(dept) in ['PARKS']", empty, ctx)) == 0


def test_filter_keeps_the_rule_contract():
    result = check_rule(filter, {"expression": "gross >= 0", "reject": True}, chunk(**PAYROLL))
    assert values(result.output["gross"]) == ["100.50", "0"]
    assert result.rejected == 2


@pytest.mark.parametrize(
    "options, path, offset, message",
    [
        ("gross >= uper(dept)", ("expression",), 9, "unknown function 'uper'; did you mean 'upper'?"),
        (
            {"expression": "x.__class__"},
            ("expression",),
            1,
            "'.' is not allowed: expressions have no attribute access; write a column whose name "
            "holds a dot in backticks, like `a.b`",
        ),
        (
            "gross +",
            ("expression",),
            7,
            "expected a value (a column, a literal or a function call) but found the end of the expression",
        ),
        (
            "gross + 1",
            ("expression",),
            0,
            "this must be a condition (true or false for each row), but it gives values; compare it, e.g. `... > 0`",
        ),
    ],
)
def test_filter_bad_expressions_are_option_errors_at_bind_time(ctx, options, path, offset, message):
    with pytest.raises(OptionError) as info:
        bind_options(filter, options, ctx)
    assert str(info.value) == message
    assert info.value.path == path
    assert info.value.offset == offset


def test_filter_options_are_checked_against_the_schema(ctx):
    with pytest.raises(OptionError) as info:
        bind_options(filter, {"expression": "a > 1", "rejects": True}, ctx)
    assert "rejects" in str(info.value)
    with pytest.raises(OptionError, match="'expression' is a required property"):
        bind_options(filter, {"reject": True}, ctx)


def test_filter_run_time_errors_quote_the_expression(ctx):
    frame = chunk(lines=[5, 6], gross=(["12", "1,200"], TEXT))
    with pytest.raises(RunFailed) as info:
        run(filter, "gross >= 0", frame, ctx)
    assert str(info.value) == (
        "\"gross >= 0\" at column 1: column 'gross' holds '1,200' (line 6), which is "
        "not a number; convert the column with `cast` first (its rejects keep such "
        "rows), or compare it with text ('0')"
    )
    with pytest.raises(RunFailed, match="unknown column 'gros'; did you mean 'gross'"):
        run(filter, "gros >= 0", frame, ctx)
    with pytest.raises(RunFailed, match="must be a condition .* but it gives text"):
        run(filter, "gross", frame, ctx)


# -- derive --------------------------------------------------------------------------------------


def test_derive_adds_columns_in_order_and_a_later_one_may_use_an_earlier_one(ctx):
    frame = chunk(
        pay_date=([dt.date(2020, 7, 1), dt.date(2021, 3, 9), None], DATE), gross=([100.0, 50.0, None], NUMBER)
    )
    out = run(
        derive,
        {
            "fiscal_year": "if(month(pay_date) >= 7, year(pay_date) + 1, year(pay_date))",
            "label": "concat('FY', fiscal_year)",
            "source": "'portal'",
            "net": "coalesce(gross, 0) * 0.8",
        },
        frame,
        ctx,
    )
    assert list(out.columns) == ["pay_date", "gross", "fiscal_year", "label", "source", "net"]
    assert values(out["fiscal_year"]) == [2021, 2021, None]
    assert values(out["label"]) == ["FY2021", "FY2021", "FY"]
    assert values(out["source"]) == ["portal"] * 3
    assert values(out["net"]) == [80.0, 40.0, 0.0]
    assert out["fiscal_year"].dtype == INTEGER and out["source"].dtype == TEXT
    assert list(out.index) == list(frame.index)
    assert list(frame.columns) == ["pay_date", "gross"]  # input untouched


def test_derive_replaces_an_existing_column_in_place(ctx):
    frame = chunk(town=(["  hartford ", "AVON"], TEXT), n=(["1", "2"], TEXT))
    out = run(derive, {"town": "title(trim(town))"}, frame, ctx)
    assert list(out.columns) == ["town", "n"]
    assert values(out["town"]) == ["Hartford", "Avon"]
    assert values(frame["town"]) == ["  hartford ", "AVON"]


def test_derive_on_an_empty_chunk_keeps_the_dtypes_of_a_full_one(ctx):
    options = {"y": "year(d)", "s": "'x'", "n": "amount * 2", "flag": "amount > 0"}
    full = run(derive, options, chunk(d=(["2020-01-01"], TEXT), amount=(["3"], TEXT)), ctx)
    empty = run(derive, options, chunk(d=([], TEXT), amount=([], TEXT)), ctx)
    assert len(empty) == 0
    assert dict(empty.dtypes) == dict(full.dtypes)


def test_derive_keeps_the_rule_contract():
    frame = chunk(**PAYROLL)
    result = check_rule(derive, {"g2": "coalesce(to_number(gross), 0) * 2", "d": "lower(dept)"}, frame)
    assert values(result.output["g2"]) == [201.0, -6.0, 0.0, 0.0]


def test_derive_bad_expression_is_an_option_error_on_its_column(ctx):
    with pytest.raises(OptionError) as info:
        bind_options(derive, {"ok": "1", "fy": "year(`Pay Date`) +"}, ctx)
    assert info.value.path == ("fy",)
    assert info.value.offset == 18
    assert str(info.value) == (
        "expected a value (a column, a literal or a function call) but found the end of the expression"
    )


def test_derive_values_must_be_expression_text(ctx):
    with pytest.raises(OptionError) as info:
        bind_options(derive, {"n": 5}, ctx)
    assert info.value.path == ("n",)
    with pytest.raises(OptionError, match="should be non-empty"):
        bind_options(derive, {}, ctx)


def test_derive_run_time_error_names_the_column_being_derived(ctx):
    frame = chunk(lines=[3, 4], d=(["2020-01-01", "soon"], TEXT))
    with pytest.raises(RunFailed) as info:
        run(derive, {"fy": "year(d) + 1"}, frame, ctx)
    assert str(info.value) == (
        "fy: \"year(d) + 1\" at column 6: column 'd' holds 'soon' (line 4), which is "
        "not a date (expected YYYY-MM-DD); convert the column with `cast` and its "
        "`formats` first"
    )


# -- docs and the route file ---------------------------------------------------------------------


@pytest.mark.parametrize("rule_fn", [filter, derive])
def test_docstring_examples_are_valid_yaml_that_binds(ctx, rule_fn):
    doc = inspect.getdoc(rule_fn)
    assert doc.rstrip().endswith("```")
    example = re.search(r"```yaml\n(.*?)```", doc, re.S).group(1)
    for step in yaml.safe_load(example):
        ((name, options),) = step.items()
        assert name == rule_fn.__name__
        bind_options(rule_fn, options, ctx)


def test_route_validate_points_at_the_bad_part_of_each_expression(tmp_path, route_cli):
    (tmp_path / "in.csv").write_text("gross,town\n1,Avon\n", encoding="utf-8")
    route = tmp_path / "route.yaml"
    route.write_text(
        "name: t\n"
        "source:\n"
        "  csv: {path: in.csv}\n"
        "source_transforms:\n"
        "  - filter: \"gross >= 0 and uper(town) == 'X'\"\n"
        "  - filter: x.__class__\n"
        "  - derive:\n"
        '      fy: "year(gross) +"\n'
        "targets:\n"
        "  - name: out\n"
        "    deliver:\n"
        "      jsonl: {path: out.jsonl}\n",
        encoding="utf-8",
    )
    result = route_cli("validate", str(route))
    assert result.exit_code == 2
    lines = result.output
    assert (f"{route}:5:29: source_transforms[0].filter: unknown function 'uper'; did you mean 'upper'?") in lines
    assert f"{route}:6:14: source_transforms[1].filter: '.' is not allowed" in lines
    assert f"{route}:8:25: source_transforms[2].derive.fy: expected a value" in lines
    assert "Traceback" not in lines


def test_route_execute_filters_and_derives(tmp_path, route_cli):
    (tmp_path / "in.csv").write_text(
        "gross,Pay Date,town\n10,2020-07-01,Avon\n-5,2021-01-15,Hartford\n,2021-02-01,New Haven\n", encoding="utf-8"
    )
    route = tmp_path / "route.yaml"
    route.write_text(
        "name: t\n"
        "source:\n"
        "  csv: {path: in.csv}\n"
        "source_transforms:\n"
        '  - filter: {expression: "gross >= 0 or gross is null", reject: true}\n'
        "  - derive:\n"
        '      fy: "if(month(`Pay Date`) >= 7, year(`Pay Date`) + 1, year(`Pay Date`))"\n'
        "      src: \"'portal'\"\n"
        "targets:\n"
        "  - name: out\n"
        "    deliver:\n"
        "      jsonl: {path: out.jsonl}\n",
        encoding="utf-8",
    )
    result = route_cli("execute", str(route))
    assert result.exit_code == 0, result.output
    import orjson

    rows = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    assert [(r["town"], r["fy"], r["src"]) for r in rows] == [("Avon", 2021, "portal"), ("New Haven", 2021, "portal")]
