"""Migrations, the function hook and the committed snapshot agree with each other.

Why these tests: migrations are replayed in several ways in real life (fresh install,
upgrade one release at a time, rollback and re-apply, ``migrate`` with nothing pending
after a function edit). Each way must produce exactly the schema described by the
committed ``sql/schema.snapshot``; otherwise production drifts from what was reviewed.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import psycopg
import pytest
from yoyo import get_backend

from enrolldb.dsn import to_yoyo_uri
from enrolldb.migrate import (
    MIGRATIONS_SCHEMA,
    execute_function_files,
    load_migrations,
    migrate,
    migrate_report,
    prepare_bookkeeping,
    rollback,
    status,
    yoyo_backend,
)
from enrolldb.resources import function_files, migrations_dir
from enrolldb.schema_snapshot import ROLES, snapshot
from pgtypes import Conn

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT_FILE = REPO / "sql" / "schema.snapshot"


def snapshot_of(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return snapshot(conn)


def assert_same_schema(actual: str, expected: str, message: str) -> None:
    """Compare two snapshots; on mismatch fail with a short unified diff, not a repr dump."""
    if actual != expected:
        diff = "\n".join(
            difflib.unified_diff(
                expected.splitlines(), actual.splitlines(), "expected", "actual", lineterm="", n=1
            )
        )
        pytest.fail(f"{message}\n{diff}", pytrace=False)


def all_migration_ids() -> list[str]:
    return [m.id for m in load_migrations()]


def test_committed_snapshot_is_current(db: Conn) -> None:
    assert SNAPSHOT_FILE.is_file(), f"{SNAPSHOT_FILE} is missing: run make schema-snapshot"
    committed = SNAPSHOT_FILE.read_text(encoding="utf-8")
    assert_same_schema(
        snapshot(db), committed, "sql/schema.snapshot is out of date: run make schema-snapshot"
    )


def test_migrate_twice_applies_nothing_the_second_time(empty_db_dsn: str) -> None:
    assert migrate(empty_db_dsn) == all_migration_ids()
    first = snapshot_of(empty_db_dsn)
    assert migrate(empty_db_dsn) == []
    assert_same_schema(snapshot_of(empty_db_dsn), first, "second migrate changed the schema")
    st = status(empty_db_dsn)
    assert st.pending == [] and st.applied == all_migration_ids()
    assert st.up_to_date, st


def test_migrated_template_has_nothing_pending(db_dsn: str) -> None:
    before = snapshot_of(db_dsn)
    assert migrate(db_dsn) == []
    assert_same_schema(snapshot_of(db_dsn), before, "migrate changed a migrated database")


_CREATE_FUNCTION = re.compile(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE)\s+([\w\"]+)\.([\w\"]+)\s*\(",
    re.IGNORECASE,
)


def first_declared_function() -> tuple[str, str] | None:
    """(schema, name) of the first function created by sql/functions, in file order."""
    for path in function_files():
        match = _CREATE_FUNCTION.search(path.read_text(encoding="utf-8"))
        if match:
            return match.group(1).strip('"'), match.group(2).strip('"')
    return None


def test_functions_are_reapplied_when_nothing_is_pending(db: Conn, db_dsn: str) -> None:
    declared = first_declared_function()
    if declared is None:
        pytest.skip("sql/functions defines no function yet")
    before = snapshot(db)
    rows = db.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p"
        " JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = %s AND p.proname = %s",
        declared,
    ).fetchall()
    assert rows, f"{declared} is declared in sql/functions but not deployed"
    for (signature,) in rows:
        db.execute(f"DROP ROUTINE {signature}".encode())
    assert status(db_dsn).functions_out_of_date, "status must notice the missing function"
    assert migrate(db_dsn) == []
    assert_same_schema(snapshot(db), before, "migrate did not restore the dropped function")
    assert status(db_dsn).up_to_date


def test_reexecuting_function_files_changes_nothing(db: Conn, db_dsn: str) -> None:
    before = snapshot(db)
    with psycopg.connect(db_dsn) as conn:
        execute_function_files(conn)
    assert_same_schema(snapshot(db), before, "sql/functions differs from what migrate deployed")
    assert status(db_dsn).functions_out_of_date == []


def test_rollback_all_leaves_nothing_and_reapply_is_identical(empty_db_dsn: str) -> None:
    migrate(empty_db_dsn)
    fresh = snapshot_of(empty_db_dsn)
    assert rollback(empty_db_dsn, all=True) == list(reversed(all_migration_ids()))
    with psycopg.connect(empty_db_dsn, autocommit=True) as conn:
        schemas = [
            r[0]
            for r in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%%'"
                " AND nspname NOT IN ('information_schema', 'public', %s)",
                (MIGRATIONS_SCHEMA,),
            )
        ]
        assert schemas == [], "rollback --all left schemas behind"
        leftovers = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relname NOT LIKE '%yoyo%'"
            " UNION ALL SELECT p.proname FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'"
            " UNION ALL SELECT t.typname FROM pg_type t"
            " JOIN pg_namespace n ON n.oid = t.typnamespace"
            " WHERE n.nspname = 'public' AND t.typname NOT LIKE '%yoyo%'"
            " AND t.typrelid = 0 AND t.typelem = 0"
            " UNION ALL SELECT 'event trigger ' || evtname FROM pg_event_trigger"
            " UNION ALL SELECT 'default acl' FROM pg_default_acl"
        ).fetchall()
        assert leftovers == [], "rollback --all left objects behind"
        roles = {
            r[0]
            for r in conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (list(ROLES),)
            )
        }
        assert roles == set(ROLES), "the shared roles must survive a rollback"
    assert status(empty_db_dsn).applied == []
    assert migrate(empty_db_dsn) == all_migration_ids()
    assert_same_schema(snapshot_of(empty_db_dsn), fresh, "rollback --all + migrate != fresh")


def test_rollback_one_then_migrate_restores(db_dsn: str) -> None:
    before = snapshot_of(db_dsn)
    ids = all_migration_ids()
    assert rollback(db_dsn) == ids[-1:]
    assert status(db_dsn).pending == ids[-1:]
    assert migrate(db_dsn) == ids[-1:]
    assert_same_schema(snapshot_of(db_dsn), before, "rollback one + migrate != before")


def test_stepwise_upgrade_equals_fresh_install(empty_db_dsn: str, db: Conn) -> None:
    migrations = load_migrations()
    prepare_bookkeeping(empty_db_dsn, migrations)
    for _ in range(len(migrations)):
        # One migration per run, each on its own yoyo connection, as successive releases
        # would do; the function hook runs only at the end (it needs the full schema).
        with yoyo_backend(empty_db_dsn) as backend, backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations_only(pending.__class__(list(pending)[:1]))
    with yoyo_backend(empty_db_dsn) as backend, backend.lock():
        assert not backend.to_apply(migrations)
        backend.run_post_apply(migrations)
    assert_same_schema(snapshot_of(empty_db_dsn), snapshot(db), "stepwise != all at once")


def test_plpgsql_functions_pass_plpgsql_check(db: Conn) -> None:
    if not db.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'plpgsql_check'"
    ).fetchone():
        pytest.skip("plpgsql_check is not installed (apt-get install postgresql-NN-plpgsql-check)")
    db.execute("CREATE EXTENSION IF NOT EXISTS plpgsql_check")
    functions = db.execute(
        "SELECT p.oid, p.oid::regprocedure::text, p.prorettype = 'trigger'::regtype"
        " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " JOIN pg_language l ON l.oid = p.prolang"
        " WHERE n.nspname IN ('enrolldb', 'enrolldb_internal') AND l.lanname = 'plpgsql'"
        " ORDER BY 2"
    ).fetchall()
    problems: list[str] = []
    for oid, signature, is_trigger in functions:
        if is_trigger:
            # Check the trigger function against every table (and transition tables) it
            # serves; an unused trigger function cannot be checked meaningfully.
            contexts = db.execute(
                "SELECT DISTINCT tgrelid, tgnewtable::text, tgoldtable::text"
                " FROM pg_trigger WHERE tgfoid = %s AND NOT tgisinternal",
                (oid,),
            ).fetchall()
            if not contexts:
                problems.append(f"{signature}: trigger function used by no trigger")
        else:
            contexts = [(0, None, None)]
        for relid, newtable, oldtable in contexts:
            rows = db.execute(
                "SELECT level, message, lineno, statement FROM plpgsql_check_function_tb("
                "%s::oid::regprocedure, %s::oid::regclass, fatal_errors => false,"
                " newtable => %s::name, oldtable => %s::name)"
                " WHERE level = 'error'",
                (oid, relid, newtable, oldtable),
            ).fetchall()
            problems += [f"{signature} line {r[2]} ({r[3]}): {r[1]}" for r in rows]
    assert problems == [], "\n".join(problems)


def test_migrations_form_a_linear_chain_with_rollbacks() -> None:
    directory = migrations_dir()
    migrations = sorted(load_migrations(), key=lambda m: m.id)
    assert migrations, "no migrations found"
    previous: str | None = None
    for m in migrations:
        assert (directory / f"{m.id}.rollback.sql").is_file(), f"{m.id} has no .rollback.sql"
        depends = sorted(d.id for d in m.depends)
        expected = [previous] if previous else []
        assert depends == expected, f"{m.id} must depend on exactly {expected}, not {depends}"
        previous = m.id


def migrate_like_0_1_0(dsn: str) -> None:
    """What enrolldb 0.1.0 did: yoyo's tables in ``public``, migrations then functions."""
    migrations = load_migrations()
    backend = get_backend(to_yoyo_uri(dsn, "public"))
    try:
        with backend.lock():
            backend.apply_migrations_only(backend.to_apply(migrations))
            backend.run_post_apply(migrations)
    finally:
        backend.connection.close()


