"""Functions of schema enrolldb that no file defines: reported by status/doctor, dropped by migrate.

Why: ``CREATE OR REPLACE`` cannot remove an overload, so a signature change in
``sql/functions`` used to leave the old function behind (calls became ambiguous) while
``doctor`` said healthy. The expected set is parsed from the files
(:mod:`enrolldb.routines`); the first test proves the parse matches a real deploy exactly,
so a parsing gap cannot make ``migrate`` drop a function that a file does define.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from cli_run import enrolldb_cli
from enrolldb.migrate import _declaring_files, load_migrations, migrate_report, status
from enrolldb.routines import (
    SCHEMAS,
    _arg_type,
    declared_routines,
    resolve,
    undeclared_routines,
)
from pgtypes import Conn

REPO = Path(__file__).resolve().parents[1]

EXTRA_API_OVERLOAD = "enrolldb.retire_user(integer, text)"
EXTRA_MIGRATION_OVERLOAD = "enrolldb.canonical_external_key(character varying)"


def all_declared() -> list[Any]:
    return declared_routines(_declaring_files({m.id for m in load_migrations()}))


def test_parsed_declarations_match_a_real_deploy_exactly(db: Conn) -> None:
    expected = resolve(db, all_declared())
    assert expected.protected_names == frozenset()
    deployed = set(
        db.execute(
            "SELECT pronamespace::regnamespace::text, proname::text, oidvectortypes(proargtypes)"
            " FROM pg_proc WHERE pronamespace::regnamespace::text = ANY(%s)",
            (list(SCHEMAS),),
        ).fetchall()
    )
    assert deployed == set(expected.signatures)
    assert undeclared_routines(db, all_declared()) == []


@pytest.mark.parametrize(
    ("declaration", "expected"),
    [
        ("p_key text", "text"),
        ("p_ids integer[]", "integer[]"),
        ("OUT p_x integer", None),
        ("IN p_x integer DEFAULT 1", "integer"),
        ("p_x text = 'a=b'", "text"),
        ("VARIADIC p_keys text[]", "text[]"),
        ("double precision", "double precision"),
        ("p_at timestamp with time zone", "timestamp with time zone"),
        ("integer", "integer"),
    ],
)
def test_argument_declarations(declaration: str, expected: str | None) -> None:
    assert _arg_type(declaration) == expected


def add_overloads(db: Conn) -> None:
    db.execute(
        "CREATE FUNCTION enrolldb.retire_user(p_user_id integer, p_reason text)"
        " RETURNS boolean LANGUAGE sql RETURN false"
    )
    db.execute(
        "CREATE FUNCTION enrolldb.canonical_external_key(p_key varchar)"
        " RETURNS text LANGUAGE sql RETURN p_key"
    )


def test_status_and_doctor_name_the_extra_overloads(db: Conn, db_dsn: str) -> None:
    add_overloads(db)
    st = status(db_dsn)
    assert st.undeclared_functions == sorted([EXTRA_API_OVERLOAD, EXTRA_MIGRATION_OVERLOAD])
    assert st.functions_out_of_date == [] and not st.up_to_date

    proc = enrolldb_cli("status", dsn=db_dsn)
    assert proc.returncode == 1, proc
    assert f"function defined by no file: {EXTRA_API_OVERLOAD}" in proc.stdout

    proc = enrolldb_cli("doctor", dsn=db_dsn)
    assert proc.returncode == 1, proc
    assert f"function defined by no file: {EXTRA_MIGRATION_OVERLOAD}" in proc.stdout
    assert "NOT healthy: 2 undeclared function(s)" in proc.stdout


def test_migrate_drops_them_and_keeps_everything_declared(db: Conn, db_dsn: str) -> None:
    before = db.execute(
        "SELECT count(*) FROM pg_proc WHERE pronamespace = 'enrolldb'::regnamespace"
    ).fetchone()
    add_overloads(db)
    result = migrate_report(db_dsn)
    assert result.applied == []
    assert result.dropped_functions == sorted([EXTRA_API_OVERLOAD, EXTRA_MIGRATION_OVERLOAD])
    after = db.execute(
        "SELECT count(*) FROM pg_proc WHERE pronamespace = 'enrolldb'::regnamespace"
    ).fetchone()
    assert after == before
    assert db.execute("SELECT enrolldb.canonical_external_key(' k ')").fetchone() == ("k",)
    assert status(db_dsn).up_to_date


def test_migrate_cli_says_what_it_dropped(db: Conn, db_dsn: str) -> None:
    add_overloads(db)
    proc = enrolldb_cli("migrate", dsn=db_dsn)
    assert proc.returncode == 0, proc
    assert (
        f"dropped {EXTRA_API_OVERLOAD}: no file in sql/functions or migrations defines it"
        in proc.stdout
    )


def test_a_dependency_on_an_undeclared_function_stops_migrate_whole(db: Conn, db_dsn: str) -> None:
    """DROP ... RESTRICT: nothing is dropped behind the DBA's back, and nothing changes."""
    db.execute("CREATE FUNCTION enrolldb.local_helper() RETURNS integer LANGUAGE sql RETURN 1")
    db.execute("CREATE VIEW public.uses_helper AS SELECT enrolldb.local_helper() AS x")
    with pytest.raises(psycopg.errors.DependentObjectsStillExist):
        migrate_report(db_dsn)
    assert status(db_dsn).undeclared_functions == ["enrolldb.local_helper()"]
