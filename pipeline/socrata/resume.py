"""--resume for an append: send only the rows an interrupted run did not deliver.

The journal of the earlier run (carried into this one) says which source lines certainly arrived
and which batches are in doubt (sent, never confirmed). Rows that arrived are skipped. Rows in
doubt are settled before anything is sent:

- with a row identifier, their keys are looked up in the dataset: found ones arrived;
- without one, the dataset's row count is compared with its count before the first interrupted
  run: the rows beyond those confirmed must be whole batches in doubt, and when exactly one set of
  batches adds up to that number, it is the one that arrived;
- `--in-doubt send|skip` settles them by hand when neither can (another writer changed the count).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.basics.errors import DeliveryFailed
from pipeline.basics.lines import describe_sources, merge, within
from pipeline.socrata import reader
from pipeline.socrata.columns import ID
from pipeline.socrata.convert import WireChunk
from pipeline.socrata.dryrun import normalise
from pipeline.socrata.errors import SocrataError

KEYS_PER_QUERY = 200
MAX_BATCHES_TO_SOLVE = 20


class Resume:
    """What one append target skips and checks, built when the delivery is ready to send."""

    def __init__(self, delivery, earlier):
        self.delivery = delivery
        self.earlier = earlier
        self.skip: dict[str, list] = earlier.confirmed_lines()
        self.check: dict[str, list] = {}
        self.skipped = self.checked = self.found = 0
        doubt = earlier.doubt_lines()
        if doubt:
            self._settle(doubt)

    # -- rows in doubt ---------------------------------------------------------------------------

    def _settle(self, doubt: dict[str, list]) -> None:
        d = self.delivery
        choice = getattr(d.run.options, "in_doubt", None)
        key = d.mapping.key
        if choice == "skip":
            self._arrived(doubt, self.earlier.in_doubt_rows)
        elif choice == "send":
            pass
        elif key is not None and key.field != ID:
            self.check = doubt  # looked up by key as their rows come by
        else:
            self._settle_by_count()

    def _settle_by_count(self) -> None:
        d, earlier = self.delivery, self.earlier
        batches = earlier.in_doubt
        baseline = earlier.baseline
        try:
            now = reader.count(d.http, d.dataset.id)
        except SocrataError as exc:
            raise d.error(f"{d.head}: {exc}") from None
        extra = None if baseline is None else now - baseline - earlier.arrived
        sizes = [b.rows for b in batches]
        chosen = _unique_subset(sizes, extra) if extra is not None else None
        if chosen is None:
            doubt = describe_sources(earlier.doubt_lines())
            seen = (
                f"the dataset has {now:,} rows where {baseline + earlier.arrived:,} to "
                f"{baseline + earlier.arrived + sum(sizes):,} were expected"
                if baseline is not None
                else "the dataset's size before the run is not known"
            )
            raise DeliveryFailed(
                d.run.mask(
                    f"{d.head}: --resume cannot tell whether the {sum(sizes):,} rows in doubt ({doubt}) arrived: "
                    f"{seen} (has something else written to it?). Nothing was sent. Check the dataset for those "
                    f"rows, then run again with --resume --in-doubt skip (they are there) or --in-doubt send "
                    f"(they are not)"
                )
            )
        arrived = [batches[i] for i in chosen]
        if arrived:
            self._arrived(_lines_of(arrived), sum(b.rows for b in arrived))

    def _arrived(self, lines: dict[str, list], rows: int) -> None:
        """Rows in doubt found to be in the dataset: skip them, and carry them as delivered."""
        for src, runs in lines.items():
            self.skip[src] = merge(list(self.skip.get(src, [])) + list(runs))
        self.delivery.run.journal.settled(self.delivery.ctx.target, lines, rows)

    # -- per chunk ---------------------------------------------------------------------------

    def remaining(self, wc: WireChunk, source: str) -> WireChunk:
        """The rows of `wc` still to send."""
        skip = within(wc.lines, self.skip.get(source, []))
        check_runs = self.check.get(source, [])
        if check_runs:
            doubt = within(wc.lines, check_runs) & ~skip
            if doubt.any():
                present = self._present(wc.keys.filter(pa.array(doubt)))
                found = doubt.copy()
                found[doubt] = present
                if found.any():
                    lines = wc.lines[found]
                    runs = merge((int(x), int(x)) for x in lines)
                    self.delivery.run.journal.settled(self.delivery.ctx.target, {source: runs}, int(found.sum()))
                self.checked += int(doubt.sum())
                self.found += int(found.sum())
                skip = skip | found
        if not skip.any():
            return wc
        self.skipped += int(skip.sum())
        keep = ~skip
        mask = pa.array(keep)
        return WireChunk(
            wc.table.filter(mask), wc.lines[keep], None if wc.keys is None else wc.keys.filter(mask), wc.rejected
        )

    def _present(self, keys: pa.Array) -> np.ndarray:
        """Which of `keys` the dataset holds (one query per few hundred keys)."""
        d = self.delivery
        key = d.mapping.key
        wanted = normalise(keys, key.type)
        found: list = []
        values = wanted.to_pylist()
        for start in range(0, len(values), KEYS_PER_QUERY):
            part = [v for v in values[start : start + KEYS_PER_QUERY] if v is not None]
            if not part:
                continue
            where = f"{key.field} in ({', '.join(_literal(v) for v in part)})"
            try:
                for table in reader.pages(
                    d.http,
                    d.dataset.id,
                    fields=[key.field],
                    types={key.field: key.type},
                    page_rows=KEYS_PER_QUERY,
                    select=key.field,
                    where=where,
                ):
                    found.extend(normalise(table.column(key.field), key.type).to_pylist())
            except SocrataError as exc:
                raise d.error(f"{d.head}: checking the rows in doubt: {exc}") from None
        if not found:
            return np.zeros(len(values), dtype=bool)
        return pc.is_in(wanted, value_set=pa.array(found, wanted.type)).to_numpy(zero_copy_only=False)

    def summary(self) -> dict:
        out = {"from_run": self.earlier.run_id, "arrived_before": self.earlier.arrived, "skipped": self.skipped}
        if self.checked:
            out["in_doubt_checked"] = self.checked
            out["in_doubt_found"] = self.found
        return out


def _literal(value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(int(value)) if float(value).is_integer() else repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _lines_of(batches) -> dict[str, list]:
    out: dict[str, list] = {}
    for b in batches:
        out.setdefault(b.source, []).extend(b.runs)
    return {src: merge(runs) for src, runs in out.items()}


def _unique_subset(sizes: list[int], total: int) -> list[int] | None:
    """The indexes of the one subset of `sizes` that adds up to `total`; None if none or several."""
    if total == 0:
        return []
    if total == sum(sizes):
        return list(range(len(sizes)))
    if total < 0 or len(sizes) > MAX_BATCHES_TO_SOLVE:
        return None
    found = None
    for k in range(1, len(sizes)):
        for combo in combinations(range(len(sizes)), k):
            if sum(sizes[i] for i in combo) == total:
                if found is not None:
                    return None
                found = list(combo)
    return found
