"""Which files a file source reads, and what becomes of them once the run succeeded.

`FileSet(options, ctx, what)` is the part the csv, excel, json and geo sources share: their
`path` (a file or a glob, here or remote: see remote.py), `auth`, `pick` and `after_read`
options.

- `pick: all` reads every file a glob matches, in sorted order (the csv source's default for a
  glob); `pick: one` stops the run when the glob matches more than one file (the default of the
  sources that read one file); `pick: newest` reads the file modified last, or, with
  `pick: {newest_by: name, pattern: 'sales-(?P<date>\\d{8})'}`, the one whose name holds the
  latest date (the `date` group, else the first group, else the whole match; compared as written,
  or as `format` (strptime) says).
- `after_read: {move_to: FOLDER}` or `{delete: true}` happens in the source's on_delivered(), once
  every target confirmed delivery: never on a failed run, a dry run, a preview, `route test` or a
  run cut short by --limit.

The files chosen are logged and kept in `details` (the run report's source details).
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import re
import shutil
from pathlib import Path

from pipeline.basics.errors import OptionError, RunFailed
from pipeline.sources.remote import Found, Location, has_glob

AUTH_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "description": "credentials for a remote path; use ${VARIABLES}, masked in every message",
    "properties": {
        "username": {"type": "string", "description": "sftp, ftp, http(s) basic"},
        "password": {"type": "string", "description": "sftp, ftp, http(s) basic"},
        "key_file": {"type": "string", "description": "sftp: a private key file"},
        "passphrase": {"type": "string", "description": "sftp: the key's passphrase"},
        "known_hosts_only": {
            "type": "boolean",
            "description": "sftp: refuse a server whose host key is not in known_hosts (default: accept it)",
        },
        "access_key_id": {"type": "string", "description": "s3"},
        "secret_access_key": {"type": "string", "description": "s3"},
        "session_token": {"type": "string", "description": "s3"},
        "region": {"type": "string", "description": "s3"},
        "endpoint_url": {"type": "string", "description": "s3: an S3-compatible store (MinIO, ...)"},
        "anonymous": {"type": "boolean", "description": "s3: a public bucket, no credentials"},
        "tls": {"type": "boolean", "description": "ftp: FTP over TLS"},
        "headers": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "http(s): request headers (Authorization, ...)",
        },
    },
}

PICK_SCHEMA = {
    "oneOf": [
        {"enum": ["all", "one", "newest"]},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["newest_by"],
            "properties": {
                "newest_by": {"enum": ["modified", "name"]},
                "pattern": {"type": "string", "minLength": 1},
                "format": {"type": "string", "minLength": 2},
            },
        },
    ],
    "description": "with a glob: all (every file), one (an error if more than one matches), newest "
    "(modified last), or {newest_by: name, pattern: '(?P<date>\\d{8})'} (the latest date in the name)",
}
AFTER_READ_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,
    "properties": {
        "move_to": {"type": "string", "minLength": 1, "description": "a folder to move the files read into"},
        "delete": {"const": True, "description": "delete the files read"},
    },
    "description": "once every target delivered: move the files read (move_to: FOLDER) or delete them",
}
# The options every file source adds to its own schema.
FILE_OPTIONS = {"auth": AUTH_SCHEMA, "pick": PICK_SCHEMA, "after_read": AFTER_READ_SCHEMA}
DEFAULT_NAME_PATTERN = r"(?P<date>\d{4}-?\d{2}-?\d{2})"


class FileSet:
    """The files of one source's `path`, picked; see the module docstring."""

    def __init__(self, options: dict, ctx, what: str, *, many: bool = True, glob_hint: str = "*"):
        """`what` names the source in messages ("csv source"); `many`: whether it reads several
        files one after the other (pick: all); `glob_hint` ends the glob a folder's message suggests."""
        self.options, self.ctx, self.what, self.many, self.glob_hint = options, ctx, what, many, glob_hint
        self.path = str(options["path"])
        self.location = Location(self.path, ctx.run, what=what, auth=options.get("auth"))
        self.globbed = self.location.globbed if self.location.remote else has_glob(self.path)
        pick = options.get("pick", "all" if many else "one")
        if isinstance(pick, str):
            pick = {"newest_by": "modified"} if pick == "newest" else {"mode": pick}
        self.pick = pick
        if pick.get("mode") == "all" and not many:
            raise OptionError(f"the {what} reads one file: use pick: newest or pick: one", ("pick",))
        self.pattern = None
        if pick.get("newest_by") == "name":
            try:
                self.pattern = re.compile(pick.get("pattern", DEFAULT_NAME_PATTERN))
            except re.error as exc:
                raise OptionError(f"pattern is not a valid regular expression: {exc}", ("pick", "pattern")) from None
        elif "pattern" in pick or "format" in pick:
            raise OptionError("pattern and format go with newest_by: name", ("pick",))
        self.after = options.get("after_read") or {}
        location = self.location
        if self.after and location.remote and (location.chain or location.protocol == "http"):
            raise OptionError(
                "after_read cannot move or delete a file read over http(s) or inside a zip archive",
                ("after_read",),
            )
        self._found: list[Found] | None = None
        self.details: dict = {}

    # -- the files -----------------------------------------------------------------------------

    @property
    def listed(self) -> bool:
        """Whether the files were listed already (a remote listing needs a connection)."""
        return self._found is not None

    def files(self) -> list[Found]:
        """The files to read, in order (listed once per run)."""
        if self._found is None:
            by_time = self.globbed and self.pick.get("newest_by") == "modified"
            found = self.location.matches(modified=by_time) if self.location.remote else self._local()
            self.details = {"matched": len(found)} if self.globbed else {}
            self._found = self._picked(found)
            self.details["files"] = [f.shown for f in self._found]
        return self._found

    def _local(self) -> list[Found]:
        pattern = self.location.local_text
        resolved = self.ctx.resolve_path(pattern)
        relative = not Path(pattern).expanduser().is_absolute()
        where = f" (looked in {resolved.parent})" if relative else ""
        if self.globbed:
            found = sorted(p for p in glob.glob(str(resolved), recursive=True) if os.path.isfile(p))
            if not found:
                raise RunFailed(f"{self.what}: no file matches {pattern}{where}")
            return [self._stat(Path(p), self._shown(Path(p), relative)) for p in found]
        if resolved.is_dir():
            raise RunFailed(
                f"{self.what}: {pattern} is a folder; to read its files use a glob such as "
                f"{pattern.rstrip('/')}/{self.glob_hint}"
            )
        if not resolved.is_file():
            raise RunFailed(f"{self.what}: file not found: {pattern}{where}")
        return [self._stat(resolved, pattern)]

    def _stat(self, path: Path, shown: str) -> Found:
        st = path.stat()
        return Found(path, shown, self.location, st.st_size, st.st_mtime)

    def _shown(self, path: Path, relative: bool) -> str:
        if relative:
            try:
                return path.relative_to(self.ctx.route_dir).as_posix()
            except ValueError:
                pass
        return str(path)

    def _picked(self, found: list[Found]) -> list[Found]:
        shown = self.location.shown_url if self.location.remote else self.path
        mode = self.pick.get("mode")
        if not self.globbed or mode == "all" or len(found) <= 1 and mode == "one":
            if len(found) > 1:
                self.ctx.log.info("%s: reading %d files that %s matches", self.what, len(found), shown)
            return found
        if mode == "one":
            names = ", ".join(f.shown for f in found[:5]) + (", ..." if len(found) > 5 else "")
            raise RunFailed(
                f"{self.what}: {shown} matches {len(found)} files ({names}), and pick: one "
                f"reads exactly one; narrow the path, or set pick: newest"
            )
        if self.pattern is not None:
            keyed = []
            for f in found:
                key = self._name_key(f)
                if key is None:
                    self.ctx.log.debug("%s: %s: its name does not match the pattern; left out", self.what, f.shown)
                else:
                    keyed.append((key, f.shown, f))
            if not keyed:
                raise RunFailed(
                    f"{self.what}: none of the {len(found)} files that {shown} matches has a name the pattern "
                    f"{self.pattern.pattern!r} finds a date in"
                )
            how = "by the date in its name"
        else:
            unknown = [f.shown for f in found if f.modified is None]
            if unknown:
                raise RunFailed(
                    f"{self.what}: the server does not say when {unknown[0]} was modified; "
                    f"use pick: {{newest_by: name, pattern: ...}} to pick by a date in the name"
                )
            keyed = [(f.modified, f.shown, f) for f in found]
            how = "by modification time"
        chosen = max(keyed, key=lambda k: (k[0], k[1]))[2]
        self.ctx.log.info("%s: picked %s, the newest of %d files (%s)", self.what, chosen.shown, len(found), how)
        self.details["picked"] = chosen.shown
        return [chosen]

    def _name_key(self, f: Found):
        match = self.pattern.search(f.name)
        if match is None:
            return None
        text = match.group("date") if "date" in self.pattern.groupindex else match.group(1 if match.re.groups else 0)
        if not text:
            return None
        fmt = self.pick.get("format")
        if fmt:
            try:
                return dt.datetime.strptime(text, fmt)
            except ValueError:
                self.ctx.log.warning("%s: %s: %r does not match format %r; left out", self.what, f.shown, text, fmt)
                return None
        return text

    # -- after a good run ---------------------------------------------------------------------------

    def after_read(self) -> None:
        """Move or delete the files read, when the run delivered and read them whole."""
        if not self.after or not self._found:
            return
        options = self.ctx.run.options
        if options.limit or options.preview or options.test or options.dry_run:
            self.ctx.log.info("%s: after_read skipped: the run did not read the files whole", self.what)
            return
        for found in self._found:
            if "move_to" in self.after:
                where = self._move(found, self.after["move_to"])
                self.ctx.log.info("%s: moved %s to %s", self.what, found.shown, where)
            else:
                self._delete(found)
                self.ctx.log.info("%s: deleted %s", self.what, found.shown)

    def _move(self, found: Found, folder: str) -> str:
        if found.remote:
            return self.location.move(found, folder)
        target = self.ctx.resolve_path(folder)
        try:
            target.mkdir(parents=True, exist_ok=True)
            shutil.move(found.where, target / found.where.name)
        except OSError as exc:
            raise RunFailed(f"{self.what}: could not move {found.shown} to {folder}: {exc.strerror or exc}") from None
        return f"{folder.rstrip('/')}/{found.where.name}"

    def _delete(self, found: Found) -> None:
        if found.remote:
            self.location.delete(found)
            return
        try:
            found.where.unlink()
        except OSError as exc:
            raise RunFailed(f"{self.what}: could not delete {found.shown}: {exc.strerror or exc}") from None


def column_difference(want: list, have: list) -> str:
    """`missing a, b; extra c`: how a file's columns differ from the first file's of a glob."""
    missing = [n for n in want if n not in have]
    extra = [n for n in have if n not in want]
    return "; ".join(
        p
        for p in (f"missing {', '.join(missing)}" if missing else "", f"extra {', '.join(extra)}" if extra else "")
        if p
    )
