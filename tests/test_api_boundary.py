"""The API boundary in the catalog: schema enrolldb holds exactly the documented functions.

Why: services and DBAs read the API off the catalog (``\\df enrolldb.*``). An internal helper
in schema enrolldb looks like API (and a grant away from being one); a documented function
missing from it is a broken contract. docs/reference.md, "Functions" (with "Key helpers")
is the list; internals live in schema enrolldb_internal, which no role but the owner may use,
and whose routines no one but the owner may execute.
"""

from __future__ import annotations

import re
from pathlib import Path

from pgtypes import Conn

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference.md"

SIGNATURE = re.compile(r"^([a-z_][a-z0-9_]*)\(([^)]*)\)", re.MULTILINE)


def documented_functions() -> set[str]:
    """``name(type,type)`` of every signature in the text blocks of reference.md, Functions."""
    text = REFERENCE.read_text(encoding="utf-8")
    section = text.split("\n## Functions\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```text\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    found = set()
    for block in blocks:
        for name, params in SIGNATURE.findall(block):
            types = [" ".join(p.split()[1:]) for p in params.split(",") if p.strip()]
            found.add(f"{name}({','.join(types)})")
    return found


def catalog_functions(db: Conn, schema: str) -> set[str]:
    rows = db.execute(
        "SELECT p.proname || '(' || "
        "pg_catalog.replace(pg_catalog.oidvectortypes(p.proargtypes), ', ', ',') || ')' "
        "FROM pg_catalog.pg_proc AS p WHERE p.pronamespace = %s::regnamespace",
        (schema,),
    ).fetchall()
    return {r[0] for r in rows}


def test_reference_lists_the_api() -> None:
    """The parser reads what the contract says (else the equality below would be vacuous)."""
    documented = documented_functions()
    assert {
        "link_program_enrollments(uuid,text[],text[])",
        "link_program_enrollments(uuid,jsonb)",
        "link_program_enrollments(uuid,json)",
        "matriculate_learner(integer,text,text)",
        "unlink_program_enrollment(integer)",
        "retire_user(integer)",
        "write_program_enrollments(uuid,jsonb,boolean,boolean)",
        "write_program_course_enrollments(uuid,text,jsonb,boolean,boolean)",
        "write_program_enrollment_rows(uuid,jsonb,boolean,boolean)",
        "write_program_course_enrollment_rows(uuid,text,jsonb,boolean,boolean)",
        "check_integrity()",
        "canonical_external_key(text)",
        "is_canonical_external_key(text)",
        "comparable_external_key(text)",
    } == documented


def test_schema_enrolldb_holds_exactly_the_documented_functions(db: Conn) -> None:
    in_catalog = catalog_functions(db, "enrolldb")
    assert in_catalog == documented_functions()


def test_internal_routines_are_executable_by_the_owner_alone(db: Conn) -> None:
    internal = catalog_functions(db, "enrolldb_internal")
    assert {"link_locked(enrolldb_internal.link_unit[])", "lock_users(integer[])"} <= internal
    granted = db.execute(
        "SELECT p.oid::regprocedure::text, a.grantee "
        "FROM pg_catalog.pg_proc AS p "
        "CROSS JOIN LATERAL pg_catalog.aclexplode("
        "  coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) AS a "
        "WHERE p.pronamespace = 'enrolldb_internal'::regnamespace "
        "AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner"
    ).fetchall()
    assert granted == []
    schema_grants = db.execute(
        "SELECT a.grantee, a.privilege_type FROM pg_catalog.pg_namespace AS n "
        "CROSS JOIN LATERAL pg_catalog.aclexplode("
        "  coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) AS a "
        "WHERE n.nspname = 'enrolldb_internal' AND a.grantee <> n.nspowner"
    ).fetchall()
    assert schema_grants == []
