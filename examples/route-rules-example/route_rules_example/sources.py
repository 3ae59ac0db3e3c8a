"""Example source: fixed-width text files, as mainframes and older agency systems export them.

Written against the public API alone (pipeline.api): the Source base class, the TEXT column type,
RunFailed for a read that cannot go on, and ctx.reject for a record that is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from pipeline.api import TEXT, RunFailed, Source, StepContext, source


@source(
    {
        "type": "object",
        "required": ["path", "fields"],
        "additionalProperties": False,
        "properties": {
            "path": {"type": "string", "description": "The file, relative to the route file."},
            "fields": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"type": "integer", "minimum": 1},
                "description": "Each column's name and width in characters, in the order of the line.",
            },
            "encoding": {"type": "string", "default": "utf-8"},
            "skip_rows": {
                "type": "integer",
                "minimum": 0,
                "default": 0,
                "description": "Lines before the data (a title, a ruler).",
            },
        },
    }
)
class FixedWidthSource(Source):
    """Read a fixed-width text file: each column is a run of characters of a set width.

    Values are text with the padding spaces trimmed; an all-space field is null. Blank lines are
    skipped; a line longer than the fields together is rejected (its end would be lost). The index
    of every chunk is the line number in the file.

    Example:

        source:
          fixed_width:
            path: data/towns.txt
            fields: {code: 3, town: 16, population: 8}
    """

    def __init__(self, options: dict, ctx: StepContext):
        super().__init__(options, ctx)
        self.path = ctx.resolve_path(options["path"])
        self.fields = dict(options["fields"])
        self.width = sum(self.fields.values())
        self.file = None

    def columns(self) -> list[str]:
        return list(self.fields)

    def chunks(self) -> Iterator[pd.DataFrame]:
        try:
            self.file = open(self.path, encoding=self.options.get("encoding", "utf-8"), newline="")
        except OSError as exc:
            raise RunFailed(f"{self.path}: {exc.strerror}; the path is relative to the route file") from None
        return self.read(self.file)

    def read(self, file) -> Iterator[pd.DataFrame]:
        skip, size = self.options.get("skip_rows", 0), max(1, self.ctx.run.chunk_rows)
        lines: list[str] = []
        numbers: list[int] = []
        yielded = False
        for number, line in enumerate(file, start=1):
            line = line.rstrip("\r\n")
            if number <= skip or not line.strip():
                continue
            lines.append(line)
            numbers.append(number)
            if len(lines) == size:
                yield self.frame(lines, numbers)
                lines, numbers, yielded = [], [], True
        if lines or not yielded:  # an empty file still yields one empty chunk with the columns
            yield self.frame(lines, numbers)

    def frame(self, lines: list[str], numbers: list[int]) -> pd.DataFrame:
        index = pd.Index(numbers, dtype="int64")
        data, start = {}, 0
        for name, width in self.fields.items():
            values = [line[start : start + width].strip() or None for line in lines]
            data[name] = pd.Series(values, index=index, dtype=TEXT)
            start += width
        frame = pd.DataFrame(data, index=index)
        frame.attrs["source"] = self.path.name
        too_long = pd.Series([len(line) > self.width for line in lines], index=index, dtype=bool)
        if too_long.any():
            self.ctx.reject(frame[too_long], f"the line is longer than the fields ({self.width} characters)")
            frame = frame[~too_long]
        return frame

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
