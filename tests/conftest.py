"""pytest harness: one migrated template database per session, a fresh clone per test.

Why this shape (tooling notes §2): cloning a migrated template (``CREATE DATABASE ...
TEMPLATE``) costs ~50-100 ms, far less than migrating per test, and each test still gets
a real, private database it may commit to from several connections. No database mocks.

Where the server comes from, in order (docs/reference.md, Deployment):

1. ``DATABASE_URL`` or any libpq ``PG*`` variable → that server (noproc);
2. running as root, ``CI=true`` or ``--pg-external`` → ``127.0.0.1:5432`` as ``postgres``
   (noproc; ``initdb`` refuses to run as root, so there is no fallback);
3. a server answering on ``127.0.0.1:5432`` → use it (noproc);
4. PostgreSQL binaries installed → a throwaway server (proc, fsync off);
5. otherwise stop with a message saying what to install or set.

Database names carry the pid and a random suffix, so concurrent runs (CI and a developer
on the same server) never collide, and a template left behind by a crashed run cannot
break the next one (it only wastes disk; drop ``enrolldb_test_*`` databases at leisure).

Fixtures for test authors: ``db_dsn``, ``db``, ``connect``, ``empty_db_dsn``,
``server_params``, ``data`` (tests/builders.py's row builders on ``db``), ``cat`` (``db``
with the registrar tests' catalog).
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator
from typing import Any, Protocol

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pytest_postgresql import factories
from pytest_postgresql.janitor import DatabaseJanitor

from builders import Data, catalog
from enrolldb.dsn import (
    LOCAL_DEFAULT,
    SetupError,
    check_reachable,
    configured_dsn,
    one_line,
)
from enrolldb.dsn import (
    server_params as effective_params,
)
from enrolldb.migrate import migrate
from enrolldb.pgserver import find_bindir
from pgtypes import Conn, Connect

#: Unique per run: <base>_tmpl is the template, <base>_<n> the per-test clones.
DB_BASE = f"enrolldb_test_{os.getpid()}_{secrets.token_hex(3)}"

_FAST_POSTGRES = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"

START_HINT = (
    "start it (e.g. `pg_ctlcluster --skip-systemctl-redirect 15 main start`, "
    "`sudo systemctl start postgresql`) or set DATABASE_URL / PG* to a reachable server"
)


class PgServer(Protocol):
    """What both pytest-postgresql executors (noproc and proc) provide."""

    host: str
    port: int
    user: str
    password: str | None
    dbname: str

    @property
    def template_dbname(self) -> str: ...

    @property
    def maintenance_dbname(self) -> str: ...


def conninfo(server: PgServer, dbname: str) -> str:
    """libpq conninfo for ``dbname`` on ``server``."""
    return make_conninfo(
        host=server.host,
        port=str(server.port),
        user=server.user,
        password=server.password or None,
        dbname=dbname,
    )


def load_schema(
    host: str, port: int, user: str, dbname: str, password: str | None, **_: Any
) -> None:
    """pytest-postgresql loader: migrate the template database with our own ``migrate``.

    ``migrate`` closes yoyo's connections, which matters: an open connection to the
    template would make every ``CREATE DATABASE ... TEMPLATE`` fail.
    """
    migrate(
        make_conninfo(
            host=host, port=str(port), user=user, dbname=dbname, password=password or None
        )
    )


pg_noproc = factories.postgresql_noproc(dbname=DB_BASE, load=[load_schema])
pg_proc = factories.postgresql_proc(
    port=None, dbname=DB_BASE, load=[load_schema], postgres_options=_FAST_POSTGRES
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pg-external",
        action="store_true",
        default=False,
        help="use the server on 127.0.0.1:5432 (or DATABASE_URL/PG*) instead of a throwaway one",
    )


def _set_option(config: pytest.Config, name: str, value: object) -> None:
    """Feed pytest-postgresql's option unless the user passed it on the command line."""
    if value is not None and not config.getoption(name):
        setattr(config.option, name, str(value))


def _use_external(config: pytest.Config, dsn: str, what: str) -> None:
    try:
        params = effective_params(dsn)
    except (SetupError, psycopg.Error) as exc:
        pytest.exit(
            f"enrolldb tests: cannot connect to {what}: {one_line(exc)}; {START_HINT}", returncode=2
        )
    _set_option(config, "postgresql_host", params["host"])
    _set_option(config, "postgresql_port", params["port"])
    _set_option(config, "postgresql_user", params["user"])
    _set_option(config, "postgresql_password", params["password"])
    _set_option(config, "postgresql_maintenance_dbname", params["dbname"])


