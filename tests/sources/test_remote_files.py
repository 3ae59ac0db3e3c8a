"""Remote files for the file sources, against real servers on 127.0.0.1 (tests/remotekit.py):
HTTP, SFTP, an S3-compatible store (moto) and FTP. Routes run through the `route` command; the
file picked is named in the run's log and journal, and in the source's details."""

from __future__ import annotations

import io
import logging
import os
import threading
import time
import zipfile
from pathlib import Path

import pytest
from conftest import read_jsonl
from killkit import execute, held_for, kill_when, start
from remotekit import PASSWORD, USER, FtpFiles, HttpFiles, S3Files, S3WithKeys, SftpFiles, set_mtime
from sourcekit import logged, make_ctx, rows

from pipeline.basics.errors import OptionError, RunFailed
from pipeline.sources.csv import CsvSource
from pipeline.sources.excel import ExcelSource
from pipeline.sources.json import JsonSource

pytest.importorskip("fsspec")

T0 = 1_700_000_000
# Written with mtimes that do not follow the names: the newest is a.csv, the last name is c.csv.
FILES = {"a.csv": ("id,city\n1,Hartford\n2,Salem\n", T0 + 300), "b.csv": ("id,city\n3,Dover\n", T0 + 100)}
FILES["c.csv"] = ("id,city\n4,Troy\n", T0 + 200)
NEWEST = [{"id": "1", "city": "Hartford"}, {"id": "2", "city": "Salem"}]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Every server on one folder tree (S3 has its own bucket); stopped at the end of the module."""
    root = tmp_path_factory.mktemp("served")
    servers = {
        "http": HttpFiles(root),
        "sftp": SftpFiles(root),
        "ftp": FtpFiles(root),
    }
    s3 = pytest.importorskip("s3fs") and S3Files()
    servers["s3"] = s3
    yield root, servers
    for server in servers.values():
        server.stop()


def put(served, protocol: str, folder: str, files: dict[str, tuple[str | bytes, float]]) -> str:
    """Write `files` into `folder` on the server; the URL of the folder (with a trailing /)."""
    root, servers = served
    server = servers[protocol]
    if protocol == "s3":
        for name, (text, when) in files.items():
            server.put(f"{folder}/{name}", text.encode() if isinstance(text, str) else text, modified=when)
        return server.url(f"{folder}/")
    (root / folder).mkdir(parents=True, exist_ok=True)
    for name, (text, when) in files.items():
        path = root / folder / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        set_mtime(path, when)
    return server.url(f"{folder}/")


def auth_yaml(served, protocol: str) -> str:
    if protocol == "s3":
        s3 = served[1]["s3"]
        return (
            "{access_key_id: '${S3_KEY_ID}', secret_access_key: '${S3_SECRET}', "
            f"endpoint_url: '{s3.endpoint}', region: us-east-1}}"
        )
    if protocol == "http":
        return "{}"
    return "{username: '${FILES_USER}', password: '${FILES_PASSWORD}'}"


ENV = {"FILES_USER": USER, "FILES_PASSWORD": PASSWORD, "S3_KEY_ID": S3Files.KEY_ID, "S3_SECRET": S3Files.SECRET}


def route_text(path: str, auth: str, extra: str = "") -> str:
    return f"""
name: remote
source:
  csv:
    path: '{path}'
    auth: {auth}
    {extra}
targets:
  - name: out
    deliver:
      jsonl: {{path: out/rows.jsonl}}
