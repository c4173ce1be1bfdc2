"""Apply, roll back and inspect the enrolldb schema with yoyo's Python API.

Why not just ``yoyo apply``: yoyo skips post-apply hooks when no migration is pending, but
our API functions (``sql/functions/*.sql``) must be re-deployed on *every* migrate so the
database always runs the functions shipped with this version. We also take yoyo's lock
ourselves (its API does not), keep yoyo's bookkeeping tables in ``public`` (see
:func:`enrolldb.dsn.to_yoyo_uri`), and always close yoyo's connection: a lingering
connection to a template database blocks ``CREATE DATABASE ... TEMPLATE``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import sqlparse
from yoyo import get_backend, read_migrations

from enrolldb.dsn import one_line, to_conninfo, to_yoyo_uri
from enrolldb.resources import function_files, migrations_dir


@dataclass(frozen=True)
class MigrationStatus:
    """What ``enrolldb status`` reports."""

    applied: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    #: Functions (``schema.name(args)``) whose deployed definition differs from
    #: ``sql/functions`` or that are missing from the database.
    functions_out_of_date: list[str] = field(default_factory=list)
    #: Set when the function files could not even be test-applied (e.g. schema missing).
    functions_error: str | None = None

    @property
    def up_to_date(self) -> bool:
        return not (self.pending or self.functions_out_of_date or self.functions_error)


def load_migrations(directory: Path | None = None) -> Any:
    """Read (and eagerly load) the migrations so broken files fail loudly.

    yoyo's ``apply_migrations_only`` silently *skips* migrations raising ``BadMigration``;
    loading them up front turns that into an error before anything is applied.
    """
    migrations = read_migrations(str(directory or migrations_dir()))
    for migration in [*migrations, *migrations.post_apply]:
        migration.load()
    return migrations


@contextmanager
def yoyo_backend(dsn: str) -> Iterator[Any]:
    """A yoyo backend for ``dsn`` whose connection is always closed afterwards."""
    backend = get_backend(to_yoyo_uri(dsn))
    try:
        yield backend
    finally:
        backend.connection.close()


def migrate(dsn: str) -> list[str]:
    """Apply pending migrations, then always re-apply ``sql/functions``.

    Returns the ids of the migrations applied (empty when none were pending).
    """
    migrations = load_migrations()
    with yoyo_backend(dsn) as backend, backend.lock():
        to_apply = backend.to_apply(migrations)
        backend.apply_migrations_only(to_apply)
        backend.run_post_apply(migrations)
        return [m.id for m in to_apply]


def rollback(dsn: str, *, all: bool = False) -> list[str]:
    """Roll back the most recently applied migration (or every one with ``all=True``).

    Returns the ids rolled back, newest first.
    """
    migrations = load_migrations()
    with yoyo_backend(dsn) as backend, backend.lock():
        to_rollback = backend.to_rollback(migrations)
        if not all:
            to_rollback = to_rollback.__class__(list(to_rollback)[:1], migrations.post_apply)
        backend.rollback_migrations(to_rollback)
        return [m.id for m in to_rollback]


# Fingerprint of every non-aggregate function outside the system schemas: definition,
# comment and ACL, so a changed body, COMMENT or GRANT in sql/functions counts as drift.
_FUNCTION_FINGERPRINTS = """
SELECT p.oid::regprocedure::text,
       md5(pg_get_functiondef(p.oid)
           || coalesce(obj_description(p.oid, 'pg_proc'), '')
           || coalesce(p.proacl::text, ''))
FROM pg_proc AS p
JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE p.prokind <> 'a'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%'
  AND n.nspname NOT LIKE 'pg\\_temp%'
"""


def execute_function_files(conn: psycopg.Connection[Any]) -> None:
    """Run every ``sql/functions/*.sql`` statement on ``conn`` (same as the post-apply hook)."""
    for path in function_files():
        for statement in sqlparse.split(path.read_text(encoding="utf-8")):
            if sqlparse.format(statement, strip_comments=True).strip().rstrip(";").strip():
                conn.execute(statement.encode("utf-8"))


def _fingerprints(conn: psycopg.Connection[Any]) -> dict[str, str]:
    return {str(name): str(digest) for name, digest in conn.execute(_FUNCTION_FINGERPRINTS)}


def functions_out_of_date(dsn: str) -> list[str]:
    """Functions that re-applying ``sql/functions`` would create or change.

    Done for real inside a transaction that is always rolled back: record fingerprints,
    execute the files, record again, compare. This needs no SQL parsing of our own and
    sees exactly what ``migrate`` would deploy.
    """
    with psycopg.connect(to_conninfo(dsn)) as conn:
        try:
            # Stable regprocedure text regardless of the role's search_path.
            conn.execute("SET LOCAL search_path = pg_catalog")
            before = _fingerprints(conn)
            execute_function_files(conn)
            after = _fingerprints(conn)
        finally:
            conn.rollback()
    return sorted(name for name, digest in after.items() if before.get(name) != digest)


def status(dsn: str) -> MigrationStatus:
    """Applied and pending migration ids, and function drift (see :func:`functions_out_of_date`)."""
    migrations = load_migrations()
    with yoyo_backend(dsn) as backend:
        applied_hashes = set(backend.get_applied_migration_hashes())
        pending = [m.id for m in backend.to_apply(migrations)]
    applied = [m.id for m in migrations if m.hash in applied_hashes]
    try:
        out_of_date = functions_out_of_date(dsn)
    except psycopg.Error as exc:
        return MigrationStatus(applied, pending, [], one_line(exc))
    return MigrationStatus(applied, pending, out_of_date)
