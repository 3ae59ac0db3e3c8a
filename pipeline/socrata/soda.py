"""SODA row writes (`POST /resource/{4x4}.json`) in batches, several in flight.

A BatchSender keeps at most `concurrency` batches, and at most MAX_BYTES_IN_FLIGHT bytes of request
bodies, in flight over one keep-alive session, so memory stays bounded whatever the input size
and however wide the rows. Each body is encoded in the caller's thread while the batches before it
are on the wire, one body at a time: encoding in every sender thread at once held four bodies
and four of polars' working buffers (60-80 MB more peak RSS for 10,000-row batches, measured), and
the sender threads wait on the network anyway. Two batches that touch the same row identifier are
never in flight together, so the last value in the route is the one that stays. The first failure
stops the sender; batches already in flight finish, so the caller can say exactly what arrived.
"""

from __future__ import annotations

import io
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.basics.lines import describe_runs, ranges
from pipeline.socrata.errors import OutcomeUnknown, SocrataError
from pipeline.socrata.http import SocrataSession

# Request bodies in flight per sender (a target): 4 batches of 10,000 typical rows are ~14 MB;
# wider rows or larger batches send fewer at once rather than hold more.
MAX_BYTES_IN_FLIGHT = 32 << 20


def encode_json(table: pa.Table) -> bytes:
    """A JSON array of row objects, nulls written as null (polars is the fastest measured way).

    Measured against it (bench/bench_end_to_end.py, 2026-12-03): polars' JSON Lines writer, joined,
    gives the same bytes with the same instructions (callgrind, 345M against 337M per 50,000 rows)
    on its thread pool, but no faster run end to end, and 20-25 MB more peak RSS; Arrow compute
    string joins took 2.5x the CPU; orjson needs row dicts, slower to build than the whole encode."""
    buf = io.BytesIO()
    pl.from_arrow(table, rechunk=False).write_json(buf)
    return buf.getvalue()


@dataclass
class Batch:
    seq: int
    table: pa.Table | None  # wire columns keyed by field name (dropped once encoded)
    lines: np.ndarray | None  # the source line of each row (kept as runs once sent)
    source: str = ""
    keys: pa.Array | None = None  # row identifier values, to keep same-key batches in order
    rows: int = 0
    runs: list = field(default_factory=list)

    def __post_init__(self):
        self.rows = self.table.num_rows if self.table is not None else self.rows
        if self.lines is not None and not self.runs:
            self.runs = ranges(self.lines)
        self.key_range = (None, None)
        if self.keys is not None and len(self.keys):
            bounds = pc.min_max(self.keys)
            self.key_range = (bounds["min"].as_py(), bounds["max"].as_py())

    def release(self) -> None:
        """Forget the rows themselves (memory stays bounded); the line runs stay for messages."""
        self.table = self.lines = self.keys = None

    def describe(self) -> str:
        return describe_runs(self.runs, self.source)


@dataclass
class BatchOutcome:
    batch: Batch
    created: int = 0
    updated: int = 0
    deleted: int = 0
    errors: list = field(default_factory=list)  # (line or None, message)
    error_count: int = 0
    request_id: str = ""
    bytes: int = 0  # the request body's size


def parse_summary(body, batch: Batch) -> BatchOutcome:
    """Counts and row errors from any of the three upsert response shapes Socrata uses."""
    out = BatchOutcome(batch)
    if isinstance(body, dict):
        get = body.get
        if "rows_created" in body or "rows_updated" in body:  # shape (a)
            out.created, out.updated, out.deleted = (
                int(get("rows_created") or 0),
                int(get("rows_updated") or 0),
                int(get("rows_deleted") or 0),
            )
            errs = get("errors") or []
            errs = errs if isinstance(errs, list) else []
            out.error_count = len(errs)
            for e in errs:
                idx = e.get("input_index") if isinstance(e, dict) else None
                msg = (e.get("error") if isinstance(e, dict) else str(e)) or "row error"
                out.errors.append((_line(batch, idx), str(msg)))
        else:  # legacy summary
            out.created = int(get("Rows Created") or 0)
            out.updated = int(get("Rows Updated") or 0)
            out.deleted = int(get("Rows Deleted") or 0)
            errs = get("Errors") or 0
            out.error_count = int(errs) if not isinstance(errs, list) else len(errs)
            if out.error_count:
                out.errors.append((None, f"{out.error_count} row error(s)"))
    elif isinstance(body, list):  # shape (b), one entry per row
        for i, e in enumerate(body):
            typ = e.get("typ") if isinstance(e, dict) else None
            if typ == "insert":
                out.created += 1
            elif typ == "update":
                out.updated += 1
            elif typ == "delete":
                out.deleted += 1
            elif typ == "error":
                out.error_count += 1
                out.errors.append((_line(batch, i), str(e.get("err") or "row error")))
    return out


def _line(batch: Batch, index):
    if isinstance(index, int) and batch.lines is not None and 0 <= index < len(batch.lines):
        return int(batch.lines[index])
    return None


