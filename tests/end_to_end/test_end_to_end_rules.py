"""Acceptance of the rule library, routing, `route test` and `route init` (issue 6), as a publisher
meets them: through the `route` command, on hand-written awkward files (nulls, empty cells, unicode,
mixed types) split into tiny chunks, checking every row delivered and every row rejected.

The unit tests (tests/transforms/test_rules_*.py) call each rule directly. The text, rows, validate and
reshape families run end to end as `route test` cases (tests/cases/*-family/, run by test_cases.py);
here run the families whose checks a case cannot make (typed values, rejects in the order written,
a SQLite fixture, integers beyond 2^53), every docstring example is dropped into a route and
validated, the stream rules are compared with pandas on a generated table read in small chunks, and
the example route's test cases are run through `route test`.
"""

from __future__ import annotations

import csv
import inspect
import json
import re
import shutil
import sqlite3
import textwrap
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from conftest import read_csv_rows, read_jsonl

from pipeline.basics.plugins import Registry

ROOT = Path(__file__).resolve().parents[2]


# --- helpers ---------------------------------------------------------------------------------


def execute(route_cli, path: Path, *args: str, env: dict | None = None) -> dict:
    """`route execute --json ROUTE`; the report (the run must succeed)."""
    result = route_cli("execute", "--json", *args, str(path), env=env)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return json.loads(result.stdout)


def rejects_of(report: dict) -> list[tuple]:
    """The rejects file as (line, step, column, value, reason), in the order written."""
    if not report["rejects_file"]:
        return []
    with open(report["rejects_file"], newline="", encoding="utf-8") as f:
        return [(int(r["line"]), r["step"], r["column"], r["value"], r["reason"]) for r in csv.DictReader(f)]


def project(rows: list[dict], *columns: str) -> list[tuple]:
    return [tuple(r.get(c) for c in columns) for r in rows]


# --- one route per rule family, end to end ---------------------------------------------------


def test_lookup_family_end_to_end(route_cli, write_route, tmp_path):
    db = tmp_path / "census.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE acs (tract INTEGER, population INTEGER)")
        conn.executemany("INSERT INTO acs VALUES (?, ?)", [(101, 3500), (102, 1200)])
    path = write_route(
        """
        name: lookup-family
        chunk_rows: 2
        source: {csv: {path: data.csv}}
        source_transforms:
          - lookup: {column: town_code, table: {csv: lookups/towns.csv}, key: code, value: town_name, into: town}
          - join:
              column: type
              key: code
              table: {rows: [{code: R, label: Residential, taxable: true}, {code: C, label: Commercial, taxable: false}]}
          - lookup:
              column: tract
              table: {sql: {url: "sqlite:///census.db", query: "SELECT tract AS key, population AS value FROM acs"}}
              into: population
              unmatched: default
              default: 0
        targets:
          - name: out
            target_transforms:
              - select: [id, town, label, taxable, population]
            deliver: {jsonl: {path: out.jsonl}}
    """,
        **{
            "data.csv": "id,town_code,type,tract\n1,001,R,101\n2,002,C,102\n3,1,X,\n4,,R,104\n5,010,C,101\n6,002,Q,\n",
            "lookups__towns.csv": "code,town_name,county\n001,Andover,Tolland\n002,Ansonia,New Haven\n010,Z\u00fcrich,\n",
        },
    )
    report = execute(route_cli, path)
    assert read_jsonl(tmp_path / "out.jsonl") == [
        {"id": "1", "town": "Andover", "label": "Residential", "taxable": True, "population": 3500},
        {"id": "2", "town": "Ansonia", "label": "Commercial", "taxable": False, "population": 1200},
        {"id": "4", "town": None, "label": "Residential", "taxable": True, "population": 0},
        {"id": "5", "town": "Z\u00fcrich", "label": "Commercial", "taxable": False, "population": 3500},
        {"id": "6", "town": "Ansonia", "label": None, "taxable": None, "population": None},
    ]
    # "1" is not "001": keys compare as text
    assert rejects_of(report) == [(4, "lookup", "town_code", "1", "not in the lookup table")]


