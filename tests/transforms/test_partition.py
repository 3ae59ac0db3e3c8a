"""Splitting spilled rows by key (transforms._partition): keys that group together always share a
partition, whatever the layout and type of the column they come in, and partitions come back in
the order written."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from rulekit import make_ctx

from transforms._partition import Partitions, column_hash, partition_ids
from transforms._spill import SpillDir

TEXT = ["abc", None, "", "abc", "x" * 10_000, "é", "y" * 700_000, "abd", "bac", "y" * 700_000, "x" * 10_000]


def test_equal_values_hash_alike_in_any_layout():
    data = pa.array(TEXT)
    h = column_hash(data)
    assert h[0] == h[3] and h[4] == h[10] and h[6] == h[9]
    assert len({int(v) for v in h[[0, 1, 2, 4, 5, 6, 7, 8]]}) == 8
    assert (column_hash(data.slice(3)) == h[3:]).all()
    assert (column_hash(pa.chunked_array([data.slice(0, 4), data.slice(4)])) == h).all()
    assert (column_hash(data.cast(pa.large_string())) == h).all()
    assert (column_hash(data.dictionary_encode()) == h).all()
    assert (column_hash(pa.array(TEXT, pa.binary())) == h).all()


def test_numbers_hash_by_value_and_nulls_alike_in_any_type():
    assert (column_hash(pa.array([1, 2, None, 0])) == column_hash(pa.array([1.0, 2.0, None, -0.0]))).all()
    nans = np.array([np.nan, -np.nan, np.float64(np.frombuffer(b"\x01\x00\x00\x00\x00\x00\xf8\x7f", np.float64)[0])])
    assert len(set(column_hash(pa.array(nans)).tolist())) == 1
    null = column_hash(pa.array([None]))[0]
    for typed in (pa.array([None], pa.string()), pa.array([None], pa.float64()), pa.array([None], pa.date32())):
        assert column_hash(typed)[0] == null


def test_partitions_are_balanced_and_a_seed_splits_them_again():
    keys = pc.binary_join_element_wise("P-", pc.cast(pa.array(np.arange(160_000)), pa.string()), "")
    ids = partition_ids([keys], 16)
    counts = np.bincount(ids, minlength=16)
    assert counts.min() > 0.9 * 10_000 and counts.max() < 1.1 * 10_000
    again = np.bincount(partition_ids([keys.filter(pa.array(ids == 3))], 16, seed=1), minlength=16)
    assert again.min() > 0.8 * counts[3] / 16
    two = partition_ids([keys, pa.array(np.arange(160_000) % 7)], 16)
    assert (two == partition_ids([keys, pa.array((np.arange(160_000) % 7).astype(float))], 16)).all()


@pytest.fixture
def spill(tmp_path):
    folder = SpillDir(make_ctx(tmp_path), "test")
    yield folder
    folder.close()


def test_partitions_read_back_in_order_written_with_the_types_of_all(spill):
    parts = Partitions(spill, 4, "p")
    first = pa.table({"k": pa.array([None, None, None]), "n": [1, 2, 3]})
    second = pa.table({"k": pa.array(["a", "b", None]), "n": [4, 5, 6]})
    parts.write(first, np.array([0, 1, 0]))
    parts.write(second, np.array([0, 0, 3]))
    read = [pa.concat_tables(list(parts.read(p))) if parts.files[p] else None for p in range(4)]
    assert read[0].to_pydict() == {"k": [None, None, "a", "b"], "n": [1, 3, 4, 5]}
    assert read[0].schema.field("k").type == pa.string()
    assert read[1].to_pydict() == {"k": [None], "n": [2]} and read[2] is None
    assert read[3].to_pydict() == {"k": [None], "n": [6]}
