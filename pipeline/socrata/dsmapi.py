"""Replace a dataset's rows through a revision (Dataset Management API, `/api/publishing/v1`).

open a replace revision -> create an upload source -> upload the CSV (chunked when the portal
offers it) -> wait for it to parse -> set each output column's transform to the dataset column's
type -> apply -> wait for the job. Readers see the old rows until the job finishes; a run that
fails before apply discards the revision and leaves the old rows. The API is hypermedia: every
step follows the links of the previous answer, as socrata-py does, so link paths are never guessed.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from pipeline.http import NOT_APPLIED, Transient
from pipeline.socrata.errors import OutcomeUnknown, SocrataError
from pipeline.socrata.http import SocrataSession
from pipeline.socrata.views import Dataset

ROOT = "/api/publishing/v1"
# The SoQL function that turns uploaded text into each column type.
TRANSFORM = {
    "text": "{}",
    "photo": "{}",
    "blob": "{}",
    "number": "to_number({})",
    "money": "to_money({})",
    "double": "to_double({})",
    "checkbox": "to_boolean({})",
    "calendar_date": "to_floating_timestamp({})",
    "date": "to_fixed_timestamp({})",
    "point": "to_point({})",
    "multipoint": "to_multipoint({})",
    "line": "to_line({})",
    "multiline": "to_multiline({})",
    "polygon": "to_polygon({})",
    "multipolygon": "to_multipolygon({})",
    "location": "to_location({})",
    "url": "to_url({})",
}


def _unwrap(body) -> tuple[dict, dict]:
    if isinstance(body, dict) and "resource" in body:
        return body["resource"] or {}, body.get("links") or {}
    return (body if isinstance(body, dict) else {}), {}


class FileBody:
    """A file sent as a request body from disk, a block at a time (the spool is never read into
    memory whole); every attempt reads it again from the start, so a retry sends all of it. Its
    length gives the Content-Length."""

    BLOCK = 1 << 20

    def __init__(self, path: str, size: int):
        self.path, self.size = path, size

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        with open(self.path, "rb") as f:
            while block := f.read(self.BLOCK):
                yield block


def _fill(template: str, **values) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", str(value))
    return template


class Revision:
    """One replace revision of one dataset, driven step by step."""

    def __init__(self, http: SocrataSession, dataset: Dataset, *, poll_limit: float = 6 * 3600):
        self.http = http
        self.dataset = dataset
        self.poll_limit = poll_limit
        self.resource: dict = {}
        self.links: dict = {}
        self.job: dict = {}

    @property
    def seq(self):
        return self.resource.get("revision_seq")

    def _what(self, step: str) -> str:
        return f"{step} (replace revision of dataset {self.dataset.id})"

    def open(self) -> None:
        body = {"action": {"type": "replace", "permission": None}, "metadata": {}}
        answer = self.http.send_json(
            "POST",
            f"{ROOT}/revision/{self.dataset.id}",
            body,
            what=self._what("opening a revision"),
            dataset=self.dataset.id,
        )
        self.resource, self.links = _unwrap(answer)
        if not self.links.get("create_source"):
            raise SocrataError(
                self._what("opening a revision") + ": the portal's answer has no "
                "create_source link; does it support the Dataset Management API?"
            )

    def upload(self, path: str, filename: str) -> dict:
        """Upload the CSV file at `path`; returns the parsed input schema."""
        body = {
            "source_type": {"type": "upload", "filename": filename},
            "parse_options": {"header_count": 1, "column_header": 1, "parse_source": True},
        }
        source, links = _unwrap(
            self.http.send_json(
                "POST",
                self.links["create_source"],
                body,
                what=self._what("creating the upload"),
                dataset=self.dataset.id,
            )
        )
        size = os.path.getsize(path)
        if links.get("initiate") and links.get("chunk") and links.get("commit"):
            self._chunked(links, path, size)
        else:
            self.http.request(
                "POST",
                links["bytes"],
                what=self._what("uploading the rows"),
                dataset=self.dataset.id,
                data=FileBody(path, size),
                headers={"Content-Type": "text/csv"},
            )
        show = links.get("show") or f"{ROOT}/source/{source.get('id')}"
        return self._wait_parsed(show)

    def _chunked(self, links: dict, path: str, size: int) -> None:
        what = self._what("uploading the rows")
        plan = (
            self.http.send_json(
                "POST", links["initiate"], {"content_type": "text/csv"}, what=what, dataset=self.dataset.id
            )
            or {}
        )
        plan = plan.get("resource", plan)
        chunk = int(plan.get("preferred_chunk_size") or 4 * 1024 * 1024)
        parallel = max(1, min(int(plan.get("preferred_upload_parallelism") or 2), 4))
        offsets = list(range(0, size, chunk)) or [0]

        def send(seq_offset):
            seq, offset = seq_offset
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(chunk)
            # A chunk names its place, so sending it again is harmless.
            self.http.request(
                "POST",
                _fill(links["chunk"], seq_num=seq, byte_offset=offset),
                what=what,
                dataset=self.dataset.id,
                data=data,
                headers={"Content-Type": "application/octet-stream"},
            )

        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="socrata-upload") as pool:
            list(pool.map(send, enumerate(offsets)))
        self.http.request(
            "POST",
            _fill(links["commit"], seq_num=len(offsets) - 1, byte_offset=size),
            what=what,
            dataset=self.dataset.id,
        )

    def _poll(self, path: str, what: str, done):
        delay, start = 0.02, time.monotonic()
        while True:
            resource, links = _unwrap(self.http.get_json(path, what=what, dataset=self.dataset.id))
            result = done(resource, links)
            if result is not None:
                return result
            if time.monotonic() - start > self.poll_limit:
                raise SocrataError(f"{what}: still not finished after {self.poll_limit:g} s")
            if self.http.cancelled.wait(delay):
                raise SocrataError(f"{what}: cancelled")
            delay = min(delay * 1.5, 2.0)

    def _wait_parsed(self, show: str) -> dict:
        what = self._what("waiting for the upload to be read")

        def done(source, links):
            if source.get("failed_at"):
                details = source.get("failure_details") or {}
                raise SocrataError(
                    f"{what}: the portal could not read the uploaded CSV: "
                    f"{details.get('message') or details or 'no details given'}"
                )
            schemas = source.get("schemas") or []
            if schemas:
                schema = schemas[-1]
                schema.setdefault("_links", links.get("input_schema_links") or {})
                schema.setdefault("source_id", source.get("id"))
                return schema
            return None

        return self._poll(show, what, done)

    def output_schema(self, input_schema: dict, row_identifier: str | None) -> dict:
        """Post output columns typed like the dataset's; returns the finished output schema."""
        links = input_schema.get("_links") or {}
        inputs = {c["field_name"]: c for c in input_schema.get("input_columns") or []}
        columns = []
        for position, col in enumerate(self.dataset.columns):
            if col.field not in inputs:
                raise SocrataError(self._what("typing the upload") + f": the upload has no column {col.label}")
            expr = TRANSFORM.get(col.type, "{}").format(f"`{col.field}`")
            columns.append(
                {
                    "field_name": col.field,
                    "display_name": col.name,
                    "position": position,
                    "description": "",
                    "is_primary_key": col.field == row_identifier,
                    "transform": {"transform_expr": expr},
                }
            )
        template = links.get("transform") or "/api/publishing/v1/source/{source_id}/schema/{input_schema_id}"
        path = _fill(template, input_schema_id=input_schema.get("id"), source_id=input_schema.get("source_id", ""))
        schema, schema_links = _unwrap(
            self.http.send_json(
                "POST", path, {"output_columns": columns}, what=self._what("typing the upload"), dataset=self.dataset.id
            )
        )
        show = schema_links.get("show") or (links.get("output_schema_links") or {}).get("show") or ""
        show = _fill(show, input_schema_id=input_schema.get("id"), output_schema_id=schema.get("id"))
        return self._wait_output(show, schema) if show else schema

    def _wait_output(self, show: str, first: dict) -> dict:
        what = self._what("waiting for the rows to be typed")
        if first.get("completed_at") or first.get("finished_at"):
            return self._check_output(first, what)

        def done(schema, _links):
            if schema.get("completed_at") or schema.get("finished_at"):
                return self._check_output(schema, what)
            return None

        return self._poll(show, what, done)

    def _check_output(self, schema: dict, what: str) -> dict:
        failed = [c for c in schema.get("output_columns") or [] if (c.get("transform") or {}).get("failed_at")]
        if failed:
            names = ", ".join(c.get("field_name", "?") for c in failed)
            raise SocrataError(f"{what}: the portal could not convert column(s) {names}")
        if schema.get("error_count"):
            raise SocrataError(
                f"{what}: the portal found {schema['error_count']} value(s) it could not convert; nothing was changed"
            )
        return schema

    def apply(self, output_schema_id) -> dict:
        """Apply the revision and wait for its job; returns the finished job."""
        what = self._what("applying")
        path = self.links.get("apply") or f"{ROOT}/revision/{self.dataset.id}/{self.seq}/apply"
        revision_show = self.links.get("show") or f"{ROOT}/revision/{self.dataset.id}/{self.seq}"

        def attempt():
            try:
                return self.http.send_json(
                    "PUT",
                    path,
                    {"output_schema_id": output_schema_id},
                    what=what,
                    dataset=self.dataset.id,
                    repeatable=False,
                )
            except OutcomeUnknown as exc:
                # Applying twice is refused, so look before sending it again: a job means it took.
                revision, _ = _unwrap(self.http.get_json(revision_show, what=what, dataset=self.dataset.id))
                if revision.get("task_sets"):
                    return {"resource": revision, "links": {"show": revision_show}}
                raise Transient(f"HTTP {exc.status}" if exc.status else "no answer", outcome=NOT_APPLIED) from None

        answer = self.http.retrying(attempt, what=what)
        if isinstance(answer, dict) and answer.get("key") == "approval_submitted":
            self.job = {"status": "approval_submitted"}
            return self.job
        job, links = _unwrap(answer)
        show = links.get("show") or revision_show

        def done(resource, _links):
            task = resource
            if "task_sets" in resource:  # polling the revision itself
                sets = resource.get("task_sets") or []
                task = sets[-1] if sets else {}
            status = task.get("status")
            if status == "failure":
                log = task.get("log") or []
                last = log[-1].get("details") if log and isinstance(log[-1], dict) else ""
                if isinstance(last, dict):  # the portal's words, not a Python dict
                    last = last.get("message") or last.get("error") or ", ".join(f"{k}: {v}" for k, v in last.items())
                said = f": {str(last).rstrip('.')}." if last else "."
                raise SocrataError(f"{what}: the portal's job failed{said}")
            if status == "successful" or (task.get("finished_at") and status not in ("failure",)):
                return task
            return None

        finished = done(job, {})
        self.job = finished if finished is not None else self._poll(show, what, done)
        return self.job

    def discard(self) -> None:
        """Throw the revision away (the dataset keeps its rows); never raises."""
        path = self.links.get("discard") or self.links.get("show")
        if not path and self.seq is not None:
            path = f"{ROOT}/revision/{self.dataset.id}/{self.seq}"
        if not path:
            return
        try:
            self.http.request("DELETE", path, what=self._what("discarding"), dataset=self.dataset.id)
        except SocrataError:
            pass

    def job_counts(self) -> dict:
        for entry in reversed(self.job.get("log") or []):
            details = entry.get("details") if isinstance(entry, dict) else None
            if isinstance(details, dict) and ("Rows Created" in details or "rows_created" in details):
                return details
        return {}


def discard_revision(http: SocrataSession, dataset_id: str, seq) -> None:
    """Discard revision `seq` of a dataset, as an interrupted run left it; never raises."""
    try:
        http.request(
            "DELETE", f"{ROOT}/revision/{dataset_id}/{seq}", what=f"discarding revision {seq}", dataset=dataset_id
        )
    except SocrataError:
        pass


def open_revisions(http: SocrataSession, dataset_id: str) -> list[dict]:
    """The dataset's open revisions (GET /revision/{4x4}?open=true), as their `resource` records."""
    answer = http.get_json(
        f"{ROOT}/revision/{dataset_id}", what="listing open revisions", dataset=dataset_id, params={"open": "true"}
    )
    return [a.get("resource") or a for a in answer or [] if isinstance(a, dict)]


def last_revision_seq(http: SocrataSession, dataset_id: str) -> int:
    """The highest revision number the dataset has now (-1: none): a revision opened later is newer."""
    answer = http.get_json(f"{ROOT}/revision/{dataset_id}", what="listing revisions", dataset=dataset_id)
    seqs = [(a.get("resource") or a).get("revision_seq") for a in answer or [] if isinstance(a, dict)]
    return max((s for s in seqs if isinstance(s, int)), default=-1)
