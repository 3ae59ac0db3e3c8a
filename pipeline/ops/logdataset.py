"""The log dataset: one row per run upserted to a Socrata dataset, as DataSync's log dataset does.

    # defaults.yaml
    log_dataset: {dataset: abcd-1234}     # domain and auth default to the project's socrata settings

`route portal create --log-dataset` makes a dataset with LOG_COLUMNS (row identifier run_id, so a
row sent twice is one row). The row goes through the Socrata client as any upsert does (one
SODA batch over a SocrataSession, so retries, Retry-After and refusals are the client's), with
few retries and short waits; a failure is logged and never fails the run.
"""

from __future__ import annotations

import datetime as dt
import socket
from typing import Any

from pipeline.engine.report import RunReport

LOG_DATASET_NAME = "route run log"
# (field name, display name, Socrata type)
LOG_FIELDS = [
    ("run_id", "Run ID", "text"),
    ("route", "Route", "text"),
    ("status", "Status", "text"),
    ("started", "Started (UTC)", "calendar_date"),
    ("ended", "Ended (UTC)", "calendar_date"),
    ("seconds", "Seconds", "number"),
    ("rows_read", "Rows read", "number"),
    ("rows_created", "Rows created", "number"),
    ("rows_updated", "Rows updated", "number"),
    ("rows_deleted", "Rows deleted", "number"),
    ("rows_rejected", "Rows rejected", "number"),
    ("rows_delivered", "Rows delivered", "number"),
    ("error", "Error", "text"),
    ("targets", "Targets", "text"),
    ("route_file", "Route file", "text"),
    ("host", "Host", "text"),
]
LOG_COLUMNS = [{"fieldName": f, "name": n, "dataTypeName": t} for f, n, t in LOG_FIELDS]
RETRIES = 2  # after the first attempt
BACKOFF = 0.5
TIMEOUT = 30.0


def log_row(report: RunReport) -> dict[str, Any]:
    """The run's summary as a row of the log dataset (error masked already by the executor)."""

    def floating(ts: float | None) -> str | None:
        if ts is None:
            return None
        return dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")

    return {
        "run_id": report.run_id,
        "route": report.route,
        "status": report.status,
        "started": floating(report.started),
        "ended": floating(report.ended),
        "seconds": round(report.seconds, 3),
        "rows_read": report.rows_read,
        "rows_created": sum(t.created for t in report.targets),
        "rows_updated": sum(t.updated for t in report.targets),
        "rows_deleted": sum(t.deleted for t in report.targets),
        "rows_rejected": report.rows_rejected,
        "rows_delivered": report.rows_delivered,
        "error": report.error or None,
        "targets": "; ".join(
            f"{t.name}: {t.status} {t.delivered}" + (f" -> {t.location}" if t.location else "") for t in report.targets
        ),
        "route_file": report.route_file,
        "host": socket.gethostname(),
    }


def append_run(options: dict, report: RunReport, run, log) -> bool:
    """Upsert the run's row; True when the portal took it. Never raises."""
    from pipeline.socrata import local

    dataset = options["dataset"]
    is_local = local.is_local(options.get("domain"))
    try:
        if is_local:
            domain, auth = local.acquire(run, options.get("auth"))
        else:
            domain, auth = options["domain"], options.get("auth") or {}
        try:
            _upsert(domain, dataset, auth, log_row(report), run, log, local.label(run) if is_local else None)
        finally:
            if is_local:
                local.release(run)
    except Exception as exc:
        log.warning("could not add this run to the log dataset %s: %s", dataset, run.mask(str(exc)))
        return False
    log.info("added this run to the log dataset %s", dataset)
    return True


def _upsert(domain: str, dataset: str, auth: dict, row: dict, run, log, label: str | None) -> None:
    import pyarrow as pa

    from pipeline.socrata.errors import SocrataError
    from pipeline.socrata.http import SocrataSession
    from pipeline.socrata.soda import Batch, send_batch

    http = SocrataSession(
        domain, auth=auth, timeout=TIMEOUT, retries=RETRIES, backoff=BACKOFF, log=log, label=label
    )  # not the run's cancel: the run is over
    try:
        outcome = send_batch(
            http,
            dataset,
            Batch(0, pa.Table.from_pylist([row]), None),
            verb="upsert",
            repeatable=True,
            what="upsert of this run's row",
        )
    finally:
        http.close()
    if outcome.error_count:
        raise SocrataError(
            f"{http.label} refused the row ({outcome.error_count} errors): check the dataset has "
            f"the log columns (`route portal create --log-dataset` makes one)"
        )


def create_log_dataset(domain: str | None, auth: dict | None = None, name: str = LOG_DATASET_NAME, portal=None) -> str:
    """Create a log dataset with LOG_COLUMNS and return its id.

    `portal` (a LocalPortal) creates it in-process; otherwise it is created on `domain` over HTTP."""
    if portal is not None:
        return portal.create_dataset(
            name=name,
            columns=LOG_COLUMNS,
            row_identifier="run_id",
            description="One row per route run (written by route).",
        )
    from pipeline.socrata.http import SocrataSession
    from pipeline.socrata.views import Column, create_dataset

    http = SocrataSession(domain, auth=auth or {})
    try:
        columns = [Column(f, n, t) for f, n, t in LOG_FIELDS]
        return create_dataset(
            http,
            name=name,
            columns=columns,
            row_identifier="run_id",
            description="One row per route run (written by route).",
        ).id
    finally:
        http.close()
