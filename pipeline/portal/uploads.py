"""Uploaded files: chunks in, CSV parsed, input schema guessed, output schemas evaluated.

Chunks are kept in the portal file (`dsm_chunks`) and read back in byte order as one stream, so a
large upload never sits in memory. Committing an upload reads it twice: once to find its columns and
row count (and guess types for columns the dataset does not have yet), once per output schema to
convert every cell into an output table shaped like a dataset's rows table. Rows with a cell that
does not convert are kept aside (schema_errors) and left out of the table.
"""

# Longer than 400 lines because it parses every upload format DSMAPI accepts (CSV, TSV, JSON,
# GeoJSON) into typed rows in one place.

from __future__ import annotations

import codecs
import csv
import io
import re
from itertools import islice

import orjson

from pipeline.portal import behaviour, dsm_store, storage, uploads_excel, uploads_geo
from pipeline.portal.bulk import insert_many
from pipeline.portal.dsm_store import now_iso
from pipeline.portal.errors import Maltyped
from pipeline.portal.storage import quote
from pipeline.portal.wire import column_type, now_fixed

BATCH = 20_000
_FIELD = re.compile(r"[a-z_][a-z0-9_]*")
_EXPR = re.compile(r"\s*(?:(?P<func>\w+)\s*\(\s*)?(?P<ref>`(?:[^`]|``)+`|[A-Za-z_][A-Za-z0-9_]*)\s*(?(func)\))\s*")


class UploadError(ValueError):
    """The uploaded bytes cannot be read as the source's parse options say."""


# An upload's bytes in order, chunk by chunk, streamed by the (source, offset) index: never sorted
CHUNKS_IN_ORDER = "SELECT data FROM dsm_chunks WHERE source=? ORDER BY offset"


class _Chunks(io.RawIOBase):
    """The chunks of one source, in byte order, as a readable stream."""

    def __init__(self, conn, source_id: int):
        self._cursor = conn.execute(CHUNKS_IN_ORDER, (source_id,))
        self._buffer = memoryview(b"")
        self._at = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while self._at >= len(self._buffer):
            row = self._cursor.fetchone()
            if row is None:
                return 0
            self._buffer, self._at = memoryview(row[0]), 0
        n = min(len(b), len(self._buffer) - self._at)
        b[:n] = self._buffer[self._at : self._at + n]
        self._at += n
        return n


def check_chunks(conn, source_id: int, total: int) -> None:
    """The chunks must cover bytes 0..total exactly, with no gap or overlap."""
    end = 0
    for offset, size in conn.execute(
        "SELECT offset, length(data) FROM dsm_chunks WHERE source=? ORDER BY offset", (source_id,)
    ):
        if offset != end:
            raise UploadError(f"the upload has a gap or overlap at byte {end} (next chunk starts at {offset})")
        end = offset + size
    if end != total:
        raise UploadError(f"the upload holds {end} bytes but the commit says {total}")


def _options(source: dict) -> dict:
    opts = dict(source.get("parse_options") or {})
    tsv = "tab-separated" in (source.get("content_type") or "") or (source.get("source_type") or {}).get(
        "filename", ""
    ).lower().endswith(".tsv")
    separator = opts.get("column_separator")
    if tsv and separator in (None, "", ","):  # the default separator of a .tsv() upload is a tab
        separator = "\t"
    return {
        "header_count": int(opts.get("header_count") or 1),
        "column_header": int(opts.get("column_header") or 1),
        "separator": separator or ",",
        "quote": opts.get("quote_char") or '"',
        "encoding": opts.get("encoding") or "utf-8",
        "trim": opts.get("trim_whitespace", True),
        "skip_empty": opts.get("remove_empty_rows", True),
    }