"""


def state_text(tmp_path: Path) -> str:
    """Everything the run left in the state folder (history, journals, logs, reports), as text."""
    out = []
    for p in sorted((tmp_path / ".route").rglob("*")):
        if p.is_file():
            out.append(p.read_bytes().decode("utf-8", "replace"))
    return "\n".join(out)


# -- picking the newest file on every server -----------------------------------------------------


@pytest.mark.parametrize("protocol", ["http", "sftp", "s3", "ftp"])
def test_a_route_picks_the_newest_file_on_each_server_and_delivers_it(
    served, protocol, tmp_path, write_route, route_cli
):
    folder = put(served, protocol, f"newest-{protocol}", FILES)
    auth = "" if protocol == "http" else f"auth: {auth_yaml(served, protocol)}"
    text = route_text(folder + "*.csv", "{}", "pick: newest").replace("auth: {}", auth)
    result = route_cli("execute", str(write_route(text)), env=ENV)
    assert result.exit_code == 0, result.output
    assert read_jsonl(tmp_path / "out/rows.jsonl") == NEWEST
    chosen = folder + "a.csv"
    state = state_text(tmp_path)
    assert f"picked {chosen}, the newest of 3 files (by modification time)" in state  # the run's log
    assert f'"src":"{chosen}"' in state  # the journal: the file the rows came from
    assert f"source: read {chosen}, picked from 3 files" in result.output  # the summary
    assert PASSWORD not in state + result.output and S3Files.SECRET not in state + result.output


def test_pick_newest_by_a_date_in_the_name(served, tmp_path):
    folder = put(
        served,
        "sftp",
        "by-name",
        {
            "sales-20240131.csv": ("id\n1\n", T0 + 900),
            "sales-20240315.csv": ("id\n2\n", T0),
            "notes.csv": ("id\n3\n", T0 + 999),
        },
    )
    ctx = make_ctx(tmp_path)
    options = {
        "path": folder + "*.csv",
        "auth": {"username": USER, "password": PASSWORD},
        "pick": {"newest_by": "name", "pattern": r"sales-(?P<date>\d{8})"},
    }
    source = CsvSource(options, ctx)
    assert rows(list(source.chunks())) == [(2, {"id": "2"})]
    assert source.details == {
        "matched": 3,
        "picked": folder + "sales-20240315.csv",
        "files": [folder + "sales-20240315.csv"],
    }
    # a date written day first: format says how to read it
    options["pick"] = {"newest_by": "name", "pattern": r"(?P<date>\d{8})", "format": "%Y%m%d"}
    assert rows(list(CsvSource(options, make_ctx(tmp_path)).chunks())) == [(2, {"id": "2"})]


def test_pick_all_is_the_default_for_a_glob_and_pick_one_refuses_two_matches(served, tmp_path):
    folder = put(served, "ftp", "one", {"x.csv": ("id\n1\n", T0), "y.csv": ("id\n2\n", T0 + 1)})
    auth = {"username": USER, "password": PASSWORD}
    every = CsvSource({"path": folder + "*.csv", "auth": auth}, make_ctx(tmp_path))
    assert [r[1]["id"] for r in rows(list(every.chunks()))] == ["1", "2"]
    one = CsvSource({"path": folder + "*.csv", "auth": auth, "pick": "one"}, make_ctx(tmp_path))
    with pytest.raises(RunFailed) as failed:
        list(one.chunks())
    assert str(failed.value) == (
        f"csv source: {folder}*.csv matches 2 files ({folder}x.csv, {folder}y.csv), and pick: one reads "
        f"exactly one; narrow the path, or set pick: newest"
    )
    # the same on this machine
    (tmp_path / "in").mkdir()
    for name in ("x.csv", "y.csv"):
        (tmp_path / "in" / name).write_text("id\n1\n")
    local = CsvSource({"path": "in/*.csv", "pick": "one"}, make_ctx(tmp_path))
    with pytest.raises(
        RunFailed, match=r"^csv source: in/\*.csv matches 2 files \(in/x.csv, in/y.csv\), and pick: one"
    ):
        list(local.chunks())
    assert rows(list(CsvSource({"path": "in/x.csv", "pick": "one"}, make_ctx(tmp_path)).chunks())) == [(2, {"id": "1"})]


# -- a dropped connection ---------------------------------------------------------------------------


def test_a_connection_dropped_mid_file_is_retried_from_where_it_stopped(served, tmp_path):
    root, servers = served
    http = servers["http"]
    body = "id,text\n" + "".join(f"{i},{'x' * 50}\n" for i in range(20_000))
    put(served, "http", "drop", {"big.csv": (body, T0)})
    http.drop_once.add("/drop/big.csv")
    http.requests.clear()
    ctx = make_ctx(tmp_path)
    source = CsvSource({"path": http.url("drop/big.csv")}, ctx)
    got = rows(list(source.chunks()))
    assert len(got) == 20_000 and got[-1] == (20_001, {"id": "19999", "text": "x" * 50})
    (warning,) = logged(ctx, logging.WARNING)
    assert warning.startswith(f"csv source: reading {http.url('drop/big.csv')}: the connection dropped at byte ")
    assert "connecting again" in warning or "retrying in" in warning
    ranges = [r for m, p, r in http.requests if m == "GET" and r]
    assert len(ranges) == 1 and ranges[0].startswith("bytes=") and ranges[0] != "bytes=0-"  # resumed, not restarted


# -- failures a user can cause ------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["sftp", "ftp", "http"])
def test_wrong_credentials_give_one_clean_message_without_the_secret(
    served, protocol, tmp_path, write_route, route_cli, tmp_path_factory
):
    wrong = "Wr0ng-Passw0rd-77aa"
    if protocol == "http":  # a server of its own that asks for basic auth
        http = HttpFiles(tmp_path_factory.mktemp("locked"), auth=(USER, PASSWORD))
        served_url, auth, stop = http.url("x.csv"), "{username: reader, password: '${FILES_PASSWORD}'}", http.stop
    else:
        served_url, auth, stop = put(served, protocol, "creds", {"x.csv": ("id\n1\n", T0)}) + "x.csv", None, None
        auth = "{username: '${FILES_USER}', password: '${FILES_PASSWORD}'}"
    try:
        route = write_route(route_text(served_url, auth))
        result = route_cli("execute", str(route), env={**ENV, "FILES_PASSWORD": wrong})
    finally:
        if stop:
            stop()
    assert result.exit_code != 0
    assert f"csv source: 127.0.0.1 refused the credentials for {served_url} (" in result.output
    assert "Traceback" not in result.output
    everything = result.output + state_text(tmp_path)
    assert wrong not in everything and PASSWORD not in everything


def test_a_password_in_the_url_is_never_shown(served, tmp_path, write_route, route_cli):
    url = served[1]["sftp"].url("nowhere/x.csv", user=f"{USER}:{PASSWORD}")
    result = route_cli("execute", str(write_route(route_text(url, "{}").replace("auth: {}", ""))))
    assert result.exit_code != 0
    shown = served[1]["sftp"].url("nowhere/x.csv", user=USER)
    assert f"csv source: file not found: {shown}" in result.output
    assert PASSWORD not in result.output + state_text(tmp_path)


def test_unreachable_hosts_and_missing_files_name_the_url(served, tmp_path):
    auth = {"username": USER, "password": PASSWORD}
    cases = [
        (
            {"path": "sftp://127.0.0.1:1/x.csv", "auth": auth},
            "csv source: cannot reach 127.0.0.1 for sftp://127.0.0.1:1/x.csv: ",
        ),
        ({"path": "http://127.0.0.1:1/x.csv"}, "csv source: cannot reach 127.0.0.1 for http://127.0.0.1:1/x.csv: "),
        (
            {"path": served[1]["http"].url("missing.csv")},
            "csv source: file not found: " + served[1]["http"].url("missing.csv"),
        ),
        (
            {"path": served[1]["ftp"].url("missing.csv"), "auth": auth},
            "csv source: file not found: " + served[1]["ftp"].url("missing.csv"),
        ),
    ]
    for options, message in cases:
        with pytest.raises(RunFailed) as failed:
            list(CsvSource(options, make_ctx(tmp_path)).chunks())
        assert str(failed.value).startswith(message), str(failed.value)


def test_options_that_do_not_fit_are_refused_when_the_route_is_checked(tmp_path):
    ctx = make_ctx(tmp_path)
    with pytest.raises(OptionError, match="auth goes with a remote path"):
        CsvSource({"path": "in.csv", "auth": {"password": "abcd1234"}}, ctx)
    with pytest.raises(OptionError, match=r"auth: access_key_id does not go with sftp://"):
        CsvSource({"path": "sftp://h/x.csv", "auth": {"access_key_id": "k"}}, ctx)
    with pytest.raises(OptionError, match="route reads files over"):
        CsvSource({"path": "gopher://h/x.csv"}, ctx)
    with pytest.raises(OptionError, match="credentials would travel in clear text over http://; use https://"):
        CsvSource({"path": "http://files.example.org/x.csv", "auth": {"username": "u", "password": "abcd1234"}}, ctx)
    with pytest.raises(OptionError, match="after_read cannot move or delete a file read over http"):
        CsvSource({"path": "https://h/x.csv", "after_read": {"delete": True}}, ctx)
    with pytest.raises(OptionError, match="the excel source reads one file"):
        ExcelSource({"path": "in/*.xlsx", "pick": "all"}, ctx)


# -- after_read ---------------------------------------------------------------------------------------


def test_after_read_moves_or_deletes_only_after_a_successful_run(served, tmp_path, write_route, route_cli):
    root, _ = served
    folder = put(served, "sftp", "after", {"good.csv": ("id\n1\n", T0)})
    auth = auth_yaml(served, "sftp")
    # a failed run (a ragged row over max_rejects: 0) leaves the file where it was
    bad = put(served, "sftp", "after-bad", {"bad.csv": ("id\n1\n2,3\n", T0)})
    failing = route_text(bad + "*.csv", auth, "after_read: {delete: true}") + "on_error: {max_rejects: 0}\n"
    result = route_cli("execute", str(write_route(failing)), env=ENV)
    assert result.exit_code != 0
    assert (root / "after-bad/bad.csv").exists()
    # a good run moves it (a folder relative to the file's own, made when missing)
    moving = route_text(folder + "*.csv", auth, "after_read: {move_to: archive}")
    result = route_cli("execute", str(write_route(moving)), env=ENV)
    assert result.exit_code == 0, result.output
    assert not (root / "after/good.csv").exists() and (root / "after/archive/good.csv").read_text() == "id\n1\n"
    assert f"moved {folder}good.csv to {folder}archive/good.csv" in state_text(tmp_path)
    # and deletes it, when asked: here on S3
    s3 = served[1]["s3"]
    s3.put("del/gone.csv", b"id\n5\n")
    deleting = route_text(s3.url("del/gone.csv"), auth_yaml(served, "s3"), "after_read: {delete: true}")
    result = route_cli("execute", str(write_route(deleting)), env=ENV)
    assert result.exit_code == 0, result.output
    assert "del/gone.csv" not in s3.keys()


def test_after_read_moves_into_an_absolute_folder_on_an_ftp_server(served, tmp_path):
    root, _ = served
    folder = put(served, "ftp", "ftp-after", {"f.csv": ("id\n1\n", T0)})
    options = {
        "path": folder + "*.csv",
        "auth": {"username": USER, "password": PASSWORD},
        "after_read": {"move_to": "/ftp-archive"},
    }
    source = CsvSource(options, make_ctx(tmp_path))
    list(source.chunks())
    assert (root / "ftp-after/f.csv").exists()  # reading moves nothing
    source.on_delivered()
    assert not (root / "ftp-after/f.csv").exists() and (root / "ftp-archive/f.csv").read_text() == "id\n1\n"


def test_after_read_on_this_machine_and_never_with_limit(tmp_path, write_route, route_cli):
    route = write_route(
        route_text("in/*.csv", "{}", "after_read: {move_to: done}").replace("auth: {}", ""),
        **{"in__a.csv": "id\n1\n2\n"},
    )
    result = route_cli("execute", str(route), "--limit", "1")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "in/a.csv").exists()
    result = route_cli("execute", str(route))
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "in/a.csv").exists() and (tmp_path / "done/a.csv").exists()


# -- excel, json and zip members --------------------------------------------------------------------


def test_a_remote_workbook_is_downloaded_into_the_state_folder_and_removed(served, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    book.active.append(["id", "city"])
    book.active.append([7, "Salem"])
    data = io.BytesIO()
    book.save(data)
    folder = put(served, "http", "books", {"old.xlsx": (b"not a workbook", T0), "new.xlsx": (data.getvalue(), T0 + 5)})
    ctx = make_ctx(tmp_path)
    source = ExcelSource({"path": folder + "*.xlsx", "pick": "newest"}, ctx)
    got = rows(list(source.chunks()))
    assert got == [(2, {"id": 7, "city": "Salem"})]
    assert source.details["picked"] == folder + "new.xlsx"
    source.close()
    assert list((tmp_path / ".route/downloads").iterdir()) == []
    assert f"excel source: downloaded {folder}new.xlsx to read it" in logged(ctx, logging.INFO)


def test_json_lines_over_sftp_and_a_zip_member_over_http(served, tmp_path):
    folder = put(served, "sftp", "json", {"a.jsonl": ('{"id": 1}\n{"id": 2}\n', T0)})
    source = JsonSource(
        {"path": folder + "a.jsonl", "auth": {"username": USER, "password": PASSWORD}}, make_ctx(tmp_path)
    )
    assert rows(list(source.chunks())) == [(1, {"id": "1"}), (2, {"id": "2"})]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("inside/data.csv", "id,city\n9,Bath\n")
    url = put(served, "http", "zipped", {"all.zip": (archive.getvalue(), T0)}) + "all.zip"
    ctx = make_ctx(tmp_path)
    source = CsvSource({"path": f"zip://inside/data.csv::{url}"}, ctx)
    chunks = list(source.chunks())
    assert rows(chunks) == [(2, {"id": "9", "city": "Bath"})]
    assert chunks[0].attrs["source"] == f"zip://inside/data.csv::{url}"
    # a glob inside the archive, picked by the date in the member's name
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("d/x-20240301.csv", "id\n3\n")
        z.writestr("d/x-20240101.csv", "id\n1\n")
        z.writestr("d/readme.txt", "not data")
    url = put(served, "http", "zipped", {"dated.zip": (archive.getvalue(), T0)}) + "dated.zip"
    source = CsvSource({"path": f"zip://d/*.csv::{url}", "pick": {"newest_by": "name"}}, make_ctx(tmp_path))
    assert rows(list(source.chunks())) == [(2, {"id": "3"})]
    assert source.details["picked"] == f"zip://d/x-20240301.csv::{url}" and source.details["matched"] == 2


def test_a_remote_file_is_read_in_blocks_not_whole(served, tmp_path):
    """The reader never asks for more than a block at a time (the bench measures the memory)."""
    root, servers = served
    put(served, "sftp", "blocks", {"b.csv": ("id\n" + "1\n" * 3_000_000, T0)})
    source = CsvSource(
        {"path": servers["sftp"].url("blocks/b.csv"), "auth": {"username": USER, "password": PASSWORD}},
        make_ctx(tmp_path, chunk_rows=500_000),
    )
    sizes = []
    found = source.files()[0]
    with found.open() as stream:
        while block := stream.read(1 << 20):
            sizes.append(len(block))
    assert sum(sizes) == os.path.getsize(root / "blocks/b.csv") and max(sizes) == 1 << 20


@pytest.mark.filterwarnings("ignore:.*bcrypt.kdf\\(\\) called with only:UserWarning")
def test_an_sftp_login_with_a_key_file(tmp_path, tmp_path_factory):
    asyncssh = pytest.importorskip("asyncssh")
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "id_route"
    # few bcrypt rounds: the default 128 make each decryption of the key take about a second
    key_file.write_bytes(key.export_private_key("openssh", passphrase="Key-Phrase-4321", rounds=2))
    root = tmp_path_factory.mktemp("keyed")
    (root / "k.csv").write_text("id\n8\n")
    server = SftpFiles(root, authorized=key.export_public_key("openssh").decode())
    try:
        auth = {"username": USER, "key_file": str(key_file), "passphrase": "Key-Phrase-4321"}
        source = CsvSource({"path": server.url("k.csv"), "auth": auth}, make_ctx(tmp_path))
        assert rows(list(source.chunks())) == [(2, {"id": "8"})]
        wrong = {"username": USER, "key_file": str(key_file), "passphrase": "Not-The-Phrase-99"}
        with pytest.raises(RunFailed) as failed:
            list(CsvSource({"path": server.url("k.csv"), "auth": wrong}, make_ctx(tmp_path)).chunks())
        assert "Not-The-Phrase-99" not in str(failed.value)
        assert str(failed.value).startswith(
            f"csv source: cannot use the key file to log in for {server.url('k.csv')} ("
        )
    finally:
        server.stop()


def test_wrong_s3_keys_give_one_clean_message_without_the_secret(tmp_path, write_route, route_cli):
    store = S3WithKeys()
    try:
        store.client.put_object(Bucket=store.bucket, Key="in/x.csv", Body=b"id\n1\n")
        auth = (
            "{access_key_id: '${S3_KEY_ID}', secret_access_key: '${S3_SECRET}', "
            f"endpoint_url: '{store.endpoint}', region: us-east-1}}"
        )
        # one file: moto checks the signature of a listing's query wrongly, whatever the keys
        route = write_route(route_text(f"s3://{store.bucket}/in/x.csv", auth))
        good = route_cli("execute", str(route), env={"S3_KEY_ID": store.key_id, "S3_SECRET": store.secret})
        assert good.exit_code == 0, good.output
        wrong = "Wr0ng-S3-Secret-5150"
        result = route_cli("execute", str(route), env={"S3_KEY_ID": store.key_id, "S3_SECRET": wrong})
    finally:
        store.stop()
    assert result.exit_code != 0
    where = store.endpoint.removeprefix("http://")
    assert (
        f"csv source: the S3 store at {where} refused the credentials for s3://{store.bucket}/in/x.csv ("
        in result.output
    )
    everything = result.output + state_text(tmp_path)
    assert wrong not in everything and store.secret not in everything and "Traceback" not in result.output


def test_a_run_killed_while_it_downloads_a_workbook_leaves_no_download_after_the_next(tmp_path):
    """kill -9 while a remote workbook is half downloaded: the run's journal held the download, so
    the next run of the route removes it, then reads the workbook whole and delivers its rows."""
    openpyxl = pytest.importorskip("openpyxl")

    book = openpyxl.Workbook()
    book.active.append(["id", "city"])
    for i in range(1, 2_001):
        book.active.append([i, f"City {i}"])
    (tmp_path / "served").mkdir()
    book.save(tmp_path / "served" / "book.xlsx")
    served = HttpFiles(tmp_path / "served")
    served.stall.add("/book.xlsx")
    try:
        route = tmp_path / "route.yaml"
        route.write_text(
            f"name: remote-book\nsource:\n  excel: {{path: '{served.url('book.xlsx')}'}}\ntargets:\n"
            "  - name: out\n    deliver: {jsonl: {path: out/rows.jsonl}}\n"
        )
        downloads = tmp_path / ".route" / "downloads"

        def downloading() -> bool:
            return downloads.exists() and any(downloads.glob("download-*"))

        proc = start(route)
        kill_when(proc, held_for(downloading, 0.3))
        assert proc.returncode == -9 and list(downloads.glob("download-*"))  # killed mid-download
        served.stall.clear()
        served.released.set()
        again = execute(route)
        assert again.returncode == 0, again.stderr
        assert list(downloads.glob("download-*")) == []
        assert len(read_jsonl(tmp_path / "out/rows.jsonl")) == 2_000
    finally:
        served.stop()
