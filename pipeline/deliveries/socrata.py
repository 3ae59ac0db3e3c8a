"""The socrata delivery: publish the route's rows to a dataset on a Socrata portal.

Modes: upsert and append send SODA batches (several in flight over one keep-alive session);
delete sends `{row_id, ":deleted": true}` rows; replace uploads the rows as CSV into a revision
and applies it, so readers see the old rows until the new ones are complete; sync upserts only the
rows that changed and deletes the ones that left (socrata/sync.py). Before anything is
sent the dataset's columns are read and every mismatch is reported at once. See docs/socrata.md.

    deliver:
      socrata:
        domain: https://data.ct.gov        # omitted or `local`: the embedded local portal
        dataset: abcd-1234
        mode: upsert
        auth: {username: "${SOCRATA_USERNAME}", password: "${SOCRATA_PASSWORD}"}
"""

# Longer than 400 lines because one delivery serves five modes (upsert, append, delete, replace, sync),
# dry runs, dataset creation and resume; the wire protocol itself lives in pipeline/socrata/.

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pipeline.basics.errors import DeliveryFailed, RunFailed
from pipeline.basics.guards import shrink_problem
from pipeline.basics.plugins import delivery
from pipeline.deliveries.base import DeliveryResult
from pipeline.socrata import local, report, state
from pipeline.socrata.columns import ID, Mapping, creation_columns, match, route_types, tz_columns
from pipeline.socrata.dsmapi import discard_revision, open_revisions
from pipeline.socrata.errors import SocrataError
from pipeline.socrata.http import SocrataSession
from pipeline.socrata.metadata import Sync
from pipeline.socrata.options import DEFAULT_CONCURRENCY, DELIVERY_SCHEMA, bind_delivery, check_delivery
from pipeline.socrata.views import Dataset, create_dataset, field_name, parse_view, publish_dataset, read_dataset

if TYPE_CHECKING:
    from pipeline.socrata.dryrun import Plan
    from pipeline.socrata.replace import Spool
    from pipeline.socrata.resume import Resume
    from pipeline.socrata.soda import BatchSender
    from pipeline.socrata.sync import SyncRun

# The modules that move rows (batching, convert, soda, sync, replace, resume, reader, dryrun: Arrow,
# numpy, polars) are imported in the methods that use them, once a run opens the delivery:
# planning a route (`route validate`) loads this class without them.

NUMERIC = ("number", "money", "double")


