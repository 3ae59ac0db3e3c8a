"""The message of a delivery that stopped part way: what arrived, what may have, what was not sent.

A publisher reading it must know what to do next without opening the dataset: whether running the
route again is safe (upserts and deletes are), and for appends exactly which source lines may or
may not be in the dataset now.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.basics import lines as L
from pipeline.basics.errors import DeliveryFailed
from pipeline.socrata.errors import OutcomeUnknown

if TYPE_CHECKING:
    from pipeline.socrata.soda import BatchSender


def _rows(batches) -> int:
    return sum(b.rows for b in batches)


def _spill(runs, path) -> str:
    """The whole list of uncertain lines in a file when the message can only show the first ranges."""
    if path is None or len(runs) <= L.MAX_RANGES:
        return ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{a}-{b}\n" if a != b else f"{a}\n" for a, b in runs), encoding="utf-8")
    return f" Every one of those lines is listed in {path}."


def failure(sender: BatchSender, *, head: str, mode: str, repeatable: bool, mask, spill=None) -> DeliveryFailed:
    """DeliveryFailed for a sender that has failures (after draining it).

    It says what arrived and what may have; the executor adds what was not sent once it has
    counted every row the run would have sent (rows never read included)."""
    real = sender.real_failures()
    delivered_batches = [o.batch for o in sender.outcomes]
    delivered = _rows(delivered_batches)
    uncertain = [b for b, e in real if isinstance(e, OutcomeUnknown)]
    failed = [b for b, e in real if not isinstance(e, OutcomeUnknown)]
    first = real[0][1] if real else None
    opening = f"{head}: {first}" if first else f"{head}: stopped"
    parts = [opening if opening.endswith((".", "!", "?")) else opening + "."]  # sentences follow
    source = next((b.source for b in delivered_batches + uncertain + failed if b.source), "")
    if delivered:
        parts.append(
            f"Arrived for certain: {delivered:,} rows "
            f"({L.describe_runs(L.merge_runs(b.runs for b in delivered_batches), source)})."
        )
    else:
        parts.append("No rows arrived.")
    if uncertain:
        runs = L.merge_runs(b.runs for b in uncertain)
        advice = (
            "an append cannot be repeated safely: sending them again could duplicate them, so check "
            "the dataset for them first"
            if not repeatable
            else "sending them again is safe"
        )
        parts.append(
            f"May or may not have arrived: {_rows(uncertain):,} rows "
            f"({L.describe_runs(runs, source)}); {advice}.{_spill(runs, spill)}"
        )
    if repeatable:
        advice = f"Mode {mode} is safe to repeat: run the route again once the cause is fixed."
    else:
        advice = (
            "Once the cause is fixed, run the route again with --resume to send only the rows that did "
            "not arrive (rows in doubt are checked first)."
        )
    return DeliveryFailed(mask(" ".join(parts)), delivered=delivered, uncertain=_rows(uncertain), advice=mask(advice))


def row_errors(outcomes, *, head: str, delivered: int, mask) -> DeliveryFailed | None:
    """DeliveryFailed naming the rows the portal refused one by one (Errors > 0), if any."""
    bad = [o for o in outcomes if o.error_count]
    if not bad:
        return None
    total = sum(o.error_count for o in bad)
    known = [(line, msg) for o in bad for line, msg in o.errors if line is not None]
    parts = [f"{head}: the portal refused {total:,} row(s) one by one."]
    if known:
        shown = "; ".join(f"line {line}: {msg}" for line, msg in known[:10])
        more = f"; and {len(known) - 10} more" if len(known) > 10 else ""
        parts.append(f"{shown}{more}.")
    unknown = [o for o in bad if any(line is None for line, _ in o.errors)]
    for o in unknown[:10]:
        parts.append(f"{o.error_count} refused among {o.batch.describe()} (request {o.request_id}).")
    parts.append(f"The other {delivered - total:,} rows arrived.")
    return DeliveryFailed(mask(" ".join(parts)), delivered=max(0, delivered - total), uncertain=0)