def yoyo_tables(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relname LIKE '%yoyo%' AND c.relkind = 'r' ORDER BY 1, 2"
        ).fetchall()
    return [(str(s), str(t)) for s, t in rows]


def test_0_1_0_bookkeeping_in_public_is_moved_by_the_next_migrate(empty_db_dsn: str) -> None:
    migrate_like_0_1_0(empty_db_dsn)
    assert {s for s, _ in yoyo_tables(empty_db_dsn)} == {"public"}
    st = status(empty_db_dsn)
    assert st.applied == all_migration_ids() and st.bookkeeping_schema == "public"
    assert not st.up_to_date
    result = migrate_report(empty_db_dsn)
    assert result.moved_bookkeeping and result.applied == []
    assert yoyo_tables(empty_db_dsn) == [
        (MIGRATIONS_SCHEMA, t)
        for t in sorted(("_yoyo_log", "_yoyo_migration", "_yoyo_version", "yoyo_lock"))
    ]
    st = status(empty_db_dsn)
    assert st.applied == all_migration_ids() and st.up_to_date, st
    assert migrate_report(empty_db_dsn).moved_bookkeeping is False


def test_another_applications_yoyo_tables_in_public_are_left_alone(empty_db_dsn: str) -> None:
    with psycopg.connect(empty_db_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE public._yoyo_migration (migration_hash varchar(64) PRIMARY KEY,"
            " migration_id varchar(255), applied_at_utc timestamp)"
        )
        conn.execute("INSERT INTO public._yoyo_migration VALUES ('h', '0001_theirs', now())")
    assert status(empty_db_dsn).migrated is False
    assert migrate_report(empty_db_dsn).moved_bookkeeping is False
    with psycopg.connect(empty_db_dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT migration_id FROM public._yoyo_migration").fetchall()
    assert rows == [("0001_theirs",)]
    assert status(empty_db_dsn).up_to_date


def test_rolling_back_0008_keeps_the_salt_owner_only(db_dsn: str) -> None:
    """The salt is the live one of every key retired so far: reading it reverses a retired
    key by trying candidates. 0008's rollback re-granted SELECT on it to both roles."""
    target = "0008_invisible_key_characters_and_private_retirement"
    rolled_back: list[str] = []
    while target not in rolled_back:
        step = rollback(db_dsn)
        assert step, f"{target} was never rolled back"
        rolled_back += step
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for role in ("enrolldb_app", "enrolldb_readonly"):
            row = conn.execute(
                "SELECT has_table_privilege(%s, 'enrolldb.retirement_salt', 'SELECT')", (role,)
            ).fetchone()
            assert row == (False,), role
            conn.execute(f"SET ROLE {role}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT salt FROM enrolldb.retirement_salt")
            conn.execute("RESET ROLE")
