"""aggregate, unpivot, pivot: exact tables on tricky input, and aggregate against pandas on a
300,000-row stream."""

import logging

import numpy as np
import pandas as pd
import pytest
from rulekit import INTEGER, NUMBER, TEXT, apply, frame, make_ctx, rejects, values

from pipeline.basics.errors import OptionError, RunFailed
from pipeline.testing import bind_options, check_rule, run_rule
from transforms.reshape import aggregate, pivot, unpivot


@pytest.fixture
def ctx(tmp_path):
    return make_ctx(tmp_path, chunk_rows=3)


SALES = frame(
    {
        "town": ["B", "A", None, "B", "A", "é"],
        "yr": ["2020", "2020", "2021", "2021", None, "2020"],
        "amt": [1.5, None, 3.0, 4.0, 5.0, None],
        "d": ["2020-01-02", None, "2020-01-01", "2019-01-01", None, None],
    },
    dtypes={"amt": NUMBER},
)


def test_aggregate_across_chunks_in_order_of_appearance(ctx):
    out = apply(
        aggregate,
        {
            "by": ["town"],
            "compute": {
                "rows": "count",
                "with_amt": {"count": "amt"},
                "total": {"sum": "amt"},
                "average": {"mean": "amt"},
                "low": {"min": "amt"},
                "high": {"max": "d"},
                "first_d": {"first": "d"},
                "last_d": {"last": "d"},
            },
        },
        [SALES.iloc[:2], SALES.iloc[2:]],
        ctx,
    )
    assert out.index.tolist() == [1, 2, 3, 4]
    assert values(out["town"]) == ["B", "A", None, "é"]
    assert values(out["rows"]) == [2, 2, 1, 1]
    assert values(out["with_amt"]) == [2, 1, 1, 0]
    assert values(out["total"]) == [5.5, 5.0, 3.0, None]
    assert values(out["average"]) == [2.75, 5.0, 3.0, None]
    assert values(out["low"]) == [1.5, 5.0, 3.0, None]
    assert values(out["high"]) == ["2020-01-02", None, "2020-01-01", None]
    assert values(out["first_d"]) == ["2020-01-02", None, "2020-01-01", None]
    assert values(out["last_d"]) == ["2019-01-01", None, "2020-01-01", None]
    assert [str(out[c].dtype) for c in ("rows", "total", "average", "high")] == [
        "int64[pyarrow]",
        "double[pyarrow]",
        "double[pyarrow]",
        "string[pyarrow]",
    ]


def test_aggregate_without_by_and_on_no_rows(ctx):
    out = apply(aggregate, {"compute": {"n": "count", "total": {"sum": "amt"}}}, [SALES], ctx)
    assert values(out["n"]) == [6] and values(out["total"]) == [13.5]
    out = apply(aggregate, {"compute": {"n": "count", "total": {"sum": "amt"}}}, [SALES.iloc[:0]], ctx)
    assert values(out["n"]) == [0] and values(out["total"]) == [None]
    out = apply(aggregate, {"by": "town", "compute": {"n": "count"}}, [SALES.iloc[:0]], ctx)
    assert out.empty and list(out.columns) == ["town", "n"] and out["town"].dtype == TEXT


def test_aggregate_errors(ctx):
    with pytest.raises(RunFailed, match="aggregate: cannot sum column 'town': it holds string, not numbers"):
        apply(aggregate, {"by": "yr", "compute": {"s": {"sum": "town"}}}, [SALES], ctx)
    with pytest.raises(OptionError, match="'town' is both a `by` column and a computed column"):
        bind_options(aggregate, {"by": "town", "compute": {"town": "count"}}, ctx)
    with pytest.raises(OptionError, match=r"\{'median': 'amt'\} is not valid"):
        bind_options(aggregate, {"compute": {"x": {"median": "amt"}}}, ctx)


