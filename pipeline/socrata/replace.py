"""Mode replace: spool the rows as CSV, guard against shrinking, then swap them in by revision.

The rows are written to a CSV file under the state folder as chunks arrive (bounded memory, and a
failed run never opens a revision). At close the dataset's current row count is compared with the
new one: a replace that would empty the dataset or shrink it by more than `max_shrink` stops unless
the run is forced. Only then is a revision opened, uploaded, typed and applied.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv

from pipeline.basics.errors import DeliveryFailed
from pipeline.basics.guards import shrink_problem
from pipeline.socrata import reader
from pipeline.socrata.dsmapi import Revision, last_revision_seq
from pipeline.socrata.http import SocrataSession
from pipeline.socrata.views import Dataset


class Spool:
    """The replace's rows as one CSV file (header of field names), removed when done."""

    def __init__(self, state_dir: Path, run_id: str, fields: list[str]):
        folder = Path(state_dir) / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        fd, self.path = tempfile.mkstemp(prefix=f"socrata-{run_id}-", suffix=".csv", dir=folder)
        self.file = os.fdopen(fd, "wb")
        self.fields = fields
        self.rows = 0
        self.lines: list = []

    def add(self, table: pa.Table) -> None:
        table = table.select(self.fields)
        pcsv.write_csv(table, self.file, pcsv.WriteOptions(include_header=self.rows == 0))
        self.rows += table.num_rows

    def finish(self) -> str:
        if self.rows == 0:
            self.file.write((",".join(self.fields) + "\n").encode())
        self.file.close()
        return self.path

    def remove(self) -> None:
        if not self.file.closed:
            self.file.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def replace(
    http: SocrataSession,
    dataset: Dataset,
    spool: Spool,
    *,
    max_shrink: float,
    force: bool,
    head: str,
    mask,
    log,
    on_revision=None,
    on_opening=None,
    on_phase=None,
) -> dict:
    """Swap the dataset's rows for the spooled ones; returns the counts and ids for the result."""
    current = reader.count(http, dataset.id)
    problem = shrink_problem(current, spool.rows, max_shrink)
    if problem and not force:
        raise DeliveryFailed(
            mask(
                f"{head}: stopped before replacing: {problem}. Nothing was changed. If this "
                f"is intended, run again with --force (or raise max_shrink)"
            )
        )
    if problem:
        log.warning("%s: %s; going ahead because of --force", head, problem)
    path = spool.finish()
    revision = Revision(http, dataset)
    if on_opening is not None:  # killed between the open and its answer, the run knows no id
        on_opening(last_revision_seq(http, dataset.id))
    revision.open()
    if on_revision is not None:
        on_revision(revision)
    say = on_phase or (lambda text: None)
    try:
        say(f"uploading {spool.rows:,} rows")
        schema = revision.upload(path, f"{dataset.id}.csv")
        output = revision.output_schema(schema, dataset.row_identifier)
        say("applying the revision")
        job = revision.apply(output.get("id"))
    except BaseException:
        revision.discard()
        raise
    counts = revision.job_counts()
    created = int(counts.get("Rows Created", counts.get("rows_created", spool.rows)) or 0)
    return {
        "created": created,
        "updated": int(counts.get("Rows Updated", counts.get("rows_updated", 0)) or 0),
        "deleted": current,
        "revision": revision.seq,
        "job": job.get("id"),
        "status": job.get("status"),
        "request_id": job.get("request_id"),
        "rows_before": current,
    }
