"""What a route's earlier runs left behind, found and dealt with before the next run starts.

Three things, all read from the delivery journals (pipeline/runs/journal.py):

- Interrupted runs: a journal with no end whose process is gone. Its history row, still `running`,
  becomes `interrupted`, with what each target delivered (see History.settle).
- Leftovers: temporary files and spools of such runs are removed; open revisions are handed to the
  delivery that can discard them (it holds the credentials). What was removed is logged.
- Unfinished appends: an append that stopped part way cannot simply run again (it would send the
  rows that arrived twice). `take_over` refuses, unless the run is `--resume` (carry over what
  arrived, send the rest) or `--force` (send everything again, knowingly).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pipeline.basics.errors import RunFailed
from pipeline.basics.lines import describe_sources
from pipeline.runs import journal as J

KEEP_JOURNALS = 20


class UnfinishedAppend(RunFailed):
    """An earlier run of this route stopped part way through an append; see the message."""


def dead_journals(state_dir: Path, route: str) -> list[J.RunLog]:
    """The route's journals whose runs are over (ended, or their process is gone), oldest first."""
    return [log for log in J.logs(state_dir, route) if not J.alive(log)]


def clean_leftovers(state_dir: Path, route: str, log: logging.Logger) -> dict[str, list]:
    """Remove temp files and spools of runs that are over; return their open revisions by target, each
    with the function that records, once the delivery has discarded it, that it is gone."""
    revisions: dict[str, list] = {}
    logs = dead_journals(state_dir, route)
    for run in logs:
        for hold in list(run.holds.values()):
            kind = hold.get("kind")
            if kind in ("tmp", "spool"):
                path = Path(hold.get("path", ""))
                try:
                    os.unlink(path)
                    log.info(
                        "removed %s left by interrupted run %s: %s",
                        "a temporary file" if kind == "tmp" else "a spool",
                        run.run_id,
                        path,
                    )
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("could not remove %s left by run %s: %s", path, run.run_id, exc.strerror)
                    continue
                _let(run, hold)
            elif kind == "revision":
                revisions.setdefault(hold.get("t") or "", []).append((hold, lambda run=run, hold=hold: _let(run, hold)))
    _prune(logs)
    return revisions


def _let(run: J.RunLog, hold: dict) -> None:
    J.add(run, {**hold, "e": "let"})


def _prune(logs: list[J.RunLog]) -> None:
    """Keep the newest journals; older ones that hold nothing and left nothing unfinished go."""
    for run in logs[:-KEEP_JOURNALS]:
        if not run.holds and not run.unfinished_appends:
            run.book.remove(run.route, run.run_id)


# -- unfinished appends ------------------------------------------------------------------------


def unfinished(plan, run) -> dict[str, J.TargetLog]:
    """Targets of this route that an earlier run left with an unfinished append (the newest of each)."""
    appending = {t.name for t in plan.targets if (t.delivery.options or {}).get("mode") == "append"}
    found: dict[str, J.TargetLog] = {}
    for log in dead_journals(run.state_dir, plan.name):
        for t in log.unfinished_appends:
            if t.name in appending:
                found[t.name] = t
    return found


def open_journal(plan, run, deliveries, started: float) -> J.Journal:
    """The run's delivery journal, opened once nothing stands in the way (an unfinished append
    refuses the run unless --resume or --force); with --resume, what earlier runs delivered."""
    pending = unfinished(plan, run)
    if pending and not (run.options.resume or run.options.force):
        raise UnfinishedAppend(refusal(plan, pending))
    journal = J.Journal(run.state_dir, plan.name, run.run_id, fingerprint=lambda label: fingerprint(run, label))
    run.journal = journal
    journal.begin(plan.name, started)
    for target, delivery in zip(plan.targets, deliveries):
        journal.target(
            target.name,
            target.delivery.name,
            (target.delivery.options or {}).get("mode"),
            bool(getattr(delivery, "atomic", True)),
        )
    run.resume = take_over(plan, run, journal, pending)
    return journal


def take_over(plan, run, journal, pending: dict[str, J.TargetLog]) -> dict[str, J.TargetLog]:
    """Before the run: refuse to append over an unfinished append (`pending`: unfinished(plan,
    run)), or take it over.

    Returns, per target, what the earlier run(s) delivered for the delivery to skip (--resume);
    the earlier journals are marked as resolved by this run."""
    if not pending:
        return {}
    options = run.options
    if not options.resume and not options.force:
        raise UnfinishedAppend(refusal(plan, pending))
    resume: dict[str, J.TargetLog] = {}
    for name, target in pending.items():
        if options.resume:
            changed = _changed_sources(plan, run, target)
            if changed:
                raise UnfinishedAppend(
                    f"{plan.doc.file}: target '{name}': --resume cannot tell which rows were sent: {changed} "
                    f"changed since run {target.run_id}. Check the dataset, then run with --force to send "
                    f"every row again, knowingly"
                )
            journal.carried(name, target)
            resume[name] = target
    for name, target in pending.items():
        J.resolve(_journal_of(run, plan, target), run.run_id)
        run.log.info(
            "target %s: %s the append left unfinished by run %s",
            name,
            "resuming" if options.resume else "--force: sending every row again after",
            target.run_id,
        )
    return resume


def refusal(plan, pending: dict[str, J.TargetLog]) -> str:
    """The message of a run refused because an append before it stopped part way."""
    parts = []
    for name, t in pending.items():
        arrived = t.arrived
        doubt = t.in_doubt_rows
        where = describe_sources(t.confirmed_lines())
        text = (
            f"target '{name}': run {t.run_id} stopped part way through its append to "
            f"{t.info.get('dataset_label') or t.info.get('dataset') or 'the dataset'}: {arrived:,} rows "
            f"arrived" + (f" ({where})" if where else "")
        )
        if doubt:
            doubtful = describe_sources(t.doubt_lines())
            text += f", {doubt:,} may or may not have arrived ({doubtful})"
        parts.append(text + ", the rest was not sent")
    return (
        f"{plan.doc.file}: " + ". ".join(parts) + ". Appending again would send those rows twice, so "
        "nothing was sent. Run the route with --resume to send only the rows that did not arrive (rows in "
        "doubt are checked against the dataset first), or with --force to send every row again, knowingly"
    )


def _journal_of(run, plan, target: J.TargetLog) -> J.RunLog:
    return J.read_run(J.book_for(run.state_dir), plan.name, target.run_id)


def _changed_sources(plan, run, target: J.TargetLog) -> str:
    """Which source file the resumed rows came from has changed since (empty: none)."""
    old = _journal_of(run, plan, target).sources
    for label in target.confirmed_lines():
        before = old.get(label)
        if before is None:
            continue
        now = fingerprint(run, label)
        if now != before:
            return f"the source {label}"
    return ""


def fingerprint(run, label: str) -> dict | None:
    """Size and modification time of a source file, to tell whether it changed between runs."""
    for candidate in (label, label.split("[", 1)[0]):
        try:
            st = run.resolve_path(candidate).stat()
        except (OSError, ValueError):
            continue
        if Path(run.resolve_path(candidate)).is_file():
            return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    return None
