"""Revisions as Socrata does them, driven by socrata-py unchanged against a portal served over https.

Each test names the Socrata documentation it follows: the Dataset Management API reference
(dev.socrata.com/publishers/dsmapi, "Sources", "Output schemas", "Import configs") and the data
transform functions (dev.socrata.com/docs/transforms/<function>).
"""

from __future__ import annotations

import contextlib
import csv
import io
import warnings

import pytest
from polling import wait_until
from portalkit import SECRET, USER, ServedPortal

pytest.importorskip("socrata")


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    with ServedPortal(tmp_path_factory.mktemp("fidelity") / "portal.sqlite", tls=True) as served:
        yield served


@pytest.fixture
def publishing(tls):
    from socrata import Socrata
    from socrata.authorization import Authorization

    auth = Authorization(tls.domain, username=USER, password=SECRET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auth.live_dangerously()  # the certificate is self-signed
        yield Socrata(auth)


@contextlib.contextmanager
def _quiet():
    """socrata-py over a self-signed certificate warns on every request."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


TSV = b"EQUIP_ID\tMAKE\tLat\tLon\tSale Price\n33294\tchevrolet\t47.6\t-122.3\t4550.09\n53535\tford, inc\t47.7\t-122.4\t4905.00\n"


def _new_dataset_from_tsv(publishing, output_columns):
    """dsmapi "Sources": a TSV upload (socrata-py's source.tsv) then "Output schemas": transforms."""
    rev = publishing.new({"name": "Vehicles"})
    source = rev.create_upload("vehicles.tsv").tsv(io.BytesIO(TSV))
    input_schema = source.get_latest_input_schema()
    output = input_schema.transform({"output_columns": output_columns}).wait_for_finish()
    return rev, input_schema, output


def _column(field, expr, position, **extra):
    return {
        "field_name": field,
        "display_name": field,
        "position": position,
        "transform": {"transform_expr": expr},
        **extra,
    }


def test_tsv_upload_is_split_on_tabs_and_headers_become_socrata_field_names(publishing):
    # dsmapi "Sources": .tsv uploads are tab-separated; field names are made from the headers
    with _quiet():
        rev = publishing.new({"name": "TSV"})
        source = rev.create_upload("vehicles.tsv").tsv(io.BytesIO(TSV))
        input_schema = source.get_latest_input_schema()
        columns = input_schema.attributes["input_columns"]
        rev.discard()
    assert [c["field_name"] for c in columns] == ["equip_id", "make", "lat", "lon", "sale_price"]
    assert [c["display_name"] for c in columns] == ["EQUIP_ID", "MAKE", "Lat", "Lon", "Sale Price"]
    assert input_schema.attributes["total_rows"] == 2


def test_transforms_upper_concatenation_and_to_point_apply_to_the_expected_rows(publishing, tls):
    # docs/transforms: upper, || (concatenate two strings), to_point (WKT text to a point),
    # to_number; dsmapi "Revisions": applying the revision publishes the output schema's rows
    with _quiet():
        rev, _is, output = _new_dataset_from_tsv(
            publishing,
            [
                _column("equip_id", "to_number(`equip_id`)", 1, is_primary_key=True),
                _column("make", "upper(`make`)", 2),
                _column("label", "`make` || ' #' || `equip_id`", 3),
                _column("where", "to_point('POINT (' || `lon` || ' ' || `lat` || ')')", 4),
                _column("price_x2", "to_number(`sale_price`) * 2", 5),
            ],
        )
        assert output.attributes["error_count"] == 0
        types = {c["field_name"]: c["transform"]["output_soql_type"] for c in output.attributes["output_columns"]}
        assert types == {"equip_id": "number", "make": "text", "label": "text", "where": "point", "price_x2": "number"}
        job = rev.apply(output_schema=output).wait_for_finish()
        assert job.attributes["status"] == "successful"
    assert tls.rows(rev.attributes["fourfour"]) == [
        {
            "equip_id": "33294",
            "make": "CHEVROLET",
            "label": "chevrolet #33294",
            "where": {"type": "Point", "coordinates": [-122.3, 47.6]},
            "price_x2": "9100.18",
        },
        {
            "equip_id": "53535",
            "make": "FORD, INC",
            "label": "ford, inc #53535",
            "where": {"type": "Point", "coordinates": [-122.4, 47.7]},
            "price_x2": "9810.00",
        },
    ]


def test_case_coalesce_and_error_fail_only_their_rows(publishing):
    # docs/transforms: case, coalesce, error; dsmapi "Output schemas": rows whose transform fails
    # are counted in error_count and listed by schema_errors with the reason
    with _quiet():
        rev = publishing.new({"name": "Errors"})
        source = rev.create_upload("e.csv").csv(io.BytesIO(b"id,size\n1,small\n2,\n3,large\n"))
        output = (
            source.get_latest_input_schema()
            .transform(
                {
                    "output_columns": [
                        _column("id", "to_number(`id`)", 1),
                        _column("size", "coalesce(`size`, error('size is missing'))", 2),
                        _column("big", "case(`size` = 'large', true, true, false)", 3),
                    ]
                }
            )
            .wait_for_finish()
        )
        assert output.attributes["error_count"] == 1
        assert [r["big"]["ok"] for r in output.rows()] == [False, True]
        errors = output.schema_errors()
        assert errors[0]["size"]["error"]["message"] == "size is missing"
        rev.discard()


def test_a_transform_the_portal_cannot_evaluate_fails_its_column(publishing):
    # docs/transforms/geocode: the local portal does not geocode, so the transform fails (the
    # column's failed_at) with the reason, and the output schema cannot be applied
    with _quiet():
        rev = publishing.new({"name": "Geocode"})
        source = rev.create_upload("g.csv").csv(io.BytesIO(b"address,city\n1 Main St,Seattle\n"))
        output = source.get_latest_input_schema().transform(
            {"output_columns": [_column("where", "geocode(`address`, `city`, 'WA', '98101')", 1)]}
        )
        # converted behind the answer, as Socrata does: the schema says when it is done
        wait_until(lambda: output.show().attributes["completed_at"], what="the output schema to be converted")
        column = output.attributes["output_columns"][0]
        rev.discard()
    assert column["transform"]["failed_at"]
    assert "does not support" in column["transform"]["failure_details"]["message"]


def test_validate_row_id_ignores_errors_in_other_columns(publishing):
    # dsmapi "Output schemas" validate_row_id: valid when the column has a value in every row and
    # no value twice; errors of another column do not make it invalid
    with _quiet():
        rev = publishing.new({"name": "Row ids"})
        source = rev.create_upload("r.csv").csv(io.BytesIO(b"id,amount,dup\nA,1,x\nB,oops,x\nC,3,y\n"))
        output = (
            source.get_latest_input_schema()
            .transform(
                {
                    "output_columns": [
                        _column("id", "`id`", 1),
                        _column("amount", "to_number(`amount`)", 2),
                        _column("dup", "`dup`", 3),
                    ]
                }
            )
            .wait_for_finish()
        )
        assert output.attributes["error_count"] == 1
        assert output.validate_row_id("id") is True
        assert output.validate_row_id("amount") is False  # a cell of its own failed
        assert output.validate_row_id("dup") is False  # 'x' twice
        rev.discard()


def test_rows_csv_and_rows_json_exports(publishing, tls):
    # Socrata's dataset export: /api/views/{4x4}/rows.csv (display names, then every row) and the
    # legacy rows.json ({"meta": {"view"}, "data": [[system fields..., cells...]]})
    ff = tls.create(
        columns=[
            {"fieldName": "case_id", "name": "Case ID", "dataTypeName": "text"},
            {"fieldName": "amount", "name": "Amount", "dataTypeName": "number"},
            {"fieldName": "opened", "name": "Opened", "dataTypeName": "calendar_date"},
        ],
        row_identifier=None,
    )
    tls.post(
        f"/resource/{ff}.json", [{"case_id": "A", "amount": "7.50", "opened": "2024-01-05T13:30:00"}, {"case_id": "B"}]
    )
    r = tls.get(f"/api/views/{ff}/rows.csv")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(r.text))) == [
        ["Case ID", "Amount", "Opened"],
        ["A", "7.50", "01/05/2024 01:30:00 PM"],
        ["B", "", ""],
    ]
    body = tls.get(f"/api/views/{ff}/rows.json").json()
    assert body["meta"]["view"]["id"] == ff
    assert [row[-3:] for row in body["data"]] == [["A", "7.50", "2024-01-05T13:30:00.000"], ["B", None, None]]
    refused = tls.get(f"/api/views/{ff}/rows.xml")
    assert refused.status_code == 400 and "does not support" in refused.json()["message"]


