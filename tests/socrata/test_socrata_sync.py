"""Mode sync of the socrata delivery (issue 14): the dataset ends up holding exactly the route's rows,
and only new and changed rows are sent; rows that left the source are deleted.

Real `route execute` runs against a served local portal; what a publisher checks is read back: every
row over SODA, the counts and bytes of the `--json` report, exit codes, and the portal's writes.
"""

from __future__ import annotations

import json
import shutil
import signal

import numpy as np
import pandas as pd
import pytest
from killkit import kill_when, start
from portalkit import CASES, ROUTE_ARGS
from socratakit import frame

from pipeline.basics.errors import DeliveryFailed

ROWS = 20_000


def source(ids: np.ndarray, bump: np.ndarray | None = None, status: np.ndarray | None = None) -> pd.DataFrame:
    """Cases C-000001...: status, amount (quarters), opened (a date), closed (every third)."""
    amount = ids * 0.25 + (0 if bump is None else np.where(np.isin(ids, bump), 1000, 0))
    st = np.array(["open", "closed", "pending"])[ids % 3]
    if status is not None:
        st = np.where(np.isin(ids, status), "reopened", st)
    return pd.DataFrame(
        {
            "case_id": pd.Series(ids).map("C-{:06d}".format),
            "status": st,
            "amount": amount,
            "opened": (pd.Timestamp("2024-01-01") + pd.to_timedelta(ids % 365, unit="D")).strftime("%Y-%m-%d"),
            "closed": np.where(ids % 3 == 0, "true", "false"),
        }
    )


def served(df: pd.DataFrame) -> dict:
    """The rows as a reader gets them over SODA, by case_id."""
    amounts = [str(int(a)) if float(a).is_integer() else repr(float(a)) for a in df["amount"]]
    return {
        c: {"case_id": c, "status": s, "amount": a, "opened": f"{o}T00:00:00.000", "closed": k == "true"}
        for c, s, a, o, k in zip(df["case_id"], df["status"], amounts, df["opened"], df["closed"])
    }


def dataset_rows(portal, ds: str) -> dict:
    return {r["case_id"]: r for r in portal.rows(ds)}


def changed_source() -> tuple[pd.DataFrame, dict]:
    """1 % of the rows changed (half their amount, half their status), 0.5 % removed, 0.5 % added."""
    ids = np.arange(1, ROWS + 1)
    removed = ids[7::200]  # 100 rows
    bump, status = ids[3::200], ids[5::200]  # 100 + 100 rows
    kept = ids[~np.isin(ids, removed)]
    added = np.arange(ROWS + 1, ROWS + 101)
    return source(np.concatenate([kept, added]), bump=bump, status=status), {
        "created": 100,
        "updated": 200,
        "deleted": 100,
    }


def route_file(folder, portal, ds: str, mode: str = "sync", *, extra: str = "", name: str = "sync") -> object:
    ri = "                row_identifier: case_id\n" if mode != "replace" else ""
    text = (
        f"name: {name}\n"
        "source:\n"
        "  csv: {path: cases.csv}\n"
        "source_transforms:\n"
        "  - cast: {amount: number, opened: date, closed: boolean}\n"
        "targets:\n"
        "  - name: portal\n"
        "    deliver:\n"
        "      socrata:\n"
        + "".join(f"        {line}\n" for line in portal.target(ds).splitlines())
        + f"        mode: {mode}\n"
        + ri.replace("                ", "        ")
        + "        batch_rows: 2000\n"
        + extra
    )
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def execute(route_cli, path, *args):
    result = route_cli("execute", *ROUTE_ARGS, "--json", *args, str(path))
    report = json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
    return result, report


