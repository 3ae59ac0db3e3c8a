"""dedupe, sort, limit, sample: exact results on tricky streams, and agreement with pandas on a
300,000-row stream in 10,000-row chunks (in memory and spilled to disk)."""

import logging

import numpy as np
import pandas as pd
import pytest
from rulekit import INTEGER, NUMBER, TEXT, apply, frame, make_ctx, values

from pipeline.basics.errors import OptionError, RunFailed
from pipeline.testing import bind_options, check_rule, run_rule
from transforms.rows import dedupe, limit, sample, sort


@pytest.fixture
def ctx(tmp_path):
    return make_ctx(tmp_path, chunk_rows=4)


def split_in(chunk, *sizes):
    out, start = [], 0
    for size in sizes:
        out.append(chunk.iloc[start : start + size])
        start += size
    return out


TRICKY = frame({"id": ["a", "b", None, "a", None, "A", "b", "ä"], "n": [1, 2, 3, 1, 3, 1, 5, 1]}, dtypes={"n": INTEGER})


def test_dedupe_first_across_chunks_nulls_equal(ctx):
    out = apply(dedupe, {"keys": ["id"]}, split_in(TRICKY, 3, 0, 5), ctx)
    assert out.index.tolist() == [2, 3, 4, 7, 9]
    assert values(out["id"]) == ["a", "b", None, "A", "ä"]


def test_dedupe_last_keeps_the_last_occurrence_in_order(ctx):
    out = apply(dedupe, {"keys": ["id"], "keep": "last"}, split_in(TRICKY, 3, 0, 5), ctx)
    assert out.index.tolist() == [5, 6, 7, 8, 9]
    assert values(out["n"]) == [1, 3, 1, 5, 1]
    assert out["n"].dtype == INTEGER and out.attrs["source"] == "in.csv"
    assert not list((ctx.run.state_dir / "tmp").iterdir())  # spill folder removed


def test_dedupe_whole_row_by_default_and_multi_key(ctx):
    assert apply(dedupe, {}, [TRICKY], ctx).index.tolist() == [2, 3, 4, 7, 8, 9]
    assert apply(dedupe, ["n", "id"], [TRICKY], ctx).index.tolist() == [2, 3, 4, 7, 8, 9]
    assert apply(dedupe, {"keys": ["n"], "keep": "last"}, [TRICKY], ctx).index.tolist() == [3, 6, 8, 9]


def test_dedupe_empty_stream_and_empty_chunks(ctx):
    assert apply(dedupe, ["id"], [], ctx).empty
    out = apply(dedupe, {"keys": ["id"], "keep": "last"}, [TRICKY.iloc[:0]], ctx)
    assert out.empty and list(out.columns) == ["id", "n"] and out["n"].dtype == INTEGER


def test_sort_multi_key_descending_nulls_and_stability(ctx):
    chunk = frame(
        {
            "town": ["b", None, "a", "b", "a", "é"],
            "amt": [2.0, 1.0, None, 2.0, 5.0, 0.5],
            "tag": ["1", "2", "3", "4", "5", "6"],
        },
        dtypes={"amt": NUMBER},
    )
    out = apply(sort, {"by": ["town", "amt"], "descending": ["amt"]}, split_in(chunk, 2, 4), ctx)
    assert values(out["tag"]) == ["5", "3", "1", "4", "6", "2"]
    out = apply(sort, {"by": "amt", "nulls": "first"}, [chunk], ctx)
    assert values(out["tag"]) == ["3", "6", "2", "1", "4", "5"]
    assert out.index.tolist() == [4, 7, 3, 2, 5, 6]
    assert all(len(c) <= 4 for c in [out.iloc[:4], out.iloc[4:]])


def test_sort_spills_and_merges_with_a_tiny_buffer(tmp_path, caplog):
    ctx = make_ctx(tmp_path, chunk_rows=1000)
    rng = np.random.default_rng(3)
    n = 20_000
    df = frame({"k": rng.integers(0, 50, n).astype(str).tolist(), "v": rng.random(n).tolist()}, dtypes={"v": NUMBER})
    chunks = [df.iloc[i : i + 1000] for i in range(0, n, 1000)]
    with caplog.at_level(logging.INFO, logger="route"):
        out = apply(sort, {"by": ["k"], "buffer_mb": 0.05}, chunks, ctx)
    assert "sort spilled" in caplog.text
    pd.testing.assert_frame_equal(out, df.sort_values("k", kind="stable"))
    assert not list((ctx.run.state_dir / "tmp").iterdir())