@delivery(DELIVERY_SCHEMA, bind=bind_delivery)
class SocrataDelivery:
    """Publish rows to a Socrata dataset: upsert, append, delete, replace through a revision, or sync
    (the dataset ends up holding exactly the route's rows; only the rows that changed are sent).

    Example:

        deliver:
          socrata: {domain: https://data.ct.gov, dataset: abcd-1234, mode: upsert,
                    auth: {username: "${SOCRATA_USERNAME}", password: "${SOCRATA_PASSWORD}"}}
    """

    def __init__(self, options: dict, ctx):
        from pipeline.socrata.batching import Rebatcher

        self.options = check_delivery(options)
        self.ctx = ctx
        self.run = ctx.run
        self.mode = self.options["mode"]
        self.dry_run = bool(getattr(self.run.options, "dry_run", False))
        self.force = bool(getattr(self.run.options, "force", False))
        for key in ("password", "api_key_secret", "app_token"):
            secret = (self.options.get("auth") or {}).get(key)
            if secret:
                self.run.secrets.add(secret)
        self.http: SocrataSession | None = None
        self.dataset: Dataset | None = None
        self.mapping: Mapping | None = None
        self.sender: BatchSender | None = None
        self.batches = Rebatcher(self.options["batch_rows"])
        self.spool: Spool | None = None
        self.revision = None
        self._opening: int | None = None  # the last revision number before ours, while it opens
        self.plan: Plan | None = None
        self.route_columns: dict[str, str | None] = {}
        self.zoned: set[str] = set()
        self.prepared = False
        self.local = False
        self.rejected = 0
        self.would_create: dict | None = None
        # A replace swaps the rows in all at once; the other modes deliver batch by batch.
        self.atomic = self.mode == "replace"
        self.resume: Resume | None = None
        self.syncer: SyncRun | None = None  # mode sync (socrata/sync.py)
        self.metadata = Sync(self.options.get("metadata"), self.dry_run)  # see socrata/metadata.py

    # -- messages ---------------------------------------------------------------------------

    @property
    def head(self) -> str:
        where = f"{self.run.route_file.name}:{self.ctx.line}: " if self.ctx.line else ""
        target = f"target '{self.ctx.target}': " if self.ctx.target else ""
        create = self.options.get("create") or {}
        named = f'"{create["name"]}" (to be created)' if create.get("name") else "the dataset"
        ds = self.dataset.label if self.dataset else (self.options.get("dataset") or named)
        return f"{where}{target}socrata {self.mode} to dataset {ds}"

    def error(self, message: str) -> DeliveryFailed:
        """A DeliveryFailed with `message`, secrets masked (also for socrata/resume.py)."""
        return DeliveryFailed(self.run.mask(message))

    @property
    def _state_key(self) -> str:
        return f"{self.run.route_name}/{self.ctx.target or 'socrata'}"

    # -- open: connect, find the dataset -----------------------------------------------------

    def open(self, columns) -> None:
        """Connect and read the dataset; checks run now when column types are known, else on the
        first chunk (still before anything is sent)."""
        opts = self.run.options
        if self.mode in ("replace", "sync") and opts.limit is not None and not opts.force and not opts.dry_run:
            raise RunFailed(
                f"{self.head}: --limit reads only the first {opts.limit} rows, and a {self.mode} would leave "
                "the dataset with only those; use --dry-run to try the route, or add --force"
            )
        self.route_columns = route_types(columns)
        self.zoned = tz_columns(columns) if hasattr(columns, "items") else set()
        auth = dict(self.options.get("auth") or {})
        domain = self.options["domain"]
        try:
            if domain == "local":
                domain, auth = local.acquire(self.run, auth)
                self.local = True
            self.http = SocrataSession(
                domain,
                auth=auth,
                timeout=self.options["timeout"],
                retries=self.options["retries"],
                backoff=self.options["backoff"],
                pool=(self.options.get("concurrency") or DEFAULT_CONCURRENCY) + 2,
                cancelled=self.run.cancelled,
                log=self.ctx.log,
                label=local.label(self.run) if self.local else None,
            )
            self.dataset = self._find_dataset()
            self._discard_leftovers()
        except SocrataError as exc:
            raise self.error(f"{self.head}: {exc}") from None
        if self.dataset is not None and self.dataset.derived:
            raise self.error(
                f"{self.head}: it is a derived view ({self.dataset.display_type}), not a "
                f"dataset; deliver to the dataset it is built on"
            )
        if self.route_columns and all(t is not None for t in self.route_columns.values()):
            self._prepare()

    def _find_dataset(self) -> Dataset | None:
        create = self.options.get("create")
        dataset_id = self.options.get("dataset")
        portal = "local" if self.local else self.http.base
        if dataset_id is None:
            dataset_id = state.lookup(self.run.state_dir, portal, self._state_key, create.get("name"))
        if dataset_id is None:
            if self.mode == "delete":
                raise SocrataError(
                    f"there is no dataset to delete from: give `dataset` (its 4x4 id); no "
                    f'dataset named "{create["name"]}" was created by a route here yet'
                )
            return None
        try:
            found = read_dataset(self.http, dataset_id)
        except SocrataError as exc:
            if exc.status != 404 or not create or self.mode == "delete":
                raise
            if not self.options.get("dataset"):
                state.forget(self.run.state_dir, portal, self._state_key)  # deleted since: make it again
            return None
        if (
            create
            and not self.options.get("dataset")
            and not self.dry_run
            and found.meta.get("publicationStage") == "unpublished"
        ):
            # Created by an earlier run that stopped before publishing it: finish that now.
            found = read_dataset(self.http, publish_dataset(self.http, found.id))
        return found

    # -- prepare: once types are known, check everything, create the dataset, get ready -------

    def _prepare(self) -> None:
        from pipeline.socrata import reader
        from pipeline.socrata.replace import Spool
        from pipeline.socrata.resume import Resume
        from pipeline.socrata.soda import BatchSender
        from pipeline.socrata.sync import SyncRun, problems

        self.prepared = True
        if self.dataset is None:
            self._create_dataset()
        self.mapping = match(
            self.route_columns,
            self.dataset,
            mode=self.mode,
            explicit=self.options.get("columns"),
            row_identifier=self.options.get("row_identifier"),
        )
        if self.mode == "sync":
            self.mapping.problems += problems(self.mapping, self.dataset)
        if self.mapping.problems:
            listed = "\n".join(f"  - {p}" for p in self.mapping.problems)
            raise self.error(
                f"{self.head}: the route's output does not fit the dataset, so nothing was sent:\n{listed}"
            )
        self._sync_metadata()
        if self.mapping.ignored:
            self.ctx.log.info(
                "%s: delete uses only the row identifier; ignoring %s", self.head, ", ".join(self.mapping.ignored)
            )
        if self.dry_run:
            if self.mode == "sync":
                self.syncer = SyncRun(self)
            else:
                self._start_plan()
            return
        journal, name = self.run.journal, self.ctx.target
        key = self.mapping.key
        info = {
            "dataset": self.dataset.id,
            "dataset_label": self.dataset.label,
            "domain": "local" if self.local else self.http.base,
            "row_identifier": key.field if key is not None and key.field != ID else None,
        }
        if self.mode == "append" and name not in self.run.resume:
            try:  # the dataset's size before anything is sent: what --resume counts from
                info["rows_before"] = reader.count(self.http, self.dataset.id)
            except SocrataError as exc:
                raise self.error(f"{self.head}: {exc}") from None
        journal.info(name, **info)
        if self.mode == "replace":
            self.spool = Spool(self.run.state_dir, self.run.run_id, [t.field for t in self.mapping.targets])
            journal.hold(name, "spool", path=str(self.spool.path))
            return
        if name in self.run.resume:
            self.resume = Resume(self, self.run.resume[name])
        # as given; else as the portal asks (the local portal: one at a time); else the default
        concurrency = self.options.get("concurrency") or self.http.preferred_concurrency or DEFAULT_CONCURRENCY
        if self.mode == "append" and key is None and concurrency > 1:
            # One batch at a time: a batch left in doubt (a kill, a lost answer) can then always be
            # settled by the dataset's row count on --resume; with several in flight, batches of
            # equal size could not be told apart. A row identifier allows parallel appends.
            self.ctx.log.info(
                "%s: sending one batch at a time (an append to a dataset without a row identifier)", self.head
            )
            concurrency = 1
        self.sender = BatchSender(
            self.http,
            self.dataset.id,
            concurrency=concurrency,
            repeatable=key is not None,
            verb=self.mode,
            on_send=lambda b: journal.sent(name, b.seq, b.source, b.runs, b.rows),
            on_done=lambda o: journal.confirmed(name, o.batch.seq),
            on_refused=lambda b: journal.refused(name, b.seq),
        )
        if self.mode == "sync":
            self.syncer = SyncRun(self)

    def _create_dataset(self) -> None:
        create = self.options.get("create")
        if not create:
            raise self.error(
                f"{self.head}: dataset {self.options.get('dataset')} was not found on "
                f"{self.http.label}; check the id, or add `create:` to the delivery"
            )
        explicit = self.options.get("columns") or {}
        cols = creation_columns(self.route_columns, create.get("types"), explicit, self.zoned)
        ri = self.options.get("row_identifier")
        ri_field = (explicit.get(ri) or field_name(ri)) if ri else None
        if ri and ri_field not in {c.field for c in cols}:
            raise self.error(
                f"{self.head}: row_identifier '{ri}' is not a column of the route's output "
                f"({', '.join(self.route_columns)})"
            )
        extra, column_extra = self.metadata.created(create)
        if self.dry_run:
            self.would_create = {
                "name": create["name"],
                "row_identifier": ri_field,
                "columns": {c.field: c.type for c in cols},
            }
            self.dataset = Dataset("(new)", create["name"], cols, ri_field)
            return
        try:
            self.dataset = create_dataset(
                self.http,
                name=create["name"],
                columns=cols,
                row_identifier=ri_field,
                description=create.get("description", ""),
                category=create.get("category", ""),
                tags=create.get("tags") or (),
                extra=extra,
                column_extra=column_extra,
                on_created=lambda ds_id: state.record(
                    self.run.state_dir,
                    "local" if self.local else self.http.base,
                    self._state_key,
                    ds_id,
                    create["name"],
                ),
            )
        except SocrataError as exc:
            raise self.error(f"{self.head}: {exc}") from None
        state.record(
            self.run.state_dir,
            "local" if self.local else self.http.base,
            self._state_key,
            self.dataset.id,
            create["name"],
        )  # the published id, should the portal change it
        self.ctx.log.info("%s: created dataset %s", self.head, self.dataset.label)

    def _sync_metadata(self) -> None:
        """The `metadata:` block compared with the dataset and applied, before any row is sent."""
        if self.dataset is None or self.dataset.id == "(new)":
            return
        try:
            view = self.metadata.run(self.http, self.dataset.id, self.dataset.meta)
        except SocrataError as exc:
            raise self.error(f"{self.head}: {exc}") from None
        if view is not None:
            self.dataset = parse_view(view)

    def _start_plan(self) -> None:
        import pyarrow as pa

        from pipeline.socrata import reader
        from pipeline.socrata.dryrun import Plan, normalise

        key = self.mapping.key
        existing, existing_rows, key_type = None, None, "text"
        try:
            if key is not None and key.field != ID:
                key_type = key.type
                if self.dataset.id == "(new)":
                    existing = pa.array([], pa.float64() if key_type in NUMERIC else pa.string())
                else:
                    existing = normalise(reader.values(self.http, self.dataset.id, key.field, key.type), key_type)
            elif self.mode == "replace" and self.dataset.id != "(new)":
                existing_rows = reader.count(self.http, self.dataset.id)
        except SocrataError as exc:
            raise self.error(f"{self.head}: {exc}") from None
        self.plan = Plan(self.mode, existing, existing_rows, key_type)

    # -- write ------------------------------------------------------------------------------

    def write(self, chunk) -> None:
        from pipeline.socrata.convert import to_wire

        if not self.prepared:
            self.route_columns = route_types(chunk.dtypes, self.route_columns)
            self.zoned = tz_columns(chunk.dtypes)
            self._prepare()
        self._raise_if_failed()
        if len(chunk) == 0:
            return
        # Converted a batch's rows at a time when they go out in batches (or to the replace
        # spool): the wire values of a whole 50,000-row chunk, and their converting, are not
        # held at once beside the chunk and the bodies in flight (about 15 MB less at the peak).
        step = len(chunk) if self.syncer is not None or self.dry_run else self.options["batch_rows"]
        for start in range(0, len(chunk), step):
            self._write_part(chunk.iloc[start : start + step] if step < len(chunk) else chunk, to_wire)

    def _write_part(self, chunk, to_wire) -> None:
        key = self.mapping.key
        wc = to_wire(
            chunk,
            self.mapping,
            mode=self.mode,
            form="csv" if self.mode == "replace" else "json",
            timezone=self.options.get("timezone"),
            ctx=self.ctx,
            needs_key=key is not None and key.field != ID,
        )
        self.rejected += wc.rejected
        if self.resume is not None:
            wc = self.resume.remaining(wc, chunk.attrs.get("source") or "")
        if wc.table.num_rows == 0:
            return
        if self.syncer is not None:
            self.syncer.add(wc, chunk.attrs.get("source") or "")
        elif self.dry_run:
            self.plan.add(wc.keys if key is not None and key.field != ID else None, wc.table.num_rows)
        elif self.mode == "replace":
            self.spool.add(wc.table)
        else:
            self.batches.add(wc, chunk.attrs.get("source") or "")
            self._send(final=False)

    def _send(self, final: bool) -> None:
        if self.sender.failed and not final:
            return  # the rest of a chunk after a failure stays in the rebatcher, as a whole chunk did
        for batch in self.batches.batches(final):
            self.sender.submit(batch)
            if self.sender.failed:
                return

    def _raise_if_failed(self) -> None:
        if self.sender is not None and self.sender.failed:
            self.sender.drain()
            spill = (
                self.run.state_dir
                / "uncertain"
                / f"{self.run.route_name}-{self.run.run_id}-{self.ctx.target or 'socrata'}.txt"
            )
            raise report.failure(
                self.sender,
                head=self.head,
                mode=self.mode,
                repeatable=self.sender.repeatable,
                mask=self.run.mask,
                spill=spill,
            )

    # -- close / abort ----------------------------------------------------------------------

    def close(self) -> DeliveryResult:
        try:
            if not self.prepared:
                if not self.route_columns:
                    # No chunk ever came (nothing was routed here): nothing to check or send; a
                    # replace still means "the dataset has no rows", which the shrink guard judges.
                    if self.dataset is None or self.mode not in ("replace", "sync"):
                        self._sync_metadata()
                        return self._nothing()
                    self.route_columns = {c.field: None for c in self.dataset.columns}
                self._prepare()
            if self.dry_run:
                return self._dry_result()
            if self.mode == "replace":
                return self._replace()
            if self.syncer is not None:
                return self._sync_result()
            self._send(final=True)
            self.sender.drain()
            self._raise_if_failed()
            return self._soda_result()
        finally:
            self._cleanup()

    def abort(self, exc: BaseException | None) -> None:
        """Stop sending (batches in flight finish); a replace leaves the dataset as it was."""
        try:
            if self.sender is not None:
                self.sender.stop()
            if self.revision is not None:
                self.revision.discard()
                self._let_revision(self.revision)
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        if self.sender is not None:
            self.sender.close()
        if self.syncer is not None:
            self.syncer.cleanup()
        if self.spool is not None:
            self.spool.remove()
            self.run.journal.let(self.ctx.target, "spool", path=str(self.spool.path))
        if self.http is not None:
            self.http.close()
        if self.local:
            self.local = False
            local.release(self.run)

    # -- what interrupted runs left -------------------------------------------------------------

    def _hold_opening(self, last_seq: int) -> None:
        """A revision is about to be opened: killed before its number comes back, the next run
        discards the open replace revisions numbered above `last_seq` (see _discard_leftovers)."""
        domain = "local" if self.local else self.http.base
        self.run.journal.hold(
            self.ctx.target, "revision", id=f"after:{last_seq}", dataset=self.dataset.id, domain=domain
        )
        self._opening = last_seq

    def _hold_revision(self, revision) -> None:
        """A revision is open: should the run die now, the next run discards it (see recovery.py)."""
        self.revision = revision
        self.run.journal.hold(
            self.ctx.target,
            "revision",
            id=revision.seq,
            dataset=self.dataset.id,
            domain="local" if self.local else self.http.base,
        )
        if self._opening is not None:
            self.run.journal.let(self.ctx.target, "revision", id=f"after:{self._opening}")
            self._opening = None

    def _let_revision(self, revision) -> None:
        self.run.journal.let(self.ctx.target, "revision", id=revision.seq)

    def _discard_leftovers(self) -> None:
        """Discard revisions that interrupted runs of this target opened and never applied."""
        domain = "local" if self.local else self.http.base
        for hold, release in self.run.leftovers.get(self.ctx.target or "", []):
            if hold.get("domain") != domain or hold.get("id") is None:
                continue
            for seq in self._left_open(hold):
                discard_revision(self.http, hold["dataset"], seq)
                self.ctx.log.info(
                    "%s: discarded revision %s of dataset %s, left open by an interrupted run",
                    self.head,
                    seq,
                    hold["dataset"],
                )
            release()

    def _left_open(self, hold: dict) -> list:
        """The revision a run held, or (killed while opening one) the open replace revisions
        numbered above the last one before it: the run opened one of them, and no other run of
        this target can have, since runs of a route take turns."""
        seq = hold["id"]
        if not (isinstance(seq, str) and seq.startswith("after:")):
            return [seq]
        last = int(seq.removeprefix("after:"))
        try:
            found = open_revisions(self.http, hold["dataset"])
        except SocrataError:
            return []
        return [
            r["revision_seq"]
            for r in found
            if isinstance(r.get("revision_seq"), int)
            and r["revision_seq"] > last
            and (r.get("action") or {}).get("type") == "replace"
        ]

    # -- results ----------------------------------------------------------------------------

    def _location(self) -> str:
        if self.local:
            where = f"local portal dataset {self.dataset.id} ({self.run.state_dir / 'portal.sqlite'})"
        else:
            where = f"{self.http.base}/d/{self.dataset.id}"
        return where  # the metadata it changed is in the details, and the summary says it

    def _details(self, **more) -> dict:
        return {
            "dataset": self.dataset.id,
            "dataset_name": self.dataset.name,
            "mode": self.mode,
            "domain": "local" if self.local else self.http.base,
            **self.metadata.details(),
            **more,
        }

    def _nothing(self) -> DeliveryResult:
        details = self._details(dry_run=True) if self.dataset is not None and self.dry_run else self.metadata.details()
        if self.dry_run and self.metadata.changes:
            details["plan"] = self.metadata.plan_text(details)
        return DeliveryResult(location=self._location() if self.dataset is not None else "", details=details)

    def _soda_result(self) -> DeliveryResult:
        outcomes = sorted(self.sender.outcomes, key=lambda o: o.batch.seq)
        delivered = sum(o.batch.rows for o in outcomes)
        created = sum(o.created for o in outcomes)
        updated = sum(o.updated for o in outcomes)
        deleted = sum(o.deleted for o in outcomes)
        if self.mode != "delete":
            refused = report.row_errors(outcomes, head=self.head, delivered=delivered, mask=self.run.mask)
            if refused is not None:
                raise refused
        details = self._details(
            request_ids=[o.request_id for o in outcomes][:1000],
            batches=len(outcomes),
            bytes_sent=sum(o.bytes for o in outcomes),
        )
        if self.resume is not None:
            details["resumed"] = self.resume.summary()
        if self.mode == "delete":
            details["not_found"] = sum(o.error_count for o in outcomes) or max(0, delivered - deleted)
        return DeliveryResult(
            delivered=delivered,
            created=created,
            updated=updated,
            deleted=deleted,
            rejected=self.rejected,
            location=self._location(),
            details=details,
        )

    def _replace(self) -> DeliveryResult:
        from pipeline.socrata.replace import replace

        try:
            done = replace(
                self.http,
                self.dataset,
                self.spool,
                max_shrink=self.options["max_shrink"],
                force=self.force or bool(self.options.get("allow_empty")),
                head=self.head,
                mask=self.run.mask,
                log=self.ctx.log,
                on_revision=self._hold_revision,
                on_opening=self._hold_opening,
                on_phase=self.ctx.phase,
            )
        except SocrataError as exc:
            raise self.error(f"{self.head}: {exc} The dataset keeps its old rows.") from None
        if self.revision is not None:
            self._let_revision(self.revision)
        self.revision = None
        details = self._details(
            revision=done["revision"],
            job=done["job"],
            request_ids=[done["request_id"]],
            rows_before=done["rows_before"],
            status=done["status"],
            bytes_sent=os.path.getsize(self.spool.path),
        )
        return DeliveryResult(
            delivered=self.spool.rows,
            created=done["created"],
            updated=done["updated"],
            deleted=done["deleted"],
            rejected=self.rejected,
            location=self._location(),
            details=details,
        )

    def _sync_result(self) -> DeliveryResult:
        done = self.syncer.close(self._raise_if_failed)
        return DeliveryResult(
            delivered=done["delivered"],
            created=done["created"],
            updated=done["updated"],
            deleted=done["deleted"],
            rejected=self.rejected,
            location=self._location(),
            details=self._details(**done["details"]),
        )

    def _dry_result(self) -> DeliveryResult:
        counts = self.syncer.plan() if self.syncer is not None else self.plan.finish()
        # Counts first: the summary prints the details of a dry run in order.
        details = {**counts, "reject": self.rejected, **self._details(dry_run=True)}
        if self.would_create:
            details["would_create_dataset"] = self.would_create
        if self.mode == "replace":
            current = self.plan.existing_rows if self.plan.existing is None else len(self.plan.existing)
            problem = shrink_problem(current or 0, counts["rows_after"], self.options["max_shrink"])
            if problem:
                details["stop"] = f"would stop before replacing: {problem}" + (" (--force given)" if self.force else "")
        if self.metadata.changes:
            details["plan"] = self.metadata.plan_text(details)
        return DeliveryResult(
            rejected=self.rejected, location=self._location() if self.dataset.id != "(new)" else "", details=details
        )