def read_rows(conn, source: dict):
    """(header, iterator of row batches); every row has exactly len(header) cells."""
    content_type = (source.get("content_type") or "text/csv").lower()
    filename = (source.get("source_type") or {}).get("filename") or ""
    excel = uploads_excel.is_excel(content_type, filename)
    geo = None if excel else uploads_geo.geo_kind(content_type, filename)
    if not (excel or geo) and not any(
        t in content_type for t in ("csv", "tab-separated", "text/plain", "octet-stream")
    ):
        raise UploadError(
            f"the local portal does not support {content_type} uploads; it reads CSV, TSV, Excel, "
            "GeoJSON, KML and zipped shapefiles"
        )
    opts = _options(source)
    encoding = opts["encoding"]
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise UploadError(f"unknown encoding '{encoding}'") from None
    if encoding.replace("-", "").lower() == "utf8":
        encoding = "utf-8-sig"
    if excel or geo:
        try:
            data = _Chunks(conn, source["id"]).read()
            reader = uploads_excel.excel_rows(data) if excel else uploads_geo.rows(geo, data)
        except ValueError as exc:
            raise UploadError(str(exc)) from None
    else:
        text = io.TextIOWrapper(io.BufferedReader(_Chunks(conn, source["id"]), 1 << 20), encoding=encoding, newline="")
        reader = csv.reader(text, delimiter=opts["separator"], quotechar=opts["quote"])
    trim, skip_empty = opts["trim"], opts["skip_empty"]

    def empty(row) -> bool:  # a blank line, or one of spaces only (a single cell)
        return not any(row) or (len(row) == 1 and not row[0].strip())

    try:
        headers = []
        while len(headers) < opts["header_count"]:
            row = next(reader, None)
            if row is None:
                break
            if skip_empty and empty(row):
                continue
            headers.append([c.strip() for c in row] if trim else row)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UploadError(f"the upload is not readable as {opts['encoding']} CSV: {exc}") from None
    if not headers or len(headers) < opts["column_header"]:
        raise UploadError("the upload has no header row")
    header = headers[opts["column_header"] - 1]
    width = len(header)

    def fix(batch):
        out = []
        for row in batch:
            if len(row) != width:
                if skip_empty and empty(row):
                    continue
                row = (row + [""] * width)[:width]
            elif skip_empty and not any(row):
                continue
            out.append(row)
        return out

    def batches():
        # Cells are trimmed where they are converted (each type's from_text), not here; a batch
        # whose rows all have the right width and no blank line is taken as the reader gives it.
        try:
            while True:
                batch = list(islice(reader, BATCH))
                if not batch:
                    return
                if set(map(len, batch)) != {width} or (skip_empty and not all(map(any, batch))):
                    batch = fix(batch)
                if batch:
                    yield batch
        except (UnicodeDecodeError, csv.Error) as exc:
            raise UploadError(f"the upload is not readable as {opts['encoding']} CSV: {exc}") from None

    return header, batches()


def input_schema(conn, source: dict, dataset: storage.Dataset | None) -> dict:
    """Read the upload once: its columns, row count and a type guess for unknown columns."""
    header, batches = read_rows(conn, source)
    content_type = (source.get("content_type") or "text/csv").lower()
    filename = (source.get("source_type") or {}).get("filename") or ""
    known = dataset.by_field() if dataset else {}
    guesses = {
        i: behaviour.TypeGuess()
        for i, h in enumerate(header)
        if behaviour.field_name_for(h) not in known and h not in known
    }
    total, first = 0, None
    for batch in batches:
        total += len(batch)
        first = first or batch[0]
        if guesses:
            columns = list(zip(*batch))
            for i, guess in guesses.items():
                guess.feed(columns[i])
    columns, taken = [], set()
    for i, h in enumerate(header):
        col = known.get(h) or known.get(behaviour.field_name_for(h))
        guessed = col.type_name if col else guesses[i].result()
        if i == 0 and first and not col and uploads_geo.geo_kind(content_type, filename):  # the geometry
            guessed = uploads_geo.geometry_type(h, first[0]) or guessed
        # a header that is already a field name (lower case, digits, _) stays as it is
        field = unique_field(h if _FIELD.fullmatch(h) else behaviour.field_name_for(h), taken)
        typed = (source.get("_types") or {}).get(h)  # a view source keeps its columns' types
        columns.append(
            {
                "id": None,
                "field_name": field,
                "display_name": h,
                "position": i,
                "soql_type": typed or "text",
                "guessed_soql_type": guessed,
                "guessed_subtypes": [],
            }
        )
    return {"total_rows": total, "num_row_errors": 0, "name": None, "input_columns": columns}


def unique_field(field: str, taken: set) -> str:
    """A field name made from a header, with _1, _2... when an earlier header made the same one."""
    name, n = field, 0
    while name in taken:
        n += 1
        name = f"{field}_{n}"
    taken.add(name)
    return name


