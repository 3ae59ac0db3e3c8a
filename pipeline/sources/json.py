"""The json source: records from a JSON file, a JSON Lines file or an HTTP(S) endpoint, as text.

Records are JSON objects; each top-level field becomes a column. Values are TEXT, as DESIGN asks
of sources that do not declare types: a string as it is, null as null, a number as JSON writes it
(`7`, `1.5`, `1.0`, `1e+20`), a boolean as `true`/`false`, and a nested object or list as its
compact JSON text (or, with `flatten: true`, nested objects become `parent.child` columns; lists
stay JSON text). Types come from `cast` (`true`/`false` and JSON numbers cast as expected), so a
value never changes type with its neighbours and a ZIP code `"06103"` stays `06103`. A number
beyond 64 bits may be read as a float (its digits past the 17th lost), as orjson reads it.

The columns are fixed before the first chunk and never change: the `columns` option, else every
field of every record of a file (a file is read twice for this: a first pass collects the
fields; give `columns` to skip it), else the fields of the first HTTP page; a field that first
appears on a later page with a value stops the run and says which `columns` to write. A record that
is not an object is rejected (its JSON text in the rejects file); invalid JSON stops the run with
the line and column. The index is the line for JSON Lines, the record's position (1-based) for a
JSON file, and the running record number over the pages for HTTP; `attrs["source"]` is the path or
url as the route writes it (with secrets masked).

A JSON Lines file is read chunk_rows lines at a time; a JSON document is streamed (ijson) when
`records` is a plain path such as `data.items`, and parsed whole otherwise (see json_files). HTTP
pages are requested one at a time; each is one chunk (or several when larger than chunk_rows).
See json_http for retries, refusals and secrets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pipeline.basics.errors import OptionError, RunFailed
from pipeline.basics.plugins import source
from pipeline.http import is_loopback
from pipeline.sources import json_http
from pipeline.sources.base import Source
from pipeline.sources.json_files import BOM, parse_json, read_json, read_jsonl
from pipeline.sources.json_records import Framer, compile_expression, missing, select
from pipeline.sources.pick import FILE_OPTIONS, FileSet
from pipeline.sources.remote import Found

if TYPE_CHECKING:
    import pandas as pd

_NAME = {"type": "string", "minLength": 1}
_SCALAR = {"type": ["string", "number", "boolean"]}
_HTTP_KEYS = ("headers", "params", "timeout", "retries", "backoff", "max_pages", "paging")
_LINES_SUFFIXES = (".jsonl", ".ndjson", ".jsonlines")
_LINES_TYPES = ("ndjson", "jsonl", "json-lines", "jsonlines")
# Content negotiation, not credentials: kept out of the secret mask, which would hide these words.
_PLAIN_HEADERS = {"accept", "accept-language", "accept-encoding", "content-type", "user-agent"}
_SECRET_PARAM = ("key", "token", "secret", "pass", "auth", "signature", "credential")

OPTIONS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "path": {
            **_NAME,
            "description": "a .json or .jsonl file; relative to the route file; or a glob with pick; or "
            "a file's URL (https://, sftp://, s3://, ftp://, zip://member::URL; see docs/files.md)",
        },
        **FILE_OPTIONS,
        "url": {**_NAME, "description": "an http(s) endpoint answering JSON"},
        "format": {
            "enum": ["auto", "json", "jsonl"],
            "default": "auto",
            "description": "auto: jsonl for .jsonl/.ndjson (or an ndjson answer), else json",
        },
        "records": {**_NAME, "description": "JMESPath to the list of records in the document (or each page)"},
        "columns": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": _NAME,
            "description": "the fields to read, in this order (default: all)",
        },
        "flatten": {
            "type": "boolean",
            "default": False,
            "description": "nested objects as parent.child columns instead of JSON text",
        },
        "headers": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number"]},
            "description": "request headers; their values are treated as secrets",
        },
        "params": {
            "type": "object",
            "additionalProperties": _SCALAR,
            "description": "query parameters of the first request (of every request with offset paging)",
        },
        "timeout": {"type": "number", "exclusiveMinimum": 0, "default": 60, "description": "seconds per request"},
        "retries": {"type": "integer", "minimum": 0, "default": 5, "description": "retries on 429, 5xx, timeouts"},
        "backoff": {
            "type": "number",
            "minimum": 0,
            "default": 1.0,
            "description": "seconds before the first retry, doubled each time (Retry-After wins)",
        },
        "max_pages": {"type": "integer", "minimum": 1, "description": "stop after this many pages"},
        "paging": {
            "type": "object",
            "additionalProperties": False,
            "required": ["by"],
            "properties": {
                "by": {
                    "enum": ["link", "offset", "page"],
                    "description": "link: follow next links; offset: count records; page: count pages",
                },
                "next": {
                    **_NAME,
                    "description": "by link: JMESPath to the next page's URL in the body "
                    "(default: the Link header's rel=next)",
                },
                "param": {**_NAME, "description": "by offset/page: the parameter holding the offset or page"},
                "size_param": {**_NAME, "description": "the parameter holding the page size"},
                "size": {"type": "integer", "minimum": 1, "description": "the page size to ask for"},
                "start": {"type": "integer", "minimum": 0, "description": "first offset (0) or page (1)"},
            },
        },
    },
}


def check_options(options: dict, ctx) -> dict:
    """Plan-time check (`route validate`): the constructor's checks, nothing read."""
    JsonSource(options, ctx)
    return options


