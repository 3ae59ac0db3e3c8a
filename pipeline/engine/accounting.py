"""A run's accounting: the rejects limit, and what each target delivered when the run failed.

Counts add up: for every target, rows that arrived + rows in doubt + rows not sent (+ rows its
delivery rejected) = the rows the run would have sent it. Arrival comes from the delivery journal
for targets that deliver batch by batch; atomic targets deliver all or nothing.
"""

from __future__ import annotations

from pipeline.basics.errors import TooManyRejects


def check_rejects(plan, run, report, final: bool) -> None:
    """Raise TooManyRejects past on_error.max_rejects (a share is judged at the end, a count at once)."""
    limit = plan.max_rejects
    if limit is None:
        # No limit set: rejects are reported, but a run where every row was rejected is not a
        # success (a wrong delimiter or header would otherwise replace good data with nothing).
        count = run.rejects.count
        records = report.rows_read + plan.source.ctx.rejected  # the source's rejects too
        if final and count and count >= records:
            raise TooManyRejects(
                f"every row was rejected ({count} rows); nothing is delivered. See the reasons "
                f"{_where(run.rejects)}, or set on_error.max_rejects to allow it"
            )
        return
    count = run.rejects.count
    if isinstance(limit, float):
        if not final:
            return
        allowed = limit * max(report.rows_read, 1)
        what = f"{limit * 100:g}% of the {report.rows_read} rows read"
    else:
        allowed, what = limit, str(limit)
    if count > allowed:
        raise TooManyRejects(
            f"{count} rows were rejected, more than on_error.max_rejects allows ({what}); "
            f"nothing more is delivered. See the reasons {_where(run.rejects)}"
        )


def _where(rejects) -> str:
    """Where the reasons are: the rejects file, or (a dry run writes none) the rows shown below."""
    return f"in {rejects.path}" if rejects.to_file else "in the first rejected rows below"


def count_failure(plan, run, report, deliveries, failed_by: dict) -> None:
    """Per target: rows that arrived, that may have, and that were not sent, adding up to the rows
    the run would have sent; the failure messages get their true `Not sent` sentence."""
    counted_all = not run.cancelled.is_set()
    state = getattr(run.journal, "state", None)
    for target, delivery, stats in zip(plan.targets, deliveries, report.targets):
        logged = state.targets.get(target.name) if state is not None else None
        if logged is not None and not logged.atomic:
            stats.delivered = logged.arrived - logged.carried_rows
            stats.in_doubt = logged.in_doubt_rows
        elif stats.status != "delivered":
            stats.delivered, stats.in_doubt = (0, 0) if getattr(delivery, "atomic", True) else (stats.delivered, 0)
        rejected = target.delivery.ctx.rejected
        stats.not_sent = max(0, stats.to_send - stats.delivered - stats.in_doubt - rejected)
        if stats.status == "delivered":
            stats.not_sent = 0
        exc = failed_by.get(target.name)
        if exc is not None and (stats.delivered or stats.in_doubt):  # part went out: say what did not
            exc.count_not_sent(not_sent_sentence(stats.not_sent, counted_all, report.rows_read))


def not_sent_sentence(rows: int, counted_all: bool, read: int) -> str:
    if counted_all:
        return f"Not sent: {rows:,} {'row' if rows == 1 else 'rows'}."
    return (
        f"Not sent: {rows:,} of the {read:,} rows read before the run stopped, and every row after them "
        f"(the rest of the input was not read)."
    )