def test_import_config_opens_revisions_with_its_action_and_columns(publishing, tls):
    # dsmapi "Import configs": a config's data_action and columns apply to revisions opened with it
    ff = tls.create(columns=[{"fieldName": "code", "dataTypeName": "text"}], row_identifier=None)
    with _quiet():
        publishing.configs.create(
            "codes-upper",
            "replace",
            columns=[{"field_name": "code", "display_name": "Code", "transform_expr": "upper(`code`)"}],
        )
        view = publishing.views.lookup(ff)
        (rev, job) = publishing.using_config("codes-upper", view).csv(io.BytesIO(b"code\nab\ncd\n"), filename="c.csv")
        assert rev.attributes["action"]["type"] == "replace"
        assert job.wait_for_finish().attributes["status"] == "successful"
    assert tls.rows(ff) == [{"code": "AB"}, {"code": "CD"}]


def test_view_source_keeps_the_dataset_types(publishing, tls):
    # dsmapi "Sources" of type view: the dataset's own rows, its columns keeping their types, so a
    # replace revision can add a computed column (`a` + 5 on a number column)
    ff = tls.create(columns=[{"fieldName": "a", "dataTypeName": "number"}], row_identifier=None)
    tls.post(f"/resource/{ff}.json", [{"a": 1}, {"a": 2}])
    with _quiet():
        view = publishing.views.lookup(ff)
        rev = view.revisions.create_replace_revision()
        output = rev.source_from_dataset().get_latest_input_schema().get_latest_output_schema()
        output = output.add_column("d", "D", "`a` + 5").run().wait_for_finish()
        assert rev.apply(output_schema=output).wait_for_finish().attributes["status"] == "successful"
    assert tls.rows(ff) == [{"a": "1", "d": "6"}, {"a": "2", "d": "7"}]