def _choose_server(config: pytest.Config) -> str:
    """Pick noproc or proc (see the module docstring); return the fixture name."""
    try:
        dsn = configured_dsn(None)
    except SetupError as exc:
        pytest.exit(f"enrolldb tests: {exc}", returncode=2)
    if dsn is not None:
        _use_external(config, dsn, "the server from DATABASE_URL/PG*")
        return "pg_noproc"
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    forced = (
        is_root
        or os.environ.get("CI", "").lower() == "true"
        or bool(config.getoption("--pg-external"))
    )
    if forced:
        _use_external(config, LOCAL_DEFAULT, "PostgreSQL on 127.0.0.1:5432 as postgres")
        return "pg_noproc"
    try:
        check_reachable(LOCAL_DEFAULT, timeout=3)
    except SetupError:
        bindir = find_bindir()
        if bindir is None:
            pytest.exit(
                "enrolldb tests: no PostgreSQL found: no server on 127.0.0.1:5432, "
                "DATABASE_URL/PG* unset, and no initdb/pg_ctl installed. Install the "
                "PostgreSQL server (e.g. `apt-get install postgresql`) or set DATABASE_URL.",
                returncode=2,
            )
        _set_option(config, "postgresql_exec", bindir / "pg_ctl")
        return "pg_proc"
    _use_external(config, LOCAL_DEFAULT, "PostgreSQL on 127.0.0.1:5432 as postgres")
    return "pg_noproc"


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> PgServer:
    """The session's server executor, with the migrated template ``<DB_BASE>_tmpl``."""
    server: PgServer = request.getfixturevalue(_choose_server(request.config))
    return server


@pytest.fixture(scope="session")
def server_params(pg_server: PgServer) -> dict[str, Any]:
    """host/port/user/password of the server in use (for tests that build their own DSNs)."""
    return {
        "host": pg_server.host,
        "port": pg_server.port,
        "user": pg_server.user,
        "password": pg_server.password,
    }


_counter = itertools.count(1)


def _janitor(server: PgServer, dbname: str, template: str | None) -> DatabaseJanitor:
    return DatabaseJanitor(
        user=server.user,
        host=server.host,
        port=server.port,
        password=server.password,
        dbname=dbname,
        template_dbname=template,
        maintenance_dbname=server.maintenance_dbname,
    )


@pytest.fixture
def db_dsn(pg_server: PgServer) -> Iterator[str]:
    """conninfo of a fresh database cloned from the migrated template; dropped afterwards."""
    name = f"{pg_server.dbname}_{next(_counter)}"
    with _janitor(pg_server, name, pg_server.template_dbname):
        yield conninfo(pg_server, name)


@pytest.fixture
def empty_db_dsn(pg_server: PgServer) -> Iterator[str]:
    """conninfo of a fresh, EMPTY (not migrated) database; dropped afterwards."""
    name = f"{pg_server.dbname}_e{next(_counter)}"
    with _janitor(pg_server, name, None):
        yield conninfo(pg_server, name)


@pytest.fixture
def connect(db_dsn: str) -> Iterator[Connect]:
    """Factory for extra connections to the test's database (e.g. concurrency tests).

    ``connect(autocommit=True, role=None)``; with ``role`` the session runs ``SET ROLE``
    (committed, so a later rollback does not undo it). All are closed at teardown.
    """
    opened: list[Conn] = []

    def _connect(autocommit: bool = True, role: str | None = None) -> Conn:
        conn = psycopg.connect(db_dsn, autocommit=autocommit)
        opened.append(conn)
        if role is not None:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            if not autocommit:
                conn.commit()
        return conn

    yield _connect
    for conn in opened:
        conn.close()


@pytest.fixture
def db(db_dsn: str) -> Iterator[Conn]:
    """An autocommit connection to the test's fresh database (tuple rows)."""
    conn = psycopg.connect(db_dsn, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def data(db: Conn) -> Data:
    """The schema tests' row builders (tests/builders.py, ``Data``) on ``db``."""
    return Data(db)


@pytest.fixture
def cat(db: Conn) -> Conn:
    """``db`` with the registrar tests' catalog (tests/builders.py, ``catalog``)."""
    catalog(db)
    return db
