"""rename, select and drop: names, order, and the messages for columns that are not there."""

from __future__ import annotations

import pytest
from rulekit import INTEGER, apply, frame, make_ctx, values

from pipeline.basics.errors import OptionError, RunFailed
from pipeline.testing import bind_options, check_rule
from transforms.columns import drop, rename, select


@pytest.fixture
def chunk():
    return frame(
        {"EMP_ID": ["007", "12", None], "Pay Date": ["2024-01-05", None, "2024-02-02"], "gross": [1, 2, 3]},
        lines=[2, 3, 5],
        dtypes={"gross": INTEGER},
        source="payroll.csv",
    )


def test_rename_renames_and_keeps_values_index_dtypes_and_source(chunk, tmp_path):
    out = apply(rename, {"EMP_ID": "employee_id", "Pay Date": "pay_date"}, chunk, make_ctx(tmp_path))
    assert list(out.columns) == ["employee_id", "pay_date", "gross"]
    assert values(out["employee_id"]) == ["007", "12", None]
    assert list(out.index) == [2, 3, 5]
    assert out["gross"].dtype == INTEGER
    assert out.attrs["source"] == "payroll.csv"
    assert list(chunk.columns) == ["EMP_ID", "Pay Date", "gross"]


def test_rename_can_swap_two_columns(chunk, tmp_path):
    out = apply(rename, {"EMP_ID": "gross", "gross": "EMP_ID"}, chunk, make_ctx(tmp_path))
    assert list(out.columns) == ["gross", "Pay Date", "EMP_ID"]
    assert values(out["EMP_ID"]) == [1, 2, 3]


def test_rename_of_a_missing_column_names_the_nearest_one(chunk, tmp_path):
    with pytest.raises(RunFailed) as err:
        apply(rename, {"EMP ID": "employee_id"}, chunk, make_ctx(tmp_path))
    assert str(err.value) == (
        "rename: no column 'EMP ID' in the data; did you mean 'EMP_ID'? (columns: EMP_ID, Pay Date, gross)"
    )


def test_rename_suggests_a_column_that_differs_only_in_case(chunk, tmp_path):
    with pytest.raises(RunFailed, match="no column 'pay date' in the data; did you mean 'Pay Date'"):
        apply(rename, {"pay date": "pay_date"}, chunk, make_ctx(tmp_path))


def test_rename_onto_a_column_that_stays_fails(chunk, tmp_path):
    with pytest.raises(RunFailed) as err:
        apply(rename, {"EMP_ID": "gross"}, chunk, make_ctx(tmp_path))
    assert str(err.value) == (
        "rename: cannot rename 'EMP_ID' to 'gross': a column named 'gross' already exists; drop or rename it first"
    )


def test_rename_two_columns_to_one_name_is_an_option_error(tmp_path):
    with pytest.raises(OptionError) as err:
        bind_options(rename, {"a": "x", "b": "x"}, make_ctx(tmp_path))
    assert str(err.value) == "'a' and 'b' are both renamed to 'x'"
    assert err.value.path == ("b",)


def test_rename_reads_a_yaml_number_key_as_a_column_name(tmp_path):
    chunk = frame({"2019": ["1"], "x": ["2"]})
    out = apply(rename, {2019: "fy2019"}, chunk, make_ctx(tmp_path))
    assert list(out.columns) == ["fy2019", "x"]


def test_select_keeps_the_listed_columns_in_that_order(chunk, tmp_path):
    out = apply(select, ["gross", "EMP_ID"], chunk, make_ctx(tmp_path))
    assert list(out.columns) == ["gross", "EMP_ID"]
    assert values(out["EMP_ID"]) == ["007", "12", None]
    assert list(out.index) == [2, 3, 5]
    assert out.attrs["source"] == "payroll.csv"


def test_select_takes_one_name_or_the_mapping_form(chunk, tmp_path):
    assert list(apply(select, "gross", chunk, make_ctx(tmp_path)).columns) == ["gross"]
    out = apply(select, {"columns": ["Pay Date"]}, chunk, make_ctx(tmp_path))
    assert list(out.columns) == ["Pay Date"]


def test_select_of_a_missing_column_fails_naming_it(chunk, tmp_path):
    with pytest.raises(RunFailed) as err:
        apply(select, ["EMP_ID", "gros"], chunk, make_ctx(tmp_path))
    assert str(err.value) == (
        "select: no column 'gros' in the data; did you mean 'gross'? (columns: EMP_ID, Pay Date, gross)"
    )


def test_select_without_a_near_name_lists_the_columns(chunk, tmp_path):
    with pytest.raises(RunFailed) as err:
        apply(select, ["zzz"], chunk, make_ctx(tmp_path))
    assert str(err.value) == "select: no column 'zzz' in the data (columns: EMP_ID, Pay Date, gross)"


def test_a_column_listed_twice_is_an_option_error(tmp_path):
    with pytest.raises(OptionError) as err:
        bind_options(select, ["a", "b", "a"], make_ctx(tmp_path))
    assert str(err.value) == "column 'a' is listed twice"
    assert err.value.path == ("columns", 2)


def test_select_rejects_unknown_options(tmp_path):
    with pytest.raises(OptionError, match="Additional properties"):
        bind_options(select, {"columns": ["a"], "ignore_missing": True}, make_ctx(tmp_path))


def test_drop_removes_columns(chunk, tmp_path):
    out = apply(drop, ["Pay Date"], chunk, make_ctx(tmp_path))
    assert list(out.columns) == ["EMP_ID", "gross"]
    assert list(chunk.columns) == ["EMP_ID", "Pay Date", "gross"]


def test_drop_of_a_missing_column_fails_unless_told_to_ignore_it(chunk, tmp_path):
    with pytest.raises(RunFailed, match=r"^drop: no column 'ssn' in the data \(columns: "):
        apply(drop, ["ssn"], chunk, make_ctx(tmp_path))
    out = apply(drop, {"columns": ["ssn", "gross"], "ignore_missing": True}, chunk, make_ctx(tmp_path))
    assert list(out.columns) == ["EMP_ID", "Pay Date"]


@pytest.mark.parametrize(
    "rule_fn, options",
    [
        (rename, {"EMP_ID": "employee_id"}),
        (select, ["gross", "EMP_ID"]),
        (drop, ["Pay Date"]),
    ],
)
def test_column_rules_keep_the_rule_contract(rule_fn, options, chunk):
    result = check_rule(rule_fn, options, chunk)
    assert len(result.output) == 3


def test_column_rules_work_on_an_empty_chunk(chunk, tmp_path):
    empty = chunk.iloc[0:0]
    out = apply(select, ["gross"], empty, make_ctx(tmp_path))
    assert len(out) == 0 and out["gross"].dtype == INTEGER
