"""What keeps a socrata delivery's memory bounded: request bodies in flight bounded by bytes as well
as by count, and a replace's spool uploaded from disk (issue 19)."""

from __future__ import annotations

import threading

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