def default_output_columns(conn, is_: dict, dataset: storage.Dataset | None) -> list[dict]:
    """The output columns proposed for an upload: dataset types where the names match, else guesses."""
    known = dataset.by_field() if dataset else {}
    ri = dataset.ri.field if dataset and dataset.ri else None
    out = []
    for ic in is_["input_columns"]:
        col = known.get(ic["field_name"]) or known.get(ic["display_name"])
        field = col.field if col else ic["field_name"]
        out.append(
            {
                "field_name": field,
                "display_name": col.name if col else ic["display_name"],
                "description": col.description if col else "",
                "position": ic["position"] + 1,
                "is_primary_key": field == ri,
                "transform": {
                    "transform_expr": behaviour.transform_for(ic["guessed_soql_type"], ic["field_name"])
                    if ic.get("soql_type", "text") == "text"
                    else "`" + ic["field_name"].replace("`", "``") + "`"
                },
            }
        )
    return out


def parse_transform(expr: str):
    """(output type name, input field name) for the expressions the portal evaluates, or None."""
    m = _EXPR.fullmatch(expr or "")
    if not m:
        return None
    ref = m["ref"]
    field = ref[1:-1].replace("``", "`") if ref.startswith("`") else ref
    func = (m["func"] or "").lower()
    if not func:
        return "text", field
    type_name = behaviour.TRANSFORM_FUNCTIONS.get(func)
    return (type_name, field) if type_name else None


def input_index(is_: dict) -> dict[str, int]:
    """Input column positions by field name, and by display name (the header) where no field
    name is the same."""
    columns = is_["input_columns"]
    index = {c["display_name"]: i for i, c in enumerate(columns) if c.get("display_name")}
    index.update({c["field_name"]: i for i, c in enumerate(columns)})
    return index


def compile_column(expr: str, is_: dict):
    """(fast, compiled, failure): `fast` is (type, input index) for a column reference or one
    to_<type> around one (converted a batch at a time); otherwise `compiled` is the expression
    (transforms_expr); `failure` says why the transform cannot be evaluated."""
    from pipeline.portal.transforms_expr import TransformError, compile_transform

    columns = is_["input_columns"]
    index = input_index(is_)
    parsed = parse_transform(expr)
    if parsed and parsed[1] in index and columns[index[parsed[1]]].get("soql_type", "text") == "text":
        return (parsed[0], index[parsed[1]]), None, None
    try:
        compiled = compile_transform(expr, {name: columns[i].get("soql_type") or "text" for name, i in index.items()})
    except TransformError as exc:
        return None, None, f"the transform '{expr}' cannot be evaluated: {exc}"
    return None, compiled, None


def build_output_schema(conn, source: dict, is_: dict, requested: list[dict], sort_bys=None) -> dict:
    """Create an output schema object (not yet evaluated) from requested output columns."""
    inputs = is_["input_columns"]
    index = input_index(is_)
    columns = []
    for position, rc in enumerate(sorted(requested, key=lambda c: c.get("position") or 0), start=1):
        transform = dict(rc.get("transform") or {})
        expr = transform.get("transform_expr") or ""
        fast, compiled, failure = compile_column(expr, is_)
        tid = storage.next_id(conn, "dsm_transform", start=1)
        cid = storage.next_id(conn, "column", start=1001)
        if fast:
            type_name, used = fast[0], [inputs[fast[1]]]
        elif compiled:
            type_name, used = compiled.type_name, [inputs[index[f]] for f in compiled.inputs]
        else:
            type_name, used = "text", []
        columns.append(
            {
                "id": cid,
                "field_name": rc.get("field_name") or behaviour.field_name_for(rc.get("display_name") or "column"),
                "display_name": rc.get("display_name") or rc.get("field_name"),
                "description": rc.get("description") or "",
                "position": position,
                "is_primary_key": bool(rc.get("is_primary_key")),
                "format": rc.get("format") or {},
                "flags": [],
                "initial_output_column_id": rc.get("initial_output_column_id") or rc.get("id"),
                "transform": {
                    "id": tid,
                    "transform_expr": expr,
                    "output_soql_type": type_name,
                    "transform_input_columns": [{"input_column_id": c["id"]} for c in used],
                    "completed_at": None,
                    "failed_at": None,
                    "error_count": 0,
                    "failure_details": {"message": failure} if failure else None,
                },
            }
        )
    return {
        "input_schema_id": is_["id"],
        "total_rows": is_["total_rows"],
        "error_count": 0,
        "completed_at": None,
        "finished_at": None,
        "output_columns": columns,
        "sort_bys": sort_bys or [],
        "_source": source["id"],
    }


