"""The socrata source: read a dataset page by page as typed chunks.

Pages are requested in `:id` order (`$order`, `$limit`, `$offset`), optionally narrowed with
`$select` and `$where`; columns get canonical dtypes from the dataset's own column types (numbers
as number, checkboxes as boolean, floating timestamps as datetime, fixed ones as datetime in UTC or
`timezone`, geometries as WKT text). The index is the running row number, so rejects name it. With
the socrata delivery this makes port jobs: copy a dataset within or between portals.

    source:
      socrata:
        domain: https://data.ct.gov
        dataset: 5mzw-sjtu
        where: "date_recorded >= '2020-01-01'"
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pipeline.basics.errors import RunFailed
from pipeline.basics.plugins import source
from pipeline.socrata import local
from pipeline.socrata.errors import SocrataError
from pipeline.socrata.http import SocrataSession
from pipeline.socrata.options import SOURCE_SCHEMA, bind_source, check_source
from pipeline.socrata.views import Dataset, read_dataset
from pipeline.sources.base import Source

if TYPE_CHECKING:
    import pandas as pd

# The dataset reader (Arrow) and pandas are imported where rows are counted or read: planning a
# route loads this source without them.


@source(SOURCE_SCHEMA, bind=bind_source)
class SocrataSource(Source):
    """Read a Socrata dataset page by page, typed from its column types (port jobs, copies).

    Example:

        source:
          socrata: {domain: https://data.ct.gov, dataset: 5mzw-sjtu, where: "town = 'Hartford'"}
    """

    plan_columns = "network"  # columns() answers from the dataset's columns, from the portal

    def __init__(self, options: dict, ctx):
        self.options = check_source(options)
        self.ctx = ctx
        self.run = ctx.run
        for key in ("password", "api_key_secret", "app_token"):
            secret = (self.options.get("auth") or {}).get(key)
            if secret:
                self.run.secrets.add(secret)
        self._dataset: Dataset | None = None

    def _connect(self) -> tuple[SocrataSession, bool]:
        auth = dict(self.options.get("auth") or {})
        domain = self.options["domain"]
        is_local = domain == "local"
        if is_local:
            domain, auth = local.acquire(self.run, auth)
        http = SocrataSession(
            domain,
            auth=auth,
            timeout=self.options["timeout"],
            retries=self.options["retries"],
            backoff=self.options["backoff"],
            cancelled=self.run.cancelled,
            log=self.ctx.log,
            label=local.label(self.run) if is_local else None,
        )
        return http, is_local

    def _fields(self, dataset: Dataset) -> tuple[list[str], dict[str, str]]:
        types = {c.field: c.type for c in dataset.columns}
        select = self.options.get("select")
        if not select:
            return [c.field for c in dataset.columns], types
        fields = []
        for part in _split_select(select):
            if part.strip() == "*":
                fields += [c.field for c in dataset.columns]
                continue
            words = part.split()
            # `expr AS alias` and `field` name a result column; expressions keep their text type.
            name = words[-1] if len(words) >= 3 and words[-2].lower() == "as" else part.strip().strip("`")
            fields.append(name)
        return fields, types

    def columns(self) -> list[str] | None:
        http, is_local = self._connect()
        try:
            return self._fields(self._read(http))[0]
        finally:
            http.close()
            if is_local:
                local.release(self.run)

    def progress(self) -> tuple[int, int | None, str] | None:
        """Rows read of the dataset's rows (counted once; None when a $where or $select makes the
        count meaningless or it could not be had), for the progress bar's percent and time left."""
        total = getattr(self, "_total", None)
        return None if total is None else (getattr(self, "_done", 0), total, "rows")

    def _count(self, http: SocrataSession, dataset_id: str) -> int | None:
        from pipeline.socrata import reader

        if self.options.get("where") or self.options.get("select"):
            return None
        try:
            return reader.count(http, dataset_id)
        except SocrataError:
            return None  # a progress figure is not worth failing a read for

    def _read(self, http: SocrataSession) -> Dataset:
        try:
            return read_dataset(http, self.options["dataset"])
        except SocrataError as exc:
            raise RunFailed(self.run.mask(f"socrata source: {exc}")) from None

    def chunks(self) -> Iterator[pd.DataFrame]:
        import pandas as pd

        from pipeline.basics.dtypes import frame_from_arrow
        from pipeline.socrata import reader

        http, is_local = self._connect()
        try:
            dataset = self._read(http)
            fields, types = self._fields(dataset)
            label = f"{http.base if not is_local else 'local portal'} dataset {dataset.id}"
            page_rows = self.options.get("page_rows") or min(self.run.chunk_rows or 50_000, 50_000)
            limit = getattr(self.run.options, "limit", None)
            self._total = self._count(http, dataset.id)
            start = 1
            produced = False
            pages = reader.pages(
                http,
                dataset.id,
                fields=fields,
                types=types,
                page_rows=page_rows,
                select=self.options.get("select"),
                where=self.options.get("where"),
                order=self.options["order"],
                timezone=self.options.get("timezone"),
                limit=limit,
            )
            try:
                for table in pages:
                    if table.num_rows == 0 and produced:
                        break
                    frame = frame_from_arrow(table, index=pd.RangeIndex(start, start + table.num_rows))
                    frame.attrs["source"] = label
                    start += table.num_rows
                    self._done = start - 1
                    produced = True
                    yield frame
            except SocrataError as exc:
                raise RunFailed(self.run.mask(f"socrata source, {label}: {exc}")) from None
        finally:
            http.close()
            if is_local:
                local.release(self.run)


def _split_select(select: str) -> list[str]:
    """Split `$select` on top-level commas (not those inside parentheses or quotes)."""
    parts, depth, quote, current = [], 0, None, []
    for ch in select:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts
