"""Apply, roll back and inspect the enrolldb schema with yoyo's Python API.

Why not just ``yoyo apply``:

- **All or nothing.** yoyo applies each migration in its own transaction, marks it in
  another and runs post-apply hooks in a third. We run the pending migrations, their
  bookkeeping, the API functions (``sql/functions/*.sql``, re-deployed on *every* migrate)
  and the removal of functions no file defines in **one** transaction: a migrate that fails
  anywhere leaves the database exactly as it was. (A migration marked
  ``-- transactional: false`` cannot share a transaction; yoyo applies it alone, then the
  rest continues in one transaction.)
- **Least privilege.** yoyo's bookkeeping tables live in schema ``enrolldb_migrations``
  (:data:`MIGRATIONS_SCHEMA`), created by the owner, who needs only ``CONNECT, CREATE`` on
  the database (since PostgreSQL 15 nobody may create in ``public`` by default). Tables
  left in ``public`` by enrolldb 0.1.0 are moved there on the next migrate.
- **Read-only inspection.** :func:`status` never goes through yoyo (whose backend creates
  its tables on connect): it reads ``_yoyo_migration`` directly, so ``status`` and
  ``doctor`` create nothing, and work for ``enrolldb_app`` / ``enrolldb_readonly``, which
  are granted SELECT on it.

We also take yoyo's lock ourselves (its API does not) and always close yoyo's connection:
a lingering connection to a template database blocks ``CREATE DATABASE ... TEMPLATE``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from yoyo import get_backend, read_migrations

from enrolldb.dsn import SetupError, connect, one_line, to_yoyo_uri
from enrolldb.resources import function_files, function_statements, migrations_dir
from enrolldb.routines import declared_routines, undeclared_routines

#: Schema of yoyo's bookkeeping tables (never ``public``, never ``enrolldb``, which the
#: first migration's rollback drops).
MIGRATIONS_SCHEMA = "enrolldb_migrations"
#: The tables yoyo creates (internal schema version 2).
YOYO_TABLES = ("_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock")
#: Cluster roles the migrations grant to; a DBA creates them once when the owner may not.
APP_ROLES = ("enrolldb_app", "enrolldb_readonly")


class MigrateError(SetupError):
    """migrate/rollback cannot proceed; the message says what to run and as whom."""


@dataclass(frozen=True)
class MigrationStatus:
    """What ``enrolldb status`` (and the first section of ``doctor``) reports."""

    applied: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    #: Functions (``schema.name(args)``) whose deployed definition differs from
    #: ``sql/functions`` or that are missing from the database.
    functions_out_of_date: list[str] = field(default_factory=list)
    #: Set when the function files could not even be test-applied (e.g. schema missing).
    functions_error: str | None = None
    #: Functions of schema enrolldb that no file defines (``migrate`` drops them).
    undeclared_functions: list[str] = field(default_factory=list)
    #: Why the out-of-date comparison was skipped (it needs the owner role), if it was.
    functions_not_checked: str | None = None
    #: Schema holding yoyo's tables: MIGRATIONS_SCHEMA, ``public`` (enrolldb 0.1.0, moved by
    #: the next migrate) or None when the database was never migrated.
    bookkeeping_schema: str | None = None
    #: Schema enrolldb, its tables and sequences whose privileges (ACL, column ACLs too)
    #: differ from what ``sql/functions/000_privileges.sql`` sets (hand GRANT/REVOKE).
    privileges_out_of_date: list[str] = field(default_factory=list)

    @property
    def migrated(self) -> bool:
        """False for a database enrolldb was never applied to."""
        return bool(self.applied)

    @property
    def up_to_date(self) -> bool:
        return self.migrated and not (
            self.pending
            or self.functions_out_of_date
            or self.privileges_out_of_date
            or self.functions_error
            or self.undeclared_functions
            or self.bookkeeping_schema != MIGRATIONS_SCHEMA
        )


@dataclass(frozen=True)
class MigrateResult:
    """What one ``migrate`` did."""

    applied: list[str] = field(default_factory=list)
    #: Functions dropped because no file in sql/functions or migrations defines them.
    dropped_functions: list[str] = field(default_factory=list)
    #: Set when yoyo's tables were moved out of ``public`` (an enrolldb 0.1.0 database).
    moved_bookkeeping: bool = False


def load_migrations(directory: Path | None = None) -> Any:
    """Read (and eagerly load) the migrations so broken files fail loudly.

    yoyo's ``apply_migrations_only`` silently *skips* migrations raising ``BadMigration``;
    loading them up front turns that into an error before anything is applied.
    """
    migrations = read_migrations(str(directory or migrations_dir()))
    for migration in [*migrations, *migrations.post_apply]:
        migration.load()
    return migrations


@contextlib.contextmanager
def yoyo_backend(dsn: str) -> Iterator[Any]:
    """A yoyo backend for ``dsn`` whose connection is always closed afterwards.

    Creating it *writes* (yoyo creates its lock table): only migrate/rollback use it.
    """
    backend = get_backend(to_yoyo_uri(dsn, MIGRATIONS_SCHEMA))
    backend.connection.prepare_threshold = None  # PgBouncer-safe, as enrolldb.dsn.connect
    try:
        yield backend
    finally:
        backend.connection.close()


# --- set-up before yoyo connects ------------------------------------------------------------


def _missing_roles(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT r FROM pg_catalog.unnest(%s::text[]) AS r"
        " WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) ORDER BY r",
        (list(APP_ROLES),),
    ).fetchall()
    return [str(r[0]) for r in rows]


def roles_sql(roles: list[str]) -> str:
    """What a DBA runs once per cluster when the owner may not create ``roles``."""
    return " ".join(f"CREATE ROLE {role} NOLOGIN;" for role in roles)


def _check_privileges(conn: psycopg.Connection[Any]) -> None:
    """Fail early, with the statements to run, instead of half-way with a raw error."""
    row = conn.execute(
        "SELECT current_user, current_database(), r.rolsuper OR r.rolcreaterole,"
        " pg_catalog.has_database_privilege(current_database(), 'CREATE'),"
        " EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = %s)"
        " FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user",
        (MIGRATIONS_SCHEMA,),
    ).fetchone()
    assert row is not None
    user, dbname, may_create_roles, may_create_schema, schema_exists = row
    missing = _missing_roles(conn)
    if missing and not may_create_roles:
        raise MigrateError(
            f"role(s) {', '.join(missing)} do not exist and {user} may not create roles: "
            f"a superuser must run once per cluster: {roles_sql(missing)} (docs/operators.md, "
            "'Roles and privileges')"
        )
    if not schema_exists and not may_create_schema:
        raise MigrateError(
            f"{user} may not create schemas in database {dbname}: a superuser must run "
            f'GRANT CONNECT, CREATE ON DATABASE "{dbname}" TO "{user}"; '
            "(docs/operators.md, 'Roles and privileges')"
        )


def _legacy_ids(conn: psycopg.Connection[Any]) -> list[str] | None:
    """Migration ids recorded in ``public._yoyo_migration`` (enrolldb 0.1.0), or None."""
    if not _table_exists(conn, "public", "_yoyo_migration"):
        return None
    return [str(r[0]) for r in conn.execute("SELECT migration_id FROM public._yoyo_migration")]


def _adopt_legacy_bookkeeping(conn: psycopg.Connection[Any], ours: set[str]) -> bool:
    """Move yoyo's tables from ``public`` into our schema when they hold our migrations.

    Tables recording only other ids (another yoyo user of ``public``) or nothing at all are
    left alone; a mix of ours and others' cannot be split automatically and is refused.
    """
    if _table_exists(conn, MIGRATIONS_SCHEMA, "_yoyo_migration"):
        return False
    ids = _legacy_ids(conn)
    if not ids or not ours.intersection(ids):
        return False
    foreign = sorted(set(ids) - ours)
    if foreign:
        raise MigrateError(
            "public._yoyo_migration records enrolldb's migrations and others "
            f"({', '.join(foreign[:5])}): move enrolldb's rows to "
            f"{MIGRATIONS_SCHEMA}._yoyo_migration by hand (docs/operators.md, 'Upgrading')"
        )
    for table in YOYO_TABLES:
        if _table_exists(conn, "public", table):
            try:
                conn.execute(
                    sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                        sql.Identifier("public", table), sql.Identifier(MIGRATIONS_SCHEMA)
                    )
                )
            except psycopg.errors.InsufficientPrivilege:
                raise MigrateError(
                    f"yoyo's tables of enrolldb 0.1.0 are in schema public and owned by another "
                    f"role: run `enrolldb migrate` once as their owner, or as their owner run "
                    f"ALTER TABLE public.{table} SET SCHEMA {MIGRATIONS_SCHEMA}; for each of "
                    f"{', '.join(YOYO_TABLES)}"
                ) from None
    return True


def prepare_bookkeeping(dsn: str, migrations: Any) -> bool:
    """Privileges checked, our schema created, 0.1.0 bookkeeping moved (one transaction)."""
    with connect(dsn) as conn:
        _check_privileges(conn)
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(MIGRATIONS_SCHEMA))
        )
        conn.execute(
            sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                sql.Identifier(MIGRATIONS_SCHEMA),
                sql.Literal(
                    "enrolldb: yoyo's migration bookkeeping (applied migrations, log, lock)"
                ),
            )
        )
        return _adopt_legacy_bookkeeping(conn, {m.id for m in migrations})


# --- migrate / rollback ---------------------------------------------------------------------


def _quiet_steps(migration: Any, backend: Any, direction: str) -> None:
    """Run a migration's steps on ``backend``; yoyo prints the rows of any statement that
    returns some (psql-style tables), which is noise for a migrate: swallow it."""
    with contextlib.redirect_stdout(io.StringIO()):
        migration.process_steps(backend, direction)


def _grant_bookkeeping(backend: Any) -> None:
    """Let the app and read-only roles read which migrations are applied (for doctor)."""
    schema = MIGRATIONS_SCHEMA
    roles = ", ".join(APP_ROLES)
    backend.execute(f"GRANT USAGE ON SCHEMA {schema} TO {roles}")
    backend.execute(f"GRANT SELECT ON {schema}._yoyo_migration TO {roles}")


def _drop_undeclared(conn: psycopg.Connection[Any], applied_ids: set[str]) -> list[str]:
    dropped = undeclared_routines(conn, declared_routines(_declaring_files(applied_ids)))
    for signature in dropped:
        # RESTRICT (the default): a function something still depends on stops the migrate.
        conn.execute(sql.SQL("DROP ROUTINE {}").format(sql.SQL(signature)))
    return dropped


def migrate_report(dsn: str) -> MigrateResult:
    """Apply pending migrations, re-apply ``sql/functions``, drop undeclared functions."""
    migrations = load_migrations()
    moved = prepare_bookkeeping(dsn, migrations)
    with yoyo_backend(dsn) as backend, backend.lock():
        to_apply = list(backend.to_apply(migrations))
        # A non-transactional migration cannot share the transaction: yoyo applies it (and
        # everything before it) one by one; the rest continues below in one transaction.
        last_alone = max((i for i, m in enumerate(to_apply) if not m.use_transactions), default=-1)
        with contextlib.redirect_stdout(io.StringIO()):
            backend.apply_migrations_only(to_apply.__class__(to_apply[: last_alone + 1]))
        with backend.transaction():
            for migration in to_apply[last_alone + 1 :]:
                _quiet_steps(migration, backend, "apply")
                backend.log_migration(migration, "apply")
                backend.mark_one(migration, log=False)
            for hook in migrations.post_apply:
                _quiet_steps(hook, backend, "apply")
            dropped = _drop_undeclared(backend.connection, {m.id for m in migrations})
            _grant_bookkeeping(backend)
        return MigrateResult([m.id for m in to_apply], dropped, moved)


def migrate(dsn: str) -> list[str]:
    """Apply pending migrations, then always re-apply ``sql/functions``.

    Returns the ids of the migrations applied (empty when none were pending).
    """
    return migrate_report(dsn).applied


def rollback(dsn: str, *, all: bool = False) -> list[str]:
    """Roll back the most recently applied migration (or every one with ``all=True``).

    One transaction, like :func:`migrate`. Returns the ids rolled back, newest first.
    """
    migrations = load_migrations()
    prepare_bookkeeping(dsn, migrations)
    with yoyo_backend(dsn) as backend, backend.lock():
        to_rollback = list(backend.to_rollback(migrations))
        if not all:
            to_rollback = to_rollback[:1]
        if any(not m.use_transactions for m in to_rollback):
            with contextlib.redirect_stdout(io.StringIO()):
                backend.rollback_migrations(to_rollback.__class__(to_rollback))
        else:
            with backend.transaction():
                for migration in to_rollback:
                    _quiet_steps(migration, backend, "rollback")
                    backend.log_migration(migration, "rollback")
                    backend.unmark_one(migration, log=False)
        return [m.id for m in to_rollback]


# --- status (reads only) --------------------------------------------------------------------


def _table_exists(conn: psycopg.Connection[Any], schema: str, table: str) -> bool:
    """Catalog lookup that needs no privilege on the schema (``to_regclass`` would)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_class AS c"
        " JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s)",
        (schema, table),
    ).fetchone()
    return bool(row and row[0])


