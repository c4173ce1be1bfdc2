"""docs/reference.md, Schema roles, grants, function security and catalog hygiene.

Why these tests: services connect as login roles that DBAs grant ``enrolldb_app`` or
``enrolldb_readonly``. If the app role could write a table directly it could bypass the
linking rules the functions enforce (and their change reasons); if an internal function were
executable by it or by PUBLIC, a caller could skip the locking those functions rely on; if an
API function lacked ``SECURITY DEFINER`` or its pinned ``search_path``, the app role could not
call it or a temporary object could hijack it. Names and comments are part of the contract:
the Python client maps errors by constraint name, DBAs read ``\\d+``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from psycopg import errors, sql

from builders import Data, refused
from pgtypes import Conn

APP = "enrolldb_app"
READONLY = "enrolldb_readonly"
SEARCH_PATH = "search_path=pg_catalog, enrolldb, pg_temp"

#: Executable by both roles (and, by explicit decision, harmless helpers).
KEY_HELPERS = {
    "enrolldb.canonical_external_key(text)",
    "enrolldb.is_canonical_external_key(text)",
    "enrolldb.comparable_external_key(text)",
}

#: Tables no role but the owner may read (SECURITY DEFINER code uses them). The salt: whoever
#: reads it can recompute retired keys. The key locks: a role that can read a table can also
#: hold locks on it, and the API waits on these rows' locks. Every other table is readable by
#: both roles.
OWNER_ONLY_TABLES = {"retirement_salt", "learner_key_lock"}

#: The API functions of docs/reference.md, Functions that exist at this stage (later issues add
#: more).
API_FUNCTIONS = {
    "enrolldb.check_integrity()",
    "enrolldb.link_program_enrollments(uuid,text[],text[])",
    "enrolldb.link_program_enrollments(uuid,jsonb)",
    "enrolldb.link_program_enrollments(uuid,json)",
    "enrolldb.matriculate_learner(integer,text,text)",
    "enrolldb.unlink_program_enrollment(integer)",
    "enrolldb.retire_user(integer)",
}

#: Internal functions: only the SECURITY DEFINER API functions (same owner) may call them. Those
#: of linking live in schema enrolldb_internal (no USAGE for any role: refused at the schema).
INTERNAL_CALLS = {
    "enrolldb_internal.link_locked(enrolldb_internal.link_unit[])": (
        "SELECT * FROM enrolldb_internal.link_locked('{}'::enrolldb_internal.link_unit[])"
    ),
    "enrolldb_internal.unlink_locked(integer[])": (
        "SELECT enrolldb_internal.unlink_locked('{}'::integer[])"
    ),
    "enrolldb_internal.attach_course_enrollments(integer[])": (
        "SELECT enrolldb_internal.attach_course_enrollments('{}'::integer[])"
    ),
    "enrolldb_internal.lock_users(integer[])": (
        "SELECT enrolldb_internal.lock_users('{}'::integer[])"
    ),
    "enrolldb_internal.retired_external_key(integer,text)": (
        "SELECT enrolldb_internal.retired_external_key(1, 'k')"
    ),
    "enrolldb_internal.lock_learner_key_rows(text,text[])": (
        "SELECT enrolldb_internal.lock_learner_key_rows('gtx', '{k}'::text[])"
    ),
}

API_CALLS = {
    "enrolldb.check_integrity()": "SELECT * FROM enrolldb.check_integrity()",
    "enrolldb.unlink_program_enrollment(integer)": "SELECT enrolldb.unlink_program_enrollment(-1)",
    "enrolldb.retire_user(integer)": "SELECT enrolldb.retire_user(-1)",
    "enrolldb.matriculate_learner(integer,text,text)": (
        "SELECT * FROM enrolldb.matriculate_learner(-1, 'gtx', 'k')"
    ),
    "enrolldb.link_program_enrollments(uuid,text[],text[])": (
        "SELECT * FROM enrolldb.link_program_enrollments("
        "gen_random_uuid(), '{}'::text[], '{}'::text[])"
    ),
    "enrolldb.link_program_enrollments(uuid,jsonb)": (
        "SELECT * FROM enrolldb.link_program_enrollments(gen_random_uuid(), '{}'::jsonb)"
    ),
    "enrolldb.link_program_enrollments(uuid,json)": (
        "SELECT * FROM enrolldb.link_program_enrollments(gen_random_uuid(), '{}'::json)"
    ),
}


def tables(db: Conn) -> list[str]:
    rows = db.execute(
        "SELECT c.relname FROM pg_catalog.pg_class AS c "
        "WHERE c.relnamespace = 'enrolldb'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm') "
        "ORDER BY 1"
    ).fetchall()
    names = [r[0] for r in rows]
    assert "program_enrollments_programcourseenrollment" in names
    return names


def first_column(db: Conn, table: str) -> str:
    row = db.execute(
        "SELECT attname FROM pg_catalog.pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum LIMIT 1",
        (f"enrolldb.{table}",),
    ).fetchone()
    assert row is not None
    name: str = row[0]
    return name


def functions(db: Conn) -> list[tuple[str, Any, bool, list[str] | None]]:
    """(signature, proacl as text or None, prosecdef, proconfig) of every function in enrolldb."""
    rows = db.execute(
        "SELECT p.oid::regprocedure::text, p.proacl::text, p.prosecdef, p.proconfig "
        "FROM pg_catalog.pg_proc AS p WHERE p.pronamespace = 'enrolldb'::regnamespace "
        "ORDER BY 1"
    ).fetchall()
    assert rows
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def executable_by(db: Conn, role: str) -> set[str]:
    rows = db.execute(
        "SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc AS p "
        "WHERE p.pronamespace IN ('enrolldb'::regnamespace, 'enrolldb_internal'::regnamespace) "
        "AND pg_catalog.has_function_privilege(%s, p.oid, 'EXECUTE')",
        (role,),
    ).fetchall()
    return {r[0] for r in rows}


def granted_to(db: Conn, role: str) -> set[str]:
    """Functions whose ACL grants EXECUTE to ``role`` itself (PUBLIC grants not counted)."""
    rows = db.execute(
        "SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc AS p "
        "WHERE p.pronamespace IN ('enrolldb'::regnamespace, 'enrolldb_internal'::regnamespace) "
        "AND EXISTS (SELECT FROM pg_catalog.aclexplode(p.proacl) AS a "
        "  WHERE a.grantee = %s::regrole AND a.privilege_type = 'EXECUTE')",
        (role,),
    ).fetchall()
    return {r[0] for r in rows}


def seed(db: Conn) -> None:
    """One row in every table the roles are tried against, so UPDATE/DELETE have a target."""
    data = Data(db)
    data.course("course-v1:edX+Cats+Dogs")
    user = data.user("learner")
    ce = data.ce(user, "course-v1:edX+Cats+Dogs")
    pe = data.pe(data.program(), user_id=user, key="k-1")
    data.pce(pe, "course-v1:edX+Cats+Dogs", ce)


# --- table privileges ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", [APP, READONLY])
def test_role_selects_every_table(db: Conn, connect: Any, role: str) -> None:
    seed(db)
    conn: Conn = connect(role=role)
    assert conn.execute("SELECT current_user").fetchone() == (role,)
    for table in sorted(set(tables(db)) - OWNER_ONLY_TABLES):
        conn.execute(sql.SQL("SELECT * FROM enrolldb.{}").format(sql.Identifier(table))).fetchall()
    assert conn.execute(
        "SELECT count(*) FROM enrolldb.program_enrollments_programcourseenrollment"
    ).fetchone() == (1,)


@pytest.mark.parametrize("role", [APP, READONLY])
def test_role_cannot_write_any_table(db: Conn, connect: Any, role: str) -> None:
    seed(db)
    before = {
        t: db.execute(
            sql.SQL("SELECT count(*) FROM enrolldb.{}").format(sql.Identifier(t))
        ).fetchall()
        for t in tables(db)
    }
    conn: Conn = connect(role=role)
    for table in tables(db):
        ident = sql.Identifier(table)
        col = sql.Identifier(first_column(db, table))
        statements = [
            sql.SQL("INSERT INTO enrolldb.{} DEFAULT VALUES").format(ident),
            sql.SQL("UPDATE enrolldb.{} SET {} = {}").format(ident, col, col),
            sql.SQL("DELETE FROM enrolldb.{}").format(ident),
            sql.SQL("TRUNCATE enrolldb.{} CASCADE").format(ident),
        ]
        for statement in statements:
            refused(conn, errors.InsufficientPrivilege, None, statement.as_string(conn))
    after = {
        t: db.execute(
            sql.SQL("SELECT count(*) FROM enrolldb.{}").format(sql.Identifier(t))
        ).fetchall()
        for t in tables(db)
    }
    assert after == before


def test_table_grants_in_the_catalog(db: Conn) -> None:
    """Exactly SELECT for both roles, on every table but the owner-only ones; nothing for
    PUBLIC."""
    rows = db.execute(
        "SELECT c.relname, a.grantee::regrole::text, a.privilege_type "
        "FROM pg_catalog.pg_class AS c, LATERAL pg_catalog.aclexplode(c.relacl) AS a "
        "WHERE c.relnamespace = 'enrolldb'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm') "
        "AND a.grantee <> c.relowner"
    ).fetchall()
    got = {(r[0], r[1], r[2]) for r in rows}
    expected = {
        (t, role, "SELECT") for t in set(tables(db)) - OWNER_ONLY_TABLES for role in (APP, READONLY)
    }
    assert got == expected


@pytest.mark.parametrize("role", [APP, READONLY])
def test_role_cannot_create_in_the_schema(connect: Any, role: str) -> None:
    conn: Conn = connect(role=role)
    refused(conn, errors.InsufficientPrivilege, None, "CREATE TABLE enrolldb.sneaky (id integer)")
    refused(
        conn,
        errors.InsufficientPrivilege,
        None,
        "CREATE FUNCTION enrolldb.sneaky() RETURNS integer LANGUAGE sql RETURN 1",
    )


# --- function privileges ------------------------------------------------------------------------


def test_app_executes_the_api_functions(db: Conn, connect: Any) -> None:
    conn: Conn = connect(role=APP)
    assert conn.execute("SELECT * FROM enrolldb.check_integrity()").fetchall() == []
    assert conn.execute("SELECT enrolldb.canonical_external_key(' k ')").fetchone() == ("k",)
    assert conn.execute("SELECT enrolldb.is_canonical_external_key('k')").fetchone() == (True,)
    assert executable_by(db, APP) >= API_FUNCTIONS | KEY_HELPERS


@pytest.mark.parametrize("signature", INTERNAL_CALLS)
def test_app_cannot_execute_internal_functions(db: Conn, connect: Any, signature: str) -> None:
    conn: Conn = connect(role=APP)
    exc = refused(conn, errors.InsufficientPrivilege, None, INTERNAL_CALLS[signature])
    schema = signature.split(".", 1)[0]
    expected = "function" if schema == "enrolldb" else f"schema {schema}"
    assert f"permission denied for {expected}" in str(exc)
    assert signature not in executable_by(db, APP)


def test_app_executes_exactly_the_api_functions(db: Conn) -> None:
    """Internal helpers and trigger functions are for the functions' owner alone."""
    api = granted_to(db, APP) - KEY_HELPERS
    not_definer = [name for name, _, secdef, _ in functions(db) if name in api and not secdef]
    assert not_definer == []  # anything the app may call is an API function
    assert set(INTERNAL_CALLS).isdisjoint(api)