def send_batch(
    http: SocrataSession,
    dataset_id: str,
    batch: Batch,
    *,
    verb: str,
    repeatable: bool,
    on_send=None,
    what: str | None = None,
    body: bytes | None = None,
) -> BatchOutcome:
    """POST one batch to the dataset's `/resource` endpoint, in the caller's thread.

    `body` is the batch already encoded (else it is encoded here); `on_send(batch)` runs once the
    body is encoded, just before it goes out; `what` names the request in messages (default: the
    verb and the batch's source lines)."""
    if body is None:
        body = encode_json(batch.table)
    what = what or f"{verb} of {batch.describe()} to dataset {dataset_id}"
    if on_send is not None:
        on_send(batch)
    response = http.request(
        "POST",
        f"/resource/{dataset_id}.json",
        what=what,
        dataset=dataset_id,
        data=body,
        repeatable=repeatable,
        headers={"Content-Type": "application/json"},
    )
    try:
        summary = response.json() if response.content else {}
    except ValueError:
        raise SocrataError(f"{what}: the portal's answer is not JSON") from None
    outcome = parse_summary(summary, batch)
    outcome.request_id = getattr(response, "request_id", "")
    outcome.bytes = len(body)
    return outcome


class BatchSender:
    """Sends batches to one dataset's `/resource` endpoint, at most `concurrency` at a time."""

    def __init__(
        self,
        http: SocrataSession,
        dataset_id: str,
        *,
        concurrency: int,
        repeatable: bool,
        verb: str,
        on_send=None,
        on_done=None,
        on_refused=None,
        max_bytes: int = MAX_BYTES_IN_FLIGHT,
    ):
        self.http = http
        self.dataset_id = dataset_id
        self.concurrency = max(1, concurrency)
        self.repeatable = repeatable
        self.verb = verb  # "upsert", "append" or "delete", for messages
        # Journal hooks: a batch about to go out, confirmed by the portal, certainly refused by it.
        self.on_send = on_send
        self.on_done = on_done
        self.on_refused = on_refused
        self.max_bytes = max_bytes
        self.pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="socrata-batch")
        self.inflight: dict[Future, Batch] = {}
        self.inflight_bytes: dict[Future, int] = {}
        self.outcomes: list[BatchOutcome] = []
        self.failures: list[tuple[Batch, BaseException]] = []
        self.lock = threading.Lock()
        self.stopped = False

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def submit(self, batch: Batch) -> None:
        """Encode one batch and queue it; blocks while `concurrency` batches, or `max_bytes` of
        bodies, are in flight (bounded memory). The rows are dropped once encoded."""
        if batch.keys is not None:
            self._wait_for_same_keys(batch)
        if self.failures or self.stopped:
            self.failures.append((batch, _Skipped()))  # counted as not sent
            return
        body = encode_json(batch.table)  # while the batches before it are on the wire
        batch.table = None
        while self.inflight and (
            len(self.inflight) >= self.concurrency or sum(self.inflight_bytes.values()) + len(body) > self.max_bytes
        ):
            self._next_done()
        if self.failures or self.stopped:
            self.failures.append((batch, _Skipped()))
            return
        future = self.pool.submit(self._send, batch, body)
        self.inflight[future] = batch
        self.inflight_bytes[future] = len(body)

    def _next_done(self) -> None:
        self._collect(wait(list(self.inflight), return_when=FIRST_COMPLETED).done)

    def _wait_for_same_keys(self, batch: Batch) -> None:
        low, high = batch.key_range
        blocking = [
            f
            for f, b in self.inflight.items()
            if b.keys is not None
            and b.key_range[0] is not None
            and low is not None
            and not (high < b.key_range[0] or b.key_range[1] < low)  # disjoint ranges: no check
            and pc.any(pc.is_in(batch.keys, value_set=b.keys)).as_py()
        ]
        if blocking:
            self._collect(wait(blocking).done)

    def _collect(self, done) -> None:
        for future in done:
            batch = self.inflight.pop(future)
            self.inflight_bytes.pop(future, None)
            batch.release()
            exc = future.exception()
            if exc is not None:
                self.failures.append((batch, exc))
                sent = not isinstance(exc, _Skipped)
                if sent and not isinstance(exc, OutcomeUnknown) and self.on_refused is not None:
                    self.on_refused(batch)
            else:
                self.outcomes.append(future.result())

    def _send(self, batch: Batch, body: bytes) -> BatchOutcome:
        if self.failures or self.stopped:
            raise _Skipped()
        outcome = send_batch(
            self.http,
            self.dataset_id,
            batch,
            verb=self.verb,
            repeatable=self.repeatable,
            on_send=self.on_send,
            body=body,
        )
        if self.on_done is not None:
            self.on_done(outcome)
        return outcome

    def stop(self) -> None:
        """Send nothing more; batches already on the wire finish."""
        self.stopped = True
        self.drain()

    def drain(self) -> None:
        """Wait for every batch in flight."""
        while self.inflight:
            self._collect(wait(list(self.inflight)).done)

    def close(self) -> None:
        self.drain()
        self.pool.shutdown(wait=True)

    def real_failures(self) -> list[tuple[Batch, BaseException]]:
        return [(b, e) for b, e in self.failures if not isinstance(e, _Skipped)]

    def skipped(self) -> list[Batch]:
        return [b for b, e in self.failures if isinstance(e, _Skipped)]


class _Skipped(Exception):
    """A batch not sent because an earlier one failed."""