def _unreadable_bookkeeping(conn: psycopg.Connection[Any], schema: str) -> str:
    """Why this role may not read yoyo's table, and the fix: membership in one of
    :data:`APP_ROLES` for a role in neither (a migrate would not help it), the owner's
    next migrate for a member (it grants the read to both roles)."""
    row = conn.execute(
        "SELECT current_user, bool_or(pg_catalog.pg_has_role(current_user, r.oid, 'USAGE'))"
        " FROM pg_catalog.pg_roles AS r WHERE r.rolname = ANY(%s::text[])",
        (list(APP_ROLES),),
    ).fetchone()
    conn.rollback()
    user, member = (row[0], bool(row[1])) if row else ("this role", False)
    where = (
        f"this role may not read {schema}._yoyo_migration, where enrolldb records its migrations"
    )
    if not member:
        return (
            f"{where}: {user} is a member of neither {' nor '.join(APP_ROLES)}; a superuser "
            f'grants it one of them: GRANT enrolldb_readonly TO "{user}"; (or enrolldb_app) '
            "(docs/operators.md, 'Roles and privileges')"
        )
    return (
        f"{where}: the owner's next `enrolldb migrate` grants it to "
        f"{' and '.join(APP_ROLES)} (docs/operators.md, 'Roles and privileges')"
    )


