"""One log file per run, `<state>/logs/<route>-<run id>.log`, plain or JSON lines, secrets masked.

The run's JSON report (pipeline/ops/afterrun.py) goes beside it, `<route>-<run id>.json`: a run's
record is in one folder, and the report is kept and pruned with its log.

Each run gets its own logger (a child of `route`, not kept in logging's registry, so a scheduler
running thousands of routes does not keep them all), handed to components as `ctx.log`. A filter
on it masks every known secret of the run in messages, tracebacks and structured fields, for every
handler the records reach. Older log files (and reports) of a route are removed beyond `logs.keep`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.state.place import artifacts_folder

DEFAULT_KEEP = 100
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def log_path(state_dir: Path, route: str, run_id: str) -> Path:
    """Where a run's log file goes (in a database state, the artifacts folder: state/place.py)."""
    return artifacts_folder(state_dir) / "logs" / f"{route}-{run_id}.log"


def report_path(state_dir: Path, route: str, run_id: str) -> Path:
    """Where a run's JSON report goes: beside its log file, same name."""
    return log_path(state_dir, route, run_id).with_suffix(".json")


class MaskSecrets(logging.Filter):
    """Replaces the run's secrets by *** in everything a record carries."""

    def __init__(self, mask: Callable[[str], str]):
        super().__init__()
        self.mask = mask

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.mask(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
            record.exc_info = None  # the text is what gets written, masked
        fields = getattr(record, "fields", None)
        if fields:
            record.fields = _masked(fields, self.mask)
        return True


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, route, run, message, plus the record's `fields`."""

    def __init__(self, route: str, run_id: str):
        super().__init__()
        self.route, self.run_id = route, run_id

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "route": self.route,
            "run_id": self.run_id,
            "message": record.getMessage(),
        }
        out.update(getattr(record, "fields", None) or {})
        if record.exc_text:
            out["traceback"] = record.exc_text
        return json.dumps(out, default=str, ensure_ascii=False)


class Plain(logging.Formatter):
    """`time LEVEL message key=value ...`, for people reading the file."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)-7s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items() if v not in (None, "", [], {}))
        return text


class RunLog:
    """The log file of one run; `logger` is what the run's components log to.

    `to_file=False` (a dry run, which writes nothing) keeps the logger and its echo of warnings on
    the terminal, with no file: `path` is None."""

    def __init__(
        self,
        state_dir: Path,
        route: str,
        run_id: str,
        mask: Callable[[str], str],
        fmt: str = "plain",
        level: str = "info",
        keep: int = DEFAULT_KEEP,
        to_file: bool = True,
    ):
        self.path: Path | None = log_path(state_dir, route, run_id) if to_file else None
        self.logger = logging.Logger(f"route.run.{route}", LEVELS.get(level, logging.INFO))
        self.logger.parent = logging.getLogger("route")
        self.logger.addFilter(MaskSecrets(mask))
        if self.path is None:
            # records stop here rather than reach logging's last resort, which would print them
            self.handler: logging.Handler = logging.NullHandler()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handler = logging.FileHandler(self.path, mode="a", encoding="utf-8")
            self.handler.setFormatter(JsonLines(route, run_id) if fmt == "json" else Plain())
            self.handler.addFilter(MaskSecrets(mask))
        self.logger.addHandler(self.handler)
        self._mask = mask
        self._extra_handlers: list[logging.Handler] = []
        if self.path is not None:
            _prune(self.path.parent, route, keep)

    def echo_warnings(self, stream=None) -> None:
        """Show warnings on the terminal too: a hint such as `set delimiter: ';'` must be seen."""
        import sys

        echo = logging.StreamHandler(stream or sys.stderr)
        echo.setLevel(logging.WARNING)
        echo.setFormatter(logging.Formatter("%(levelname)s: %(message)s".replace("%(levelname)s", "warning")))
        echo.addFilter(MaskSecrets(self._mask))
        self.logger.addHandler(echo)
        self._extra_handlers.append(echo)

    def stop_echo(self) -> None:
        """The run is over: its summary speaks for it on the terminal from here."""
        for handler in self._extra_handlers:
            self.logger.removeHandler(handler)
            handler.flush()
        self._extra_handlers.clear()

    def info(self, message: str, **fields) -> None:
        self.logger.info(message, extra={"fields": fields} if fields else None)

    def close(self) -> None:
        for handler in [self.handler, *self._extra_handlers]:
            self.logger.removeHandler(handler)
            handler.close() if handler is self.handler else handler.flush()


def _prune(folder: Path, route: str, keep: int) -> None:
    """Keep the newest `keep` log files of `route`, and their reports.

    Run ids sort by the second they started in; runs of the same second by when their log was
    last written, so the log of the run starting now, the newest, is never the one removed."""
    own = re.compile(re.escape(route) + r"-(\d{8}T\d{6})-[0-9a-f]+\.log")

    def age(path: Path) -> tuple:
        try:
            written = path.stat().st_mtime_ns
        except OSError:  # removed meanwhile, by another run pruning
            written = 0
        return (own.fullmatch(path.name).group(1), written)

    files = sorted((p for p in folder.glob(f"{route}-*.log") if own.fullmatch(p.name)), key=age)
    for old in files[:-keep] if keep and len(files) > keep else []:
        for path in (old, old.with_suffix(".json")):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass


def _masked(value: Any, mask: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: _masked(v, mask) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(v, mask) for v in value]
    return value