def test_aggregate_300k_agrees_with_pandas(tmp_path):
    n, rng = 300_000, np.random.default_rng(8)
    town = rng.integers(0, 25_000, n).astype(str).astype(object)
    town[rng.random(n) < 0.01] = None
    amount = np.round(rng.random(n) * 1000, 2)
    amount[rng.random(n) < 0.05] = np.nan
    df = pd.DataFrame(
        {
            "town": pd.array(town, dtype=TEXT),
            "year": pd.array(rng.integers(2000, 2003, n), dtype=INTEGER),
            "amount": pd.array(amount, dtype=NUMBER),
        },
        index=pd.RangeIndex(2, n + 2),
    )
    ctx = make_ctx(tmp_path, chunk_rows=10_000)
    options = {
        "by": ["town", "year"],
        "compute": {
            "n": "count",
            "total": {"sum": "amount"},
            "mean": {"mean": "amount"},
            "low": {"min": "amount"},
            "high": {"max": "amount"},
            "first": {"first": "amount"},
            "last": {"last": "amount"},
        },
    }
    outs = run_rule(
        aggregate, bind_options(aggregate, options, ctx), [df.iloc[i : i + 10_000] for i in range(0, n, 10_000)], ctx
    )
    assert max(len(o) for o in outs) <= 10_000
    out = pd.concat(outs)
    g = df.groupby(["town", "year"], sort=False, dropna=False)["amount"]
    expected = pd.DataFrame(
        {
            "n": g.size(),
            "total": g.sum(min_count=1),
            "mean": g.mean(),
            "low": g.min(),
            "high": g.max(),
            "first": g.first(),
            "last": g.last(),
        }
    ).reset_index()
    assert len(out) == len(expected)
    assert values(out["town"]) == values(expected["town"]) and values(out["year"]) == values(expected["year"])
    assert values(out["n"]) == values(expected["n"])
    for column in ("total", "mean", "low", "high", "first", "last"):
        np.testing.assert_allclose(
            out[column].to_numpy(dtype=float, na_value=np.nan),
            expected[column].to_numpy(dtype=float, na_value=np.nan),
            rtol=1e-12,
        )


def test_unpivot_row_major_with_source_lines(ctx):
    wide = frame({"town": ["A", "B"], "2021": ["1", None], "2022": ["2", "3"]})
    out = apply(unpivot, {"columns": ["2021", "2022"], "name": "year", "value": "amount"}, [wide], ctx)
    assert out.index.tolist() == [2, 2, 3, 3]
    assert values(out["town"]) == ["A", "A", "B", "B"]
    assert values(out["year"]) == ["2021", "2022", "2021", "2022"]
    assert values(out["amount"]) == ["1", "2", None, "3"]
    out = apply(unpivot, {"columns": ["2021", "2022"], "skip_nulls": True}, [wide], ctx)
    assert values(out["name"]) == ["2021", "2022", "2022"] and list(out.columns) == ["town", "name", "value"]


def test_unpivot_mixed_types_become_text_and_chunks_stay_bounded(ctx):
    wide = frame({"id": ["a", "b"], "n": [1, 2], "x": [0.5, None]}, dtypes={"n": INTEGER, "x": NUMBER})
    outs = run_rule(unpivot, bind_options(unpivot, ["n", "x"], ctx), [wide], ctx)
    assert [len(o) for o in outs] == [3, 1]
    out = pd.concat(outs)
    assert values(out["value"]) == ["1", "0.5", "2", None] and out["value"].dtype == TEXT
    with pytest.raises(RunFailed, match="unpivot: the rows already have a column 'id'"):
        apply(unpivot, {"columns": ["n"], "name": "id"}, [wide], ctx)


def test_pivot_long_to_wide_with_agg(ctx):
    out = apply(
        pivot, {"index": ["town"], "name": "yr", "value": "amt", "agg": "sum"}, [SALES.iloc[:3], SALES.iloc[3:]], ctx
    )
    assert list(out.columns) == ["town", "2020", "2021"]
    assert values(out["town"]) == ["B", "A", None, "é"]
    assert values(out["2020"]) == [1.5, None, None, None]
    assert values(out["2021"]) == [4.0, None, 3.0, None]