def evaluate(store, fourfour: str, os_id: int) -> None:
    """Convert every cell of the upload per the output schema into the schema's own table."""
    with store.read() as conn:
        os_ = dsm_store.need(conn, "output_schema", os_id)
        is_ = dsm_store.need(conn, "input_schema", os_["input_schema_id"])
        source = dsm_store.need(conn, "source", os_["_source"])
    columns = os_["output_columns"]
    failed = [c for c in columns if c["transform"]["failure_details"]]
    now = now_iso()
    if failed:
        for c in failed:
            c["transform"]["failed_at"] = now
        os_.update(completed_at=now, finished_at=now)
        with store.write() as conn:
            dsm_store.save(conn, "output_schema", os_)
        return
    plan = []
    for c in columns:
        fast, compiled, _failure = compile_column(c["transform"]["transform_expr"], is_)
        if fast:
            plan.append((c, column_type(fast[0]), fast[1], None))
        else:
            plan.append((c, column_type(compiled.type_name), None, compiled))
    phys = [f"c{c['id']}" for c in columns]
    with store.write() as conn:
        if _closed(conn, os_):  # applied or discarded before its conversion began: nothing to do
            return
        table = storage.new_rows_table(conn, phys)
        os_["_table"] = table
        donor = _donor(conn, os_, plan)
        if donor is not None:  # the same conversions were done already: copy them
            old_table, old_phys, total = donor
            new_cols = "".join(", " + quote(p) for p in phys)
            old_cols = "".join(", " + quote(p) for p in old_phys)
            conn.execute(
                f"INSERT INTO {quote(table)} (_sid, _created, _updated{new_cols}) "
                f"SELECT _sid, _created, _updated{old_cols} FROM {quote(old_table)} ORDER BY _sid"
            )
            _finish(conn, os_, [0] * len(columns), 0, total)
            return
        first_sid = storage.reserve_sids(conn, fourfour, max(1, is_["total_rows"]))
        dsm_store.save(conn, "output_schema", os_)
    errors = [0] * len(columns)
    error_rows = 0
    row_base = 0
    stamp = "'" + now_fixed() + "'"
    head = f"INSERT INTO {quote(table)} (_sid, _created, _updated{''.join(', ' + quote(p) for p in phys)}) VALUES "
    one = [None, stamp, stamp] + [None] * len(phys)
    trim = _options(source)["trim"]
    with store.read() as reader:
        _header, batches = read_rows(reader, source)
        for batch in batches:
            cells = list(zip(*batch))
            converted, bad = [], {}
            for k, (c, ctype, i, compiled) in enumerate(plan):
                if compiled is None:
                    values, problems = _convert(ctype, list(cells[i]), c, trim)
                else:
                    values, problems = _expression(compiled, ctype, cells, is_, c, trim)
                converted.append(values)
                for row, message in problems.items():
                    bad.setdefault(row, {})[k] = message
                errors[k] += len(problems)
            good = [r for r in range(len(batch)) if r not in bad] if bad else range(len(batch))
            sids = [first_sid + row_base + r for r in good]
            with store.write() as conn:
                if sids:
                    insert_many(
                        conn, head, one, "", [sids] + [[col[r] for r in good] if bad else col for col in converted]
                    )
                if bad:
                    conn.executemany(
                        "INSERT OR REPLACE INTO dsm_row_errors(schema, row_index, cells) VALUES(?,?,?)",
                        [
                            (
                                os_id,
                                row_base + r,
                                orjson.dumps(_error_cells(batch[r], plan, problems, [col[r] for col in converted])),
                            )
                            for r, problems in bad.items()
                        ],
                    )
            error_rows += len(bad)
            row_base += len(batch)
    with store.write() as conn:
        _finish(conn, os_, errors, error_rows, row_base)


def revision_closed(store, os_id: int) -> bool:
    """Whether an output schema's revision was applied or discarded (its converted tables dropped),
    or the schema is gone: a conversion still running for it has nothing left to do."""
    with store.read() as conn:
        os_ = dsm_store.get(conn, "output_schema", os_id)
        return os_ is None or _closed(conn, os_)