def applied_hashes(conn: psycopg.Connection[Any]) -> tuple[str | None, set[str]]:
    """(schema of the bookkeeping, applied migration hashes) without writing anything."""
    for schema in (MIGRATIONS_SCHEMA, "public"):
        if _table_exists(conn, schema, "_yoyo_migration"):
            query = sql.SQL("SELECT migration_hash FROM {}").format(
                sql.Identifier(schema, "_yoyo_migration")
            )
            try:
                hashes = {str(r[0]) for r in conn.execute(query)}
            except psycopg.errors.InsufficientPrivilege:
                conn.rollback()
                raise MigrateError(_unreadable_bookkeeping(conn, schema)) from None
            if hashes or schema == MIGRATIONS_SCHEMA:
                return schema, hashes
    return None, set()


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
    for _path, statement in function_statements():
        conn.execute(statement.encode("utf-8"))


# Privileges of schemas enrolldb, enrolldb_internal, enrolldb_import and of their
# tables/sequences (with their column privileges), which
# ``sql/functions/000_privileges.sql`` resets and grants on every migrate.
_PRIVILEGE_FINGERPRINTS = """
SELECT 'schema ' || quote_ident(n.nspname), md5(coalesce(n.nspacl::text, ''))
FROM pg_namespace AS n
WHERE n.nspname IN ('enrolldb', 'enrolldb_internal', 'enrolldb_import')
UNION ALL
SELECT CASE WHEN c.relkind = 'S' THEN 'sequence ' ELSE 'table ' END || c.oid::regclass::text,
       md5(coalesce(c.relacl::text, '') || coalesce((
           SELECT string_agg(a.attname || '=' || a.attacl::text, ',' ORDER BY a.attnum)
           FROM pg_attribute AS a
           WHERE a.attrelid = c.oid AND a.attacl IS NOT NULL), ''))
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname IN ('enrolldb', 'enrolldb_internal', 'enrolldb_import')
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
"""


