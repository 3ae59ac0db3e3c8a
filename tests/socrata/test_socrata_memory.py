"""What keeps a socrata delivery's memory bounded: request bodies in flight bounded by bytes as well
as by count, a chunk converted a batch's rows at a time, and a replace's spool uploaded from disk
(issue 19)."""

from __future__ import annotations

import csv
import io
import threading

import pandas as pd
import pyarrow as pa
from portalkit import SECRET, USER

from pipeline.socrata.dsmapi import FileBody
from pipeline.socrata.http import SocrataSession
from pipeline.socrata.soda import Batch, BatchSender


def test_bodies_over_the_byte_bound_go_one_at_a_time_and_all_arrive(portal):
    ds = portal.create()
    http = SocrataSession(portal.url, auth={"username": USER, "password": SECRET}, backoff=0.01)
    lock, sending, most = threading.Lock(), [0], [0]

    def on_send(batch):
        with lock:
            sending[0] += 1
            most[0] = max(most[0], sending[0])

    def on_done(outcome):
        with lock:
            sending[0] -= 1

    # Every body is larger than max_bytes: each waits for the one before, none is refused or lost.
    sender = BatchSender(
        http, ds, concurrency=4, repeatable=True, verb="upsert", on_send=on_send, on_done=on_done, max_bytes=10
    )
    try:
        for seq in range(6):
            ids = [f"C-{seq * 5 + i:04d}" for i in range(5)]
            sender.submit(Batch(seq + 1, pa.table({"case_id": ids}), None))
        sender.close()
    finally:
        http.close()
    assert not sender.failures and most[0] == 1
    assert sum(o.created for o in sender.outcomes) == 30 and all(o.batch.table is None for o in sender.outcomes)
    assert len(portal.rows(ds)) == 30


def test_a_file_body_is_read_again_whole_for_every_attempt(tmp_path):
    path = tmp_path / "spool.csv"
    data = b"case_id\n" + b"".join(f"C-{i:06d}\n".encode() for i in range(300_000))
    path.write_bytes(data)
    body = FileBody(str(path), len(data))
    assert len(body) == len(data) > FileBody.BLOCK
    assert b"".join(body) == data and b"".join(body) == data  # a retry sends all of it again


def test_a_chunk_is_sent_a_batch_at_a_time_with_its_rejects_and_lines(portal, deliver):
    # One 23-row chunk, batches of 5: converted a batch's rows at a time; the rows whose amount is
    # not a number (lines 4, 12 and 24) are rejected with their line, every other row arrives once.
    ds = portal.create(
        [
            {"fieldName": "case_id", "name": "Case ID", "dataTypeName": "text"},
            {"fieldName": "amount", "name": "Amount", "dataTypeName": "number"},
        ],
        row_identifier="case_id",
    )
    lines = list(range(2, 25))
    amounts = ["lots" if line in (4, 12, 24) else str(line) for line in lines]
    chunk = pd.DataFrame(
        {"case_id": [f"C-{line:04d}" for line in lines], "amount": pd.array(amounts, dtype="str")},
        index=pd.Index(lines, dtype="int64"),
    )
    run = deliver({"domain": portal.url, "dataset": ds, "mode": "upsert", "batch_rows": 5}, chunk)
    assert run.result.delivered == 20 and run.result.rejected == 3
    got = portal.rows(ds, **{"$order": "case_id"})
    assert [r["case_id"] for r in got] == [f"C-{line:04d}" for line in lines if line not in (4, 12, 24)]
    rejected = list(csv.DictReader(io.StringIO(run.rejects)))
    assert [(r["line"], r["value"], r["column"]) for r in rejected] == [
        (str(line), "lots", "amount") for line in (4, 12, 24)
    ]
    assert all(r["reason"].startswith("not a number") for r in rejected)