@pytest.mark.parametrize("keep_state", [True, False], ids=["kept-hashes", "state-folder-deleted"])
def test_a_second_sync_sends_only_the_changes_and_ends_exact(tmp_path, portal, route_cli, keep_state):
    ds = portal.create(CASES)
    first = source(np.arange(1, ROWS + 1))
    first.to_csv(tmp_path / "cases.csv", index=False)
    path = route_file(tmp_path, portal, ds)
    result, report = execute(route_cli, path)
    assert result.exit_code == 0, result.output
    target = report["targets"][0]
    assert (target["created"], target["updated"], target["deleted"]) == (ROWS, 0, 0)
    assert dataset_rows(portal, ds) == served(first)

    second, expected = changed_source()
    second.to_csv(tmp_path / "cases.csv", index=False)
    if not keep_state:
        shutil.rmtree(tmp_path / ".route")
    writes = portal.writes
    result, report = execute(route_cli, path)
    assert result.exit_code == 0, result.output
    target = report["targets"][0]
    assert {k: target[k] for k in expected} == expected
    assert target["details"]["unchanged"] == ROWS - 100 - 200
    assert target["details"]["sent"] == 300
    assert target["details"]["read_dataset"] is (not keep_state)
    assert dataset_rows(portal, ds) == served(second)  # every row, every value
    assert portal.writes - writes == 1 + 1  # one batch of 300 changes, one of 100 deletions

    # A replace of the same rows sends every row.
    other = portal.create(CASES, name="Cases copy")
    replaced, replace_report = execute(route_cli, route_file(tmp_path, portal, other, "replace", name="copy"))
    assert replaced.exit_code == 0, replaced.output
    sync_bytes = target["details"]["bytes_sent"]
    replace_bytes = replace_report["targets"][0]["details"]["bytes_sent"]
    assert 0 < sync_bytes < replace_bytes / 10

    # Nothing changed: nothing is sent.
    writes = portal.writes
    result, report = execute(route_cli, path)
    assert result.exit_code == 0, result.output
    target = report["targets"][0]
    assert (target["created"], target["updated"], target["deleted"]) == (0, 0, 0)
    assert target["details"]["unchanged"] == ROWS and target["details"]["read_dataset"] is False
    assert portal.writes == writes
    assert "20,000 rows unchanged, not sent" in route_cli("execute", *ROUTE_ARGS, str(path)).stdout


def test_a_killed_sync_run_again_ends_exact(tmp_path, portal, route_cli):
    ds = portal.create(CASES)
    first = source(np.arange(1, ROWS + 1))
    first.to_csv(tmp_path / "cases.csv", index=False)
    path = route_file(tmp_path, portal, ds, extra="        concurrency: 1\n")
    result, _ = execute(route_cli, path)
    assert result.exit_code == 0, result.output

    second, expected = changed_source()
    second.to_csv(tmp_path / "cases.csv", index=False)
    path.write_text(path.read_text().replace("batch_rows: 2000", "batch_rows: 20"), encoding="utf-8")
    writes = portal.writes
    portal.faults.delay(1, seconds=0.2, times=None, path="/resource/")  # 20 batches: 4 s at least
    kill_when(start(path), lambda: portal.writes >= writes + 3, sig=signal.SIGKILL)
    portal.faults.clear()
    rows = dataset_rows(portal, ds)
    assert rows != served(first) and rows != served(second)  # part of it arrived

    result, report = execute(route_cli, path)
    assert result.exit_code == 0, result.output
    target = report["targets"][0]
    assert target["details"]["read_dataset"] is True  # the hashes were dropped before the killed run sent
    assert target["updated"] + target["created"] < 300 and target["deleted"] == 100
    assert dataset_rows(portal, ds) == served(second)
    assert not list((tmp_path / ".route" / "tmp").glob("*"))  # the killed run's spool is gone


def test_the_guard_refuses_a_large_delete_before_sending_anything(tmp_path, portal, route_cli):
    ds = portal.create(CASES)
    ids = np.arange(1, 2001)
    source(ids).to_csv(tmp_path / "cases.csv", index=False)
    path = route_file(tmp_path, portal, ds)
    assert execute(route_cli, path)[0].exit_code == 0
    # 60 % of the rows leave, and as many new ones come: a replace would keep the size, a sync deletes.
    smaller = source(np.concatenate([ids[:800], np.arange(5001, 6201)]))
    smaller.to_csv(tmp_path / "cases.csv", index=False)
    writes = portal.writes
    result = route_cli("execute", *ROUTE_ARGS, str(path))
    assert result.exit_code == 1
    assert (
        "sync.yaml:9: target 'portal': socrata sync to dataset \"Cases\" "
        f"({ds}): stopped before syncing: it would delete 1,200 of the dataset's 2,000 rows (60%, more than "
        "max_shrink 50%). Nothing was changed." in " ".join(result.stderr.split())
    )
    assert portal.writes == writes and dataset_rows(portal, ds) == served(source(ids))

    result, report = execute(route_cli, path, "--force")
    assert result.exit_code == 0, result.output
    assert report["targets"][0]["deleted"] == 1200 and report["targets"][0]["created"] == 1200
    assert dataset_rows(portal, ds) == served(smaller)


