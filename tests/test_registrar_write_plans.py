"""Registrar writes keep linear plans on fresh, unanalyzed tables (issue 8 item 1).

Why: the registrar's normal workflow is load-then-write: thousands of enrollments written
and, right after, their course rows, before autovacuum has analyzed anything. A plan chosen
on such statistics once read every active row of the table for each request (15,000 rows x
10,000 requests). This test runs that workflow with autovacuum off and no ANALYZE, has
auto_explain report every statement the two functions run (nested ones included, with
actual row counts), and checks that no plan node of theirs touches more than a constant
times the number of requests: a plan that is quadratic in the input cannot pass, whatever
the machine's speed. Trigger statements are left to their own tests.
"""

from __future__ import annotations

import json
import re
from typing import Any

from builders import (
    CURRICULUM_A,
    PROGRAM_A,
    PROGRAM_B,
    add_identity,
    catalog,
)
from builders import REGISTRAR_COURSE as COURSE
from builders import REGISTRAR_COURSE_2 as COURSE_2
from builders import REGISTRAR_ORG as ORG
from pgtypes import Conn

N = 1500
#: Rows a node may touch (returned or filtered out, over all its loops) per request.
ROWS_PER_REQUEST = 12

#: The writes' statements: the API functions and their steps (sql/functions/070-082, in
#: schema enrolldb_internal) and the key locks they take (lock_learner_key_rows).
OWN_FUNCTIONS = (
    "write_program_enrollments",
    "write_program_course_enrollments",
    "write_requests",
    "plan_program_enrollment_writes",
    "apply_program_enrollment_writes",
    "find_program_course_enrollments",
    "lock_program_course_enrollments",
    "plan_program_course_enrollment_writes",
    "apply_program_course_enrollment_writes",
    "apply_course_staff",
    "lock_learner_keys",
    "lock_learner_key_rows",
    "check_write_requests",
)


def squeeze(text: str) -> str:
    """Without whitespace and plpgsql's INTO targets (plpgsql blanks them out of the text)."""
    return re.sub(r"\s+", "", re.sub(r"\bINTO\s+v_\w+(\s*,\s*v_\w+)*", "", text))


def node_rows(node: dict[str, Any]) -> list[tuple[str, float]]:
    """(node type, rows touched over all loops) for a plan node and its children."""
    touched = (
        node.get("Actual Rows", 0)
        + node.get("Rows Removed by Filter", 0)
        + node.get("Rows Removed by Join Filter", 0)
        + node.get("Rows Removed by Index Recheck", 0)
    ) * node.get("Actual Loops", 1)
    # A Hash node is built once; its loops are rescans of the same table.
    out = [] if node["Node Type"] == "Hash" else [(node["Node Type"], touched)]
    for child in node.get("Plans", []):
        out += node_rows(child)
    return out


def requests(status: str, keys: range, **extra: Any) -> str:
    return json.dumps([{"external_user_key": f"Key-{i}", "status": status, **extra} for i in keys])


def explained_session(connect: Any) -> tuple[Conn, list[str]]:
    """A connection on which auto_explain reports every statement, nested ones included, with
    actual row counts, as notices collected in the returned list."""
    conn: Conn = connect()
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    for setting in (
        "LOAD 'auto_explain'",
        "SET auto_explain.log_min_duration = 0",
        "SET auto_explain.log_analyze = on",
        "SET auto_explain.log_timing = off",
        "SET auto_explain.log_nested_statements = on",
        "SET auto_explain.log_format = 'json'",
        "SET auto_explain.log_level = 'notice'",
    ):
        conn.execute(setting)
    return conn, notices


def over_budget(
    db: Conn, notices: list[str], requests_per_call: int
) -> tuple[int, list[tuple[float, str, str]]]:
    """How many explained statements were the writes' own, and the plan nodes among them that
    touched more than ROWS_PER_REQUEST rows per request of a call."""
    # plpgsql runs PERFORM as SELECT: that is the text auto_explain shows.
    sources = [
        squeeze(r[0]).replace("PERFORM", "SELECT")
        for r in db.execute(
            "SELECT p.prosrc FROM pg_proc AS p"
            " WHERE p.pronamespace IN ('enrolldb'::regnamespace, 'enrolldb_internal'::regnamespace)"
            " AND p.proname = ANY(%s)",
            (list(OWN_FUNCTIONS),),
        ).fetchall()
    ]
    checked = 0
    worst: list[tuple[float, str, str]] = []
    for notice in notices:
        start = notice.find("{")
        if start < 0:
            continue
        explained = json.loads(notice[start:])
        text = squeeze(explained["Query Text"])[:200]
        if not any(text in source for source in sources):
            continue
        checked += 1
        for node_type, touched in node_rows(explained["Plan"]):
            if touched > ROWS_PER_REQUEST * requests_per_call:
                worst.append((touched, node_type, explained["Query Text"][:200]))
    return checked, worst


