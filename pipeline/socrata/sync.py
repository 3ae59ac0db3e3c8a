"""Mode sync of the socrata delivery: the dataset ends up holding exactly the route's rows, as with
replace, but only new and changed rows are upserted and the rows whose key left the route are
deleted (`{key: value, ":deleted": true}` in an upsert batch).

Each chunk's rows are hashed over their wire values (sync_state.py) and looked up by key in the
hashes of the rows the dataset holds: a key the dataset lacks is created, a hash that differs is an
update, and the rest is left alone. A key that comes again later in the route is always sent, so
the last row of a key wins as in an upsert. The rows to send go to a spool file (Arrow IPC, only
those rows) while the route runs; at close the keys never seen are the deletions, and the
`max_shrink` guard judges them before anything is sent. Then the spool goes out in batches through
the delivery's BatchSender (journalled like an upsert), the deletions after it. Only when the portal
has confirmed every batch are the route's keys and hashes kept for the next run.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.basics.errors import DeliveryFailed
from pipeline.basics.guards import shrink_fraction
from pipeline.socrata import report, sync_state
from pipeline.socrata.batching import Rebatcher
from pipeline.socrata.columns import ID
from pipeline.socrata.convert import DELETED, WireChunk
from pipeline.socrata.errors import SocrataError
from pipeline.socrata.soda import Batch

SAMPLE = 5  # keys shown per kind of change in a dry run


def problems(mapping, dataset) -> list[str]:
    """What mode sync needs beyond an upsert: a row identifier column, and every dataset column."""
    out = []
    if mapping.key is None or mapping.key.field == ID:
        out.append(
            "mode sync compares rows by the row identifier, and "
            + (
                f"dataset {dataset.label} has none: set one on the dataset"
                if not dataset.row_identifier
                else f"the route has no column for {dataset.by_field()[dataset.row_identifier].label}"
            )
        )
    used = {t.field for t in mapping.targets}
    missing = [c.label for c in dataset.columns if c.field not in used]
    if missing:
        out.append(
            "mode sync makes the dataset exactly the route's rows, but the route has no column for "
            f"{', '.join(missing)}; add them to the route's output (a derive to null keeps them empty) "
            "or use mode upsert"
        )
    return out


def sync_problem(current: int, deleted: int, delivered: int, max_shrink: float) -> str | None:
    """Why a sync deleting `deleted` of the dataset's `current` rows must not go ahead, or None."""
    if current <= 0 or deleted <= 0:
        return None
    if delivered == 0:
        return f"it would empty the dataset (it has {current:,} rows and the route delivers none)"
    if deleted / current > max_shrink:
        return (
            f"it would delete {deleted:,} of the dataset's {current:,} rows ({deleted / current:.0%}, more "
            f"than max_shrink {max_shrink:.0%})"
        )
    return None


