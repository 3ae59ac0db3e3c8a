"""What a person sees: progress while a route runs, and the summary when it ends.

On a terminal, a rich progress bar with the phase, rows, rows/s and (when the source can say how
much there is) percent and time left, a line per target beneath; otherwise (logs, CI, cron) a plain
line at each phase and every few seconds. The summary is a table of rows read, rejected and
delivered per step and target, with each target's seconds and rows/s.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline.engine.report import RunReport

PLAIN_EVERY = 5.0
# Off a terminal a run quicker than this prints no progress at all: its summary says everything.
PLAIN_AFTER = 2.0
# Details a delivery reports for the history that mean nothing in a dry-run summary line.
_INTERNAL_DETAILS = {
    "dataset",
    "dataset_name",
    "mode",
    "domain",
    "dry_run",
    "request_ids",
    "batches",
    "revision",
    "job",
    "plan",
}
# Details the dry run's table has columns (or lines) for.
_COUNTED = {"create", "update", "delete", "reject", "stop", "would_create_dataset", "would_write", "rows"}


def _fmt(n: int | float) -> str:
    return f"{n:,}" if isinstance(n, int) else f"{n:,.0f}"


class ProgressView:
    """Progress on stderr: a live bar on a terminal, plain lines otherwise, nothing when quiet.

    The bar names the phase (reading, sending, committing), shows a total, percent and time left
    when the source can say how much there is (bytes of its files, or rows), rows/s while reading,
    and a line per target beneath it with the rows it was given. Off a terminal, one plain line
    when the phase changes and one every PLAIN_EVERY seconds, also while nothing is read (a
    revision being applied), so that a log under cron shows the run is alive. A run that ends within
    PLAIN_AFTER seconds (ROUTE_PROGRESS_AFTER overrides it) prints no plain lines: only its summary."""

    def __init__(self, stream=None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = (not quiet) and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._lock = threading.Lock()
        self._progress = None
        self._task = None
        self._targets: dict[str, object] = {}
        self._report: RunReport | None = None
        self._phase: tuple = ()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        try:
            self._after = float(os.environ.get("ROUTE_PROGRESS_AFTER", PLAIN_AFTER))
        except ValueError:
            self._after = PLAIN_AFTER

    def start(self, route: str) -> None:
        self._route = route
        self._t0 = time.time()
        if self.quiet:
            return
        if self.live:
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=None),
                TaskProgressColumn(),
                TextColumn("{task.fields[rows]}"),
                TextColumn("{task.fields[rate]}"),
                TextColumn("{task.fields[left]}"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(route, total=None, rows="", rate="", left="")
        else:
            self._ticker = threading.Thread(target=self._tick, name="route-progress", daemon=True)
            self._ticker.start()

    def __call__(self, report: RunReport) -> None:
        if self.quiet:
            return
        with self._lock:
            self._report = report
            if self._progress is not None:
                self._draw(report)
            else:
                phases = (report.phase, *(t.phase for t in report.targets))
                if phases != self._phase and time.time() - self._t0 >= self._after:
                    self._phase = phases  # the run, or a target, moved on: say so at once
                    self._line(report)

    def _draw(self, report: RunReport) -> None:
        elapsed = max(time.time() - self._t0, 1e-9)
        reading = report.phase in ("starting", "reading")
        rate = report.records_read / elapsed if reading else report.read_rate
        total = report.source_total if reading else None
        fields = {
            "rows": f"{_fmt(report.records_read)} rows",
            "rate": f"{_fmt(rate)} rows/s",
            "left": _time_left(report, elapsed) if reading else "",
        }
        self._progress.update(
            self._task,
            description=f"{self._route}: {report.phase}",
            total=total,
            completed=report.source_done if total else report.records_read,
            **fields,
        )
        for t in report.targets:
            task = self._targets.get(t.name)
            if task is None:
                task = self._targets[t.name] = self._progress.add_task(
                    f"  {t.name}", total=None, rows="", rate="", left=""
                )
            self._progress.update(
                task,
                description=f"  {t.name}: {t.phase or 'waiting'}",
                completed=t.to_send,
                rows=f"{_fmt(t.to_send)} rows",
                rate=f"{_fmt(t.rate)} rows/s" if t.seconds else "",
            )

    def _line(self, report: RunReport) -> None:
        elapsed = max(time.time() - self._t0, 1e-9)
        reading = report.phase in ("starting", "reading")
        rate = report.records_read / elapsed if reading else report.read_rate
        done = ""
        if reading and report.source_total:
            done = f", {100 * report.source_done / report.source_total:.0f}% of the source"
            left = _time_left(report, elapsed)
            done += f", {left}" if left else ""
        targets = "; ".join(f"{t.name} {t.phase or 'waiting'} ({t.to_send:,} rows)" for t in report.targets)
        print(
            f"{self._route}: {report.phase}: {report.records_read:,} rows read ({rate:,.0f} rows/s{done})"
            + (f"; {targets}" if targets else "")
            + f" [{elapsed:.0f} s]",
            file=self.stream,
            flush=True,
        )

    def _tick(self) -> None:
        wait = self._after
        while not self._stop.wait(wait):
            wait = PLAIN_EVERY
            with self._lock:
                if self._report is not None:
                    self._phase = (self._report.phase, *(t.phase for t in self._report.targets))
                    self._line(self._report)

    def stop(self) -> None:
        self._stop.set()
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _time_left(report: RunReport, elapsed: float) -> str:
    """`about 1 min 20 s left`, from the share of the source read so far; '' when it cannot say."""
    if not report.source_total or report.source_done <= 0 or elapsed < 1:
        return ""
    left = elapsed * (report.source_total - report.source_done) / report.source_done
    minutes, seconds = divmod(int(left), 60)
    return f"about {minutes} min {seconds} s left" if minutes else f"about {seconds} s left"


def summary(report: RunReport, console: Console) -> None:
    """The end-of-run table: per step and per target, then where the rejects are.

    A dry run shows its plan instead of the targets' deliveries: what each target would create,
    update, delete and reject, the columns of a dataset it would create, and its first rejects."""
    status = {
        "success": "[green]success[/]",
        "dry-run": "[cyan]dry run[/]",
        "failed": "[red]FAILED[/]",
        "partial": "[red]PARTIAL: only part was delivered[/]",
        "cancelled": "[yellow]cancelled (Ctrl+C)[/]",
    }.get(report.status, report.status)
    read = report.records_read
    console.print(
        f"route [bold]{escape(report.route)}[/] run {report.run_id}: {status} in {report.seconds:.2f} s "
        f"({_fmt(read)} rows read at {report.read_rate:,.0f} rows/s)"
    )
    steps = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for col in ("stage", "step", "line", "target", "in", "out", "rejected", "dropped", "seconds"):
        steps.add_column(
            col, justify="right" if col in ("line", "in", "out", "rejected", "dropped", "seconds") else "left"
        )
    for s in report.steps:
        steps.add_row(
            s.stage,
            escape(s.step),
            str(s.line),
            escape(s.target or ""),
            _fmt(s.rows_in),
            _fmt(s.rows_out),
            _fmt(s.rejected),
            _fmt(s.dropped),
            f"{s.seconds:.2f}",
        )
    console.print(steps)
    picked = report.source_details.get("picked")
    if picked:
        matched = report.source_details.get("matched")
        console.print(f"source: read {escape(str(picked))}" + (f", picked from {matched} files" if matched else ""))
    if report.dry_run:
        dry_run_plan(report, console)
    else:
        _targets(report, console)
    if report.rows_unrouted:
        where = f" (written to {report.unrouted_file})" if report.unrouted_file else ""
        console.print(
            f"{_fmt(report.rows_unrouted)} {'row' if report.rows_unrouted == 1 else 'rows'} matched no target{where}"
        )
    rejects(report, console)
    if report.dry_run:
        console.print(
            "[cyan]Dry run:[/] nothing was delivered, and nothing written but the run's line in "
            "`route history` (no data, rejects, log or report file)."
        )
    if report.error:  # on stderr, like every other error, so that `2>` and cron mail catch it
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/] {escape(report.error)}")


def _targets(report: RunReport, console: Console) -> None:
    failed = report.status in ("failed", "partial", "cancelled")
    counts = (
        ["routed", "delivered"]
        + (["in doubt", "not sent"] if failed else [])
        + ["created", "updated", "deleted", "rejected"]
    )
    targets = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    timing = ["seconds", "rows/s"]
    for col in ["target", "delivery", *counts, *timing, "status", "where"]:
        targets.add_column(col, justify="right" if col in counts or col in timing else "left")
    for t in report.targets:
        numbers = (
            [t.routed, t.delivered]
            + ([t.in_doubt, t.not_sent] if failed else [])
            + [t.created, t.updated, t.deleted, t.rejected]
        )
        targets.add_row(
            escape(t.name),
            escape(t.kind),
            *map(_fmt, numbers),
            f"{t.seconds:.2f}",
            _fmt(t.rate),
            t.status,
            escape(t.location),
        )
    console.print(targets)
    for t in report.targets:
        for note in target_notes(t.details):
            console.print(f"{escape(t.name)}: {escape(note)}")
    if failed:
        console.print(escape(outcome_line(report)))


def target_notes(details: dict) -> list[str]:
    """What a target did beyond its counts: the rows a sync left as they were, the metadata it changed."""
    notes = []
    if details.get("unchanged"):
        notes.append(f"{_fmt(details['unchanged'])} rows unchanged, not sent")
    if details.get("bytes_sent"):
        notes.append(f"{details['bytes_sent'] / 1e6:,.1f} MB sent")
    metadata = details.get("metadata") or {}
    if metadata.get("applied") and metadata.get("changes"):
        notes.append("metadata updated: " + ", ".join(str(c.get("what")) for c in metadata["changes"]))
    return notes


def rejects(report: RunReport, console: Console, run: str = "a dry run") -> None:
    """How many rows were rejected, and where they are: the rejects file, or (when `run`, a dry
    run or a preview, writes none) the first few, with why."""
    if not report.rows_rejected:
        return
    count = f"{_fmt(report.rows_rejected)} {'row' if report.rows_rejected == 1 else 'rows'} rejected"
    if report.rejects_file:
        console.print(f"[yellow]{count}[/]: see {escape(report.rejects_file)}")
        return
    first = report.first_rejects
    if not first:
        console.print(f"[yellow]{count}[/]")
        return
    shown = "" if len(first) == report.rows_rejected else f"; the first {len(first)}"
    console.print(f"[yellow]{count}[/] ({run} writes no rejects file){shown}:")
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for col in ("line", "source", "step", "target", "column", "value", "reason"):
        table.add_column(col, justify="right" if col == "line" else "left")
    for r in first:
        table.add_row(
            *(escape(str(r.get(k, ""))) for k in ("line", "source", "step", "target", "column", "value", "reason"))
        )
    console.print(table)


def dry_run_plan(report: RunReport, console: Console) -> None:
    """What each target would do, as a table; then the datasets a target would create, column by
    column, and the replaces that would stop."""
    console.print("[bold]What each target would do[/] (nothing was delivered):")
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    numbers = ("rows", "create", "update", "delete", "reject")
    for col in ("target", "delivery", *numbers, "would"):
        table.add_column(col, justify="right" if col in numbers else "left")
    for t in report.targets:
        d = t.details
        counts = [_fmt(d[k]) if isinstance(d.get(k), int) else "-" for k in ("create", "update", "delete")]
        would = "failed: see the error below" if t.error else would_do(d, t.location)
        table.add_row(escape(t.name), escape(t.kind), _fmt(t.to_send), *counts, _fmt(t.rejected), escape(would))
    console.print(table)
    for t in report.targets:
        new = t.details.get("would_create_dataset")
        if isinstance(new, dict):
            key = new.get("row_identifier")
            console.print(
                escape(
                    f'{t.name} would create the dataset "{new.get("name")}"'
                    + (f", row identifier {key}" if key else ", no row identifier")
                    + ":"
                )
            )
            columns = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
            columns.add_column("column")
            columns.add_column("type")
            for name, kind in (new.get("columns") or {}).items():
                columns.add_row(escape(str(name)), escape(str(kind)))
            console.print(columns)
        if t.details.get("stop"):
            console.print(f"[yellow]{escape(t.name)}: {escape(str(t.details['stop']))}[/]")


def would_do(details: dict, location: str) -> str:
    """A dry run's plan for one target in words, from the details its delivery reported."""
    if "would_write" in details:
        rows = details["would_write"]
        return f"write {_fmt(rows)} {'row' if rows == 1 else 'rows'} to {location}"
    if isinstance(details.get("plan"), str):
        return details["plan"]
    if "mode" in details and "dataset" in details:
        from pipeline.socrata.dryrun import describe

        return describe(details)
    shown = {k: v for k, v in details.items() if k not in _INTERNAL_DETAILS and k not in _COUNTED}
    return ", ".join(f"{k.replace('_', ' ')} {_value(v)}" for k, v in shown.items())


def _value(value) -> str:
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, default=str)
    return _fmt(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def outcome_line(report: RunReport) -> str:
    """Which targets of a failed run were committed and which were left as they were."""

    def names(found):
        return ", ".join(t.name for t in found) if found else "none"

    committed = [t for t in report.targets if t.status == "delivered"]
    untouched = [
        t
        for t in report.targets
        if t.status == "untouched" or (t.status in ("failed", "aborted", "pending") and not (t.delivered or t.in_doubt))
    ]
    parts = [f"Committed: {names(committed)}.", f"Left untouched: {names(untouched)}."]
    stopped = [t for t in report.targets if t.status in ("failed", "aborted") and (t.delivered or t.in_doubt)]
    if stopped:
        parts.append(
            "Stopped part way: "
            + ", ".join(
                f"{t.name} ({t.delivered:,} rows arrived" + (f", {t.in_doubt:,} in doubt" if t.in_doubt else "") + ")"
                for t in stopped
            )
            + "."
        )
    return " ".join(parts)
