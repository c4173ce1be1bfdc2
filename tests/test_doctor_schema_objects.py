"""``enrolldb doctor`` catches the objects that enforce the rules being dropped or disabled.

Why: a hostile tester found doctor saying "healthy" after ``DISABLE TRIGGER``, ``DROP
INDEX``, ``DROP CONSTRAINT``, a constraint left ``NOT VALID`` or an index left invalid by a
failed ``CREATE INDEX CONCURRENTLY``; the rows stay correct until the next bad write, so only
a catalog comparison notices. Each test plants one such change as a DBA would and checks the
exact lines (and JSON) doctor prints, and that an index a DBA added is information only.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from builders import add_user
from cli_run import enrolldb_cli
from pgtypes import Conn

HEADER = "schema objects (constraints, indexes, triggers; as in sql/schema.snapshot)"
PCE = "enrolldb.program_enrollments_programcourseenrollment"
PE = "enrolldb.program_enrollments_programenrollment"


def doctor(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return enrolldb_cli("doctor", *args, dsn=dsn)


def section(stdout: str) -> list[str]:
    """The lines of doctor's schema-object section, header included."""
    lines = stdout.splitlines()
    start = lines.index(HEADER)
    end = lines.index("", start)
    return lines[start:end]


def findings(dsn: str) -> tuple[int, dict[str, Any]]:
    proc = doctor(dsn, "--format", "json")
    document = json.loads(proc.stdout)
    return proc.returncode, document


def test_fresh_database_reports_nothing(db_dsn: str) -> None:
    proc = doctor(db_dsn)
    assert proc.returncode == 0, proc
    assert section(proc.stdout) == [HEADER, "  as shipped"]
    code, document = findings(db_dsn)
    assert code == 0
    assert document["schema_objects"] == {"findings": [], "not_checked": None, "error": None}


def test_disabled_trigger_is_unhealthy(db: Conn, db_dsn: str) -> None:
    db.execute(f"ALTER TABLE {PCE} DISABLE TRIGGER programcourseenrollment_history_insert")
    proc = doctor(db_dsn)
    assert proc.returncode == 1, proc
    assert section(proc.stdout) == [
        HEADER,
        "  1 not as shipped:",
        f"  trigger programcourseenrollment_history_insert on {PCE}: disabled, it does not fire"
        f" (ALTER TABLE ... DISABLE TRIGGER); fix: ALTER TABLE {PCE} ENABLE TRIGGER"
        " programcourseenrollment_history_insert",
    ]
    assert proc.stdout.splitlines()[-1] == "NOT healthy: 1 schema object(s) not as shipped"
    code, document = findings(db_dsn)
    assert code == 1 and document["healthy"] is False
    assert document["schema_objects"]["findings"] == [
        {
            "object": f"trigger programcourseenrollment_history_insert on {PCE}",
            "problem": "disabled",
            "detail": "it does not fire (ALTER TABLE ... DISABLE TRIGGER)",
            "what_to_do": f"ALTER TABLE {PCE} ENABLE TRIGGER"
            " programcourseenrollment_history_insert",
            "unhealthy": True,
        }
    ]


def test_dropped_index_is_unhealthy_and_the_fix_recreates_it(db: Conn, db_dsn: str) -> None:
    db.execute("DROP INDEX enrolldb.programcourseenrollment_active_course_enrollment_uq")
    create = (
        "CREATE UNIQUE INDEX programcourseenrollment_active_course_enrollment_uq ON"
        f" {PCE} USING btree (course_enrollment_id) WHERE ((status)::text = 'active'::text)"
    )
    proc = doctor(db_dsn)
    assert proc.returncode == 1, proc
    assert section(proc.stdout) == [
        HEADER,
        "  1 not as shipped:",
        "  index enrolldb.programcourseenrollment_active_course_enrollment_uq: missing,"
        " `enrolldb migrate` does not recreate it; fix: recreate it as the schema owner:"
        f" {create} (CREATE INDEX CONCURRENTLY on a busy table)",
    ]
    # The remedy is the honest one: running the SQL it names makes doctor healthy again.
    db.execute(create)
    assert doctor(db_dsn).returncode == 0


