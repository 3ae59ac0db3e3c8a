"""The delivery journal: what each target of a run sent, and what the server confirmed.

A run writes `<state>/journals/<route>/<run_id>.jsonl`, one JSON object a line, flushed and fsynced
before the run goes on (in a database state, rows of a table, committed: pipeline/state/journals.py), so that a process killed at any instant leaves a journal that tells exactly
what arrived:

    {"e": "run", ...}                         who ran it (pid, host) and when
    {"e": "target", "t": NAME, ...}           a target: its delivery, mode, and whether it is atomic
    {"e": "source", "src": LABEL, "fp": ...}  a source file as it was read (size, modification time)
    {"e": "carried", "t": NAME, ...}          rows an interrupted run before this one already delivered
    {"e": "sent", "t": NAME, "b": SEQ, ...}   a batch is about to go out: its source lines and rows
    {"e": "ok" | "refused", "t": NAME, "b": SEQ}   the server confirmed it / certainly refused it
    {"e": "hold" | "let", "t": NAME, ...}     something to clean up should the run die (a temp file,
                                              a spool, an open revision), and its release
    {"e": "committed", "t": NAME, "rows": N}  the target's output is in place
    {"e": "end", "status": STATUS}            the run ended (a journal without it was interrupted)
    {"e": "resolved", "by": RUN_ID}           a later run took over what this one left unfinished

A batch that was sent but neither confirmed nor refused is *in doubt*: it may or may not have
arrived. Atomic targets (files, SQL tables, a replace through a revision) deliver all or nothing,
so for them only `committed` counts.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from pipeline.basics.lines import merge
from pipeline.runs.journal_book import FolderBook, book_for

Runs = list[tuple[int, int]]


class Journal:
    """The journal a running run writes; every record reaches the disk before `write` returns."""

    def __init__(self, state_dir: Path, route: str, run_id: str, fingerprint=lambda label: None):
        self.book = book_for(state_dir)
        self.book.start(route, run_id)
        self.route = route
        self._fd = None
        if isinstance(self.book, FolderBook):
            self.path = self.book.path(route, run_id)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._open = True
        self._lock = threading.Lock()
        self.run_id = run_id
        self.fingerprint = fingerprint  # label -> size and modification time of a source file
        self.state = RunLog(getattr(self, "path", None), run_id=run_id, route=route, book=self.book)

    def write(self, record: dict, sync: bool = True) -> None:
        data = orjson.dumps(record) + b"\n"
        with self._lock:
            if not self._open:
                return
            if self._fd is not None:
                os.write(self._fd, data)
                if sync:
                    os.fsync(self._fd)
            else:
                self.book.append(self.route, self.run_id, data)
            _apply(self.state, record)

    # -- the records -------------------------------------------------------------------------

    def begin(self, route: str, started: float) -> None:
        self.write(
            {
                "e": "run",
                "route": route,
                "run_id": self.run_id,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": started,
            }
        )

    def target(self, name: str, delivery: str, mode: str | None, atomic: bool, **info) -> None:
        self.write({"e": "target", "t": name, "delivery": delivery, "mode": mode, "atomic": atomic, **info})

    def source(self, label: str) -> None:
        self.write({"e": "source", "src": label, "fp": self.fingerprint(label)})

    def carried(self, name: str, previous: TargetLog) -> None:
        self.write(
            {
                "e": "carried",
                "t": name,
                "from": previous.run_id,
                "rows": previous.arrived,
                "lines": {src: runs for src, runs in previous.confirmed_lines().items()},
                "baseline": previous.baseline,
            }
        )

    def info(self, name: str, **info) -> None:
        """More about a target, learnt once it is open (the dataset, its row count before the run)."""
        self.write({"e": "info", "t": name, **info})

    def settled(self, name: str, lines: dict[str, Runs], rows: int) -> None:
        """Rows an earlier run left in doubt, found to have arrived: they count as carried over."""
        self.write({"e": "carried+", "t": name, "lines": lines, "rows": rows})

    def sent(self, name: str, seq: int, source: str, runs: Runs, rows: int) -> None:
        self.write({"e": "sent", "t": name, "b": seq, "src": source, "runs": runs, "rows": rows})

    def confirmed(self, name: str, seq: int) -> None:
        self.write({"e": "ok", "t": name, "b": seq})

    def refused(self, name: str, seq: int) -> None:
        self.write({"e": "refused", "t": name, "b": seq})

    def hold(self, name: str | None, kind: str, **what) -> None:
        self.write({"e": "hold", "t": name, "kind": kind, **what})

    def let(self, name: str | None, kind: str, **what) -> None:
        self.write({"e": "let", "t": name, "kind": kind, **what}, sync=False)

    def committed(self, name: str, rows: int) -> None:
        self.write({"e": "committed", "t": name, "rows": rows})

    def end(self, status: str) -> None:
        self.write({"e": "end", "status": status, "ended": time.time()})

    def close(self) -> None:
        with self._lock:
            self._open = False
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def add(log: RunLog, record: dict) -> None:
    """Add a record to a journal another run wrote (it is over): a hold let go, a take-over."""
    log.book.append(log.route, log.run_id, orjson.dumps(record) + b"\n")


def resolve(log: RunLog, by: str) -> None:
    """Mark an older journal as taken over by run `by` (its unfinished appends are handled there)."""
    add(log, {"e": "resolved", "by": by})


# -- reading ----------------------------------------------------------------------------------


@dataclass
class BatchLog:
    seq: int
    source: str
    runs: Runs
    rows: int
    state: str = "sent"  # sent (in doubt), ok, refused


@dataclass
class TargetLog:
    """One target of a journaled run: what arrived, what is in doubt."""

    name: str
    run_id: str
    delivery: str = ""
    mode: str | None = None
    atomic: bool = True
    info: dict = field(default_factory=dict)
    carried_rows: int = 0
    carried_lines: dict[str, Runs] = field(default_factory=dict)
    carried_baseline: int | None = None
    committed: bool = False
    committed_rows: int = 0
    _batches: dict[int, BatchLog] = field(default_factory=dict, repr=False)
    _log: RunLog | None = field(default=None, repr=False, compare=False)  # whose deferred records hold them

    @property
    def batches(self) -> dict[int, BatchLog]:
        """The batches sent, by sequence number, with what became of each."""
        if self._log is not None and self._log.deferred:
            _settle_batches(self._log)
        return self._batches

    @property
    def baseline(self) -> int | None:
        """The dataset's row count before the first run of a chain of resumed runs sent anything."""
        return self.carried_baseline if self.carried_baseline is not None else self.info.get("rows_before")

    @property
    def arrived(self) -> int:
        if self.atomic:
            return self.committed_rows if self.committed else 0
        return self.carried_rows + sum(b.rows for b in self.batches.values() if b.state == "ok")

    @property
    def in_doubt(self) -> list[BatchLog]:
        if self.atomic:
            return []
        return [b for b in self.batches.values() if b.state == "sent"]

    @property
    def in_doubt_rows(self) -> int:
        return sum(b.rows for b in self.in_doubt)

    @property
    def unfinished_append(self) -> bool:
        """An append that stopped part way: running it again as it is would send rows twice."""
        return (
            self.mode == "append"
            and not self.atomic
            and not self.committed
            and (self.arrived > 0 or bool(self.in_doubt))
        )

    def confirmed_lines(self) -> dict[str, Runs]:
        """Source lines that certainly arrived, by source, as merged runs."""
        groups: dict[str, list] = {src: list(runs) for src, runs in self.carried_lines.items()}
        for b in self.batches.values():
            if b.state == "ok":
                groups.setdefault(b.source, []).extend(b.runs)
        return {src: merge(runs) for src, runs in groups.items()}

    def doubt_lines(self) -> dict[str, Runs]:
        groups: dict[str, list] = {}
        for b in self.in_doubt:
            groups.setdefault(b.source, []).extend(b.runs)
        return {src: merge(runs) for src, runs in groups.items()}