def test_pivot_with_fixed_names_rejects_others(tmp_path):
    ctx = make_ctx(tmp_path)
    out = apply(pivot, {"index": "town", "name": "yr", "value": "d", "names": ["2021", "2019"]}, [SALES], ctx)
    assert list(out.columns) == ["town", "2021", "2019"]
    assert values(out["town"]) == [None, "B"]  # A's only row has a null name: left out
    assert values(out["2021"]) == ["2020-01-01", "2019-01-01"] and values(out["2019"]) == [None, None]
    assert [r["line"] for r in rejects(ctx)] == ["2", "3", "7"]


@pytest.mark.parametrize(
    "rule, options",
    [
        (aggregate, {"by": ["town"], "compute": {"n": "count", "m": {"mean": "amt"}, "f": {"first": "d"}}}),
        (unpivot, ["yr", "d"]),
        (pivot, {"index": ["town"], "name": "yr", "value": "amt", "names": ["2020", "2021"]}),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_reshape_rules_keep_the_contract(rule, options):
    check_rule(rule, options, SALES)


def _many_groups(n: int, groups: int, seed: int = 5) -> list[pd.DataFrame]:
    """A stream whose groups outgrow a tiny buffer: keys with nulls, floats of very different sizes
    (a sum in another order would differ in the last bits), null values, a chunk whose `kind` is
    untyped nulls (its type changes between chunks), and an empty chunk."""
    rng = np.random.default_rng(seed)
    town = rng.integers(0, groups, n).astype(str).astype(object)
    town[rng.random(n) < 0.02] = None
    name = rng.integers(2000, 2012, n).astype(str).astype(object)
    name[rng.random(n) < 0.02] = None
    amount = rng.random(n) * rng.choice([1e9, -1.0, 1e-7], n)
    amount[rng.random(n) < 0.05] = np.nan
    df = pd.DataFrame(
        {
            "town": pd.array(town, dtype=TEXT),
            "kind": pd.array(rng.integers(0, 3, n), dtype=INTEGER),
            "yr": pd.array(name, dtype=TEXT),
            "amt": pd.array(amount, dtype=NUMBER),
        },
        index=pd.RangeIndex(2, n + 2),
    )
    size = n // 20
    chunks = [df.iloc[i : i + size] for i in range(0, n, size)]
    untyped = chunks[3].copy()
    untyped["kind"] = pd.Series([None] * len(untyped), index=untyped.index, dtype=object)
    return chunks[:3] + [untyped, df.iloc[:0]] + chunks[4:]


def _in_memory_and_spilled(tmp_path, rule, options, chunks, buffer_mb, caplog):
    outs = []
    for name, extra in (("memory", {}), ("spilled", {"buffer_mb": buffer_mb})):
        ctx = make_ctx(tmp_path / name, chunk_rows=700)
        with caplog.at_level(min(logging.INFO, caplog.handler.level or logging.INFO), logger="route"):
            caplog.clear()
            outs.append(run_rule(rule, bind_options(rule, {**options, **extra}, ctx), chunks, ctx))
        assert ("spilling them to 16 partitions" in caplog.text) == (name == "spilled")
        spills = ctx.run.state_dir / "tmp"
        assert not spills.exists() or not list(spills.iterdir())  # spill folder removed
    memory, spilled = outs
    assert [len(o) for o in spilled] == [len(o) for o in memory] and len(memory) > 1
    for a, b in zip(memory, spilled):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    return pd.concat(memory)


AGGREGATE_ALL = {
    "by": ["town", "kind"],
    "compute": {
        "n": "count",
        "with_amt": {"count": "amt"},
        "total": {"sum": "amt"},
        "average": {"mean": "amt"},
        "low": {"min": "amt"},
        "high": {"max": "yr"},
        "first": {"first": "amt"},
        "last": {"last": "yr"},
    },
}


def test_aggregate_spilled_by_key_gives_exactly_the_in_memory_result(tmp_path, caplog):
    out = _in_memory_and_spilled(tmp_path, aggregate, AGGREGATE_ALL, _many_groups(20_000, 4_000), 0.3, caplog)
    assert out.index.tolist() == list(range(1, len(out) + 1)) and len(out) > 8_000
    assert [str(out[c].dtype) for c in ("town", "kind", "n", "total", "high")] == [
        "string[pyarrow]",
        "int64[pyarrow]",
        "int64[pyarrow]",
        "double[pyarrow]",
        "string[pyarrow]",
    ]


def test_aggregate_spills_partitions_again_when_they_are_still_too_big(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="route")
    _in_memory_and_spilled(tmp_path, aggregate, AGGREGATE_ALL, _many_groups(2_000, 1_000), 0.004, caplog)
    assert "a partition of the groups spilled again (level 2)" in caplog.text


@pytest.mark.parametrize(
    "options, buffer_mb",
    [
        ({"index": ["town"], "name": "yr", "value": "amt", "agg": "sum"}, 0.3),
        ({"index": ["town", "kind"], "name": "yr", "value": "amt", "agg": "mean"}, 0.3),
        ({"index": "town", "name": "kind", "value": "yr", "agg": "last"}, 0.3),
        ({"index": "town", "name": "yr", "value": "amt", "names": ["2005", "2001", "1999"]}, 0.3),
        ({"index": ["town"], "name": "yr", "value": "amt", "agg": "max"}, 0.05),
    ],
    ids=["sum", "mean-two-keys", "last-text", "fixed-names", "split-in-pieces"],
)
def test_pivot_spilled_by_index_gives_exactly_the_in_memory_result(tmp_path, caplog, options, buffer_mb):
    caplog.set_level(logging.DEBUG, logger="route")
    out = _in_memory_and_spilled(tmp_path, pivot, options, _many_groups(20_000, 4_000), buffer_mb, caplog)
    assert out.index.tolist() == list(range(1, len(out) + 1))
    assert "pieces by index" in caplog.text or buffer_mb > 0.1


def test_aggregate_abandoned_while_spilled_leaves_no_files(tmp_path):
    ctx = make_ctx(tmp_path, chunk_rows=500)
    outs = aggregate(
        _many_groups(10_000, 4_000), bind_options(aggregate, {**AGGREGATE_ALL, "buffer_mb": 0.1}, ctx), ctx
    )
    assert len(next(outs)) == 500
    assert list((ctx.run.state_dir / "tmp").iterdir())
    outs.close()
    assert not list((ctx.run.state_dir / "tmp").iterdir())


def test_aggregate_over_a_chunk_with_no_value_in_a_numeric_column(ctx):
    """A database gives a chunk whose column is all NULL as Python None (object dtype): it adds
    nothing to the sums, and is no error."""
    first = pd.DataFrame({"town": ["A", "B"], "amt": pd.array([1.5, 2.0], dtype="double[pyarrow]")})
    empty = pd.DataFrame({"town": ["A", "C"], "amt": pd.Series([None, None], dtype=object)})
    out = apply(aggregate, {"by": ["town"], "compute": {"total": {"sum": "amt"}, "n": "count"}}, [first, empty], ctx)
    assert values(out["town"]) == ["A", "B", "C"]
    assert values(out["total"]) == [1.5, 2.0, None]
    assert values(out["n"]) == [2, 1, 1]


def test_aggregate_of_a_column_that_turns_to_text_in_a_later_chunk_says_so(ctx):
    """A column of numbers in the first chunk and of text in a later one (an untyped source): the
    sum is refused with the column named, not a Python error."""
    first = pd.DataFrame({"town": ["A", "B"], "amt": pd.array([1.5, 2.0], dtype="double[pyarrow]")})
    later = pd.DataFrame({"town": ["A", "C"], "amt": pd.Series(["n/a", "3"], dtype=TEXT)})
    with pytest.raises(RunFailed, match=r"cannot sum column 'amt': it holds string, not numbers"):
        apply(aggregate, {"by": ["town"], "compute": {"total": {"sum": "amt"}}}, [first, later], ctx)