def test_a_dry_run_changes_nothing_and_shows_the_counts(tmp_path, portal, route_cli):
    ds = portal.create(CASES)
    source(np.arange(1, ROWS + 1)).to_csv(tmp_path / "cases.csv", index=False)
    path = route_file(tmp_path, portal, ds)
    assert execute(route_cli, path)[0].exit_code == 0
    before = dataset_rows(portal, ds)
    second, expected = changed_source()
    second.to_csv(tmp_path / "cases.csv", index=False)
    writes = portal.writes

    dry = route_cli("execute", *ROUTE_ARGS, "--dry-run", str(path))
    assert dry.exit_code == 0, dry.output
    line = next(x for x in dry.stdout.splitlines() if x.startswith("portal "))
    assert line.split()[:7] == ["portal", "socrata", "20,000", "100", "200", "100", "0"]
    text = " ".join(dry.stdout.split())
    assert f'sync "Cases" ({ds}) on {portal.url}, leaving 20,000 rows (19,700 unchanged, not sent)' in text
    assert "create C-020001, C-020002, C-020003" in text and "delete C-000008, C-000208" in text
    assert "update C-000004, C-000006, C-000204" in text

    _, report = execute(route_cli, path, "--dry-run")
    details = report["targets"][0]["details"]
    assert {k: details[k] for k in ("create", "update", "delete", "unchanged")} == {
        "create": 100,
        "update": 200,
        "delete": 100,
        "unchanged": 19_700,
    }
    assert portal.writes == writes and dataset_rows(portal, ds) == before


def test_no_row_identifier_is_an_error_at_the_mode_line(tmp_path, portal, route_cli):
    ds = portal.create(CASES)
    source(np.arange(1, 11)).to_csv(tmp_path / "cases.csv", index=False)
    path = route_file(tmp_path, portal, ds)
    path.write_text(path.read_text().replace("        row_identifier: case_id\n", ""), encoding="utf-8")
    result = route_cli("execute", *ROUTE_ARGS, str(path))
    assert result.exit_code == 2
    assert f"{path}:13:15: targets[0].deliver.socrata.mode: mode sync needs `row_identifier`" in result.stderr
    assert portal.rows(ds) == []


# -- the delivery on its own ------------------------------------------------------------------------


def sync(portal, ds, **more) -> dict:
    return {"domain": portal.url, "dataset": ds, "mode": "sync", "row_identifier": "case_id", **more}


def test_the_last_row_of_a_repeated_key_wins_across_batches(portal, deliver):
    ds = portal.create(CASES[:3])
    opts = sync(portal, ds, batch_rows=1)
    base = {"case_id": ["A", "B", "C"], "status": ["x", "y", "z"], "amount": [1.0, 2.0, 3.0]}
    deliver(opts, frame(base))
    # B comes twice: first changed, then as it was; A comes twice: first as it was, then changed.
    again = frame({"case_id": ["A", "B"], "status": ["x", "changed"], "amount": [1.0, 2.0]})
    later = frame({"case_id": ["B", "A", "C"], "status": ["y", "new", "z"], "amount": [2.0, 1.0, 3.0]}, first_line=4)
    run = deliver(opts, again, later)
    assert {r["case_id"]: r["status"] for r in portal.rows(ds)} == {"A": "new", "B": "y", "C": "z"}
    assert run.result.details["unchanged"] == 2  # A's and C's first rows


def test_another_writer_is_noticed_and_undone(portal, deliver):
    columns = CASES[:3]
    ds = portal.create(columns)
    rows = frame({"case_id": ["A", "B", "C"], "status": ["x", "y", None], "amount": [1.0, 2.5, None]})
    opts = sync(portal, ds)
    deliver(opts, rows)
    portal.post(f"/resource/{ds}.json", [{"case_id": "B", "amount": "7"}, {"case_id": "D", "status": "extra"}])
    run = deliver(opts, rows)
    assert run.result.details["read_dataset"] is True
    assert (run.result.created, run.result.updated, run.result.deleted) == (0, 1, 1)
    assert portal.rows(ds, **{"$order": "case_id"}) == [
        {"case_id": "A", "status": "x", "amount": "1"},
        {"case_id": "B", "status": "y", "amount": "2.5"},
        {"case_id": "C"},
    ]
    # A value that becomes null is a change too.
    run = deliver(opts, frame({"case_id": ["A", "B", "C"], "status": ["x", None, None], "amount": [1.0, 2.5, None]}))
    assert (run.result.updated, run.result.details["unchanged"]) == (1, 2)
    assert portal.rows(ds, **{"$where": "case_id = 'B'"}) == [{"case_id": "B", "amount": "2.5"}]


