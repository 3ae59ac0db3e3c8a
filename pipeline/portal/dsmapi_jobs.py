"""Applying a revision: one transaction that changes metadata and rows, then records the job.

replace: the output schema's table, already converted, becomes the dataset's rows table and its
columns the dataset's columns, in one commit; readers see the old rows or the new rows, never a mix,
and a failure (e.g. repeated row identifiers) rolls back and leaves the old rows. update: the
converted rows are upserted by the row identifier (appended without one); new columns are added.
delete: rows whose row identifier appears in the upload are deleted.
"""

from __future__ import annotations

import logging
import threading
import time

from pipeline.portal import behaviour, dsm_store, storage, uploads
from pipeline.portal.dsm_store import now_iso
from pipeline.portal.errors import PortalError, bad_request
from pipeline.portal.rows import Counts
from pipeline.portal.storage import Column, quote
from pipeline.portal.wire import column_type, now_fixed

log = logging.getLogger("pipeline.portal")


class Jobs:
    """The portal's work behind the requests: output schemas converted in the background (as
    Socrata converts them: the request that made one answers at once, and clients poll it until it
    is complete), and applies, run at once unless they wait for such a conversion or for
    `faults.slow_jobs(seconds)`."""

    def __init__(self, portal):
        self.portal = portal
        self._threads: list[threading.Thread] = []
        self._evaluating: dict[int, threading.Thread] = {}  # output schema id -> its conversion
        self._of_input: dict[int, list[threading.Thread]] = {}  # input schema id -> its conversions
        self._lock = threading.Lock()

    def evaluate(self, fourfour: str, input_schema_id: int, output_schema_id: int) -> None:
        """Convert the upload's rows for an output schema in a background thread, after the
        conversions of the same upload already under way: a schema whose columns one of them
        converts alike copies them (uploads.evaluate's donor) instead of converting the upload
        again beside it (a client posting its own schema right after the commit, as route does)."""
        delay = self.portal.faults.job_delay
        before: list[threading.Thread] = []

        def convert():
            for thread in before:
                thread.join()
            evaluate(self.portal.store, fourfour, output_schema_id, delay)

        def register(thread: threading.Thread) -> None:  # under the lock, before it starts
            before.extend(t for t in self._of_input.get(input_schema_id, []) if t.is_alive())
            self._evaluating[output_schema_id] = thread
            self._of_input[input_schema_id] = [*before, thread]

        self._spawn(f"portal-evaluate-{output_schema_id}", convert, register)

    def start(self, fourfour: str, revision_id: int, task_set_id: int, output_schema_id) -> None:
        delay = self.portal.faults.job_delay
        with self._lock:
            converting = self._evaluating.get(output_schema_id)
        if delay <= 0 and (converting is None or not converting.is_alive()):
            run(self.portal.store, fourfour, revision_id, task_set_id, output_schema_id)
            return

        def later():
            if converting is not None:
                converting.join()  # apply what the schema's conversion made, once it is made
            time.sleep(max(delay, 0))
            run(self.portal.store, fourfour, revision_id, task_set_id, output_schema_id)

        self._spawn(f"portal-apply-{task_set_id}", later)

    def _spawn(self, name: str, target, register=None) -> None:
        """Start `target` in a thread of its own, known to wait() (and to `register`, under the
        same lock, before it starts); threads that ended are forgotten."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._evaluating = {k: t for k, t in self._evaluating.items() if t.is_alive()}
            self._of_input = {
                k: alive for k, ts in self._of_input.items() if (alive := [t for t in ts if t.is_alive()])
            }
            self._threads.append(thread)
            if register is not None:
                register(thread)
        thread.start()

    def wait(self) -> None:
        """Let every background conversion and apply finish (before the portal closes)."""
        while True:
            with self._lock:
                pending = [t for t in self._threads if t.is_alive()]
                if not pending:
                    self._threads.clear()
                    self._evaluating.clear()
                    self._of_input.clear()
                    return
            for thread in pending:
                thread.join()


def evaluate(store, fourfour: str, output_schema_id: int, delay: float = 0.0) -> None:
    """An output schema's conversion (after `delay` s: faults.slow_jobs); a failure the portal did
    not foresee marks the schema failed (with the message) rather than leaving clients to poll it
    for ever."""
    if delay > 0:
        time.sleep(delay)
    try:
        uploads.evaluate(store, fourfour, output_schema_id)
    except uploads.UploadError as exc:  # bytes the first reading took but the conversion cannot
        uploads.fail_evaluation(store, output_schema_id, str(exc))
    except Exception as exc:
        if uploads.revision_closed(store, output_schema_id):  # closed while it converted
            log.info("local portal: stopped converting output schema %s: its revision is closed", output_schema_id)
            return
        # a bug: fail the schema with a message instead of leaving clients to poll it for ever
        log.exception("local portal: converting output schema %s of %s failed", output_schema_id, fourfour)
        uploads.fail_evaluation(store, output_schema_id, f"the local portal failed: {exc}")


def run(store, fourfour: str, revision_id: int, task_set_id: int, output_schema_id) -> None:
    """Apply, then mark the task set successful; on any failure mark it failed (nothing changed)."""
    started = now_iso()
    try:
        with store.write() as conn:
            counts = _apply(conn, fourfour, revision_id, output_schema_id)
            ts = dsm_store.need(conn, "task_set", task_set_id)
            now = now_iso()
            ts.update(
                status="successful",
                finished_at=now,
                log=[
                    {"stage": "started", "time": started, "details": {}},
                    {"stage": "upsert_complete", "time": now, "details": behaviour.upsert_response(counts, None)},
                    {"stage": "successful", "time": now, "details": {}},
                ],
            )
            dsm_store.save(conn, "task_set", ts)
        return
    except PortalError as exc:
        message = exc.message
    except Exception as exc:  # a bug; the job fails with a message instead of hanging clients
        log.exception("local portal: applying revision %s of %s failed", revision_id, fourfour)
        message = f"the local portal failed: {exc}"
    with store.write() as conn:
        ts = dsm_store.need(conn, "task_set", task_set_id)
        now = now_iso()
        ts.update(
            status="failure",
            finished_at=now,
            log=[
                {"stage": "started", "time": started, "details": {}},
                {"stage": "failure", "time": now, "details": {"message": message}},
            ],
        )
        dsm_store.save(conn, "task_set", ts)


def _apply(conn, fourfour: str, revision_id: int, output_schema_id) -> Counts:
    ds = storage.require(conn, fourfour)
    rev = dsm_store.need(conn, "revision", revision_id)
    if rev.get("closed_at"):
        raise bad_request("revision_closed", f"Revision {rev['revision_seq']} of {fourfour} is already closed")
    _metadata(conn, ds, rev)
    counts = Counts()
    kept_table = None
    if output_schema_id:
        os_ = dsm_store.need(conn, "output_schema", output_schema_id)
        if not os_.get("completed_at") or not os_.get("_table"):
            bad = [c["field_name"] for c in os_["output_columns"] if c["transform"].get("failed_at")]
            raise bad_request(
                "output_schema_failed",
                f"Output schema {output_schema_id} cannot be applied"
                + (f": the transforms of {', '.join(bad)} failed" if bad else ": it is not complete"),
            )
        action = (rev.get("action") or {}).get("type") or "update"
        ds = storage.require(conn, fourfour)
        if action == "replace":
            counts = _replace(conn, ds, os_)
            kept_table = os_["_table"]
        elif action == "delete":
            counts = _delete(conn, ds, os_)
        else:
            counts = _update(conn, ds, os_)
        counts.errors += os_.get("error_count") or 0
    conn.execute("UPDATE datasets SET stage='published' WHERE id=?", (fourfour,))
    storage.touch(conn, fourfour)
    rev["closed_at"] = now_iso()
    rev["output_schema_id"] = output_schema_id or rev.get("output_schema_id")
    dsm_store.save(conn, "revision", rev)
    cleanup(conn, revision_id, keep=kept_table)
    return counts


def _metadata(conn, ds, rev: dict) -> None:
    from pipeline.portal.views import apply_changes

    meta = {
        k: v
        for k, v in (rev.get("metadata") or {}).items()
        if v is not None
        and k
        in (
            "name",
            "description",
            "category",
            "tags",
            "attribution",
            "attributionLink",
            "license",
            "licenseId",
            "metadata",
            "privateMetadata",
        )
    }
    if meta:
        apply_changes(conn, ds, meta)
    permission = (rev.get("action") or {}).get("permission")
    if permission in ("public", "private"):
        conn.execute("UPDATE datasets SET private=? WHERE id=?", (int(permission == "private"), ds.id))


def _out_columns(os_: dict) -> list[dict]:
    cols = sorted(os_["output_columns"], key=lambda c: c["position"])
    seen = set()
    for c in cols:
        if c["field_name"] in seen:
            raise bad_request("duplicate_field", f"Field name '{c['field_name']}' is used by two output columns")
        seen.add(c["field_name"])
    return cols


def _replace(conn, ds, os_: dict) -> Counts:
    existing = ds.by_field()
    table = os_["_table"]
    new_cols, pk = [], None
    for position, oc in enumerate(_out_columns(os_), start=1):
        old = existing.get(oc["field_name"])
        col = Column(
            old.id if old else oc["id"],
            oc["field_name"],
            oc.get("display_name") or oc["field_name"],
            column_type(oc["transform"]["output_soql_type"]).name,
            position,
            f"c{oc['id']}",
            oc.get("description") or "",
        )
        new_cols.append(col)
        if oc.get("is_primary_key") and pk is None:
            pk = col
    if pk is not None:
        storage.ri_index(conn, table, pk.phys)
    conn.execute("DELETE FROM columns WHERE dataset=?", (ds.id,))
    for col in new_cols:
        storage.insert_column(conn, ds.id, col)
    conn.execute("UPDATE datasets SET rows_table=?, ri=? WHERE id=?", (table, pk.id if pk else None, ds.id))
    conn.execute(f"DROP TABLE {quote(ds.table)}")
    return Counts(created=conn.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0])


def _update(conn, ds, os_: dict) -> Counts:
    out_cols = _out_columns(os_)
    existing = ds.by_field()
    for oc in out_cols:
        old = existing.get(oc["field_name"])
        new_type = column_type(oc["transform"]["output_soql_type"]).name
        if old is not None and old.type_name != new_type:
            raise bad_request(
                "type_change",
                f"Column '{old.field}' is {old.type_name} in the dataset but "
                f"{new_type} in this revision; change types with a replace revision",
            )
        if old is None:
            col = Column(
                oc["id"],
                oc["field_name"],
                oc.get("display_name") or oc["field_name"],
                new_type,
                max([c.position for c in ds.columns], default=0) + 1,
                f"c{oc['id']}",
                oc.get("description") or "",
            )
            conn.execute(f"ALTER TABLE {quote(ds.table)} ADD COLUMN {quote(col.phys)}")
            storage.insert_column(conn, ds.id, col)
            ds.columns.append(col)
    fields = ds.by_field()
    live, out = quote(ds.table), quote(os_["_table"])
    live_cols = [quote(fields[oc["field_name"]].phys) for oc in out_cols]
    out_cols_sql = [quote(f"c{oc['id']}") for oc in out_cols]
    total = conn.execute(f"SELECT count(*) FROM {out}").fetchone()[0]
    insert = (
        f"INSERT INTO {live} (_sid, _created, _updated, {', '.join(live_cols)}) "
        f"SELECT _sid, _created, '{now_fixed()}', {', '.join(out_cols_sql)} FROM {out} WHERE true ORDER BY _sid"
    )
    ri = ds.ri
    if ri is None:
        conn.execute(insert)
        pk = next((oc for oc in out_cols if oc.get("is_primary_key")), None)
        if pk is not None:
            storage.set_row_identifier(conn, storage.require(conn, ds.id), pk["field_name"])
        return Counts(created=total)
    key = next((f"c{oc['id']}" for oc in out_cols if oc["field_name"] == ri.field), None)
    if key is None:
        raise bad_request(
            "missing_row_identifier", f"The upload has no column '{ri.field}', the dataset's row identifier"
        )
    distinct = conn.execute(f"SELECT count(DISTINCT {quote(key)}) FROM {out}").fetchone()[0]
    known = conn.execute(
        f"SELECT count(DISTINCT {quote(key)}) FROM {out} WHERE {quote(key)} IN (SELECT {quote(ri.phys)} FROM {live})"
    ).fetchone()[0]
    if conn.execute(f"SELECT 1 FROM {out} WHERE {quote(key)} IS NULL LIMIT 1").fetchone():
        raise bad_request(
            behaviour.MISSING_KEY_CODE, f"A row of the upload has no value in '{ri.field}', the row identifier"
        )
    sets = ", ".join(["_updated=excluded._updated"] + [f"{c}=excluded.{c}" for c in live_cols if c != quote(ri.phys)])
    conn.execute(insert + f" ON CONFLICT ({quote(ri.phys)}) DO UPDATE SET {sets}")
    created = distinct - known
    return Counts(created=created, updated=total - created, by_ri=total - created)


def _delete(conn, ds, os_: dict) -> Counts:
    ri = ds.ri
    if ri is None:
        raise bad_request("missing_row_identifier", f"A delete revision needs a row identifier; {ds.id} has none")
    key = next((f"c{oc['id']}" for oc in os_["output_columns"] if oc["field_name"] == ri.field), None)
    if key is None:
        raise bad_request(
            "missing_row_identifier", f"The upload has no column '{ri.field}', the dataset's row identifier"
        )
    out = quote(os_["_table"])
    total = conn.execute(f"SELECT count(*) FROM {out}").fetchone()[0]
    cur = conn.execute(f"DELETE FROM {quote(ds.table)} WHERE {quote(ri.phys)} IN (SELECT {quote(key)} FROM {out})")
    return Counts(deleted=cur.rowcount, by_ri=cur.rowcount, errors=total - cur.rowcount)


def cleanup(conn, revision_id: int, keep: str | None = None) -> None:
    """Drop the converted tables and uploaded chunks a closed revision no longer needs."""
    for source in dsm_store.children(conn, "source", revision_id):
        conn.execute("DELETE FROM dsm_chunks WHERE source=?", (source["id"],))
        for is_ in dsm_store.children(conn, "input_schema", source["id"]):
            for os_ in dsm_store.children(conn, "output_schema", is_["id"]):
                table = os_.get("_table")
                if table and table != keep:
                    conn.execute(f"DROP TABLE IF EXISTS {quote(table)}")
                if table:
                    os_["_table"] = None
                    dsm_store.save(conn, "output_schema", os_)
                conn.execute("DELETE FROM dsm_row_errors WHERE schema=?", (os_["id"],))