GEO_DATA = (
    "id,lat,lon,street,town,geom\n"
    '1,41.7637,-72.6851,"12 ""Main"" St",Hartford,POINT (-72.68 41.76)\n'
    "2,,,,,\n"
    '3,95,-72,x,y,"LINESTRING (30 10, 10 30)"\n'
    "4,abc,-72,,,\n"
    '5, 41.5 ,-72.10,\u00c4hrenweg 1,\u65e5\u672c,"{""type"":""Point"",""coordinates"":[1,2]}"\n'
    '6,-90,180,,,"POLYGON ((30 10, 40 40, 20 40, 30 10))"\n'
)


def test_geo_family_end_to_end(route_cli, write_route, tmp_path):
    path = write_route(
        """
        name: geo-family
        chunk_rows: 2
        source: {csv: {path: data.csv}}
        source_transforms:
          - point: {latitude: lat, longitude: lon, into: pt}
          - location: {address: street, city: town, into: loc}
          - wkt: {column: geom, to: geojson}
        targets:
          - name: out
            target_transforms:
              - select: [id, pt, loc, geom]
            deliver: {jsonl: {path: out.jsonl}}
    """,
        **{"data.csv": GEO_DATA},
    )
    report = execute(route_cli, path)
    rows = read_jsonl(tmp_path / "out.jsonl")
    assert project(rows, "id", "pt", "geom") == [
        ("1", "POINT (-72.6851 41.7637)", '{"type":"Point","coordinates":[-72.68,41.76]}'),
        ("2", None, None),
        ("6", "POINT (180 -90)", '{"type":"Polygon","coordinates":[[[30,10],[40,40],[20,40],[30,10]]]}'),
    ]
    assert json.loads(json.loads(rows[0]["loc"])["human_address"]) == {
        "address": '12 "Main" St',
        "city": "Hartford",
        "state": "",
        "zip": "",
    }
    assert rows[1]["loc"] is None and rows[2]["loc"] is None
    assert rejects_of(report) == [
        (5, "point", "lat", "abc", "latitude is not a number"),
        (4, "point", "lat", "95", "latitude is out of range (-90 to 90)"),
        (
            6,
            "wkt",
            "geom",
            '{"type":"Point","coordinates":[1,2]}',
            "not a WKT geometry (POINT, LINESTRING, POLYGON or their MULTI forms)",
        ),
    ]


JSON_DATA = (
    "id,payload\n"
    '1,"{""inspection"": {""inspector"": {""name"": ""Zo\u00eb""}, ""violations"": [{""code"": ""A1""}, {""code"": ""B2""}]}, ""score"": 91}"\n'
    "2,\n"
    "3,not json\n"
    '4,"{""inspection"": {""inspector"": null, ""violations"": []}, ""score"": ""88""}"\n'
    '5,"{""inspection"": {""violations"": [{""code"": 5}]}, ""score"": 9.5}"\n'
)


def test_json_family_end_to_end(route_cli, write_route, tmp_path):
    path = write_route(
        """
        name: json-family
        chunk_rows: 2
        source: {csv: {path: data.csv}}
        source_transforms:
          - jmespath:
              column: payload
              extract:
                inspector: inspection.inspector.name
                violations: {expression: "length(inspection.violations)", type: integer}
                codes: "inspection.violations[*].code"
                score: {expression: score, type: number}
        targets:
          - name: out
            target_transforms:
              - select: [id, inspector, violations, codes, score]
            deliver: {jsonl: {path: out.jsonl}}
    """,
        **{"data.csv": JSON_DATA},
    )
    report = execute(route_cli, path)
    assert read_jsonl(tmp_path / "out.jsonl") == [
        {"id": "1", "inspector": "Zo\u00eb", "violations": 2, "codes": '["A1","B2"]', "score": 91.0},
        {"id": "2", "inspector": None, "violations": None, "codes": None, "score": None},
        {"id": "4", "inspector": None, "violations": 0, "codes": "[]", "score": 88.0},
        {"id": "5", "inspector": None, "violations": 1, "codes": "[5]", "score": 9.5},
    ]
    assert rejects_of(report) == [(4, "jmespath", "payload", "not json", "is not valid JSON (line 1, column 1)")]