class ChangeSpool:
    """The rows to send, as Arrow IPC streams one after the other in one file under <state>/tmp."""

    def __init__(self, state_dir: Path, run_id: str):
        folder = Path(state_dir) / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix=f"socrata-sync-{run_id}-", suffix=".arrows", dir=folder)
        self.path = Path(path)
        self.file = os.fdopen(fd, "wb")
        self.parts: list[tuple[int, int, str]] = []
        self.rows = 0

    def add(self, wc: WireChunk, source: str) -> None:
        table = wc.table.append_column("__line", pa.array(wc.lines, pa.int64())).append_column("__key", wc.keys)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        data = sink.getvalue()
        self.parts.append((self.file.tell(), data.size, source))
        self.file.write(data)
        self.rows += table.num_rows

    def chunks(self):
        """The spooled rows again, part by part, as WireChunks and their source."""
        self.file.close()
        if not self.parts:
            return
        with open(self.path, "rb") as f:  # one part in memory at a time
            for offset, size, source in self.parts:
                f.seek(offset)
                table = pa.ipc.open_stream(pa.py_buffer(f.read(size))).read_all()
                lines = table.column("__line").to_numpy()
                keys = table.column("__key").combine_chunks()
                yield WireChunk(table.drop_columns(["__line", "__key"]), lines, keys), source

    def remove(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.path.unlink(missing_ok=True)


class SyncRun:
    """One target's sync: `add` each converted chunk, then `close` (or `plan` in a dry run)."""

    def __init__(self, delivery):
        d = self.d = delivery
        self.key = d.mapping.key
        self.types = {t.field: t.type for t in d.mapping.targets}
        self.fields = sorted(f for f in self.types if f != self.key.field)
        self.columns = [[f, self.types[f]] for f in [self.key.field, *self.fields]]
        self.dry_run = d.dry_run
        self.created = self.updated = self.unchanged = self.rows = 0
        self.samples: dict[str, list] = {"create": [], "update": [], "delete": []}
        self.file = sync_state.StateFile(
            d.run.state_dir,
            d.run.route_name,
            d.ctx.target or "socrata",
            "local" if d.local else d.http.base,
            d.dataset.id,
        )
        self.rebuilt = False
        self.state = self._state()
        self.seen = np.zeros(len(self.state), dtype=bool)
        self.latest = self.state.hashes.copy()  # the hash each of the dataset's keys ends with
        self.new: list[tuple[pa.Array, np.ndarray, np.ndarray]] = []  # rows of keys not in the dataset
        self.spool = None
        if not self.dry_run:
            self.spool = ChangeSpool(d.run.state_dir, d.run.run_id)
            d.run.journal.hold(d.ctx.target, "spool", path=str(self.spool.path))

    # -- the hashes the dataset's rows have ----------------------------------------------------

    def _state(self) -> sync_state.Hashes:
        d = self.d
        if d.dataset.id == "(new)":
            return sync_state.empty()
        try:
            now = sync_state.marks(d.http, d.dataset.id)
            if now["rows"] == 0:
                return sync_state.empty()
            hashes, why = self.file.load(self.columns, now)
            if hashes is not None:
                d.ctx.log.info("%s: comparing with the hashes of the last sync (%d rows)", d.head, len(hashes))
                return hashes
            d.ctx.log.info("%s: %s: reading the dataset's %d rows to compare with", d.head, why, now["rows"])
            self.rebuilt = True
            return sync_state.rebuild(
                d.http,
                d.dataset.id,
                (self.key.field, self.key.type),
                [(f, self.types[f]) for f in self.fields],
                timezone=d.options.get("timezone"),
            )
        except SocrataError as exc:
            raise d.error(f"{d.head}: {exc}") from None

    # -- each chunk ----------------------------------------------------------------------------

    def add(self, wc: WireChunk, source: str) -> None:
        n = wc.table.num_rows
        keys = sync_state.key_text(wc.keys, self.key.type)
        kh = sync_state.key_hashes(keys)
        hashes = sync_state.row_hashes(wc.table, self.fields, self.types)
        rows = self.state.find(keys, kh)
        known = rows >= 0
        at = rows[known]
        # A key that came before in this run is sent again, whatever its hash: the last row wins.
        # (Told apart by key hash: two keys with one hash only make a row be sent needlessly.)
        again = np.ones(n, dtype=bool)
        again[np.unique(kh, return_index=True)[1]] = False
        again[known] |= self.seen[at]
        new = ~known
        if new.any() and self.new:
            again[new] |= np.isin(kh[new], np.concatenate([h for _, _, h in self.new]))
        changed = np.zeros(n, dtype=bool)
        changed[known] = self.state.hashes[at] != hashes[known]
        send = new | changed | again
        create = new & ~again
        self.seen[at] = True
        if len(at):  # the last row of a key gives the hash kept for it
            last = len(at) - 1 - np.unique(at[::-1], return_index=True)[1]
            self.latest[at[last]] = hashes[known][last]
        if new.any():
            self.new.append((keys.filter(pa.array(new)), hashes[new], kh[new]))
        self.rows += n
        self.created += int(create.sum())
        self.updated += int((send & ~create).sum())
        self.unchanged += int((~send).sum())
        for kind, mask in (("create", create), ("update", send & ~create)):
            if len(self.samples[kind]) < SAMPLE and mask.any():
                self.samples[kind] += keys.filter(pa.array(mask)).slice(0, SAMPLE).to_pylist()
                del self.samples[kind][SAMPLE:]
        if self.spool is not None and send.any():
            keep = pa.array(send)
            self.spool.add(WireChunk(wc.table.filter(keep), wc.lines[send], keys.filter(keep)), source)

    # -- the end -------------------------------------------------------------------------------

    def _gone(self) -> pa.Array:
        return self.state.keys.filter(pa.array(~self.seen))

    def _problem(self, deleted: int) -> str | None:
        return sync_problem(len(self.state), deleted, self.rows, shrink_fraction(self.d.options.get("max_shrink")))

    def _counts(self, gone: pa.Array) -> dict:
        first = pc.array_sort_indices(gone).slice(0, SAMPLE) if len(gone) else pa.array([], pa.uint64())
        self.samples["delete"] = gone.take(first).to_pylist()
        return {"create": self.created, "update": self.updated, "delete": len(gone), "unchanged": self.unchanged}

    def plan(self) -> dict:
        """A dry run's counts, a few keys of each kind, and whether the guard would stop it."""
        gone = self._gone()
        out = {**self._counts(gone), "rows_after": len(self.state) + self.created - len(gone)}
        out["samples"] = {k: v for k, v in self.samples.items() if v}
        if self.rebuilt:
            out["read_dataset"] = True
        problem = self._problem(len(gone))
        if problem and not self.d.options.get("allow_empty"):
            forced = " (--force given)" if self.d.force else ""
            out["stop"] = f"would stop before syncing: {problem}{forced}"
        return out

    def close(self, raise_if_failed) -> dict:
        """Guard, send the changes and the deletions, keep the hashes; the result's numbers."""
        d = self.d
        gone = self._gone()
        problem = self._problem(len(gone))
        if problem:
            if not (d.force or d.options.get("allow_empty")):
                raise d.error(
                    f"{d.head}: stopped before syncing: {problem}. Nothing was changed. If this is intended, "
                    "run again with --force, or set allow_empty: true (or a higher max_shrink) on the target"
                )
            d.ctx.log.warning(
                "%s: %s; going ahead because of %s", d.head, problem, "--force" if d.force else "allow_empty"
            )
        sender, deletes = d.sender, set()
        if self.spool.rows or len(gone):
            self.file.drop()  # from now on the dataset may differ from the hashes: the next run reads it
            batches = Rebatcher(d.options["batch_rows"])
            for wc, source in self.spool.chunks():
                batches.add(wc, source)
                _submit(sender, batches.batches())
            _submit(sender, batches.batches(final=True))
            seq = batches.seq
            size = d.options["batch_rows"]
            for start in range(0, len(gone), size):
                keys = gone.slice(start, size)
                seq += 1
                deletes.add(seq)
                table = pa.table({self.key.field: keys, DELETED: pa.array(np.ones(len(keys), dtype=bool))})
                batch = Batch(seq, table, None, "", keys)
                batch.rows = 0  # no row of the route: the journal and the failure counts are the route's rows
                _submit(sender, [batch])
            sender.drain()
        try:
            raise_if_failed()
        except DeliveryFailed as exc:
            exc.advice = (
                f"Of the rows not sent, {self.unchanged:,} were unchanged (the dataset has them already). " + exc.advice
            )
            exc.args = (" ".join(p for p in (exc.message, exc.advice) if p),)
            raise
        outcomes = sorted(sender.outcomes, key=lambda o: o.batch.seq)
        upserts = [o for o in outcomes if o.batch.seq not in deletes]
        refused = report.row_errors(upserts, head=d.head, delivered=sum(o.batch.rows for o in upserts), mask=d.run.mask)
        if refused is not None:
            raise refused
        removed = [o for o in outcomes if o.batch.seq in deletes]
        not_found = sum(o.error_count for o in removed)
        self._keep(d)
        result = {
            "delivered": self.rows,
            "created": sum(o.created for o in upserts),
            "updated": sum(o.updated for o in upserts),
            "deleted": sum(o.deleted for o in removed),
            "details": {
                "unchanged": self.unchanged,
                "sent": self.spool.rows,
                "batches": len(outcomes),
                "bytes_sent": sum(o.bytes for o in outcomes),
                "request_ids": [o.request_id for o in outcomes][:1000],
                "read_dataset": self.rebuilt,
            },
        }
        if not_found:
            result["details"]["not_found"] = not_found
        d.ctx.log.info(
            "%s: synced: %d created, %d updated, %d deleted, %d unchanged (%d bytes sent)",
            d.head,
            result["created"],
            result["updated"],
            result["deleted"],
            self.unchanged,
            result["details"]["bytes_sent"],
        )
        return result

    def _keep(self, d) -> None:
        """The route's keys and hashes, for the next run, once the dataset holds exactly them."""
        keys, hashes = [self.state.keys.filter(pa.array(self.seen))], [self.latest[self.seen]]
        if self.new:  # the last row of each new key (by key hash: a clash leaves a key out, and the
            # count check below then keeps nothing, so the next run reads the dataset)
            kh = np.concatenate([h for _, _, h in self.new])
            last = np.sort(len(kh) - 1 - np.unique(kh[::-1], return_index=True)[1])
            keys.append(pa.concat_arrays([k for k, _, _ in self.new]).take(pa.array(last)))
            hashes.append(np.concatenate([h for _, h, _ in self.new])[last])
        keys, hashes = pa.concat_arrays(keys), np.concatenate(hashes)
        try:
            now = sync_state.marks(d.http, d.dataset.id)
        except SocrataError as exc:
            d.ctx.log.warning("%s: the hashes were not kept (%s); the next run reads the dataset", d.head, exc)
            self.file.drop()
            return
        if now["rows"] != len(keys):
            d.ctx.log.warning(
                "%s: the dataset has %d rows where the route delivered %d keys (did something else write to "
                "it?); the hashes were not kept, and the next run reads the dataset",
                d.head,
                now["rows"],
                len(keys),
            )
            self.file.drop()
            return
        self.file.save(keys, hashes, self.columns, now)

    def cleanup(self) -> None:
        if self.spool is not None:
            self.spool.remove()
            self.d.run.journal.let(self.d.ctx.target, "spool", path=str(self.spool.path))
            self.spool = None


def _submit(sender, batches) -> None:
    for batch in batches:
        sender.submit(batch)
        if sender.failed:
            return
