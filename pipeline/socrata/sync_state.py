"""What a socrata sync compares with: per target and dataset, each row's key and a hash of its values.

A row's hash is taken over its wire values (what route sends, see wire.py) in one canonical text
form per type, so the same value hashes the same whether it comes from the route or is read back
from the portal: numbers in one spelling (`7.90`, `7.9` and `7.900` agree, integers and whole floats
too), floating timestamps with milliseconds, fixed timestamps in UTC, checkboxes as true/false,
location and url objects field by field. The columns are joined with a separator (nulls marked) and
hashed with pandas' SipHash in one vectorised call; 64 bits are plenty, since a hash is only ever
compared with the hash of the same key.

The hashes live in `<state>/socrata-sync/<route>/<target>-<dataset>.parquet` (key text, hash), the
file's metadata saying which portal, dataset and columns they are for and what the dataset looked
like right after the sync that wrote them: its row count, its newest `:updated_at` and the view's
`rowsUpdatedAt`. Before use they are checked against the portal (one count query, one view read);
when anything differs (another writer, an interrupted sync, other columns) the file is not used
and the dataset is read once instead, page by page, to hash what it holds. The file is removed
before a sync sends anything and written again only after the portal confirmed every batch.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.basics.dtypes import contiguous
from pipeline.socrata import reader, wire
from pipeline.socrata.errors import SocrataError
from pipeline.socrata.http import SocrataSession
from pipeline.socrata.views import socrata_type
from pipeline.state.place import shared

SCHEME = 1  # bump when the canonical form or the hash changes: older files are then rebuilt
HASH_KEY = "route-socrata-v1"  # SipHash keys (16 bytes): rows
KEY_HASH_KEY = "route-sync-keys1"  # and keys
FOLDER = "socrata-sync"
NULL, COLUMN, FIELD = "\x00", "\x1f", "\x1e"
NUMBERS = ("number", "money", "double")
SLICE = 65_536  # rows turned into Python strings at once, for pandas' hash


# -- the canonical form and the hash -------------------------------------------------------------


def canonical(values: pa.Array | pa.ChunkedArray, stype: str) -> pa.Array:
    """Wire values of one column as comparable text (null stays null)."""
    values = contiguous(values)
    stype = socrata_type(stype)
    if pa.types.is_struct(values.type):  # location and url objects: their fields, in order
        parts = [canonical(values.field(i), "text") for i in range(values.type.num_fields)]
        joined = pc.binary_join_element_wise(*parts, FIELD, null_handling="replace", null_replacement=NULL)
        return pc.if_else(values.is_valid(), joined, pa.scalar(None, pa.string()))
    text = values if pa.types.is_string(values.type) else values.cast(pa.string())
    if stype in NUMBERS:
        return wire.number_key(_positional(pc.utf8_trim_whitespace(pc.utf8_ltrim(text, "+"))))
    if stype in ("calendar_date", "date"):
        try:
            if stype == "date":
                stamps = pc.cast(text, pa.timestamp("ms", tz="UTC"))
            else:
                stamps = pc.cast(pc.utf8_slice_codeunits(text, 0, 23), pa.timestamp("ms"))
            return stamps.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return text  # a spelling Arrow does not parse: compared as it is
    return text


def _positional(text: pa.Array) -> pa.Array:
    """Numbers with an exponent in positional form ("1e3" -> "1000", "1.5e-3" -> "0.0015"), exactly:
    route sends a number as the source spelled it, and a portal may read it back in either form."""
    exponent = pc.fill_null(pc.match_substring_regex(text, r"^[+-]?(?:\d+\.?\d*|\.\d+)[eE][+-]?\d{1,4}$"), False)
    if not pc.any(exponent).as_py():
        return text
    where = np.flatnonzero(exponent.to_numpy(zero_copy_only=False))
    plain = [format(Decimal(v), "f") for v in text.take(pa.array(where)).to_pylist()]  # a few values, rarely
    return pc.replace_with_mask(text, exponent, pa.array(plain, pa.string()))


def row_hashes(table: pa.Table, fields: list[str], types: dict[str, str]) -> np.ndarray:
    """One uint64 per row over `fields` of a wire table (all zero when there are none)."""
    if not fields:
        return np.zeros(table.num_rows, dtype=np.uint64)
    columns = [canonical(table.column(f), types[f]) for f in fields]
    joined = pc.binary_join_element_wise(*columns, COLUMN, null_handling="replace", null_replacement=NULL)
    out = np.empty(len(joined), dtype=np.uint64)
    for start in range(0, len(joined), SLICE):
        part = joined.slice(start, SLICE).to_numpy(zero_copy_only=False)
        out[start : start + len(part)] = pd.util.hash_array(part, hash_key=HASH_KEY, categorize=False)
    return out


def key_text(keys: pa.Array | pa.ChunkedArray, stype: str) -> pa.Array:
    """Row identifiers as text in one spelling (a number key 10, "10" and "10.0" are one key)."""
    text = canonical(keys, stype)
    return text if socrata_type(stype) in NUMBERS else text.cast(pa.string())


def key_hashes(keys: pa.Array) -> np.ndarray:
    """64-bit hashes of key text, to find keys by (see Hashes); a slice at a time, so that only a
    slice's keys are ever Python strings."""
    out = np.empty(len(keys), dtype=np.uint64)
    for start in range(0, len(keys), SLICE):
        part = keys.slice(start, SLICE).to_numpy(zero_copy_only=False)
        out[start : start + len(part)] = pd.util.hash_array(part, hash_key=KEY_HASH_KEY, categorize=False)
    return out