def test_json_source_and_jmespath_end_to_end(route_cli, write_route, tmp_path):
    """JSON Lines records with nulls, missing fields, mixed types, a blank line and unicode."""
    path = write_route(
        """
        name: json-source
        chunk_rows: 2
        source: {json: {path: data.jsonl}}
        source_transforms:
          - jmespath:
              column: detail
              extract:
                inspector: inspector.name
                n: {expression: "length(violations)", type: integer}
          - cast: {id: integer, score: number, ok: boolean}
        targets:
          - name: out
            target_transforms: [{select: [id, name, score, ok, extra, inspector, n]}]
            deliver: {jsonl: {path: out.jsonl}}
    """,
        **{
            "data.jsonl": (
                '{"id": 1, "name": "Zo\u00eb", "score": 91, "detail": {"inspector": {"name": "Al"}, '
                '"violations": [{"code": "A1"}]}, "ok": true}\n'
                '{"id": 2, "name": null, "score": "88", "detail": null}\n'
                "\n"
                '{"id": 3, "name": "\u65e5\u672c", "score": 9.5, "detail": {"violations": []}, "ok": false, "extra": "x"}\n'
                '{"id": 4, "score": null, "detail": "not an object", "ok": null}\n'
            )
        },
    )
    report = execute(route_cli, path)
    assert read_jsonl(tmp_path / "out.jsonl") == [
        {"id": 1, "name": "Zo\u00eb", "score": 91.0, "ok": True, "extra": None, "inspector": "Al", "n": 1},
        {"id": 2, "name": None, "score": 88.0, "ok": None, "extra": None, "inspector": None, "n": None},
        {"id": 3, "name": "\u65e5\u672c", "score": 9.5, "ok": False, "extra": "x", "inspector": None, "n": 0},
    ]
    # the line of the file (a blank line before it), not the record's position
    assert rejects_of(report) == [(5, "jmespath", "detail", "not an object", "is not valid JSON (line 1, column 1)")]


def test_integers_beyond_2_53_never_crash_a_rule(route_cli, write_route, tmp_path):
    """int64 values a float64 cannot hold exactly (ids, counters): numeric rules compare and average
    them, cast to number rejects them rather than rounding them, and nothing fails with Arrow's
    "Integer value ... not in range" (each of these used to stop the run)."""
    path = write_route(
        """
        name: big-integers
        source: {csv: {path: data.csv}}
        source_transforms:
          - cast: {id: integer, n: integer, lat: integer, lon: integer}
        on_error: {max_rejects: 10}
        targets:
          - name: ranged
            target_transforms: [{range: {column: id, min: 0, max: 1000000000000000000}}, {select: [id]}]
            deliver: {jsonl: {path: ranged.jsonl}}
          - name: mean
            target_transforms: [{aggregate: {compute: {total: {sum: n}, mean: {mean: n}, rows: count}}}]
            deliver: {jsonl: {path: mean.jsonl}}
          - name: points
            target_transforms: [{point: {latitude: lat, longitude: lon, into: p}}, {select: [id, p]}]
            deliver: {jsonl: {path: points.jsonl}}
          - name: numbers
            target_transforms: [{cast: {id: number}}, {select: [id]}]
            deliver: {jsonl: {path: numbers.jsonl}}
    """,
        **{
            "data.csv": "id,n,lat,lon\n1844674407370955161,9007199254740993,41,-72\n"
            "9007199254740992,1,9007199254740993,1\n-5,2,0,0\n"
        },
    )
    report = execute(route_cli, path)
    assert read_jsonl(tmp_path / "ranged.jsonl") == [{"id": 9007199254740992}]
    assert read_jsonl(tmp_path / "mean.jsonl") == [{"total": 9007199254740996, "mean": 9007199254740996 / 3, "rows": 3}]
    assert read_jsonl(tmp_path / "points.jsonl") == [
        {"id": 1844674407370955161, "p": "POINT (-72 41)"},
        {"id": -5, "p": "POINT (0 0)"},
    ]
    assert read_jsonl(tmp_path / "numbers.jsonl") == [{"id": 9007199254740992.0}, {"id": -5.0}]
    assert sorted(rejects_of(report)) == [
        (
            2,
            "cast",
            "id",
            "1844674407370955161",
            "'1844674407370955161' is too large to be held exactly as a number (beyond 2^53); keep it an integer",
        ),
        (2, "range", "id", "1844674407370955161", "above the maximum 1000000000000000000"),
        (3, "point", "lat", "9007199254740993", "latitude is out of range (-90 to 90)"),
        (4, "range", "id", "-5", "below the minimum 0"),
    ]