@dataclass
class RunLog:
    """A journal read back."""

    path: Path | None
    run_id: str = ""
    route: str = ""
    pid: int | None = None
    host: str = ""
    started: float | None = None
    ended: bool = False
    status: str | None = None
    resolved_by: str | None = None
    targets: dict[str, TargetLog] = field(default_factory=dict)
    sources: dict[str, dict | None] = field(default_factory=dict)
    holds: dict[tuple, dict] = field(default_factory=dict)  # not yet let go
    book: object = None  # where it is kept (FolderBook or a database's), to add to it or remove it
    # A journal read back keeps its batch records as they were read, decoded only when a target's
    # batches are asked for: most reads (the journals an earlier run left) never ask, and a big run
    # writes two records a batch (a 10M-row run, megabytes of them).
    deferred: list = field(default_factory=list, repr=False)

    @property
    def unfinished_appends(self) -> list[TargetLog]:
        if self.resolved_by:
            return []
        return [t for t in self.targets.values() if t.unfinished_append]


def read(path: Path) -> RunLog:
    """Read a journal file; a last line cut short by a kill is ignored."""
    path = Path(path)
    book = FolderBook(path.parent.parent.parent)
    return _parse(
        RunLog(path, run_id=path.stem, route=path.parent.name, book=book), book.read(path.parent.name, path.stem)
    )