def test_a_route_with_no_rows_would_empty_the_dataset_and_stops(portal, deliver):
    ds = portal.create(CASES[:3])
    opts = sync(portal, ds)
    deliver(opts, frame({"case_id": ["A", "B"], "status": ["x", "y"], "amount": [1.0, 2.0]}))
    with pytest.raises(DeliveryFailed) as err:
        deliver(opts)
    assert "it would empty the dataset (it has 2 rows and the route delivers none)" in str(err.value)
    assert len(portal.rows(ds)) == 2
    run = deliver({**opts, "allow_empty": True})
    assert run.result.deleted == 2 and portal.rows(ds) == []


def test_sync_needs_every_column_of_the_dataset(portal, deliver):
    ds = portal.create(CASES[:3])
    with pytest.raises(DeliveryFailed) as err:
        deliver(sync(portal, ds), frame({"case_id": ["A"], "status": ["x"]}))
    assert 'mode sync makes the dataset exactly the route\'s rows, but the route has no column for "Amount"' in str(
        err.value
    )


def test_a_sync_that_failed_part_way_says_so_and_the_next_run_ends_exact(portal, deliver):
    ds = portal.create(CASES[:3])
    opts = sync(portal, ds, batch_rows=2, concurrency=1, retries=0)
    ids = [f"K{i:02d}" for i in range(20)]
    deliver(opts, frame({"case_id": ids, "status": ["a"] * 20, "amount": [1.0] * 20}))
    changed = frame({"case_id": ids[:16], "status": ["a"] * 10 + ["b"] * 6, "amount": [1.0] * 16})
    portal.faults.fail(2, status=500)  # the second batch of the six changes
    with pytest.raises(DeliveryFailed) as err:
        deliver(opts, changed)
    message = " ".join(str(err.value).split())
    assert "Arrived for certain: 2 rows" in message
    assert "Of the rows not sent, 10 were unchanged (the dataset has them already)." in message
    assert "Mode sync is safe to repeat" in message
    run = deliver(opts, changed)
    assert run.result.details["read_dataset"] is True and run.result.deleted == 4
    assert {r["case_id"]: r["status"] for r in portal.rows(ds)} == dict(zip(ids[:16], ["a"] * 10 + ["b"] * 6))


def test_numbers_spelled_with_an_exponent_are_unchanged_after_the_hashes_are_rebuilt(tmp_path, portal, route_cli):
    """Text numbers go on the wire as spelled ("1e3"); read back from the dataset they may be spelled
    otherwise ("1000"). Both are one number: a sync whose kept hashes were lost sends nothing."""
    ds = portal.create(CASES)
    amounts = ["1e3", "2.50E+2", "1.5e-3", "-4E0", "7", "10.0", "0.25", ""]
    rows = pd.DataFrame(
        {
            "case_id": [f"C-{i}" for i in range(len(amounts))],
            "status": "open",
            "amount": amounts,
            "opened": "2024-01-01",
            "closed": "false",
        }
    )
    rows.to_csv(tmp_path / "cases.csv", index=False)
    path = route_file(tmp_path, portal, ds)
    path.write_text(path.read_text().replace("cast: {amount: number, ", "cast: {"), encoding="utf-8")
    result, report = execute(route_cli, path)
    assert result.exit_code == 0, result.output
    assert report["targets"][0]["created"] == len(amounts)
    shutil.rmtree(tmp_path / ".route")
    writes = portal.writes
    result, report = execute(route_cli, path)
    assert result.exit_code == 0, result.output
    target = report["targets"][0]
    assert target["details"]["read_dataset"] is True
    assert (target["created"], target["updated"], target["deleted"]) == (0, 0, 0), target
    assert portal.writes == writes