# --- every rule's docstring example: shown by `route rules NAME`, valid in a route ------------


def rule_examples() -> list[tuple[str, int, str]]:
    """(rule, n, YAML text) for every example in every installed rule's docstring: the indented
    block after `Example:` and every ```yaml fence."""
    registry = Registry.discover()
    out = []
    for entry in registry.entries("rules"):
        doc = inspect.getdoc(registry.load("rules", entry.name)) or ""
        blocks = re.findall(r"```yaml\n(.*?)```", doc, re.DOTALL)
        marker = re.search(r"^Examples?:\n", doc, re.MULTILINE)
        if marker:
            blocks.append(textwrap.dedent(doc[marker.end() :]).strip("\n") + "\n")
        out += [(entry.name, n, block) for n, block in enumerate(blocks)]
    return out


EXAMPLES = rule_examples()


def test_every_rule_has_an_example():
    registry = Registry.discover()
    assert {name for name, _, _ in EXAMPLES} == set(registry.names("rules"))


@pytest.mark.parametrize("name", sorted({name for name, _, _ in EXAMPLES}))
def test_route_rules_shows_the_example(route_cli, name):
    result = route_cli("rules", name)
    assert result.exit_code == 0, result.output
    for rule, _, block in EXAMPLES:
        if rule == name:
            assert textwrap.indent(block.rstrip("\n"), "    ") in result.stdout or block.rstrip("\n") in result.stdout


def as_steps(block: str) -> str:
    """The example as the items of a `source_transforms:` list, indented as in a route file."""
    if block.lstrip().startswith("source_transforms:"):
        block = textwrap.dedent(block.split("source_transforms:", 1)[1].strip("\n"))
    return textwrap.indent(block.rstrip("\n"), "  ")


# What some examples refer to, made available the way a publisher would make them so: the
# lookup's table file, and a database for join's query (the example's PostgreSQL server `db`
# stands for the publisher's own; a SQLite file with the same table takes its place).
FIXTURES = {"lookups__towns.csv": "code,town_name\n001,Andover\n"}


@pytest.mark.parametrize("name, n, block", EXAMPLES, ids=[f"{name}-{n}" for name, n, _ in EXAMPLES])
def test_each_example_validates_in_a_route(route_cli, write_route, tmp_path, name, n, block):
    if "postgresql://" in block:
        with sqlite3.connect(tmp_path / "census.db") as conn:
            conn.execute("CREATE TABLE acs (tract TEXT, population INTEGER)")
        block = re.sub(r'"postgresql://[^"]*"', '"sqlite:///census.db"', block)
    path = write_route(
        f"""\
name: example-{name.replace("_", "-")}-{n}
source:
  csv: {{path: data.csv}}
source_transforms:
{as_steps(block)}
targets:
  - name: out
    deliver: {{jsonl: {{path: out.jsonl}}}}
""",
        **{"data.csv": "a\n1\n", **FIXTURES},
    )
    result = route_cli("validate", str(path))
    # the example's own columns: those the check finds missing become the data's header, and the
    # example must then validate with every column it reads accounted for
    wanted = list(dict.fromkeys(re.findall(r"unknown column '([^']+)'", result.stderr)))
    if wanted:
        (tmp_path / "data.csv").write_text(",".join(["a", *wanted]) + "\n" + ",".join("1" * (len(wanted) + 1)) + "\n")
        result = route_cli("validate", str(path))
    assert result.exit_code == 0, f"{name} example:\n{block}\n{result.output}"
    assert result.stdout.strip() == f"{path}: ok"