class Hashes:
    """Keys (text) and their rows' hashes, found by key through sorted 64-bit key hashes.

    About 40 bytes a row (the key text, its row hash, its key hash and its place in the order), so
    a million rows take tens of MB, where a hash table of Python strings would take hundreds."""

    def __init__(self, keys: pa.Array, hashes: np.ndarray):
        self.keys = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
        self.hashes = np.asarray(hashes, dtype=np.uint64)
        kh = key_hashes(self.keys) if len(self.keys) else np.zeros(0, dtype=np.uint64)
        self.order = np.argsort(kh, kind="stable")
        self.sorted = kh[self.order]

    def __len__(self) -> int:
        return len(self.keys)

    def find(self, keys: pa.Array, kh: np.ndarray) -> np.ndarray:
        """The row of each of `keys` (their key hashes `kh`), or -1 for a key not there."""
        out = np.full(len(keys), -1, dtype=np.int64)
        if not len(self) or not len(keys):
            return out
        pos = np.minimum(np.searchsorted(self.sorted, kh), len(self) - 1)
        hit = np.flatnonzero(self.sorted[pos] == kh)
        if not len(hit):
            return out
        rows = self.order[pos[hit]]
        same = pc.equal(self.keys.take(pa.array(rows)), keys.take(pa.array(hit))).to_numpy(zero_copy_only=False)
        out[hit[same]] = rows[same]
        odd = hit[~same]
        if len(odd):  # another key with the same 64-bit hash (about never): look those up exactly
            exact = pc.index_in(keys.take(pa.array(odd)), value_set=self.keys)
            out[odd] = pc.fill_null(exact, -1).to_numpy(zero_copy_only=False)
        return out


def empty() -> Hashes:
    return Hashes(pa.array([], pa.string()), np.zeros(0, dtype=np.uint64))


# -- what the portal says about the dataset ------------------------------------------------------


def marks(http: SocrataSession, dataset_id: str) -> dict:
    """The dataset's row count, newest `:updated_at` (when the portal gives it) and rowsUpdatedAt."""
    what = f"checking the rows of dataset {dataset_id}"
    try:
        body = http.get_json(
            f"/resource/{dataset_id}.json",
            params={"$select": "count(*) AS n, max(:updated_at) AS newest"},
            what=what,
            dataset=dataset_id,
        )
        first = body[0] if isinstance(body, list) and body else {}
        out = {"rows": int(float(first.get("n", 0))), "updated_at": first.get("newest")}
    except (SocrataError, TypeError, ValueError, AttributeError):
        out = {"rows": reader.count(http, dataset_id), "updated_at": None}  # a portal without system fields
    view = http.get_json(f"/api/views/{dataset_id}.json", what=f"reading dataset {dataset_id}", dataset=dataset_id)
    out["rows_updated_at"] = view.get("rowsUpdatedAt") if isinstance(view, dict) else None
    return out


# -- the file ------------------------------------------------------------------------------------