@source(OPTIONS_SCHEMA, bind=check_options)
class JsonSource(Source):
    """Read records from a JSON file, a JSON Lines file or an HTTP(S) endpoint, paging if asked.

    `records` is a JMESPath to the list of records (default: the document is the list). Each field
    becomes a text column (nested values as JSON text, or `flatten: true` for a.b columns); cast
    them as needed. Pages stop at an empty page, a missing next link or max_pages. 429 and 5xx
    answers are retried (Retry-After is honoured); other refusals stop the run with the server's
    message. Header values are secrets: never printed.

    Example:

    ```yaml
    source:
      json:
        url: https://api.example.org/v2/inspections
        records: data.items            # JMESPath to the list of records in each page
        headers: {Authorization: "Bearer ${API_TOKEN}"}
        params: {county: Hartford}
        paging: {by: offset, param: offset, size_param: limit, size: 1000}
        # or: paging: {by: link, next: links.next}   (no next: the Link header, rel=next)
        max_pages: 500
        flatten: true                  # {"address": {"city": ..}} -> address.city
    # or a file:  json: {path: data/inspections.jsonl}
    ```
    """

    plan_columns = "local"  # columns() answers from the `columns` option

    def __init__(self, options: dict, ctx):
        self.options, self.ctx = options, ctx
        self.path, self.url = options.get("path"), options.get("url")
        if bool(self.path) == bool(self.url):
            raise OptionError(
                "give a path (a JSON or JSON Lines file) or a url, not both"
                if self.path
                else "give a path (a JSON or JSON Lines file) or a url"
            )
        self.fileset = None
        if self.path:
            for key in _HTTP_KEYS:
                if key in options:
                    raise OptionError(f"{key} goes with url; a file is read as it is", (key,))
            self.fileset = FileSet(options, ctx, "json source", many=False)
        else:
            for key in FILE_OPTIONS:
                if key in options:
                    raise OptionError(f"{key} goes with path (a file); an endpoint's url takes headers", (key,))
        location = self.fileset.location if self.fileset else None
        self.label = location.shown_url if location and location.remote else self.path
        fmt = options.get("format", "auto")
        where = urlsplit(self.url).path if self.url else location.inner if location.remote else self.path
        self.format = (
            fmt
            if fmt != "auto"
            else (
                "jsonl"
                if where.lower().endswith(_LINES_SUFFIXES)
                else "json"
                if self.path or options.get("records")
                else None
            )
        )
        self.records_text = options.get("records")
        self.records = compile_expression(self.records_text, ("records",)) if self.records_text else None
        if self.records is not None and self.format == "jsonl":
            raise OptionError(
                "each line of a JSON Lines file is one record; records selects the list "
                "in a JSON document (use format: json, or leave records out)",
                ("records",),
            )
        self.columns_option = options.get("columns")
        self.flatten = bool(options.get("flatten", False))
        self.paging = self._paging(options.get("paging"))
        self.headers = {str(k): str(v) for k, v in (options.get("headers") or {}).items()}
        self.params = {
            str(k): (str(v).lower() if isinstance(v, bool) else v) for k, v in (options.get("params") or {}).items()
        }
        self.credentials = [k for k in self.headers if k.lower() not in _PLAIN_HEADERS]
        if self.url:
            self._check_url()
            # Masked wherever they could show (a server echoing them, a next link); values of fewer
            # than 4 characters are no credential, and masking them would garble every message.
            secrets = ctx.run.secrets
            secrets.update(v for k, v in self.headers.items() if k in self.credentials and len(v) >= 4)
            secrets.update(
                str(v)
                for k, v in self.params.items()
                if any(word in k.lower() for word in _SECRET_PARAM) and len(str(v)) >= 4
            )
        self._gen = None

    def _paging(self, paging: dict | None) -> json_http.Paging:
        if not paging:
            return json_http.Paging()
        by = paging["by"]
        if by == "link":
            for key in ("param", "size_param", "size", "start"):
                if key in paging:
                    raise OptionError(
                        f"{key} goes with by: offset or by: page; by: link follows the next link", ("paging", key)
                    )
            if paging.get("next") and self.format == "jsonl":
                raise OptionError(
                    "a JSON Lines answer has no body to find the next link in; leave "
                    "next out to follow the Link header",
                    ("paging", "next"),
                )
            expression = compile_expression(paging["next"], ("paging", "next")) if paging.get("next") else None
            return json_http.Paging("link", expression, paging.get("next"))
        if "next" in paging:
            raise OptionError("next goes with by: link", ("paging", "next"))
        if not paging.get("param"):
            raise OptionError(
                f"by: {by} needs param: the query parameter that holds the "
                f"{'offset' if by == 'offset' else 'page number'}",
                ("paging",),
            )
        if ("size" in paging) != ("size_param" in paging):
            raise OptionError(
                "give size_param (the parameter's name) and size (its value) together",
                ("paging", "size" if "size_param" in paging else "size_param"),
            )
        for key in ("param", "size_param"):
            if paging.get(key) in (self.options.get("params") or {}):
                raise OptionError(
                    f"paging sets '{paging[key]}' on each request; remove it from params", ("paging", key)
                )
        return json_http.Paging(
            by,
            param=paging["param"],
            size_param=paging.get("size_param"),
            size=paging.get("size"),
            start=paging.get("start", 0 if by == "offset" else 1),
        )

    def _check_url(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OptionError(f"url must be an http:// or https:// address, not {self.shown}", ("url",))
        if parts.scheme == "http" and self.credentials and not is_loopback(parts.hostname):
            raise OptionError("headers would travel in clear text over http://; use https://", ("url",))

    @property
    def shown(self) -> str:
        return self.ctx.run.mask(self.url or self.label)

    @property
    def details(self) -> dict:
        """The file read (and the one picked), for the run report."""
        return self.fileset.details if self.fileset else {"url": self.shown}

    def on_delivered(self) -> None:
        if self.fileset is not None:
            self.fileset.after_read()

    # -- the contract ------------------------------------------------------------------------

    def columns(self) -> list[str] | None:
        return list(self.columns_option) if self.columns_option else None

    def close(self) -> None:
        """Called by the executor when it stops reading (also early, at --limit)."""
        if self._gen is not None:
            self._gen.close()
            self._gen = None

    def chunks(self) -> Iterator[pd.DataFrame]:
        if self.url:
            self._gen = self._http()
        else:
            path = self._file()
            self._gen = read_jsonl(self, path) if self.format == "jsonl" else read_json(self, path)
        return self._gen

    def framer(self) -> Framer:
        return Framer(self.ctx, self.shown, flatten=self.flatten, columns=self.columns_option)

    @property
    def chunk_size(self) -> int:
        return max(1, int(self.ctx.run.chunk_rows or 50_000))

    # -- files -------------------------------------------------------------------------------

    def _file(self) -> Found:
        if not self.fileset.location.remote and self.ctx.resolve_path(self.path).is_dir():
            raise RunFailed(f"json source: {self.path} is a folder, not a file")
        found = self.fileset.files()[0]
        self.label = found.shown
        return found

    # -- HTTP --------------------------------------------------------------------------------

    def _http(self) -> Iterator[pd.DataFrame]:
        import pandas as pd

        run = self.ctx.run
        options = self.options
        client = json_http.HttpClient(
            self.url,
            headers=self.headers,
            credentials=bool(self.credentials),
            timeout=float(options.get("timeout", 60)),
            retries=int(options.get("retries", 5)),
            backoff=float(options.get("backoff", 1.0)),
            cancelled=run.cancelled,
            log=self.ctx.log,
            mask=run.mask,
        )
        framer = self.framer()
        size, row, produced = self.chunk_size, 1, False
        try:
            for _, records, where in json_http.pages(
                client, self.url, self.params, self.paging, options.get("max_pages"), self._page, run.mask, self.ctx.log
            ):
                if framer.names is None and records:  # the whole first page fixes the columns
                    framer.learn(records)
                    framer.checked = True
                for start in range(0, len(records), size):
                    part = records[start : start + size]
                    yield framer.frame(part, pd.RangeIndex(row, row + len(part)), where=where)
                    row += len(part)
                    produced = True
        finally:
            client.close()
        if not produced:
            yield framer.empty()

    def _page(self, response, number: int, where: str) -> tuple[object, list]:
        """(document, records) of one answer."""
        fmt = self.format
        if fmt is None:
            kind = response.headers.get("Content-Type", "").lower()
            fmt = "jsonl" if any(t in kind for t in _LINES_TYPES) else "json"
        body = response.content.removeprefix(BOM)
        if fmt == "jsonl":
            records = [
                parse_json(line, f"{where}, line {n}", line_number=n, answer=response)
                for n, line in enumerate(body.split(b"\n"), 1)
                if line.strip()
            ]
            return None, records
        document = parse_json(body, where, answer=response)
        records = select(document, self.records, self.records_text, where)
        if records is None:
            if number == 1:
                raise missing(document, self.records_text, where)
            return document, []  # a later page without the list is the end
        return document, records