# --- stream rules against pandas on the whole table --------------------------------------------

STREAM_ROWS, STREAM_CHUNK = 200_000, 2_000


@pytest.fixture(scope="module")
def stream_csv(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A generated CSV (ids with repeats, keys with nulls and unicode, amounts with nulls and
    ties) and the same table as pandas reads it whole, typed as the route casts it."""
    rng = np.random.default_rng(20240611)
    n = STREAM_ROWS
    ids = np.arange(n)
    repeat = rng.random(n) < 0.02
    ids[repeat] = rng.integers(0, n, int(repeat.sum()))
    towns = np.array(
        [f"Town {i:03d}" for i in range(150)] + ["Z\u00fcrich", "\u65e5\u672c", "k\u00f8benhavn", "a"], dtype=object
    )
    town = towns[rng.integers(0, len(towns), n)]
    town[rng.random(n) < 0.03] = ""
    parcel = np.char.add("P-", rng.integers(0, n // 3, n).astype(str)).astype(object)
    parcel[rng.random(n) < 0.01] = ""
    amount = np.round(rng.integers(0, 5000, n) / 4, 2).astype(object)  # many ties
    amount[rng.random(n) < 0.05] = ""
    year = rng.integers(2019, 2025, n)
    raw = pd.DataFrame({"id": ids, "parcel": parcel, "town": town, "year": year, "amount": amount})
    folder = tmp_path_factory.mktemp("stream")
    path = folder / "sales.csv"
    raw.to_csv(path, index=False)
    whole = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    whole.index = pd.RangeIndex(2, n + 2)  # source lines
    typed = whole.assign(
        id=whole["id"].astype("int64"), year=whole["year"].astype("int64"), amount=whole["amount"].astype("float64")
    )
    return path, typed


def frame_of(path: Path) -> pd.DataFrame:
    return pd.DataFrame([orjson.loads(line) for line in path.read_bytes().splitlines()])


def test_stream_rules_agree_with_pandas_on_the_whole_table(route_cli, tmp_path, stream_csv):
    data, df = stream_csv
    shutil.copy(data, tmp_path / "sales.csv")
    route = tmp_path / "stream.yaml"
    route.write_text(
        textwrap.dedent(f"""\
        name: stream
        chunk_rows: {STREAM_CHUNK}
        source: {{csv: {{path: sales.csv}}}}
        source_transforms:
          - cast: {{id: integer, year: integer, amount: number}}
        on_error: {{max_rejects: "50%"}}
        targets:
          - name: first
            target_transforms: [{{dedupe: {{keys: [parcel, year]}}}}]
            deliver: {{jsonl: {{path: first.jsonl}}}}
          - name: last
            target_transforms: [{{dedupe: {{keys: [parcel], keep: last}}}}]
            deliver: {{jsonl: {{path: last.jsonl}}}}
          - name: unique
            target_transforms: [{{unique: [id]}}, {{select: [id]}}]
            deliver: {{jsonl: {{path: unique.jsonl}}}}
          - name: sorted
            target_transforms: [{{sort: {{by: [town, amount], descending: [amount], buffer_mb: 1}}}}, {{select: [id]}}]
            deliver: {{jsonl: {{path: sorted.jsonl}}}}
          - name: totals
            target_transforms:
              - aggregate:
                  by: [town, year]
                  compute: {{n: count, total: {{sum: amount}}, mean: {{mean: amount}}, low: {{min: amount}},
                             high: {{max: amount}}, first: {{first: parcel}}, last: {{last: parcel}}}}
            deliver: {{jsonl: {{path: totals.jsonl}}}}
        """)
    )
    report = execute(route_cli, route)
    assert report["rows_read"] == STREAM_ROWS

    def ids(name):
        return [json.loads(line)["id"] for line in (tmp_path / f"{name}.jsonl").read_bytes().splitlines()]

    assert ids("first") == df.drop_duplicates(["parcel", "year"])["id"].tolist()
    assert ids("last") == df.drop_duplicates(["parcel"], keep="last")["id"].tolist()
    dup = df["id"].duplicated()
    assert ids("unique") == df.loc[~dup, "id"].tolist()
    first_line = df.reset_index().groupby("id")["index"].transform("first").to_numpy()
    unique_rejects = [r for r in rejects_of(report) if r[1] == "unique"]
    assert [(line, value, reason) for line, _, _, value, reason in unique_rejects] == [
        (line, str(i), f"duplicate of line {first}")
        for line, i, first in zip(df.index[dup], df.loc[dup, "id"], first_line[dup.to_numpy()])
    ]
    assert report["rows_rejected"] == int(dup.sum())
    # nulls last on both keys, text by code point, equal keys in input order
    expected = df.sort_values(["town", "amount"], ascending=[True, False], na_position="last", kind="stable")
    assert ids("sorted") == expected["id"].tolist()
    log = (tmp_path / ".route" / "logs" / f"stream-{report['run_id']}.log").read_text()
    assert "sort spilled 200000 rows in " in log  # the external merge was taken, not the in-memory sort

    got = frame_of(tmp_path / "totals.jsonl")
    g = df.groupby(["town", "year"], sort=False, dropna=False)
    want = pd.DataFrame(
        {
            "n": g.size(),
            "total": g["amount"].sum(min_count=1),
            "mean": g["amount"].mean(),
            "low": g["amount"].min(),
            "high": g["amount"].max(),
            "first": g["parcel"].first(),
            "last": g["parcel"].last(),
        }
    ).reset_index()
    assert (
        got[["town", "year"]].astype(object).where(got[["town", "year"]].notna(), None).values.tolist()
        == want[["town", "year"]].astype(object).where(want[["town", "year"]].notna(), None).values.tolist()
    )
    assert got["n"].tolist() == want["n"].tolist()
    for column in ("total", "mean", "low", "high"):
        np.testing.assert_allclose(got[column].to_numpy(dtype=float), want[column].to_numpy(dtype=float), rtol=1e-9)
    for column in ("first", "last"):
        assert (
            got[column].where(got[column].notna(), None).tolist()
            == want[column].where(want[column].notna(), None).tolist()
        )


# --- routing: three targets, each row exactly where its conditions send it ---------------------


def test_three_targets_route_each_row_exactly_as_their_conditions_say(route_cli, write_route, tmp_path):
    rng = np.random.default_rng(7)
    n = 3_000
    towns = np.array(["Hartford", "New Haven", "Stamford", "Z\u00fcrich", "hartford", ""], dtype=object)
    raw = pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "town": towns[rng.integers(0, len(towns), n)],
            "amount": np.where(rng.random(n) < 0.1, "", rng.integers(-500, 1500, n).astype(str)),
            "kind": rng.choice(["sale", "refund", "Sale", ""], n),
        }
    )
    raw.to_csv(tmp_path / "data.csv", index=False)
    path = write_route("""
        name: three-way
        chunk_rows: 97
        source: {csv: {path: data.csv}}
        source_transforms:
          - cast: {id: integer, amount: number}
        routing:
          unrouted: out/unrouted.csv
        targets:
          - name: big
            when: "amount >= 1000 or (kind == 'refund' and amount < -400)"
            target_transforms: [{select: [id]}]
            deliver: {jsonl: {path: out/big.jsonl}}
          - name: city
            when: "town in ['Hartford', 'Zürich'] and kind is not null"
            target_transforms: [{select: [id, town]}]
            deliver: {csv: {path: out/city.csv}}
          - name: unknown
            when: "amount is null or town is null"
            target_transforms: [{select: [id]}]
            deliver: {jsonl: {path: out/unknown.jsonl}}
    """)
    report = execute(route_cli, path)
    df = pd.read_csv(tmp_path / "data.csv", dtype=str, keep_default_na=False, na_values=[""])
    amount = df["amount"].astype(float)
    big = (amount >= 1000) | ((df["kind"] == "refund") & (amount < -400))
    city = df["town"].isin(["Hartford", "Z\u00fcrich"]) & df["kind"].notna()
    unknown = amount.isna() | df["town"].isna()
    ids = df["id"].astype(int)
    assert [r["id"] for r in read_jsonl(tmp_path / "out/big.jsonl")] == ids[big].tolist()
    assert [(int(r["id"]), r["town"]) for r in read_csv_rows(tmp_path / "out/city.csv")] == list(
        zip(ids[city], df["town"][city])
    )
    assert [r["id"] for r in read_jsonl(tmp_path / "out/unknown.jsonl")] == ids[unknown].tolist()
    nowhere = ~(big | city | unknown)
    assert [int(r["id"]) for r in read_csv_rows(tmp_path / "out/unrouted.csv")] == ids[nowhere].tolist()
    routed = {t["name"]: t["delivered"] for t in report["targets"]}
    assert routed == {"big": int(big.sum()), "city": int(city.sum()), "unknown": int(unknown.sum())}
    assert report["rows_unrouted"] == int(nowhere.sum())
    assert 0 < big.sum() < n and 0 < city.sum() < n and 0 < unknown.sum() < n and 0 < nowhere.sum()


# --- `route test` on the example route ------------------------------------------------------------


@pytest.fixture
def payroll(tmp_path) -> Path:
    """A copy of routes/payroll with its cases (the example itself is never touched)."""
    shutil.copytree(ROOT / "routes" / "payroll", tmp_path / "payroll", ignore=shutil.ignore_patterns(".route", "out"))
    return tmp_path / "payroll"


def test_route_test_passes_on_the_example_and_touches_nothing(route_cli, payroll):
    before = sorted(p.relative_to(payroll) for p in payroll.rglob("*"))
    result = route_cli("test", str(payroll / "payroll.yaml"))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{payroll / 'payroll.yaml'}\n  ok       basic\n  ok       fiscal-year\n2 cases: 2 passed\n"
    # no portal, no output file, no history: the socrata, jsonl and csv deliveries were not contacted
    assert sorted(p.relative_to(payroll) for p in payroll.rglob("*")) == before


@pytest.mark.parametrize(
    "case, file, old, new, diff",
    [
        (
            "basic",
            "published.csv",
            "3210.55,2024",
            "3210.56,2024",
            [
                "  FAIL     basic",
                "           target published (expected/published.csv):",
                "             row 1 (source line 2): gross: expected '3210.56', got '3210.55'",
            ],
        ),
        (
            "basic",
            "portal.csv",
            "O'Brien, Pat",
            "O\u2019Brien, Pat",
            [
                "  FAIL     basic",
                "           target portal (expected/portal.csv):",
                "             row 3 (source line 4): name: expected 'O\u2019Brien, Pat', got \"O'Brien, Pat\"",
            ],
        ),
        (
            "fiscal-year",
            "published.csv",
            "2024-07-01,1000,2025",
            "2024-07-01,1000,2024",
            [
                "  FAIL     fiscal-year",
                "           target published (expected/published.csv):",
                "             row (source line 3): fiscal_year: expected '2024', got '2025'",
            ],
        ),
        (
            "basic",
            "rejects.csv",
            "6,cast",
            "7,cast",
            [
                "  FAIL     basic",
                "           rejects (expected/rejects.csv):",
                "             row with line='6': line: expected '7', got '6'",
            ],
        ),
    ],
    ids=["number", "unicode-text", "unordered-case", "rejects"],
)
def test_route_test_fails_with_a_clear_diff_when_one_expected_value_changes(
    route_cli, payroll, case, file, old, new, diff
):
    expected = payroll / "payroll.tests" / case / "expected" / file
    text = expected.read_text(encoding="utf-8")
    assert text.count(old) == 1
    expected.write_text(text.replace(old, new), encoding="utf-8")
    result = route_cli("test", str(payroll))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    start = lines.index(diff[0])
    assert lines[start : start + len(diff)] == diff
    assert result.stdout.endswith("2 cases: 1 passed, 1 failed\n")
    assert "Traceback" not in result.output


# --- `route init`: the route written runs as it stands ---------------------------------------------


def init_validate_execute(route_cli, folder: Path, source: str, name: str) -> list[dict]:
    result = route_cli("init", "--from", source, cwd=folder)
    assert result.exit_code == 0, result.output
    route = folder / f"{name}.yaml"
    assert f"wrote {name}.yaml" in result.stdout
    result = route_cli("validate", str(route))
    assert (result.exit_code, result.stdout.strip()) == (0, f"{route}: ok"), result.output
    report = execute(route_cli, route)
    assert report["rows_rejected"] == 0 and report["status"] == "success"
    return read_jsonl(folder / "out" / f"{name}.jsonl")


def test_route_init_from_a_csv_file_runs_as_it_stands(route_cli, tmp_path):
    lines = [
        "N\u00ba;Munic\u00edpio;Valor (\u20ac);Data;Hora;Ativo;Obs",
        '00123;S\u00e3o Paulo;1.234,50;31/12/2024;2024-12-31T08:30:00;sim;"linha1\nlinha2"',
        "00456;Z\u00fcrich;12,00;01/02/2024;2024-02-01T17:05:00;n\u00e3o;",
        ";;;;;;",
        '00789;Krak\u00f3w;;15/03/2024;;sim;"aspas ""x"""',
    ]
    (tmp_path / "dados.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252", errors="replace"))
    rows = init_validate_execute(route_cli, tmp_path, "dados.csv", "dados")
    text = (tmp_path / "dados.yaml").read_text(encoding="utf-8")
    assert "encoding: cp1252" in text and "delimiter: semicolon" in text
    assert '      Data: {type: date, formats: ["%d/%m/%Y"]}' in text  # a day above 12: day/month
    assert '      # "N\u00ba": stays text: leading zeros' in text
    assert [list(r.values()) for r in rows] == [
        ["00123", "S\u00e3o Paulo", "1.234,50", "2024-12-31", rows[0]["Hora"], "sim", "linha1\nlinha2"],
        ["00456", "Z\u00fcrich", "12,00", "2024-02-01", rows[1]["Hora"], "n\u00e3o", None],
        ["00789", "Krak\u00f3w", None, "2024-03-15", None, "sim", 'aspas "x"'],
    ]
    assert list(rows[0]) == ["N\u00ba", "Munic\u00edpio", "Valor (\u20ac)", "Data", "Hora", "Ativo", "Obs"]
    assert [r["Hora"][:19] for r in rows[:2]] == ["2024-12-31T08:30:00", "2024-02-01T17:05:00"]