def _closed(conn, os_: dict) -> bool:
    revision_id = dsm_store.parent_of(conn, "source", os_.get("_source"))
    revision = dsm_store.get(conn, "revision", revision_id) if revision_id else None
    return bool(revision and revision.get("closed_at"))


def fail_evaluation(store, os_id: int, message: str) -> None:
    """Mark an output schema whose conversion broke off as failed, every column with `message`."""
    now = now_iso()
    with store.write() as conn:
        os_ = dsm_store.need(conn, "output_schema", os_id)
        for c in os_["output_columns"]:
            c["transform"].update(failed_at=now, failure_details={"message": message})
        os_.update(completed_at=now, finished_at=now)
        dsm_store.save(conn, "output_schema", os_)


def _signature(column: dict, ctype, input_index: int) -> tuple:
    return ctype.name, input_index, bool(column["is_primary_key"])


def _donor(conn, os_: dict, plan) -> tuple | None:
    """An earlier output schema of the same upload, without errors, that already converted every
    column this one needs: (its table, its column for each of ours, row count)."""
    if any(compiled is not None for *_rest, compiled in plan):
        return None
    wanted = [_signature(c, t, i) for c, t, i, _x in plan]
    is_ = dsm_store.need(conn, "input_schema", os_["input_schema_id"])
    for other in reversed(dsm_store.children(conn, "output_schema", os_["input_schema_id"])):
        usable = other.get("_table") and other.get("completed_at") and not other.get("error_count")
        if other["id"] == os_["id"] or not usable:
            continue
        have = {}
        for c in other["output_columns"]:
            fast, _compiled, _failure = compile_column(c["transform"]["transform_expr"], is_)
            if fast:
                have.setdefault(_signature(c, column_type(fast[0]), fast[1]), f"c{c['id']}")
        if all(w in have for w in wanted):
            return other["_table"], [have[w] for w in wanted], other.get("total_rows") or 0
    return None


def _finish(conn, os_: dict, errors: list, error_rows: int, total: int) -> None:
    now = now_iso()
    for c, n in zip(os_["output_columns"], errors):
        c["transform"].update(completed_at=now, finished_at=now, error_count=n)
    os_.update(error_count=error_rows, total_rows=total, completed_at=now, finished_at=now)
    dsm_store.save(conn, "output_schema", os_)


def _convert(ctype, raw: list, column: dict, trim: bool = True):
    """Stored values for one column of a batch, and {row: message} for cells that do not convert."""
    if trim and ctype.kind in ("text",):
        raw = [v.strip() for v in raw]
    field = column["field_name"]
    key = column["is_primary_key"]
    try:
        values = ctype.from_text(raw, field)
        return (ctype.key(values, field) if key else ctype.store(values, field)), {}
    except Maltyped:
        pass
    out, problems = [], {}
    for r, cell in enumerate(raw):
        try:
            v = ctype.from_text([cell], field)
            out.append((ctype.key(v, field) if key else ctype.store(v, field))[0])
        except Maltyped:
            out.append(None)
            problems[r] = f'Unable to convert "{cell.strip() if trim else cell}" from text to {ctype.name}'
    return out, problems


def _expression(compiled, ctype, cells: list, is_: dict, column: dict, trim: bool):
    """One column of a batch through a transform expression: stored values and {row: message}."""
    index = input_index(is_)
    columns = {}
    for field in compiled.inputs:
        raw = [(v.strip() if trim else v) or None for v in cells[index[field]]]
        source = is_["input_columns"][index[field]].get("soql_type") or "text"
        if source != "text":  # a typed input (a view source): its cells are that type's text
            t = column_type(source)
            raw = t.store(t.from_text(raw, field), field)
        columns[field] = raw
    values, problems = compiled.evaluate(columns, len(cells[0]) if cells else 0)
    if column["is_primary_key"]:
        try:
            values = ctype.key(values, column["field_name"])
        except Maltyped:
            pass
    return values, problems


def _error_cells(row: list, plan, problems: dict, converted: list) -> list:
    """A row with an error: each cell's input (or, for an expression, its value) or its error."""
    cells = []
    for k, (_c, _t, i, _compiled) in enumerate(plan):
        value = row[i] if i is not None else converted[k]
        if k in problems:
            cells.append({"error": {"message": problems[k], "english": problems[k], "input": value}})
        else:
            cells.append({"ok": value or None})
    return cells
