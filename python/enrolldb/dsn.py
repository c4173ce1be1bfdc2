"""Connection strings: accept what people paste, find a server, make scratch databases.

Why this module exists: DBAs and services hand us DSNs in every libpq-accepted shape
(``postgresql://``, ``postgres://``, SQLAlchemy-style ``postgresql+psycopg://`` or
``key=value`` conninfo), while yoyo only accepts ``postgresql+psycopg://`` URIs for
psycopg 3 (plain ``postgresql://`` makes yoyo import psycopg2). Everything is normalised
through libpq's own parser (``psycopg.conninfo``), so passwords with ``@``/``%``, unix
socket directories and query parameters survive the round trip.

Server discovery (docs/operators.md, 'Connecting'): ``--dsn``, else ``DATABASE_URL``, else
the libpq ``PG*`` variables, else ``127.0.0.1:5432`` as ``postgres``. Failures raise
:class:`SetupError` subclasses with a one-line, actionable message (the CLI prints it
without a traceback).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

#: The conninfo tried when nothing is configured.
LOCAL_DEFAULT = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"

#: libpq variables whose presence means "the user configured a server via PG*".
PG_ENV_VARS = (
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSERVICE",
)

_SCHEME_RE = re.compile(r"^(postgres(?:ql)?)(\+[a-z0-9_]+)?://", re.IGNORECASE)


class SetupError(Exception):
    """A configuration/environment problem reported to the user as one line."""


class BadDsnError(SetupError):
    """The DSN cannot be parsed by libpq."""


class ServerUnavailableError(SetupError):
    """No PostgreSQL server could be reached."""


def one_line(exc: BaseException) -> str:
    """Collapse a (often multi-line) libpq error message into a single line."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def to_conninfo(dsn: str) -> str:
    """Normalise any accepted DSN form to something libpq/psycopg accepts.

    ``postgresql+psycopg://`` (SQLAlchemy/yoyo style) loses its driver suffix;
    everything else is validated by libpq's parser and returned unchanged.
    """
    dsn = dsn.strip()
    match = _SCHEME_RE.match(dsn)
    if match and match.group(2):
        dsn = "postgresql://" + dsn[match.end() :]
    try:
        conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise BadDsnError(f"invalid DSN: {one_line(exc)}") from None
    return dsn


def conninfo_params(dsn: str) -> dict[str, str]:
    """The DSN's explicit parameters as a dict (``PG*`` defaults are not filled in)."""
    return {k: str(v) for k, v in conninfo_to_dict(to_conninfo(dsn)).items() if v is not None}


def to_yoyo_uri(dsn: str, schema: str) -> str:
    """Build the ``postgresql+psycopg://`` URI yoyo needs from any accepted DSN.

    Every libpq parameter is carried as a query argument (yoyo passes them straight to
    ``psycopg.connect``), which avoids URI-netloc pitfalls: socket directories as hosts,
    multi-host lists, percent-encoding of passwords, and hostname lower-casing.
    ``options`` gets ``-c search_path=<schema>`` appended so yoyo's bookkeeping tables
    (``_yoyo_migration``, ``yoyo_lock``, ...) always land in ``schema``, whatever the role's
    default search_path is (the migrations themselves qualify every name).
    """
    params = conninfo_params(dsn)
    options = params.get("options", os.environ.get("PGOPTIONS", ""))
    params["options"] = f"{options} -c search_path={schema}".strip()
    return "postgresql+psycopg://?" + urlencode(params)


def connect(
    dsn: str, *, autocommit: bool = False, application_name: str | None = None
) -> psycopg.Connection[tuple[Any, ...]]:
    """Open a connection the way every enrolldb tool does: safe behind PgBouncer.

    ``prepare_threshold=None``: psycopg 3 otherwise turns a query run five times on one
    connection into a server-side prepared statement, which outlives the transaction; with
    PgBouncer in transaction mode the next transaction may run on another server connection
    (``prepared statement "_pg3_0" does not exist``) or hand this one to another client.
    """
    conninfo = to_conninfo(dsn)
    if application_name:
        conninfo = make_conninfo(conninfo, application_name=application_name)
    return psycopg.connect(conninfo, autocommit=autocommit, prepare_threshold=None)