def test_route_init_from_a_workbook_runs_as_it_stands(route_cli, tmp_path):
    import datetime as dt

    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Licen\u00e7as 2024"
    sheet.append(["Permit No", "Issued", "Fee", "ZIP", "Paid", "Inspected At", "Notes"])
    sheet.append([1001, dt.date(2024, 1, 5), 12.5, "06103", True, dt.datetime(2024, 1, 5, 8, 30), "ok"])
    sheet.append([1002, dt.date(2024, 2, 6), "n/a", "06510", False, None, None])
    sheet.append([None] * 7)
    sheet.append([1003, dt.date(2024, 3, 7), 40, "06001", None, dt.datetime(2024, 3, 7, 17, 0), "Zo\u00eb \u2603"])
    book.create_sheet("Notes").append(["not data"])
    book.save(tmp_path / "book.xlsx")
    rows = init_validate_execute(route_cli, tmp_path, "book.xlsx", "book")
    text = (tmp_path / "book.yaml").read_text(encoding="utf-8")
    assert 'sheet: "Licen\u00e7as 2024"' in text
    assert [(r["Permit No"], r["Issued"], r["Fee"], r["ZIP"], r["Paid"], r["Notes"]) for r in rows] == [
        (1001, "2024-01-05", 12.5, "06103", True, "ok"),
        (1002, "2024-02-06", None, "06510", False, None),  # n/a: a placeholder for no value
        (1003, "2024-03-07", 40.0, "06001", None, "Zo\u00eb \u2603"),
    ]
    assert [r["Inspected At"] and r["Inspected At"][:19] for r in rows] == [
        "2024-01-05T08:30:00",
        None,
        "2024-03-07T17:00:00",
    ]