def test_load_then_write_plans_are_linear(db: Conn, connect: Any) -> None:
    catalog(db)
    users = db.execute(
        "INSERT INTO enrolldb.auth_user (username) SELECT 'u' || g FROM generate_series(1, %s) g"
        " RETURNING id",
        (N // 2,),
    ).fetchall()
    for i, (user_id,) in enumerate(users):
        add_identity(db, ORG, f"key-{i}", user_id)
    db.execute(
        "SELECT count(*) FROM (SELECT format('ALTER TABLE %%s SET (autovacuum_enabled = false)',"
        " c.oid::regclass) FROM pg_class AS c WHERE c.relnamespace = 'enrolldb'::regnamespace"
        " AND c.relkind = 'r') AS s"
    )
    for (table,) in db.execute(
        "SELECT c.oid::regclass::text FROM pg_class AS c"
        " WHERE c.relnamespace = 'enrolldb'::regnamespace AND c.relkind = 'r'"
    ).fetchall():
        db.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    conn, notices = explained_session(connect)

    write = "SELECT enrolldb.write_program_enrollments(%s, %s::jsonb, true, true)"
    course_write = "SELECT enrolldb.write_program_course_enrollments(%s, %s, %s::jsonb, true, true)"
    curriculum = str(CURRICULUM_A)
    conn.execute(write, (PROGRAM_A, requests("enrolled", range(N), curriculum_uuid=curriculum)))
    conn.execute(write, (PROGRAM_B, requests("pending", range(N), curriculum_uuid=curriculum)))
    conn.execute(course_write, (PROGRAM_A, COURSE, requests("active", range(N))))
    conn.execute(course_write, (PROGRAM_A, COURSE_2, requests("inactive", range(N))))
    # B asks active in the course A holds: every request meets the one-active check.
    conn.execute(course_write, (PROGRAM_B, COURSE, requests("active", range(N))))
    conn.execute(write, (PROGRAM_A, requests("canceled", range(N))))

    checked, worst = over_budget(db, notices, N)
    assert checked > 20
    assert worst == []
    outcomes = db.execute(
        "SELECT pce.status, count(*) FROM enrolldb.program_enrollments_programcourseenrollment"
        " AS pce GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert outcomes == [("active", N), ("inactive", N)]


def test_course_write_after_statistics_without_its_course_stays_linear(
    db: Conn, connect: Any
) -> None:
    """Statistics taken before a course had any course enrollment say the course has one row:
    with the course key as a constant, the lock of the learners' course enrollments chose
    the index on course_id alone and read every course enrollment of the course on each call
    (measured: 2,000 requests, "Rows Removed by Filter: 18000"). A few requests for a course
    with many enrollments must touch rows in proportion to the requests."""
    catalog(db)
    many, few = 20_000, 40
    users = db.execute(
        "INSERT INTO enrolldb.auth_user (username) SELECT 'u' || g FROM generate_series(1, %s) g"
        " RETURNING id",
        (many,),
    ).fetchall()
    for i, (user_id,) in enumerate(users[:few]):
        add_identity(db, ORG, f"key-{i}", user_id)
    db.execute(
        "INSERT INTO enrolldb.student_courseenrollment (user_id, course_id, mode)"
        " VALUES (%s, %s, 'audit')",
        (users[-1][0], COURSE_2),
    )
    db.execute("ANALYZE enrolldb.student_courseenrollment")
    db.execute("ALTER TABLE enrolldb.student_courseenrollment SET (autovacuum_enabled = false)")
    db.execute(
        "INSERT INTO enrolldb.student_courseenrollment (user_id, course_id, mode)"
        " SELECT u.id, %s, 'audit' FROM enrolldb.auth_user AS u",
        (COURSE,),
    )
    conn, notices = explained_session(connect)
    curriculum = str(CURRICULUM_A)
    conn.execute(
        "SELECT enrolldb.write_program_enrollments(%s, %s::jsonb, true, true)",
        (PROGRAM_A, requests("enrolled", range(few), curriculum_uuid=curriculum)),
    )
    notices.clear()
    conn.execute(
        "SELECT enrolldb.write_program_course_enrollments(%s, %s, %s::jsonb, true, true)",
        (PROGRAM_A, COURSE, requests("active", range(few))),
    )
    checked, worst = over_budget(db, notices, few)
    assert checked > 5
    assert worst == []
    linked = db.execute(
        "SELECT count(*) FILTER (WHERE ce.is_active AND ce.mode = 'masters'), count(*)"
        " FROM enrolldb.program_enrollments_programcourseenrollment AS pce"
        " JOIN enrolldb.student_courseenrollment AS ce ON ce.id = pce.course_enrollment_id"
        " WHERE pce.status = 'active'"
    ).fetchone()
    assert linked == (few, few)