def with_dbname(dsn: str, dbname: str) -> str:
    """Same server and credentials, another database (returned as key=value conninfo)."""
    return make_conninfo(to_conninfo(dsn), dbname=dbname)


def describe(dsn: str) -> str:
    """A password-free description of a DSN, for progress messages."""
    params = conninfo_params(dsn)
    parts = [f"{k}={params[k]}" for k in ("host", "port", "user", "dbname") if k in params]
    return " ".join(parts) or "libpq defaults (PG* variables)"


def pg_env_configured(environ: Mapping[str, str] | None = None) -> bool:
    """True when any libpq ``PG*`` connection variable is set."""
    env = os.environ if environ is None else environ
    return any(env.get(name) for name in PG_ENV_VARS)


def check_reachable(dsn: str, *, timeout: int = 5) -> None:
    """Connect once; raise :class:`ServerUnavailableError` with a one-line reason."""
    try:
        with psycopg.connect(to_conninfo(dsn), connect_timeout=timeout, autocommit=True):
            pass
    except psycopg.Error as exc:
        raise ServerUnavailableError(f"cannot connect ({describe(dsn)}): {one_line(exc)}") from None


def configured_dsn(explicit: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The DSN the user configured (``--dsn``, ``DATABASE_URL``, ``PG*`` → ``""``), or None."""
    env = os.environ if environ is None else environ
    if explicit:
        return to_conninfo(explicit)
    if env.get("DATABASE_URL"):
        return to_conninfo(env["DATABASE_URL"])
    if pg_env_configured(env):
        return ""  # empty conninfo: libpq reads the PG* variables itself
    return None


NO_SERVER_HELP = (
    "no PostgreSQL server found: pass --dsn or set DATABASE_URL "
    "(e.g. postgresql://postgres@127.0.0.1:5432/postgres) or the PG* variables, "
    "or start a server on 127.0.0.1:5432"
)


def resolve_dsn(explicit: str | None = None) -> str:
    """Resolve the DSN for CLI commands and check that the server answers."""
    dsn = configured_dsn(explicit)
    if dsn is not None:
        check_reachable(dsn)
        return dsn
    try:
        check_reachable(LOCAL_DEFAULT, timeout=3)
    except ServerUnavailableError as exc:
        raise ServerUnavailableError(f"{NO_SERVER_HELP} ({exc})") from None
    return LOCAL_DEFAULT


def server_params(dsn: str) -> dict[str, str | int | None]:
    """Effective host/port/user/password/dbname after libpq applied env and defaults."""
    with psycopg.connect(to_conninfo(dsn), connect_timeout=5) as conn:
        info = conn.info
        return {
            "host": info.host,
            "port": info.port,
            "user": info.user,
            "password": info.password or None,
            "dbname": info.dbname,
        }


def create_database(server_dsn: str, name: str) -> str:
    """``CREATE DATABASE name`` on the server of ``server_dsn``; return its conninfo."""
    with psycopg.connect(to_conninfo(server_dsn), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_dbname(server_dsn, name)


def drop_database(server_dsn: str, name: str) -> None:
    """Terminate sessions on ``name`` and drop it (works on PostgreSQL < 13 too)."""
    with psycopg.connect(to_conninfo(server_dsn), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@contextmanager
def scratch_database(server_dsn: str, prefix: str = "enrolldb_demo") -> Iterator[str]:
    """A uniquely named throwaway database, dropped on exit (also on error/Ctrl-C)."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    dsn = create_database(server_dsn, name)
    try:
        yield dsn
    finally:
        drop_database(server_dsn, name)
