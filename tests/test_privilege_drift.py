"""A hand GRANT or REVOKE on schema enrolldb is reported by status/doctor and undone by migrate.

docs/operators.md promises it; it used to hold only for what re-applying a function file
changed (``REVOKE ... FROM public`` / ``GRANT ... TO enrolldb_app``): an extra grant, or any
change to a table's privileges, went unnoticed and survived every migrate.
``sql/functions/000_privileges.sql`` now resets every privilege of the schema, its tables,
sequences and routines and grants the expected ones on every migrate.
"""

from __future__ import annotations

import json
from typing import Any

from cli_run import enrolldb_cli
from enrolldb.migrate import migrate, status
from pgtypes import Conn

HAND_GRANTS = (
    "GRANT EXECUTE ON FUNCTION enrolldb_internal.retired_external_key(integer,text) TO PUBLIC",
    "GRANT EXECUTE ON FUNCTION enrolldb.retire_user(integer) TO enrolldb_readonly",
    "GRANT EXECUTE ON FUNCTION enrolldb_internal.attach_course_enrollments(integer[])"
    " TO enrolldb_app",
    "GRANT SELECT ON enrolldb.retirement_salt TO enrolldb_readonly",
    "GRANT UPDATE (external_user_key) ON enrolldb.program_enrollments_programenrollment"
    " TO enrolldb_app",
    "GRANT CREATE ON SCHEMA enrolldb TO enrolldb_app",
    "REVOKE SELECT ON enrolldb.auth_user FROM enrolldb_readonly",
)
EXPECTED_FUNCTIONS = [
    "enrolldb.retire_user(integer)",
    "enrolldb_internal.attach_course_enrollments(integer[])",
    "enrolldb_internal.retired_external_key(integer,text)",
]
EXPECTED_PRIVILEGES = [
    "schema enrolldb",
    "table enrolldb.auth_user",
    "table enrolldb.program_enrollments_programenrollment",
    "table enrolldb.retirement_salt",
]

ACLS = """
SELECT 'schema', nspname, nspacl::text FROM pg_namespace WHERE nspname = 'enrolldb'
UNION ALL
SELECT 'rel', c.oid::regclass::text, c.relacl::text || coalesce((
    SELECT string_agg(a.attname || a.attacl::text, ',') FROM pg_attribute AS a
    WHERE a.attrelid = c.oid AND a.attacl IS NOT NULL), '')
FROM pg_class AS c WHERE c.relnamespace = 'enrolldb'::regnamespace
UNION ALL
SELECT 'proc', p.oid::regprocedure::text, p.proacl::text
FROM pg_proc AS p WHERE p.pronamespace = 'enrolldb'::regnamespace
ORDER BY 1, 2
"""


def acls(db: Conn) -> list[tuple[Any, ...]]:
    return db.execute(ACLS).fetchall()


def test_fresh_deploy_has_no_privilege_drift(db_dsn: str) -> None:
    st = status(db_dsn)
    assert (st.functions_out_of_date, st.privileges_out_of_date) == ([], [])
    assert st.up_to_date


def test_hand_grants_are_reported_and_reverted(db: Conn, db_dsn: str) -> None:
    deployed = acls(db)
    for statement in HAND_GRANTS:
        db.execute(statement.encode())
    assert acls(db) != deployed

    st = status(db_dsn)
    assert st.functions_out_of_date == EXPECTED_FUNCTIONS
    assert st.privileges_out_of_date == EXPECTED_PRIVILEGES
    assert not st.up_to_date

    cli_status = enrolldb_cli("status", dsn=db_dsn)
    assert cli_status.returncode == 1, cli_status.stdout + cli_status.stderr
    for name in EXPECTED_PRIVILEGES:
        assert f"privileges out of date: {name}" in cli_status.stdout
    for name in EXPECTED_FUNCTIONS:
        assert f"function out of date: {name}" in cli_status.stdout

    doctor = enrolldb_cli("doctor", "--format", "json", dsn=db_dsn)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    document = json.loads(doctor.stdout)
    assert document["healthy"] is False
    assert document["migrations"]["privileges_out_of_date"] == EXPECTED_PRIVILEGES
    assert document["migrations"]["functions_out_of_date"] == EXPECTED_FUNCTIONS

    assert migrate(db_dsn) == []
    assert acls(db) == deployed
    after = status(db_dsn)
    assert (after.functions_out_of_date, after.privileges_out_of_date) == ([], [])
    assert after.up_to_date


def test_grant_to_any_other_role_is_reverted(db: Conn, db_dsn: str) -> None:
    """Not only the two enrolldb roles and PUBLIC: every grantee but the owner."""
    db.execute("DROP ROLE IF EXISTS enrolldb_test_stranger")
    db.execute("CREATE ROLE enrolldb_test_stranger NOLOGIN")
    try:
        deployed = acls(db)
        db.execute("GRANT SELECT ON enrolldb.learner_key_lock TO enrolldb_test_stranger")
        assert status(db_dsn).privileges_out_of_date == ["table enrolldb.learner_key_lock"]
        migrate(db_dsn)
        assert acls(db) == deployed
    finally:
        db.execute("DROP OWNED BY enrolldb_test_stranger")
        db.execute("DROP ROLE enrolldb_test_stranger")
