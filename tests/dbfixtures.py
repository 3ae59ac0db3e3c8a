"""Database fixtures for the sql source and delivery tests: SQLite always, PostgreSQL and MariaDB
when they answer.

`db` is parametrised over the three. A server that does not answer skips its tests with the
reason; under CI=true it fails them instead, so CI cannot pass without the servers. Each test gets
its own table names from `db.name()`, dropped (with any staging tables) at the end.
Override the servers with ROUTE_TEST_POSTGRES_URL and ROUTE_TEST_MARIADB_URL.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.pool import NullPool

from pipeline.basics.context import RunContext, RunOptions, StepContext
from pipeline.basics.sqlurls import make_engine, mask_url, reason

SERVERS = {
    "postgresql": os.environ.get("ROUTE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("ROUTE_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test"),
}
_TIMEOUT = {"postgresql": {"connect_timeout": 3}, "mariadb": {"connect_timeout": 3}}
_reachable: dict[str, str | None] = {}


def require_server(kind: str) -> str:
    """The server's URL; skip (or fail under CI=true) when it does not answer."""
    url = SERVERS[kind]
    if kind not in _reachable:
        try:
            engine = make_engine(url, connect_args=_TIMEOUT[kind], poolclass=NullPool)
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            engine.dispose()
            _reachable[kind] = None
        except Exception as exc:  # noqa: BLE001 - any failure means "not here"
            _reachable[kind] = f"{kind} at {mask_url(url)} does not answer: {reason(exc)}"
    problem = _reachable[kind]
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem} (CI=true: the database tests must run)")
        pytest.skip(problem)
    return url


@dataclass
class Db:
    """One database for one test: its URL, an engine, and tables to drop afterwards."""

    kind: str
    url: str
    engine: object
    tables: list[str] = field(default_factory=list)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def name(self, prefix: str = "t") -> str:
        """A table name no other test uses; dropped at the end of the test."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.tables.append(name)
        return name

    def execute(self, *statements: str, params=None) -> None:
        with self.engine.begin() as conn:
            for sql in statements:
                conn.exec_driver_sql(sql, params) if params is not None else conn.exec_driver_sql(sql)

    def rows(self, sql: str) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]

    def drop_all(self) -> None:
        q = self.engine.dialect.identifier_preparer.quote
        with self.engine.begin() as conn:
            for name in self.tables:
                for side in ("", "__route_new", "__route_old"):
                    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {q(name + side)}")
        self.engine.dispose()


def make_db(kind: str, tmp_path: Path) -> Db:
    url = f"sqlite:///{tmp_path / 'test.db'}" if kind == "sqlite" else require_server(kind)
    return Db(kind, url, make_engine(url, poolclass=NullPool))


DB_PARAMS = [
    pytest.param("sqlite"),
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]


@pytest.fixture(params=DB_PARAMS)
def db(request, tmp_path):
    database = make_db(request.param, tmp_path)
    yield database
    database.drop_all()


@pytest.fixture
def pg(tmp_path):
    database = make_db("postgresql", tmp_path)
    yield database
    database.drop_all()


def make_ctx(tmp_path: Path, chunk_rows: int = 50_000, stage: str = "source", **options) -> StepContext:
    """A step context for a component called directly, with run options (dry_run, full, ...)."""
    run = RunContext(
        route_name="test",
        route_file=tmp_path / "route.yaml",
        state_dir=tmp_path / ".route",
        run_id="1",
        options=RunOptions(**options),
        chunk_rows=chunk_rows,
    )
    return StepContext(run=run, stage=stage, step="sql")