@dataclass
class StateFile:
    """The hashes of one target's dataset, between runs."""

    state_dir: Path
    route: str
    target: str
    domain: str
    dataset: str

    @property
    def path(self) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{self.target}-{self.dataset}")
        return Path(self.state_dir) / FOLDER / re.sub(r"[^A-Za-z0-9_.-]", "_", self.route) / f"{safe}.parquet"

    @property
    def blob(self) -> str:
        """Its name in a database state, which keeps the same bytes (route_blobs)."""
        return "sync/" + "/".join(self.path.parts[-2:])

    def _source(self):
        """Where to read the file from: its path, or its bytes from a database state."""
        state = shared(self.state_dir)
        if state is None:
            return self.path
        from pipeline.state.records import blob_get

        data = blob_get(state, self.blob)
        if data is None:
            raise FileNotFoundError(self.blob)
        return pa.BufferReader(data)

    def load(self, columns: list, now: dict) -> tuple[Hashes | None, str]:
        """The hashes when they still describe the dataset (`now`: its marks), else None and why."""
        try:
            source = self._source()
            meta = json.loads(pq.read_schema(source).metadata[b"route"])
        except FileNotFoundError:
            return None, "no hashes kept from an earlier sync"
        except (OSError, KeyError, TypeError, ValueError, pa.ArrowException):
            return None, "the kept hashes could not be read"
        expected = {"scheme": SCHEME, "domain": self.domain, "dataset": self.dataset, "columns": columns}
        if any(meta.get(k) != v for k, v in expected.items()):
            return None, "the kept hashes are for other columns"
        for k, label in (
            ("rows", "row count"),
            ("updated_at", "newest :updated_at"),
            ("rows_updated_at", "rowsUpdatedAt"),
        ):
            if meta.get(k) != now.get(k):
                return None, f"the dataset changed since the last sync (its {label})"
        try:
            table = pq.read_table(self._source())
        except (OSError, pa.ArrowException) as exc:
            return None, f"the kept hashes could not be read ({exc})"
        if table.num_rows != now.get("rows"):
            return None, "the kept hashes do not match the dataset's row count"
        return Hashes(table.column("key"), table.column("hash").to_numpy()), ""

    def save(self, keys: pa.Array, hashes: np.ndarray, columns: list, now: dict) -> None:
        """Write atomically (a temporary file renamed over the old one, both synced to disk)."""
        meta = {"scheme": SCHEME, "domain": self.domain, "dataset": self.dataset, "columns": columns, **now}
        table = pa.table({"key": keys, "hash": pa.array(hashes, pa.uint64())})
        table = table.replace_schema_metadata({"route": json.dumps(meta)})
        state = shared(self.state_dir)
        if state is not None:
            from pipeline.state.records import blob_put

            sink = pa.BufferOutputStream()
            pq.write_table(table, sink, compression="zstd")
            blob_put(state, self.blob, sink.getvalue().to_pybytes())
            return
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _sync_dir(path.parent)

    def drop(self) -> None:
        """Forget the hashes (before anything is sent: should the run stop, the next one reads the dataset)."""
        state = shared(self.state_dir)
        if state is not None:
            from pipeline.state.records import blob_drop

            blob_drop(state, self.blob)
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return
        _sync_dir(self.path.parent)


def _sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- reading the dataset's hashes back -----------------------------------------------------------


def rebuild(
    http: SocrataSession,
    dataset_id: str,
    key: tuple[str, str],
    columns: list[tuple[str, str]],
    *,
    timezone: str | None,
    page_rows: int = 50_000,
) -> Hashes:
    """Every row's key and hash, read from the dataset page by page (only keys and hashes are kept).

    Values go through the same conversion as the route's (wire.py) before they are hashed, so a
    row that holds what the route would send hashes as the route's row does."""
    key_field, key_type = key
    fields = [key_field] + [f for f, _ in columns]
    types = {f: ("text" if socrata_type(t) in NUMBERS else t) for f, t in [key, *columns]}  # numbers as given
    real = dict(columns)
    keys, hashes = [], []
    select = ", ".join(fields)
    for page in reader.pages(http, dataset_id, fields=fields, types=types, page_rows=page_rows, select=select):
        wired = {}
        for f, stype in columns:
            values = page.column(f).combine_chunks()
            if socrata_type(stype) not in NUMBERS:
                values = wire.convert(values, socrata_type(stype), form="json", timezone=timezone).values
            wired[f] = values
        table = pa.table(wired) if wired else pa.table({"_": pa.nulls(page.num_rows)})
        hashes.append(row_hashes(table, [f for f, _ in columns], real))
        keys.append(key_text(page.column(key_field), key_type))
    if not keys:
        return empty()
    return Hashes(pa.concat_arrays(keys), np.concatenate(hashes))
