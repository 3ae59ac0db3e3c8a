"""The local portal as the tests use it: one class, `ServedPortal`, served on 127.0.0.1 over real HTTP.

    portal = ServedPortal(tmp_path / "portal.sqlite")                 # LocalPortal.serve in a thread
    portal = ServedPortal(path, process=True, args=("--max-body", "8MB"))  # `route portal serve` process
    ff = portal.create()                                               # a dataset (CASES), its 4x4
    portal.post(f"/resource/{ff}.json", [{"case_id": "A"}])           # as USER, over HTTP
    portal.rows(ff)  ->  [{"case_id": "A"}]                            # SODA, in :id order
    portal.close()                                                     # or `with ServedPortal(...) as portal:`

The fixtures in tests/conftest.py make them: `portal` (one per test), `shared_portal` (one per module)
and `portal_process` (a factory; every process is stopped at teardown).

Both ways take the same accounts: USER/SECRET, and the API key KEY_ID/KEY_SECRET. A route reaches the
portal with `portal.target(ds)` in its socrata options and `*ROUTE_ARGS` on its command line (the
password travels as ${PORTAL_PW}, never in the route file).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import requests

from pipeline.portal import LocalPortal

USER, SECRET = "publisher", "Pw-7f3Kq-portalkit-9zX"  # distinctive: tests check that it never shows
KEY_ID, KEY_SECRET = "key-id-77", "key-secret-portalkit-88"  # an API key id and its secret
USERS = {USER: SECRET, KEY_ID: KEY_SECRET}
AUTH = (USER, SECRET)  # for requests' auth=

PASSWORD_VAR = "PORTAL_PW"
AUTH_YAML = f'auth: {{username: {USER}, password: "${{{PASSWORD_VAR}}}"}}'  # a route's socrata auth
ROUTE_ARGS = ("--set", f"{PASSWORD_VAR}={SECRET}")  # what `route execute` needs to fill it in

ROUTE = [sys.executable, "-m", "pipeline.cli"]  # the `route` command, in a process of its own
ALL = "1000000000"  # a $limit that reads every row

CASES = [
    {"fieldName": "case_id", "name": "Case ID", "dataTypeName": "text"},
    {"fieldName": "status", "name": "Status", "dataTypeName": "text"},
    {"fieldName": "amount", "name": "Amount", "dataTypeName": "number"},
    {"fieldName": "opened", "name": "Opened", "dataTypeName": "calendar_date"},
    {"fieldName": "closed", "name": "Closed", "dataTypeName": "checkbox"},
]


class ServedPortal:
    """A LocalPortal on the SQLite file `data`, served on 127.0.0.1 on a free port.

    process=False: served from this process (LocalPortal.serve in a thread); `local`, `faults` and
    `writes` are the served portal's own. process=True: `python -m pipeline.cli portal serve` in a
    process of its own (its URL read from its first line); `args` are more command-line options;
    `stop()` ends it with SIGTERM, `kill(sig)` with any signal, and `stdout`/`stderr` then hold all
    it printed; `local` is a second LocalPortal on the same file, opened in this process.

    data=None (a process only): no --data; `args` say where (`--state DIR`), from the folder `cwd`.
    users: the accounts (default USER and the API key); {} serves an open portal. faults: a fault
    spec (see pipeline.portal.faults). tls: https with a self-signed certificate. `limits` go to
    LocalPortal.serve (max_body, read_timeout); in a process, give them as args.
    """

    auth = AUTH  # USER's credentials, as requests takes them
    route_args = ROUTE_ARGS  # `route execute` options that give the route USER's password

    def __init__(
        self,
        data: str | Path | None,
        *,
        process: bool = False,
        args: tuple[str, ...] | list[str] = (),
        cwd: str | Path | None = None,
        users: dict[str, str] | None = None,
        faults: str | None = None,
        tls: bool = False,
        **limits,
    ):
        if data is None and not process:
            raise TypeError("a portal served from this process needs its data file")
        self.data = None if data is None else Path(data)
        if self.data is not None:
            self.data.parent.mkdir(parents=True, exist_ok=True)
        self.cwd = cwd
        self.users = dict(USERS if users is None else users)
        self.process = process
        self.proc: subprocess.Popen | None = None
        self.server = None
        self._printed = {"out": [], "err": []}
        self._local: LocalPortal | None = None
        self._closed = False
        if process:
            if limits:
                raise TypeError(f"give {sorted(limits)} as command-line args to a portal process")
            self._start_process(list(args), faults, tls)
            self.verify: bool | str = False
        else:
            if args:
                raise TypeError("command-line args are for a portal process (process=True)")
            self._local = LocalPortal(self.data, users=self.users, faults=faults)
            self.server = self._local.serve(host="127.0.0.1", port=0, tls=tls, **limits)
            self.url = self.server.url
            self.verify = self.server.cert_path or True
        self.domain = self.url.split("://", 1)[1]  # host:port, as sodapy and socrata-py take it
        self.host, _, port = self.domain.rpartition(":")
        self.port = int(port)
        self.session = self._session(auth=AUTH)

    def _start_process(self, args: list[str], faults: str | None, tls: bool) -> None:
        command = [*ROUTE, "portal", "serve", "--port", "0"]
        if self.data is not None:
            command += ["--data", str(self.data)]
        for name, secret in self.users.items():
            command += ["--user", f"{name}:{secret}"]
        if faults:
            command += ["--faults", faults]
        if tls:
            command.append("--tls")
        self.proc = subprocess.Popen(
            [*command, *args],
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        first = self.proc.stdout.readline()
        if not first.startswith("Local portal at "):
            self.proc.kill()
            self.proc.wait(timeout=20)
            raise AssertionError(
                f"route portal serve did not start: {first}{self.proc.stdout.read()}{self.proc.stderr.read()}"
            )
        self.url = first.split()[3]
        # Read what it prints as it prints it: a full pipe would stop the portal, and communicate()
        # would miss what readline() has already buffered.
        self._printed = {"out": [first], "err": []}
        self._readers = [
            threading.Thread(target=_drain, args=(stream, self._printed[key]), daemon=True)
            for key, stream in (("out", self.proc.stdout), ("err", self.proc.stderr))
        ]
        for reader in self._readers:
            reader.start()

    # ---- what is served

    @property
    def local(self) -> LocalPortal:
        """The LocalPortal: the served one, or (process=True) one on the same file in this process."""
        if self._local is None:
            self._local = LocalPortal(self.data)
        return self._local

    @property
    def faults(self):
        if self.process:
            raise TypeError("a portal process has its faults on its command line: ServedPortal(faults=SPEC)")
        return self.local.faults

    @property
    def writes(self) -> int:
        """Writes (POST, PUT, PATCH, DELETE) the portal has seen since it started."""
        return self.faults.writes

    @property
    def stdout(self) -> str:
        """What the portal process printed so far (all of it once stopped)."""
        return "".join(self._printed["out"])

    @property
    def stderr(self) -> str:
        return "".join(self._printed["err"])

    @property
    def pid(self) -> int | None:
        """The portal process's id (None when served from this process)."""
        return self.proc.pid if self.proc else None

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc else None

    @property
    def running(self) -> bool:
        if self.proc:
            return self.proc.poll() is None
        return self.server is not None

    # ---- datasets

    def create(
        self, columns: list[dict] | None = None, row_identifier: str | None = "case_id", name: str = "Cases", **extra
    ) -> str:
        """A published dataset (CASES unless `columns` are given); returns its 4x4. `extra`:
        LocalPortal.create_dataset's description, private, publish."""
        return self.local.create_dataset(
            name=name, columns=CASES if columns is None else columns, row_identifier=row_identifier, **extra
        )

    def rows(self, dataset: str, **params) -> list[dict]:
        """Every row over SODA, as USER, in :id order; `params` are SoQL parameters with their `$`
        (or field filters), and a None leaves the default out (`"$order": None`)."""
        if "$query" not in params:
            params.setdefault("$order", ":id")
            params.setdefault("$limit", ALL)
        r = self.get(f"/resource/{dataset}.json", params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def count(self, dataset: str) -> int:
        return int(next(iter(self.rows(dataset, **{"$select": "count(*)", "$order": None})[0].values())))

    def open_revisions(self, dataset: str) -> list[dict]:
        r = self.get(f"/api/publishing/v1/revision/{dataset}", params={"open": "true"})
        assert r.status_code == 200, r.text
        return r.json()

    # ---- HTTP as USER (paths are relative to url; a body that is not bytes or str is sent as JSON)

    def request(self, method: str, path: str, body=None, **kw) -> requests.Response:
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        kw.setdefault("timeout", 120)
        kw.setdefault("verify", self.verify)  # per request: REQUESTS_CA_BUNDLE would beat the session's
        if self.verify is not False:
            return self.session.request(method, self.url + path, data=body, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # https with a self-signed certificate, not verified
            return self.session.request(method, self.url + path, data=body, **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body=None, **kw) -> requests.Response:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body=None, **kw) -> requests.Response:
        return self.request("PUT", path, body, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def anonymous(self) -> requests.Session:
        """A session with no credentials (full URLs: `s.get(portal.url + path)`)."""
        return self._session()

    def _session(self, auth=None) -> requests.Session:
        s = requests.Session()
        s.auth = auth
        s.verify = self.verify
        return s

    # ---- a route's view of it

    def target(self, dataset: str | None = None) -> str:
        """The socrata options (YAML lines) that reach this portal as USER, the password from
        ${PORTAL_PW}; run the route with ROUTE_ARGS."""
        return f"domain: {self.url}\n" + (f"dataset: {dataset}\n" if dataset else "") + AUTH_YAML + "\n"

    # ---- the end

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        """Stop serving (a process: `sig`, then wait for it and for all it printed). The SQLite
        file and `local` stay."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
            for reader in self._readers:
                reader.join(timeout=timeout)
        elif self.server is not None:
            self.server.stop()
            self.server = None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """End the portal process with `sig` (SIGKILL: no chance to finish anything)."""
        if self.proc is None:
            raise TypeError("only a portal process (process=True) can be killed")
        self.stop(sig)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.stop()
        self.session.close()
        if self._local is not None:
            self._local.close()

    def __enter__(self) -> ServedPortal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ServedPortal({self.url}, {'process ' + str(self.pid) if self.proc else 'in this process'})"


def _drain(stream, into: list[str]) -> None:
    for line in stream:
        into.append(line)
    stream.close()