def _fingerprints(conn: psycopg.Connection[Any], query: str) -> dict[str, str]:
    return {str(name): str(digest) for name, digest in conn.execute(query)}


@dataclass(frozen=True)
class Drift:
    """What re-applying ``sql/functions`` would change."""

    #: Functions (``schema.name(args)``) created or changed (body, COMMENT or privileges).
    functions: list[str]
    #: ``schema enrolldb``, ``table enrolldb.x``, ``sequence enrolldb.y`` whose privileges
    #: would change (a hand GRANT or REVOKE).
    privileges: list[str]


def drift(dsn: str) -> Drift:
    """Functions and privileges that re-applying ``sql/functions`` would create or change.

    Done for real inside a transaction that is always rolled back: record fingerprints,
    execute the files, record again, compare. This needs no SQL parsing of our own and
    sees exactly what ``migrate`` would deploy. Needs the owner (``CREATE OR REPLACE``).
    """
    queries = (_FUNCTION_FINGERPRINTS, _PRIVILEGE_FINGERPRINTS)
    with connect(dsn, autocommit=False) as conn:
        try:
            # Stable regprocedure/regclass text regardless of the role's search_path.
            conn.execute("SET LOCAL search_path = pg_catalog")
            before = [_fingerprints(conn, q) for q in queries]
            execute_function_files(conn)
            after = [_fingerprints(conn, q) for q in queries]
        finally:
            conn.rollback()
    changed = [
        sorted(name for name, digest in a.items() if b.get(name) != digest)
        for b, a in zip(before, after, strict=True)
    ]
    return Drift(changed[0], changed[1])