#: The one API function a reader may call: it only reads (doctor runs it as enrolldb_readonly).
READONLY_API = {"enrolldb.check_integrity()"}


@pytest.mark.parametrize("signature", sorted(set(API_CALLS) - READONLY_API))
def test_readonly_cannot_execute_api_functions(db: Conn, connect: Any, signature: str) -> None:
    conn: Conn = connect(role=READONLY)
    refused(conn, errors.InsufficientPrivilege, None, API_CALLS[signature])
    assert signature not in granted_to(db, READONLY)


def test_readonly_executes_only_the_key_helpers_and_check_integrity(db: Conn, connect: Any) -> None:
    conn: Conn = connect(role=READONLY)
    assert conn.execute("SELECT enrolldb.canonical_external_key('k\u00a0')").fetchone() == ("k",)
    assert conn.execute("SELECT * FROM enrolldb.check_integrity()").fetchall() == []
    assert granted_to(db, READONLY) == KEY_HELPERS | READONLY_API


def public_execute(db: Conn) -> dict[str, str]:
    """Functions PUBLIC may execute: an explicit grant to grantee 0, or proacl NULL (default)."""
    rows = db.execute(
        "SELECT p.oid::regprocedure::text, "
        "CASE WHEN p.proacl IS NULL THEN 'proacl NULL (default PUBLIC EXECUTE)' "
        "ELSE 'explicit PUBLIC grant' END "
        "FROM pg_catalog.pg_proc AS p "
        "WHERE p.pronamespace IN ('enrolldb'::regnamespace, 'enrolldb_internal'::regnamespace) "
        "AND (p.proacl IS NULL OR EXISTS ("
        "  SELECT FROM pg_catalog.aclexplode(p.proacl) AS a "
        "  WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')) "
        "ORDER BY 1"
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def test_public_has_no_explicit_execute_grant(db: Conn) -> None:
    explicit = {
        name: how
        for name, how in public_execute(db).items()
        if how == "explicit PUBLIC grant" and name not in KEY_HELPERS
    }
    assert explicit == {}


def test_public_executes_no_function(db: Conn) -> None:
    offenders = {name: how for name, how in public_execute(db).items() if name not in KEY_HELPERS}
    assert offenders == {}


def test_no_default_privileges_are_relied_on(db: Conn) -> None:
    """docs/design.md: each file revokes EXECUTE itself; no ALTER DEFAULT PRIVILEGES."""
    assert db.execute("SELECT count(*) FROM pg_catalog.pg_default_acl").fetchone() == (0,)


def test_api_functions_are_security_definer_with_pinned_search_path(db: Conn) -> None:
    api = granted_to(db, APP) - KEY_HELPERS
    assert api >= API_FUNCTIONS
    wrong = [
        (name, secdef, config)
        for name, _, secdef, config in functions(db)
        if name in api and not (secdef and SEARCH_PATH in (config or []))
    ]
    assert wrong == []


def test_every_security_definer_function_pins_its_search_path(db: Conn) -> None:
    wrong = [
        (name, config)
        for name, _, secdef, config in functions(db)
        if secdef and SEARCH_PATH not in (config or [])
    ]
    assert wrong == []


def test_temp_table_cannot_capture_an_api_function(db: Conn, connect: Any) -> None:
    """pg_temp is last in the pinned search_path: a temp table named like ours is not read."""
    seed(db)
    conn: Conn = connect(role=APP)
    conn.execute(
        "CREATE TEMP TABLE student_courseenrollment AS "
        "SELECT * FROM enrolldb.student_courseenrollment"
    )
    # read through the temp table, this unbacked active masters enrollment would be reported
    conn.execute(
        "INSERT INTO student_courseenrollment (id, user_id, course_id, created, is_active, mode) "
        "SELECT 999999, user_id, course_id, created, true, 'masters' FROM student_courseenrollment"
    )
    conn.execute("SET search_path = pg_temp, enrolldb")
    assert conn.execute("SELECT count(*) FROM student_courseenrollment").fetchone() == (2,)
    assert conn.execute("SELECT * FROM enrolldb.check_integrity()").fetchall() == []


# --- comments and names -----------------------------------------------------------------------


def test_every_table_and_function_has_a_comment(db: Conn) -> None:
    rows = db.execute(
        "SELECT 'table ' || c.relname FROM pg_catalog.pg_class AS c "
        "WHERE c.relnamespace = 'enrolldb'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm') "
        "AND pg_catalog.obj_description(c.oid, 'pg_class') IS NULL "
        "UNION ALL "
        "SELECT 'function ' || p.oid::regprocedure::text FROM pg_catalog.pg_proc AS p "
        "WHERE p.pronamespace IN ('enrolldb'::regnamespace, 'enrolldb_internal'::regnamespace) "
        "AND pg_catalog.obj_description(p.oid, 'pg_proc') IS NULL "
        "UNION ALL "
        "SELECT 'schema enrolldb' "
        "WHERE pg_catalog.obj_description('enrolldb'::regnamespace, 'pg_namespace') IS NULL"
    ).fetchall()
    assert rows == []


CONSTRAINT_SUFFIX = {"p": "_pk", "u": "_uq", "f": "_fk", "c": "_ck", "x": "_ex", "t": "_tg"}
DEFAULT_NAME = re.compile(r"_(pkey|key|fkey|check|excl|not_null)$")


def test_every_constraint_is_named_by_the_scheme(db: Conn) -> None:
    rows = db.execute(
        "SELECT c.conname, c.contype::text, c.conrelid::regclass::text "
        "FROM pg_catalog.pg_constraint AS c "
        "WHERE c.connamespace = 'enrolldb'::regnamespace AND c.contype <> 'n'"
    ).fetchall()
    assert len(rows) > 30
    wrong = [
        (name, kind, table)
        for name, kind, table in rows
        if DEFAULT_NAME.search(name) or not name.endswith(CONSTRAINT_SUFFIX[kind])
    ]
    assert wrong == []


def test_every_index_is_named_by_the_scheme(db: Conn) -> None:
    rows = db.execute(
        "SELECT ci.relname, t.relname, i.indisunique, i.indisprimary, "
        "  ARRAY(SELECT coalesce(a.attname, 'expr') "
        "        FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) "
        "        LEFT JOIN pg_catalog.pg_attribute AS a "
        "          ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0 "
        "        ORDER BY k.n) "
        "FROM pg_catalog.pg_index AS i "
        "JOIN pg_catalog.pg_class AS ci ON ci.oid = i.indexrelid "
        "JOIN pg_catalog.pg_class AS t ON t.oid = i.indrelid "
        "WHERE ci.relnamespace = 'enrolldb'::regnamespace"
    ).fetchall()
    assert len(rows) > 20
    wrong = []
    for name, table, unique, primary, cols in rows:
        suffix = "_pk" if primary else "_uq" if unique else "_idx"
        generated = f"{table}_{'_'.join(cols)}_idx"  # what CREATE INDEX ON t (cols) would pick
        if DEFAULT_NAME.search(name) or not name.endswith(suffix) or name == generated:
            wrong.append((name, table))
    assert wrong == []


def test_constraint_names_match_what_the_client_maps(db: Conn) -> None:
    """The names docs/reference.md, Schema rules are refused under (the Python client maps errors by
    them)."""
    names = {
        r[0]
        for r in db.execute(
            "SELECT conname FROM pg_catalog.pg_constraint "
            "WHERE connamespace = 'enrolldb'::regnamespace "
            "UNION SELECT relname FROM pg_catalog.pg_class "
            "WHERE relnamespace = 'enrolldb'::regnamespace AND relkind = 'i'"
        ).fetchall()
    }
    assert {
        "auth_user_username_uq",
        "coursemode_course_mode_currency_uq",
        "courseenrollment_user_course_uq",
        "courseaccessrole_user_org_course_role_uq",
        "programenrollment_status_ck",
        "programenrollment_user_program_curriculum_uq",
        "programenrollment_key_program_curriculum_uq",
        "programenrollment_user_or_key_ck",
        "programenrollment_key_canonical_ck",
        "programenrollment_program_fk",
        "programcourseenrollment_status_ck",
        "programcourseenrollment_enrollment_course_uq",
        "programcourseenrollment_active_course_enrollment_uq",
        "learneridentity_org_key_uq",
        "courseaccessroleassignment_role_ck",
        "courseaccessroleassignment_role_enrollment_uq",
    } <= names


# --- the internal schema ------------------------------------------------------------------------


@pytest.mark.parametrize("role", [APP, READONLY, "public"])
def test_no_role_may_use_the_internal_schema(db: Conn, role: str) -> None:
    """enrolldb_internal is the owner's alone: not even USAGE for the roles or PUBLIC."""
    row = db.execute(
        "SELECT n.nspacl::text, EXISTS ("
        "  SELECT FROM pg_catalog.aclexplode(n.nspacl) AS a"
        "  WHERE a.grantee = coalesce(pg_catalog.to_regrole(%s)::oid, 0))"
        " FROM pg_catalog.pg_namespace AS n WHERE n.nspname = 'enrolldb_internal'",
        (role,),
    ).fetchone()
    assert row is not None, "schema enrolldb_internal is missing"
    assert row[1] is False, row[0]