GEOJSON = b"""{"type": "FeatureCollection", "features": [
 {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-122.3, 47.6]}, "properties": {"name": "a", "n": 2}},
 {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-122.4, 47.7]}, "properties": {"name": "b", "n": 3}}
]}"""


def test_geojson_upload_gives_a_point_column_and_its_properties(publishing, tls):
    # dsmapi "Sources": geojson uploads, one row per feature, the geometry in a column named after
    # its type; applied as a new dataset with the proposed output schema
    with _quiet():
        rev = publishing.new({"name": "Places"})
        source = rev.create_upload("places.geojson").geojson(io.BytesIO(GEOJSON))
        input_schema = source.get_latest_input_schema()
        assert [(c["field_name"], c["guessed_soql_type"]) for c in input_schema.attributes["input_columns"]] == [
            ("point", "point"),
            ("name", "text"),
            ("n", "number"),
        ]
        output = input_schema.get_latest_output_schema().wait_for_finish()
        assert rev.apply(output_schema=output).wait_for_finish().attributes["status"] == "successful"
    assert tls.rows(rev.attributes["fourfour"]) == [
        {"point": {"type": "Point", "coordinates": [-122.3, 47.6]}, "name": "a", "n": "2"},
        {"point": {"type": "Point", "coordinates": [-122.4, 47.7]}, "name": "b", "n": "3"},
    ]