def test_dropped_constraint_is_unhealthy(db: Conn, db_dsn: str) -> None:
    db.execute(f"ALTER TABLE {PE} DROP CONSTRAINT programenrollment_user_or_key_ck")
    proc = doctor(db_dsn)
    assert proc.returncode == 1, proc
    assert section(proc.stdout) == [
        HEADER,
        "  1 not as shipped:",
        f"  constraint programenrollment_user_or_key_ck on {PE}: missing, `enrolldb migrate`"
        f" does not recreate it; fix: recreate it as the schema owner: ALTER TABLE {PE}"
        " ADD CONSTRAINT programenrollment_user_or_key_ck"
        " CHECK (((user_id IS NOT NULL) OR (external_user_key IS NOT NULL)))",
    ]


def test_dropped_unique_constraint_names_its_index_once(db: Conn, db_dsn: str) -> None:
    """Dropping a UNIQUE constraint drops its index: both are missing, one fix."""
    db.execute(
        "ALTER TABLE enrolldb.student_courseenrollment"
        " DROP CONSTRAINT courseenrollment_user_course_uq"
    )
    code, document = findings(db_dsn)
    assert code == 1
    assert [(f["object"], f["what_to_do"]) for f in document["schema_objects"]["findings"]] == [
        (
            "constraint courseenrollment_user_course_uq on enrolldb.student_courseenrollment",
            "recreate it as the schema owner: ALTER TABLE enrolldb.student_courseenrollment"
            " ADD CONSTRAINT courseenrollment_user_course_uq UNIQUE (user_id, course_id)",
        ),
        (
            "index enrolldb.courseenrollment_user_course_uq",
            "comes back with constraint courseenrollment_user_course_uq on"
            " enrolldb.student_courseenrollment (see that line)",
        ),
    ]


def test_not_valid_constraint_is_unhealthy(db: Conn, db_dsn: str) -> None:
    db.execute(f"ALTER TABLE {PE} DROP CONSTRAINT programenrollment_user_or_key_ck")
    db.execute(
        f"ALTER TABLE {PE} ADD CONSTRAINT programenrollment_user_or_key_ck"
        " CHECK (user_id IS NOT NULL OR external_user_key IS NOT NULL) NOT VALID"
    )
    proc = doctor(db_dsn)
    assert proc.returncode == 1, proc
    # Reported as not validated, not as a different definition.
    assert section(proc.stdout) == [
        HEADER,
        "  1 not as shipped:",
        f"  constraint programenrollment_user_or_key_ck on {PE}: not validated, NOT VALID: rows"
        " written before it was added were never checked; fix: ALTER TABLE"
        f" {PE} VALIDATE CONSTRAINT programenrollment_user_or_key_ck (fix the rows it reports"
        " first)",
    ]


def test_extra_index_is_information_and_healthy(db: Conn, db_dsn: str) -> None:
    """A DBA's own index is a tuning decision: listed, exit 0."""
    db.execute("CREATE INDEX dba_username_lower_idx ON enrolldb.auth_user (lower(username))")
    proc = doctor(db_dsn)
    assert proc.returncode == 0, proc
    assert section(proc.stdout) == [
        HEADER,
        "  as shipped",
        "  1 not shipped (information, not a problem):",
        "  index enrolldb.dba_username_lower_idx: extra, not shipped by enrolldb: CREATE INDEX"
        " dba_username_lower_idx ON enrolldb.auth_user USING btree (lower((username)::text));"
        " keep it if it is yours (enrolldb's tests never ran with it; a constraint, unique"
        " index or trigger may make enrolldb's functions fail)",
    ]
    assert proc.stdout.splitlines()[-1] == "healthy"