def functions_out_of_date(dsn: str) -> list[str]:
    """Functions that re-applying ``sql/functions`` would create or change (see :func:`drift`)."""
    return drift(dsn).functions


def _owner_check_skipped(conn: psycopg.Connection[Any]) -> str | None:
    """Why this role cannot compare function definitions (None when it can)."""
    row = conn.execute(
        "SELECT pg_catalog.pg_get_userbyid(nspowner),"
        " pg_catalog.pg_has_role(current_user, nspowner, 'USAGE'), pg_catalog.pg_is_in_recovery()"
        " FROM pg_catalog.pg_namespace WHERE nspname = 'enrolldb'"
    ).fetchone()
    if row is None:
        return None  # no schema: the comparison reports it as an error
    owner, is_member, standby = row
    if standby:
        return "not compared: this server is a read-only standby (compare on the primary)"
    if is_member:
        return None
    return f"not compared: needs the owner role {owner} (this is a read-only check for others)"


def _declaring_files(applied_ids: set[str]) -> list[Path]:
    """Migration files of the applied migrations (in order), then the function files."""
    migrations = sorted(p for p in migrations_dir().glob("*.sql") if p.stem in applied_ids)
    return [*migrations, *function_files()]


def status(dsn: str) -> MigrationStatus:
    """Applied and pending migration ids and function drift. Reads only: safe for any role
    with CONNECT, and creates nothing on a database that was never migrated."""
    migrations = load_migrations()
    with connect(dsn) as conn:
        schema, hashes = applied_hashes(conn)
        applied = [m.id for m in migrations if m.hash in hashes]
        pending = [m.id for m in migrations if m.hash not in hashes]
        if not applied:
            return MigrationStatus([], pending, bookkeeping_schema=schema)
        undeclared = undeclared_routines(conn, declared_routines(_declaring_files(set(applied))))
        skipped = _owner_check_skipped(conn)
    if skipped:
        return MigrationStatus(applied, pending, [], None, undeclared, skipped, schema)
    try:
        found = drift(dsn)
    except psycopg.Error as exc:
        return MigrationStatus(applied, pending, [], one_line(exc), undeclared, None, schema)
    # An undeclared function is reported (and dropped by migrate) as such; that re-applying
    # the files would also revoke its privileges is no separate finding.
    dropped = {name.replace(", ", ",") for name in undeclared}
    out_of_date = [name for name in found.functions if name not in dropped]
    return MigrationStatus(
        applied, pending, out_of_date, None, undeclared, None, schema, found.privileges
    )


def status_lines(st: MigrationStatus) -> list[str]:
    """The function and bookkeeping findings of ``st``, one line each, for status and doctor
    (pending migrations are listed by the callers)."""
    lines: list[str] = []
    if st.bookkeeping_schema == "public":
        lines.append(
            "migration bookkeeping in schema public (enrolldb 0.1.0): "
            f"`enrolldb migrate` moves it to {MIGRATIONS_SCHEMA}"
        )
    if st.functions_error and st.pending:
        lines.append("functions: not compared until the pending migrations are applied")
    elif st.functions_error:
        lines.append(f"functions: cannot check ({st.functions_error})")
    elif st.functions_not_checked:
        lines.append(f"functions: {st.functions_not_checked}")
    for name in st.functions_out_of_date:
        lines.append(f"function out of date: {name}  (run `enrolldb migrate`)")
    for name in st.privileges_out_of_date:
        lines.append(f"privileges out of date: {name}  (run `enrolldb migrate`)")
    for name in st.undeclared_functions:
        lines.append(f"function defined by no file: {name}  (`enrolldb migrate` drops it)")
    if not lines:
        lines.append("functions: up to date")
    return lines
