"""The log dataset: one row per run upserted to a Socrata dataset, as DataSync's log dataset does.

    # defaults.yaml
    log_dataset: {dataset: abcd-1234}     # domain and auth default to the project's socrata settings

`route portal create --log-dataset` makes a dataset with LOG_COLUMNS (row identifier run_id, so a
row sent twice is one row). Sending is a plain SODA upsert with HTTP Basic auth, retried a few
times; a failure is logged and never fails the run.
"""

from __future__ import annotations

import datetime as dt
import socket
import time
from typing import Any

import requests

from .report import RunReport

LOG_DATASET_NAME = "route run log"
# (field name, display name, Socrata type)
LOG_FIELDS = [
    ("run_id", "Run ID", "text"), ("route", "Route", "text"), ("status", "Status", "text"),
    ("started", "Started (UTC)", "calendar_date"), ("ended", "Ended (UTC)", "calendar_date"),
    ("seconds", "Seconds", "number"), ("rows_read", "Rows read", "number"),
    ("rows_created", "Rows created", "number"), ("rows_updated", "Rows updated", "number"),
    ("rows_deleted", "Rows deleted", "number"), ("rows_rejected", "Rows rejected", "number"),
    ("rows_delivered", "Rows delivered", "number"), ("error", "Error", "text"),
    ("targets", "Targets", "text"), ("route_file", "Route file", "text"), ("host", "Host", "text"),
]
LOG_COLUMNS = [{"fieldName": f, "name": n, "dataTypeName": t} for f, n, t in LOG_FIELDS]
ATTEMPTS = 3


def log_row(report: RunReport) -> dict[str, Any]:
    """The run's summary as a row of the log dataset (error masked already by the executor)."""
    def floating(ts: float | None) -> str | None:
        if ts is None:
            return None
        return dt.datetime.fromtimestamp(ts, dt.timezone.utc).replace(tzinfo=None).isoformat(timespec="milliseconds")

    return {
        "run_id": report.run_id, "route": report.route, "status": report.status,
        "started": floating(report.started), "ended": floating(report.ended), "seconds": round(report.seconds, 3),
        "rows_read": report.rows_read, "rows_created": sum(t.created for t in report.targets),
        "rows_updated": sum(t.updated for t in report.targets), "rows_deleted": sum(t.deleted for t in report.targets),
        "rows_rejected": report.rows_rejected, "rows_delivered": report.rows_delivered,
        "error": report.error or None,
        "targets": "; ".join(f"{t.name}: {t.status} {t.delivered}" + (f" -> {t.location}" if t.location else "")
                             for t in report.targets),
        "route_file": report.route_file, "host": socket.gethostname(),
    }


def append_run(options: dict, report: RunReport, run, log) -> bool:
    """Upsert the run's row; True when the portal took it. Never raises."""
    from .socrata.local import acquire, is_local, release

    dataset = options["dataset"]
    local = is_local(options.get("domain"))
    try:
        if local:
            base, auth = acquire(run, options.get("auth"))
        else:
            base, auth = _base(options["domain"]), options.get("auth") or {}
        try:
            _post(base, dataset, auth, [log_row(report)])
        finally:
            if local:
                release(run)
    except Exception as exc:
        log.warning("could not add this run to the log dataset %s: %s", dataset, exc)
        return False
    log.info("added this run to the log dataset %s", dataset)
    return True


def _post(base: str, dataset: str, auth: dict, rows: list[dict]) -> None:
    user = auth.get("username") or auth.get("api_key_id")
    secret = auth.get("password") if auth.get("username") else auth.get("api_key_secret")
    headers = {"X-App-Token": auth["app_token"]} if auth.get("app_token") else {}
    url = f"{base}/resource/{dataset}.json"
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = requests.post(url, json=rows, auth=(user, secret) if user and secret else None,
                                     headers=headers, timeout=30)
        except requests.RequestException as exc:
            if attempt == ATTEMPTS:
                raise RuntimeError(f"cannot reach {base}: {type(exc).__name__}") from None
            time.sleep(0.5 * attempt)
            continue
        if response.status_code >= 500 and attempt < ATTEMPTS:
            time.sleep(0.5 * attempt)
            continue
        if response.status_code >= 300:
            raise RuntimeError(f"{base} answered {response.status_code}: {response.text[:300]}")
        body = response.json() if response.content else {}
        errors = body.get("Errors", 0) if isinstance(body, dict) else 0
        if errors:
            raise RuntimeError(f"{base} refused the row ({errors} errors): check the dataset has the log columns "
                               f"(`route portal create --log-dataset` makes one)")
        return


def _base(domain: str) -> str:
    domain = domain.strip().rstrip("/")
    return domain if "://" in domain else "https://" + domain


def create_log_dataset(domain: str | None, auth: dict | None = None, name: str = LOG_DATASET_NAME,
                       portal=None) -> str:
    """Create a log dataset with LOG_COLUMNS and return its id.

    `portal` (a LocalPortal) creates it in-process; otherwise it is created on `domain` over HTTP."""
    if portal is not None:
        return portal.create_dataset(name=name, columns=LOG_COLUMNS, row_identifier="run_id",
                                     description="One row per route run (written by route).")
    from .socrata.http import SocrataSession
    from .socrata.views import Column, create_dataset

    http = SocrataSession(domain, auth=auth or {})
    try:
        columns = [Column(f, n, t) for f, n, t in LOG_FIELDS]
        return create_dataset(http, name=name, columns=columns, row_identifier="run_id",
                              description="One row per route run (written by route).").id
    finally:
        http.close()
