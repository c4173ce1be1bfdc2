"""A least-privilege owner deploys enrolldb, following docs/operators.md to the letter.

Why: since PostgreSQL 15 an ordinary role may not create in ``public``, and a custom
setting in a function's ``SET`` clause needs a superuser; 0.1.0 could only be migrated by a
superuser. Here the statements of 'Roles and privileges' run exactly as written (example
names replaced by per-run ones), then the owner, holding ``CONNECT, CREATE`` on the
database and nothing else, migrates, rolls back everything and migrates again; the app
role links (the change reason reaches the history) and the read-only role runs doctor.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

import enrolldb
from cli_run import enrolldb_cli
from docblocks import REPO, Block, Placeholders, Runner, blocks, drop_roles
from enrolldb.migrate import MigrateError, load_migrations, migrate, rollback, status

#: The module, not the function ``enrolldb.migrate`` that the package re-exports.
migrate_module = importlib.import_module("enrolldb.migrate")

OPERATORS = REPO / "docs" / "operators.md"
PROGRAM = "8e4c1a2b-0000-4000-8000-000000000001"
CURRICULUM = "c0000000-0000-4000-8000-000000000001"
COURSE = "course-v1:GTx+CS6250+2024_T1"


def role_blocks() -> list[Block]:
    found = [
        b
        for b in blocks(OPERATORS)
        if b.section == "Roles and privileges" and b.lang in ("sql", "sh")
    ]
    assert len(found) >= 4, "docs/operators.md lost its 'Roles and privileges' statements"
    return found


@pytest.fixture
def deployment(empty_db_dsn: str) -> Iterator[tuple[Placeholders, str]]:
    """The documented set-up run on a fresh database; yields (names, superuser dsn)."""
    params = conninfo_to_dict(empty_db_dsn)
    names = Placeholders(str(params["host"]), int(str(params["port"])), str(params["dbname"]))
    runner = Runner(empty_db_dsn, names)
    try:
        for block in role_blocks():
            runner.run(block)
        yield names, empty_db_dsn
    finally:
        runner.close()
        drop_roles(empty_db_dsn, names.roles, [names.dbname])


def as_role(dsn: str, role: str) -> str:
    return make_conninfo(dsn, user=role)


def test_owner_has_only_connect_and_create(deployment: tuple[Placeholders, str]) -> None:
    names, dsn = deployment
    owner = names.role("enrolldb_owner")
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb,"
            " (SELECT datdba = r.oid FROM pg_database WHERE datname = current_database()),"
            " (SELECT count(*) FROM pg_auth_members WHERE member = r.oid)"
            " FROM pg_roles AS r WHERE rolname = %s",
            (owner,),
        ).fetchone()
    assert row == (False, False, False, False, 0)


def test_owner_migrates_rolls_back_and_migrates_again(
    deployment: tuple[Placeholders, str],
) -> None:
    names, dsn = deployment
    owner_dsn = as_role(dsn, names.role("enrolldb_owner"))
    ids = [m.id for m in load_migrations()]
    # The documented `enrolldb migrate` already ran as the owner: everything is applied.
    st = status(owner_dsn)
    assert st.applied == ids and st.up_to_date, st
    with psycopg.connect(dsn, autocommit=True) as conn:
        owners = conn.execute(
            "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace"
            " WHERE nspname IN ('enrolldb', 'enrolldb_migrations') ORDER BY 1"
        ).fetchall()
        assert owners == [
            (s, names.role("enrolldb_owner")) for s in ("enrolldb", "enrolldb_migrations")
        ]
        in_public = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        ).fetchall()
        assert in_public == []
    assert rollback(owner_dsn, all=True) == list(reversed(ids))
    assert status(owner_dsn).applied == []
    assert migrate(owner_dsn) == ids
    assert status(owner_dsn).up_to_date


def test_app_role_links_and_history_carries_the_reason(
    deployment: tuple[Placeholders, str],
) -> None:
    names, dsn = deployment
    owner_dsn = as_role(dsn, names.role("enrolldb_owner"))
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO enrolldb.course_overviews_courseoverview VALUES (%s, 'GTx')", (COURSE,)
        )
        conn.execute(
            "INSERT INTO enrolldb.program_enrollments_program VALUES (%s, 'gtx', 'OMSCS')",
            (PROGRAM,),
        )
        conn.execute("INSERT INTO enrolldb.auth_user (username) VALUES ('alice')")
        conn.execute(
            "INSERT INTO enrolldb.program_enrollments_programenrollment"
            " (external_user_key, program_uuid, curriculum_uuid, status)"
            " VALUES ('GT-1', %s, %s, 'enrolled')",
            (PROGRAM, CURRICULUM),
        )
    with psycopg.connect(as_role(dsn, names.role("lms_service")), autocommit=True) as app:
        assert enrolldb.link_program_enrollments(app, PROGRAM, {"GT-1": "alice"}) == {}
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("DELETE FROM enrolldb.program_enrollments_programenrollment")
    with psycopg.connect(dsn, autocommit=True) as conn:
        reasons = conn.execute(
            "SELECT history_type, history_change_reason"
            " FROM enrolldb.program_enrollments_historicalprogramenrollment ORDER BY history_id"
        ).fetchall()
    assert reasons == [("+", None), ("~", "link_program_enrollments")]


def test_owner_imports_and_no_other_role_reads_the_staging(
    deployment: tuple[Placeholders, str], tmp_path: Path
) -> None:
    from enrolldb.demo_export import write_export

    names, dsn = deployment
    write_export(tmp_path / "export", 20)
    run = enrolldb_cli(
        "import", str(tmp_path / "export"), dsn=as_role(dsn, names.role("enrolldb_owner"))
    )
    assert run.returncode == 1, run.stderr  # the demo export has refused rows
    with psycopg.connect(dsn, autocommit=True) as conn:
        (users,) = conn.execute("SELECT count(*) FROM enrolldb.auth_user").fetchone() or (0,)
    assert users > 0
    for login in ("support_staff", "lms_service"):
        reader_dsn = as_role(dsn, names.role(login))
        with (
            psycopg.connect(reader_dsn, autocommit=True) as reader,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            reader.execute("SELECT FROM enrolldb_import.auth_user")
    proc = enrolldb_cli("doctor", dsn=as_role(dsn, names.role("support_staff")))
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("login", ["support_staff", "lms_service"])
def test_doctor_and_status_as_reader_exit_0(
    deployment: tuple[Placeholders, str], login: str
) -> None:
    names, dsn = deployment
    reader = as_role(dsn, names.role(login))
    proc = enrolldb_cli("doctor", dsn=reader)
    assert proc.returncode == 0, proc
    assert "functions: not compared: needs the owner role" in proc.stdout
    assert "check_integrity(): no violation" in proc.stdout
    assert proc.stdout.rstrip().endswith("healthy")
    proc = enrolldb_cli("status", dsn=reader)
    assert proc.returncode == 0, proc
    # A reader cannot migrate: the message names what is missing instead of a raw error.
    proc = enrolldb_cli("migrate", dsn=reader)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc


def test_missing_roles_stop_migrate_before_anything(
    deployment: tuple[Placeholders, str], monkeypatch: pytest.MonkeyPatch, empty_db_dsn: str
) -> None:
    names, dsn = deployment
    owner = names.role("enrolldb_owner")
    missing = f"enrolldb_missing_{names.suffix}"
    monkeypatch.setattr(migrate_module, "APP_ROLES", ("enrolldb_app", missing))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'REVOKE CREATE ON DATABASE "{names.dbname}" FROM "{owner}"'.encode())
        conn.execute("DROP SCHEMA enrolldb CASCADE")
        conn.execute("DROP SCHEMA enrolldb_migrations CASCADE")
        conn.execute("DROP SCHEMA enrolldb_import CASCADE")
        conn.execute("DROP SCHEMA enrolldb_internal CASCADE")
    with pytest.raises(MigrateError) as info:
        migrate(as_role(dsn, owner))
    assert f"CREATE ROLE {missing} NOLOGIN;" in str(info.value)
    assert "CREATE ROLE enrolldb_app" not in str(info.value)  # it exists: not asked for
    assert f"{owner} may not create roles" in str(info.value)
    monkeypatch.setattr(migrate_module, "APP_ROLES", ("enrolldb_app", "enrolldb_readonly"))
    with pytest.raises(MigrateError) as info:
        migrate(as_role(dsn, owner))
    assert f'GRANT CONNECT, CREATE ON DATABASE "{names.dbname}" TO "{owner}";' in str(info.value)
    with psycopg.connect(dsn, autocommit=True) as conn:
        schemas = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'enrolldb%'"
        ).fetchall()
    assert schemas == []


def test_a_failing_migrate_leaves_nothing(
    empty_db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last step of the one transaction fails: migrations and functions are undone."""

    def fail(backend: Any) -> None:
        backend.execute("SELECT 1/0")

    monkeypatch.setattr(migrate_module, "_grant_bookkeeping", fail)
    with pytest.raises(psycopg.errors.DivisionByZero):
        migrate(empty_db_dsn)
    with psycopg.connect(empty_db_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT to_regnamespace('enrolldb')").fetchone() == (None,)
        applied = conn.execute("SELECT count(*) FROM enrolldb_migrations._yoyo_migration")
        assert applied.fetchone() == (0,)
    assert status(empty_db_dsn).applied == []
    monkeypatch.undo()
    assert migrate(empty_db_dsn) == [m.id for m in load_migrations()]


def test_rollback_path_of_the_docs_is_this_file() -> None:
    assert Path(__file__).name in OPERATORS.read_text(encoding="utf-8")