def read_run(book, route: str, run_id: str) -> RunLog:
    """Read one run's journal from where its state keeps it."""
    path = book.path(route, run_id) if isinstance(book, FolderBook) else None
    return _parse(RunLog(path, run_id=run_id, route=route, book=book), book.read(route, run_id))


def logs(state_dir, route: str) -> list[RunLog]:
    """A route's journals read back, oldest first."""
    book = book_for(state_dir)
    return [read_run(book, route, run_id) for run_id in book.names(route)]


_BATCH_EVENTS = ("sent", "ok", "refused")
_BATCH_LINES = tuple(b'{"e":"%s"' % e.encode() for e in _BATCH_EVENTS)  # as Journal.write spells them


def _parse(log: RunLog, data: bytes) -> RunLog:
    for line in data.splitlines():
        if line.startswith(_BATCH_LINES):
            log.deferred.append(line)
            continue
        try:
            r = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(r, dict):
            if r.get("e") in _BATCH_EVENTS:
                log.deferred.append(r)  # in file order with the lines deferred above
            else:
                _apply(log, r)
    return log


def _settle_batches(log: RunLog) -> None:
    """Apply the batch records `_parse` deferred, in the order they were written."""
    pending, log.deferred = log.deferred, []
    for item in pending:
        if isinstance(item, bytes):
            try:
                item = orjson.loads(item)
            except orjson.JSONDecodeError:  # a last line cut short by a kill
                continue
        if isinstance(item, dict):
            _apply_batch(item, log.targets.get(item.get("t")))


def _apply(log: RunLog, r: dict) -> None:
    e = r.get("e")
    t = log.targets.get(r.get("t")) if "t" in r else None
    if e == "run":
        log.route, log.pid, log.host, log.started = (
            r.get("route", ""),
            r.get("pid"),
            r.get("host", ""),
            r.get("started"),
        )
    elif e == "target":
        info = {k: v for k, v in r.items() if k not in ("e", "t", "delivery", "mode", "atomic")}
        log.targets[r["t"]] = TargetLog(
            r["t"], log.run_id, r.get("delivery", ""), r.get("mode"), bool(r.get("atomic", True)), info, _log=log
        )
    elif e == "source":
        log.sources[r.get("src", "")] = r.get("fp")
    elif e == "carried" and t is not None:
        t.carried_rows = int(r.get("rows") or 0)
        t.carried_lines = {src: [tuple(x) for x in runs] for src, runs in (r.get("lines") or {}).items()}
        t.carried_baseline = r.get("baseline")
    elif e == "carried+" and t is not None:
        t.carried_rows += int(r.get("rows") or 0)
        for src, runs in (r.get("lines") or {}).items():
            t.carried_lines[src] = merge(list(t.carried_lines.get(src, [])) + [tuple(x) for x in runs])
    elif e == "info" and t is not None:
        t.info.update({k: v for k, v in r.items() if k not in ("e", "t")})
    elif e in _BATCH_EVENTS:
        _apply_batch(r, t)
    elif e == "committed" and t is not None:
        t.committed, t.committed_rows = True, int(r.get("rows") or 0)
    elif e == "hold":
        log.holds[_hold_key(r)] = r
    elif e == "let":
        log.holds.pop(_hold_key(r), None)
    elif e == "end":
        log.ended, log.status = True, r.get("status")
    elif e == "resolved":
        log.resolved_by = r.get("by")


def _apply_batch(r: dict, t: TargetLog | None) -> None:
    if t is None:
        return
    e = r.get("e")
    if e == "sent":
        runs = [tuple(x) for x in r.get("runs") or []]
        t._batches[r["b"]] = BatchLog(r["b"], r.get("src", ""), runs, int(r.get("rows") or 0))
    elif r.get("b") in t._batches:
        t._batches[r["b"]].state = e


def _hold_key(r: dict) -> tuple:
    return (r.get("t"), r.get("kind"), r.get("path") or r.get("id"))


def alive(log: RunLog) -> bool:
    """Is the run that wrote this journal still going? In a database state, does it hold its lease;
    in a folder, is its process still running (on this machine)?"""
    if log.ended:
        return False
    held = log.book.running(log.route, log.run_id) if log.book is not None else None
    if held is not None:
        return held
    if log.pid is None:
        return False
    if log.host and log.host != socket.gethostname():
        return True  # another machine's run: not ours to judge
    return pid_alive(log.pid)


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