def test_index_left_behind_by_a_failed_concurrent_build_is_unhealthy(db: Conn, db_dsn: str) -> None:
    add_user(db, "twin")
    db.execute("INSERT INTO enrolldb.auth_user (username) VALUES ('TWIN')")
    # The duplicate makes the build fail after the catalog entry was committed.
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(
            "CREATE UNIQUE INDEX CONCURRENTLY dba_username_ci_uq"
            " ON enrolldb.auth_user (lower(username))"
        )
    code, document = findings(db_dsn)
    assert code == 1
    assert [
        (f["object"], f["problem"], f["what_to_do"], f["unhealthy"])
        for f in document["schema_objects"]["findings"]
    ] == [
        (
            "index enrolldb.dba_username_ci_uq",
            "not ready",
            "REINDEX INDEX CONCURRENTLY enrolldb.dba_username_ci_uq"
            " (or DROP INDEX it if it is a leftover copy)",
            True,
        ),
        (
            "index enrolldb.dba_username_ci_uq",
            "extra",
            "keep it if it is yours (enrolldb's"
            " tests never ran with it; a constraint, unique index or trigger may make enrolldb's"
            " functions fail)",
            False,
        ),
    ]


def test_disable_trigger_all_reports_the_foreign_keys_it_unenforces(db: Conn, db_dsn: str) -> None:
    db.execute("ALTER TABLE enrolldb.retired_program_enrollment DISABLE TRIGGER ALL")
    code, document = findings(db_dsn)
    assert code == 1
    assert document["schema_objects"]["findings"] == [
        {
            "object": "constraint retiredprogramenrollment_program_enrollment_fk on"
            " enrolldb.retired_program_enrollment",
            "problem": "disabled",
            "detail": "not enforced: its internal triggers are disabled (DISABLE TRIGGER ALL)",
            "what_to_do": "ALTER TABLE enrolldb.retired_program_enrollment ENABLE TRIGGER ALL"
            " (as a superuser)",
            "unhealthy": True,
        }
    ]


def test_pending_migrations_skip_the_comparison(db: Conn, db_dsn: str) -> None:
    db.execute(
        "DELETE FROM enrolldb_migrations._yoyo_migration"
        " WHERE migration_id = '0004_retirement_salt'"
    )
    proc = doctor(db_dsn)
    assert proc.returncode == 1, proc
    assert section(proc.stdout) == [
        HEADER,
        "  not compared until the pending migrations are applied",
    ]


def test_a_readonly_member_gets_the_same_findings(db: Conn, db_dsn: str) -> None:
    """Catalogs are readable by everyone: enrolldb_readonly needs no more privileges."""
    db.execute(f"ALTER TABLE {PCE} DISABLE TRIGGER programcourseenrollment_history_insert")
    owner = findings(db_dsn)[1]["schema_objects"]
    role = f"enrolldb_reader_{secrets.token_hex(4)}"
    db.execute(f"CREATE ROLE {role} LOGIN IN ROLE enrolldb_readonly")
    # As support staff set it for psql: object names must not lose their schema.
    db.execute(f"ALTER ROLE {role} SET search_path = enrolldb, public")
    try:
        code, document = findings(make_conninfo(db_dsn, user=role))
        text = doctor(make_conninfo(db_dsn, user=role))
    finally:
        db.execute(f"DROP OWNED BY {role}")
        db.execute(f"DROP ROLE {role}")
    assert code == 1
    assert document["schema_objects"] == owner
    assert [f["object"] for f in owner["findings"]] == [
        f"trigger programcourseenrollment_history_insert on {PCE}"
    ]
    assert section(text.stdout)[1:] == [
        "  1 not as shipped:",
        f"  trigger programcourseenrollment_history_insert on {PCE}: disabled, it does not fire"
        f" (ALTER TABLE ... DISABLE TRIGGER); fix: ALTER TABLE {PCE} ENABLE TRIGGER"
        " programcourseenrollment_history_insert",
    ]
