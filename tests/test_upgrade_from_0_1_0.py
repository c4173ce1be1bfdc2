"""An enrolldb 0.1.0 database with data, upgraded by the current ``enrolldb migrate``.

Why: every migration since 0.1.0 runs on real databases that hold data written by 0.1.0's
functions. A migration that is fine on an empty schema can still lose or change rows, fail
on a state only old data has, or leave the catalog different from a fresh install (a
function left behind, a trigger pointing at the old schema). Here the 0.1.0 release itself
(tests/fixtures/v0_1_0: its migrations and function files, byte for byte) installs a
database as 0.1.0 did (yoyo's bookkeeping in ``public``, then the function files), its own
API writes data into every table (the two-program learner of docs/reference.md, a waiting
learner with a pending role, an SSO-matriculated learner, a retired user), and the current
``migrate`` upgrades it. The rows must be the same, row for row, except what a migration
documents that it changes (0008 retires 0.1.0's retired keys again under a new salt);
``check_integrity`` must find nothing; the catalog must equal a fresh install's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import sqlparse
from psycopg import sql
from psycopg.types.json import Jsonb
from yoyo import get_backend, read_migrations

from enrolldb.dsn import to_yoyo_uri
from enrolldb.migrate import migrate_report
from enrolldb.schema_snapshot import snapshot
from pgtypes import Conn

V0_1_0 = Path(__file__).resolve().parent / "fixtures" / "v0_1_0"
RETIRED_AGAIN_BY = "0008_invisible_key_characters_and_private_retirement"
PROGRAM_A = "11111111-1111-1111-1111-111111111111"
PROGRAM_B = "22222222-2222-2222-2222-222222222222"
CURRICULUM = "99999999-9999-9999-9999-999999999999"
C1 = "course-v1:GTx+C1+2024"
C2 = "course-v1:GTx+C2+2024"


def install_0_1_0(dsn: str) -> None:
    """What 0.1.0's ``enrolldb migrate`` did: its migrations with yoyo's tables in ``public``,
    then every statement of every function file (its post-apply hook), in file order."""
    migrations = read_migrations(str(V0_1_0 / "migrations"))
    backend = get_backend(to_yoyo_uri(dsn, "public"))
    try:
        with backend.lock():
            backend.apply_migrations(backend.to_apply(migrations))
    finally:
        backend.connection.close()
    with psycopg.connect(dsn) as conn:
        for path in sorted((V0_1_0 / "sql" / "functions").glob("*.sql")):
            for statement in sqlparse.split(path.read_text(encoding="utf-8")):
                if sqlparse.format(statement, strip_comments=True).strip().rstrip(";").strip():
                    conn.execute(statement.encode())


def one(conn: Conn, query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query.encode(), params).fetchone()
    assert row is not None, query
    return row[0]


def load_with_0_1_0(conn: Conn) -> dict[str, int]:
    """Rows in every table, written the way 0.1.0's users wrote them: registrar rows by
    INSERT (0.1.0's writes took the same path), links, matriculation and retirement by 0.1.0's
    own functions. Returns the ids the assertions name."""
    ids: dict[str, int] = {}
    for name in ("alice", "bob", "dave", "erin"):
        ids[name] = one(
            conn,
            "INSERT INTO enrolldb.auth_user (username, email) VALUES (%s, %s) RETURNING id",
            (name, f"{name}@example.org"),
        )
    conn.execute(
        "INSERT INTO enrolldb.course_overviews_courseoverview (id, org, display_name)"
        " VALUES (%s, 'GTx', 'One'), (%s, 'GTx', 'Two')",
        (C1, C2),
    )
    conn.execute(
        "INSERT INTO enrolldb.course_modes_coursemode (course_id, mode_slug)"
        " VALUES (%s, 'masters'), (%s, 'masters'), (%s, 'audit')",
        (C1, C2, C1),
    )
    conn.execute(
        "INSERT INTO enrolldb.program_enrollments_program"
        " (program_uuid, authoring_organization_key, title)"
        " VALUES (%s, 'GTx', 'A'), (%s, 'GTx', 'B')",
        (PROGRAM_A, PROGRAM_B),
    )
    # erin took C2 on her own (audit), before any program: a course enrollment of its own.
    conn.execute(
        "INSERT INTO enrolldb.student_courseenrollment (user_id, course_id, mode)"
        " VALUES (%s, %s, 'audit')",
        (ids["erin"], C2),
    )

    def enroll(key: str, program: str, status: str) -> int:
        return int(
            one(
                conn,
                "INSERT INTO enrolldb.program_enrollments_programenrollment"
                " (external_user_key, program_uuid, curriculum_uuid, status)"
                " VALUES (%s, %s, %s, %s) RETURNING id",
                (key, program, CURRICULUM, status),
            )
        )

    def course(pe_id: int, course_key: str, status: str) -> int:
        return int(
            one(
                conn,
                "INSERT INTO enrolldb.program_enrollments_programcourseenrollment"
                " (program_enrollment_id, course_key, status) VALUES (%s, %s, %s) RETURNING id",
                (pe_id, course_key, status),
            )
        )

    # The two-program learner: C1 inactive in A, active in B, one course enrollment.
    ids["pe_a"] = enroll("GT-Alice", PROGRAM_A, "enrolled")
    ids["pe_b"] = enroll("GT-Alice", PROGRAM_B, "enrolled")
    ids["pce_a"] = course(ids["pe_a"], C1, "inactive")
    ids["pce_b"] = course(ids["pe_b"], C1, "active")
    # A waiting learner with a pending staff role.
    ids["pe_wait"] = enroll("GT-Wait", PROGRAM_A, "pending")
    ids["pce_wait"] = course(ids["pe_wait"], C1, "active")
    # Matriculated through SSO; then a learner who is retired.
    ids["pe_bob"] = enroll("GT-Bob", PROGRAM_B, "enrolled")
    ids["pce_bob"] = course(ids["pe_bob"], C2, "active")
    ids["pe_dave"] = enroll("GT-Dave", PROGRAM_A, "enrolled")
    ids["pce_dave"] = course(ids["pe_dave"], C2, "active")
    ids["pe_erin"] = enroll("GT-Erin", PROGRAM_B, "enrolled")
    ids["pce_erin"] = course(ids["pe_erin"], C2, "active")
    conn.execute(
        "INSERT INTO enrolldb.program_enrollments_courseaccessroleassignment (role, enrollment_id)"
        " VALUES ('staff', %s), ('staff', %s)",
        (ids["pce_wait"], ids["pce_b"]),
    )

    for program, pairs in (
        (PROGRAM_A, {"GT-Alice": "alice", "GT-Dave": "dave"}),
        (PROGRAM_B, {"GT-Alice": "alice", "GT-Erin": "erin"}),
    ):
        result = one(
            conn,
            "SELECT enrolldb.link_program_enrollments(%s::uuid, %s::jsonb)",
            (program, Jsonb(pairs)),
        )
        assert result == {}, result  # 0.1.0 returns the keys it could not link
    conn.execute(
        "SELECT enrolldb.matriculate_learner(%s, 'GTx', 'gt-bob')", (ids["bob"],)
    ).fetchall()
    assert one(conn, "SELECT enrolldb.retire_user(%s)", (ids["dave"],)) is True
    linked = conn.execute(
        "SELECT pe.id, pe.user_id, pce.status, ce.mode, ce.is_active"
        " FROM enrolldb.program_enrollments_programenrollment AS pe"
        " JOIN enrolldb.program_enrollments_programcourseenrollment AS pce"
        " ON pce.program_enrollment_id = pe.id"
        " LEFT JOIN enrolldb.student_courseenrollment AS ce ON ce.id = pce.course_enrollment_id"
        " WHERE pe.id = ANY(%s) ORDER BY pe.id",
        ([ids["pe_a"], ids["pe_b"], ids["pe_wait"], ids["pe_bob"]],),
    ).fetchall()
    assert linked == [
        (ids["pe_a"], ids["alice"], "inactive", "masters", True),
        (ids["pe_b"], ids["alice"], "active", "masters", True),
        (ids["pe_wait"], None, "active", None, None),
        (ids["pe_bob"], ids["bob"], "active", "masters", True),
    ]
    ce_a, ce_b = (
        one(
            conn,
            "SELECT course_enrollment_id FROM enrolldb.program_enrollments_programcourseenrollment"
            " WHERE id = %s",
            (pce,),
        )
        for pce in (ids["pce_a"], ids["pce_b"])
    )
    assert ce_a == ce_b is not None  # the two programs share alice's one course enrollment
    return ids


def tables(conn: Conn) -> list[str]:
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT c.relname FROM pg_catalog.pg_class AS c"
            " WHERE c.relnamespace = 'enrolldb'::regnamespace AND c.relkind = 'r' ORDER BY 1"
        )
    ]


def rows_of(conn: Conn, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    query = sql.SQL("SELECT {} FROM enrolldb.{} ORDER BY {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.Identifier(table),
        sql.SQL(", ").join(sql.Literal(i + 1) for i in range(len(columns))),
    )
    return [tuple(r) for r in conn.execute(query)]


def columns_of(conn: Conn, table: str) -> list[str]:
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT a.attname FROM pg_catalog.pg_attribute AS a"
            " WHERE a.attrelid = ('enrolldb.' || %s)::regclass AND a.attnum > 0"
            " AND NOT a.attisdropped ORDER BY a.attnum",
            (table,),
        )
    ]


def dump(conn: Conn) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    out = {}
    for table in tables(conn):
        columns = columns_of(conn, table)
        out[table] = (columns, rows_of(conn, table, columns))
    return out


def test_upgrade_from_0_1_0_keeps_every_row(empty_db_dsn: str, db: Conn) -> None:
    install_0_1_0(empty_db_dsn)
    with psycopg.connect(empty_db_dsn, autocommit=True) as old:
        ids = load_with_0_1_0(old)
        assert old.execute("SELECT * FROM enrolldb.check_integrity()").fetchall() == []
        before = dump(old)
        old_dave_key = one(
            old,
            "SELECT external_user_key FROM enrolldb.program_enrollments_programenrollment"
            " WHERE id = %s",
            (ids["pe_dave"],),
        )
    # Every table of 0.1.0 holds rows, so every table's upgrade is exercised.
    assert [t for t, (_, rows) in before.items() if not rows] == []
    assert old_dave_key.startswith("retired_external_key_")

    result = migrate_report(empty_db_dsn)
    assert result.moved_bookkeeping
    assert result.applied[0] == "0005_waiting_learner_active_course"

    with psycopg.connect(empty_db_dsn, autocommit=True) as new:
        assert new.execute("SELECT * FROM enrolldb.check_integrity()").fetchall() == []
        # 0008 retires 0.1.0's retired keys again: salted per enrollment, with a new salt.
        new_dave_key = one(
            new,
            "SELECT enrolldb_internal.retired_external_key(%s, %s)",
            (ids["pe_dave"], old_dave_key),
        )
        assert new_dave_key != old_dave_key
        after = {t: rows_of(new, t, columns) for t, (columns, _) in before.items()}
        salt = new.execute("SELECT count(*) FROM enrolldb.retirement_salt").fetchall()
        waiting = new.execute(
            "SELECT program_course_enrollment_id, organization_key, lower_external_user_key,"
            " course_key FROM enrolldb.waiting_learner_active_course"
        ).fetchall()
        upgraded = snapshot(new)

    assert salt == [(1,)]
    # The side table of 0005 records the waiting learner's active row, and only it.
    assert waiting == [(ids["pce_wait"], "GTx", "gt-wait", C1)]

    for table, (columns, rows) in before.items():
        if table == "retirement_salt":
            continue  # replaced by 0008 (asserted through the retired key above)
        expected = rows
        if table == "program_enrollments_programenrollment":
            key, modified = columns.index("external_user_key"), columns.index("modified")
            expected = [
                tuple(
                    new_dave_key if i == key and r[0] == ids["pe_dave"] else v
                    for i, v in enumerate(r)
                )
                for r in rows
            ]
            # The retired row was updated by 0008, so its modified moved; nothing else did.
            got = [
                tuple(v for i, v in enumerate(r) if not (i == modified and r[0] == ids["pe_dave"]))
                for r in after[table]
            ]
            expected = [
                tuple(v for i, v in enumerate(r) if not (i == modified and r[0] == ids["pe_dave"]))
                for r in expected
            ]
            assert got == expected, table
            continue
        if table == "program_enrollments_historicalprogramenrollment":
            key = columns.index("external_user_key")
            reason = columns.index("history_change_reason")
            old_ids = {r[columns.index("history_id")] for r in rows}
            expected = [
                tuple(
                    new_dave_key if i == key and r[0] == ids["pe_dave"] else v
                    for i, v in enumerate(r)
                )
                for r in rows
            ]
            kept = [r for r in after[table] if r[columns.index("history_id")] in old_ids]
            added = [r for r in after[table] if r[columns.index("history_id")] not in old_ids]
            assert sorted(kept, key=repr) == sorted(expected, key=repr), table
            # 0008's re-retirement is recorded as such, for the retired enrollment only.
            assert [(r[0], r[key], r[reason]) for r in added] == [
                (ids["pe_dave"], new_dave_key, RETIRED_AGAIN_BY)
            ]
            continue
        assert after[table] == expected, table

    assert upgraded == snapshot(db), "an upgraded 0.1.0 database differs from a fresh install"