def test_sort_refuses_mixed_python_objects(ctx):
    chunk = frame({"x": [1, "a", None]}, dtypes={"x": "object"})
    with pytest.raises(RunFailed, match="sort: column 'x' holds Python objects of mixed types"):
        apply(sort, ["x"], [chunk], ctx)


def test_sort_descending_must_name_sort_columns(ctx):
    with pytest.raises(OptionError, match=r"`descending` names \['y'\]"):
        apply(sort, {"by": ["x"], "descending": ["y"]}, [frame({"x": ["1"]})], ctx)


def test_limit_stops_reading_the_stream(ctx):
    pulled = []

    def stream():
        for part in split_in(TRICKY, 3, 3, 2):
            pulled.append(len(part))
            yield part

    out = apply(limit, 4, stream(), ctx)
    assert out.index.tolist() == [2, 3, 4, 5]
    assert pulled == [3, 3]
    assert apply(limit, {"rows": 0}, [TRICKY], ctx).empty


def test_sample_rows_is_uniform_ordered_and_repeatable(ctx):
    big = frame({"i": [str(i) for i in range(1000)]})
    chunks = [big.iloc[i : i + 100] for i in range(0, 1000, 100)]
    one = apply(sample, {"rows": 10, "seed": 5}, chunks, ctx)
    two = apply(sample, {"rows": 10, "seed": 5}, chunks, ctx)
    assert len(one) == 10 and one.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(one, two)
    assert not one.equals(apply(sample, {"rows": 10, "seed": 6}, chunks, ctx))
    assert len(apply(sample, {"rows": 5000}, chunks, make_ctx(ctx.run.route_dir, chunk_rows=10_000))) == 1000
    firsts = [int(apply(sample, {"rows": 1, "seed": s}, chunks, ctx)["i"].iloc[0]) for s in range(200)]
    assert 300 < np.mean(firsts) < 700  # not biased towards either end of the stream


def test_sample_fraction(ctx):
    big = frame({"i": [str(i) for i in range(10_000)]})
    out = apply(sample, {"fraction": 0.1, "seed": 1}, [big.iloc[:5000], big.iloc[5000:]], ctx)
    assert 850 < len(out) < 1150 and out.index.is_monotonic_increasing


@pytest.mark.parametrize(
    "rule, options",
    [
        (dedupe, ["id"]),
        (dedupe, {"keys": ["id"], "keep": "last"}),
        (sort, {"by": "id"}),
        (sort, {"by": ["id", "n"], "buffer_mb": 0.0001}),
        (limit, 3),
        (sample, {"rows": 2}),
        (sample, {"fraction": 0.5}),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_row_rules_keep_the_contract(rule, options):
    check_rule(rule, options, TRICKY)


# --- a larger stream, against pandas on the whole table ---------------------------------------


@pytest.fixture(scope="module")
def stream300k():
    n, rng = 300_000, np.random.default_rng(11)
    town = rng.integers(0, 40_000, n).astype(str).astype(object)
    town[rng.random(n) < 0.02] = None
    df = pd.DataFrame(
        {
            "town": pd.array(town, dtype=TEXT),
            "year": pd.array(rng.integers(2000, 2004, n), dtype=INTEGER),
            "amount": pd.array(np.round(rng.random(n) * 1000, 2), dtype=NUMBER),
        },
        index=pd.RangeIndex(2, n + 2),
    )
    return df, [df.iloc[i : i + 10_000] for i in range(0, n, 10_000)]


@pytest.mark.parametrize("keep", ["first", "last"])
def test_dedupe_300k_agrees_with_pandas(tmp_path, stream300k, keep):
    df, chunks = stream300k
    ctx = make_ctx(tmp_path, chunk_rows=10_000)
    out = apply(dedupe, {"keys": ["town", "year"], "keep": keep}, chunks, ctx)
    pd.testing.assert_frame_equal(out, df.drop_duplicates(["town", "year"], keep=keep))


@pytest.mark.parametrize("buffer_mb", [None, 1])
def test_sort_300k_agrees_with_pandas(tmp_path, stream300k, buffer_mb):
    df, chunks = stream300k
    ctx = make_ctx(tmp_path, chunk_rows=10_000)
    options = {"by": ["year", "town"], "descending": ["year"], **({"buffer_mb": buffer_mb} if buffer_mb else {})}
    outs = run_rule(sort, bind_options(sort, options, ctx), chunks, ctx)
    assert max(len(o) for o in outs) <= 10_000
    expected = df.sort_values(["year", "town"], ascending=[False, True], kind="stable")
    pd.testing.assert_frame_equal(pd.concat(outs), expected)