def test_url_source_reads_a_csv_served_on_127_0_0_1(publishing, tmp_path):
    # dsmapi "Sources" of type url: the portal fetches the file itself
    import functools
    import http.server
    import threading

    (tmp_path / "cases.csv").write_bytes(b"Case ID,Amount\nA,1\nB,2\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with _quiet():
            rev = publishing.new({"name": "From a URL"})
            url = f"http://127.0.0.1:{server.server_address[1]}/cases.csv"
            source = rev.source_from_url(url).wait_for_finish()
            output = source.get_latest_input_schema().get_latest_output_schema().wait_for_finish()
            assert [c["field_name"] for c in output.attributes["output_columns"]] == ["case_id", "amount"]
            assert [r["amount"]["ok"] for r in output.rows()] == ["1", "2"]
            missing = rev.source_from_url(url + ".nope")
            assert missing.attributes["failed_at"] and "404" in missing.attributes["failure_details"]["message"]
            rev.discard()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "expr",
    [
        "`a`" + " || `a`" * 150,  # a chain deeper than 100 levels
        "(" * 50 + "`a`" + ")" * 50,  # nested deeper than 40
        "to_number(`a`) + 'x'",  # a type error
        "nope(`a`)",  # an unknown function
        "`missing`",  # an unknown column
        "'unterminated",
        "to_number(`a`) * 1e999999 * 1e999999",  # beyond a decimal: a row error, not the request
    ],
)
def test_hostile_transforms_fail_their_column_or_rows_never_the_request(tls, expr):
    # never a 500: a transform that cannot be evaluated fails its column (transform.failed_at),
    # one that fails on a value fails that row
    rev = tls.post("/api/publishing/v1/revision", {"action": {"type": "update"}, "metadata": {"name": "H"}}).json()
    src = tls.post(rev["links"]["create_source"], {"source_type": {"type": "upload", "filename": "h.csv"}}).json()
    src = tls.post(src["links"]["bytes"], b"a\n1e300\n", headers={"Content-Type": "text/csv"}).json()
    schema = src["resource"]["schemas"][0]
    path = src["links"]["input_schema_links"]["transform"].replace("{input_schema_id}", str(schema["id"]))
    r = tls.post(path, {"output_columns": [_column("x", expr, 1)]})
    assert r.status_code == 201, r.text
    show = r.json()["links"]["show"]
    wait_until(lambda: tls.get(show).json()["resource"]["completed_at"], what="the output schema to be converted")
    out = tls.get(show).json()["resource"]
    transform = out["output_columns"][0]["transform"]
    assert transform["failed_at"] or out["error_count"] == 1


def test_restore_the_last_applied_revision(publishing, tls):
    # dsmapi "Revisions" restore: a new revision (the next revision_seq) with the restored one's
    # metadata and its data as a source; the portal keeps no archive, so an older one is a 400
    with _quiet():
        rev = publishing.new({"name": "Restore me"})
        source = rev.create_upload("a.csv").csv(io.BytesIO(b"a,b\n1,x\n2,y\n"))
        output = source.get_latest_input_schema().get_latest_output_schema().wait_for_finish()
        rev.apply(output_schema=output).wait_for_finish()
        view = publishing.views.lookup(rev.attributes["fourfour"])
        second = view.revisions.create_replace_revision(metadata={"description": "second"})
        source = second.create_upload("a.csv").csv(io.BytesIO(b"a,b\n3,z\n"))
        second.apply(output_schema=source.get_latest_input_schema().get_latest_output_schema()).wait_for_finish()
        second.show()
        restored = second.restore()
        assert restored.attributes["revision_seq"] == second.attributes["revision_seq"] + 1
        assert restored.attributes["metadata"] == second.attributes["metadata"]
        output = restored.list_sources()[0].get_latest_input_schema().get_latest_output_schema()
        assert output.attributes["total_rows"] == 1
        assert {c["transform"]["transform_expr"] for c in output.attributes["output_columns"]} == {"`a`", "`b`"}
        restored.discard()
    older = tls.post(f"/api/publishing/v1/revision/{rev.attributes['fourfour']}/0/restore")
    assert older.status_code == 400 and "does not support" in older.json()["message"]
