"""The socrata source: typed chunks page by page, and port jobs with the delivery."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import pytest
from socratakit import ROUTE_AUTH, cases, frame

from pipeline.basics import dtypes as D
from pipeline.basics.context import RunContext, StepContext
from pipeline.basics.errors import RunFailed
from pipeline.sources.socrata import SocrataSource

TYPED = [
    {"fieldName": "id", "name": "ID", "dataTypeName": "number"},
    {"fieldName": "name", "name": "Name", "dataTypeName": "text"},
    {"fieldName": "ok", "name": "OK", "dataTypeName": "checkbox"},
    {"fieldName": "opened", "name": "Opened", "dataTypeName": "calendar_date"},
    {"fieldName": "at", "name": "At", "dataTypeName": "date"},
    {"fieldName": "spot", "name": "Spot", "dataTypeName": "point"},
    {"fieldName": "price", "name": "Price", "dataTypeName": "money"},
]


def read(portal, tmp_path, chunk_rows=50_000, **options):
    run = RunContext(
        route_name="r",
        route_file=tmp_path / "r.yaml",
        state_dir=tmp_path / ".route",
        run_id="1",
        log=logging.getLogger("route.test"),
        chunk_rows=chunk_rows,
    )
    ctx = StepContext(run=run, stage="source", step="socrata")
    return list(SocrataSource({"domain": portal.url, "auth": dict(ROUTE_AUTH), **options}, ctx).chunks())


@pytest.fixture
def typed(portal, deliver):
    ds = portal.create(TYPED, row_identifier="id")
    chunk = frame(
        {
            "id": list(range(1, 8)),
            "name": ["a", None, "c", "d", "e", "f", "g"],
            "ok": [True, False, None, True, True, True, True],
            "opened": [dt.datetime(2024, 1, d, 9, 30) for d in range(1, 8)],
            "at": [dt.datetime(2024, 1, 1, 12, 0)] + [None] * 6,
            "spot": ["POINT (-72.5 41.25)"] + [None] * 6,
            "price": ["7.90"] * 7,
        }
    )
    deliver({"domain": portal.url, "dataset": ds, "mode": "upsert"}, chunk)
    return ds


def test_pages_come_as_typed_chunks_indexed_by_row_number(portal, typed, tmp_path):
    chunks = read(portal, tmp_path, dataset=typed, page_rows=3)
    assert [len(c) for c in chunks] == [3, 3, 1]
    df = pd.concat(chunks)
    assert list(df.index) == list(range(1, 8))
    assert dict(df.dtypes) == {
        "id": D.NUMBER,
        "name": D.TEXT,
        "ok": D.BOOLEAN,
        "opened": D.DATETIME,
        "at": D.datetime_dtype("UTC"),
        "spot": D.TEXT,
        "price": D.NUMBER,
    }
    first = df.iloc[0]
    assert (first["id"], first["name"], first["ok"], first["price"]) == (1.0, "a", True, 7.9)
    assert first["opened"] == pd.Timestamp("2024-01-01 09:30")
    assert first["at"] == pd.Timestamp("2024-01-01 12:00", tz="UTC")
    assert first["spot"] == "POINT (-72.5 41.25)"
    assert pd.isna(df.iloc[1]["name"]) and pd.isna(df.iloc[2]["ok"])
    assert chunks[0].attrs["source"].endswith(f"dataset {typed}")


def test_select_and_where(portal, typed, tmp_path):
    df = pd.concat(read(portal, tmp_path, dataset=typed, select=["id", "name"], where="id > 5"))
    assert list(df.columns) == ["id", "name"] and df["id"].tolist() == [6.0, 7.0]


def test_an_empty_result_is_one_empty_typed_chunk(portal, typed, tmp_path):
    chunks = read(portal, tmp_path, dataset=typed, where="id > 100")
    assert len(chunks) == 1 and len(chunks[0]) == 0 and chunks[0]["ok"].dtype == D.BOOLEAN


def test_a_missing_dataset_is_explained(portal, tmp_path):
    with pytest.raises(RunFailed, match="socrata source: reading dataset zzzz-9999: dataset zzzz-9999 was not found"):
        read(portal, tmp_path, dataset="zzzz-9999")


def test_port_job_copies_a_dataset(portal, typed, deliver, tmp_path):
    copy = portal.create(TYPED, row_identifier="id", name="Copy")
    for mode in ("upsert", "replace"):
        chunks = read(portal, tmp_path, dataset=typed, page_rows=4)
        deliver({"domain": portal.url, "dataset": copy, "mode": mode}, *chunks)
        # Numbers travel as float64 (the canonical number type), so money's trailing zero goes.
        original = [{**r, "price": "7.9"} for r in portal.rows(typed)]
        assert portal.rows(copy) == original


def test_system_ids_port_to_a_dataset_without_row_identifier(portal, deliver, tmp_path):
    log = [
        {"fieldName": "case_id", "name": "Case ID", "dataTypeName": "text"},
        {"fieldName": "amount", "name": "Amount", "dataTypeName": "number"},
    ]
    ds = portal.create(log, row_identifier=None)
    deliver({"domain": portal.url, "dataset": ds, "mode": "append"}, cases(3)[["case_id", "amount"]])
    chunks = read(portal, tmp_path, dataset=ds, select=":id, *", where="case_id = 'C-0002'")
    assert list(chunks[0].columns) == [":id", "case_id", "amount"]
    deliver({"domain": portal.url, "dataset": ds, "mode": "delete"}, *chunks)
    assert [r["case_id"] for r in portal.rows(ds)] == ["C-0001", "C-0003"]


def test_the_source_says_how_far_it_has_read_of_the_dataset(portal, typed, route_cli, write_route):
    """The dataset's row count, asked once, gives the progress bar its total: the run report has it."""
    path = write_route(
        f"""
        name: port
        source:
          socrata: {{domain: "{portal.url}", dataset: {typed}, page_rows: 3, auth: {{username: {ROUTE_AUTH["username"]}, password: "{ROUTE_AUTH["password"]}"}}}}
        targets:
          - name: out
            deliver: {{jsonl: {{path: out.jsonl}}}}
        """
    )
    import json

    result = route_cli("execute", "--json", str(path))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["source_done"], report["source_total"], report["source_unit"]) == (7, 7, "rows")
