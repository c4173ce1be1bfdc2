"""Data sets of the benchmark and of the plan-shape test, built with set-based SQL as owner.

Why set-based INSERTs and not the registrar API: the benchmark measures linking, and the
load must cost seconds at 100k, not minutes. The rows are the ones the registrar writes
would create (the same triggers fire: history, waiting-learner side table, match rule).
"""

from __future__ import annotations

from typing import Any

import psycopg

Conn = psycopg.Connection[tuple[Any, ...]]

ORG = "BenchU"
CURRICULUM = "00000000-0000-4000-8000-00000000b0b0"

#: Every table the data sets write, emptied between runs.
TABLES = [
    "enrolldb.program_enrollments_courseaccessroleassignment",
    "enrolldb.program_enrollments_programcourseenrollment",
    "enrolldb.program_enrollments_programenrollment",
    "enrolldb.program_enrollments_program",
    "enrolldb.program_enrollments_learneridentity",
    "enrolldb.program_enrollments_historicalprogramenrollment",
    "enrolldb.program_enrollments_historicalprogramcourseenrollment",
    "enrolldb.student_courseenrollment_history",
    "enrolldb.student_courseaccessrole",
    "enrolldb.student_courseenrollment",
    "enrolldb.auth_user",
    "enrolldb.course_modes_coursemode",
    "enrolldb.course_overviews_courseoverview",
    "enrolldb.waiting_learner_active_course",
]


def program_uuid(p: int) -> str:
    """The uuid of program number ``p`` (1-based) of the data sets."""
    return f"00000000-0000-4000-8000-{p:012d}"


def course_key(c: int) -> str:
    return f"course-v1:BenchU+C{c}+2024_T1"


def reset(conn: Conn) -> None:
    """Empty every table (TRUNCATE also forgets the tables' statistics of row counts)."""
    conn.execute("TRUNCATE " + ", ".join(TABLES) + " RESTART IDENTITY CASCADE")


def set_autovacuum(conn: Conn, enabled: bool) -> None:
    """Autovacuum (and so auto-analyze) on or off for every table of the data sets."""
    for table in TABLES:
        conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = {str(enabled).lower()})")


def load_programs(conn: Conn, n: int, programs: int = 3, courses_per_program: int = 2) -> None:
    """N waiting learners (keys ``KEY-1..N``, users ``learner_1..N`` created) enrolled in
    ``programs`` programs of one organization, each with ``courses_per_program`` active
    program course enrollments in courses of its own: the registrar's bulk load."""
    params: dict[str, Any] = {
        "n": n,
        "programs": programs,
        "cpp": courses_per_program,
        "org": ORG,
        "curriculum": CURRICULUM,
    }
    with conn.transaction():
        conn.execute(
            "INSERT INTO enrolldb.course_overviews_courseoverview (id, org, display_name) "
            "SELECT 'course-v1:BenchU+C' || c || '+2024_T1', %(org)s, 'C' || c "
            "FROM generate_series(1, %(programs)s * %(cpp)s) AS c",
            params,
        )
        conn.execute(
            "INSERT INTO enrolldb.course_modes_coursemode (course_id, mode_slug) "
            "SELECT co.id, m.slug FROM enrolldb.course_overviews_courseoverview AS co "
            "CROSS JOIN (VALUES ('masters'), ('audit')) AS m (slug)",
        )
        conn.execute(
            "INSERT INTO enrolldb.program_enrollments_program "
            "(program_uuid, authoring_organization_key, title) "
            "SELECT ('00000000-0000-4000-8000-' || lpad(p::text, 12, '0'))::uuid, "
            "%(org)s, 'P' || p FROM generate_series(1, %(programs)s) AS p",
            params,
        )
        conn.execute(
            "INSERT INTO enrolldb.auth_user (username, email) "
            "SELECT 'learner_' || i, 'learner_' || i || '@example.com' "
            "FROM generate_series(1, %(n)s) AS i",
            params,
        )
        conn.execute(
            "INSERT INTO enrolldb.program_enrollments_programenrollment "
            "(external_user_key, program_uuid, curriculum_uuid, status) "
            "SELECT 'KEY-' || i, ('00000000-0000-4000-8000-' || lpad(p::text, 12, '0'))::uuid, "
            "%(curriculum)s, 'enrolled' "
            "FROM generate_series(1, %(programs)s) AS p CROSS JOIN generate_series(1, %(n)s) AS i "
            "ORDER BY p, i",
            params,
        )
        conn.execute(
            "INSERT INTO enrolldb.program_enrollments_programcourseenrollment "
            "(program_enrollment_id, course_key, status) "
            "SELECT pe.id, 'course-v1:BenchU+C' || ((p.n - 1) * %(cpp)s + c) || '+2024_T1', "
            "'active' "
            "FROM enrolldb.program_enrollments_programenrollment AS pe "
            "JOIN (SELECT program_uuid, row_number() OVER (ORDER BY program_uuid) AS n "
            "      FROM enrolldb.program_enrollments_program) AS p "
            "ON p.program_uuid = pe.program_uuid "
            "CROSS JOIN generate_series(1, %(cpp)s) AS c ORDER BY pe.id, c",
            params,
        )


def link_pairs(n: int) -> list[tuple[str, str]]:
    """The link input of :func:`load_programs`: every key to its learner."""
    return [(f"KEY-{i}", f"learner_{i}") for i in range(1, n + 1)]


def load_bulk_case(conn: Conn, n: int) -> None:
    """The bulk-link comparison's starting state, with statistics (ANALYZE at the end).

    Program 1 holds N waiting learners ``KEY-1..N`` (users ``learner_i`` exist), each with
    two active program course enrollments (courses 1 and 2). 10% also hold a waiting
    enrollment in program 2 of the same organization, sharing course 2 there as an inactive
    row (the two-program learner of docs/reference.md) next to an active row for course 3. 10%
    already
    hold an active 'audit' course enrollment for course 1 of their own (linking converts it
    to 'masters'). Only program 1 is linked.
    """
    params: dict[str, Any] = {"n": n, "org": ORG, "curriculum": CURRICULUM}
    with conn.transaction():
        conn.execute(
            "INSERT INTO enrolldb.course_overviews_courseoverview (id, org, display_name) "
            "SELECT 'course-v1:BenchU+C' || c || '+2024_T1', %(org)s, 'C' || c "
            "FROM generate_series(1, 3) AS c",
            params,
        )
        conn.execute(
            "INSERT INTO enrolldb.course_modes_coursemode (course_id, mode_slug) "
            "SELECT co.id, m.slug FROM enrolldb.course_overviews_courseoverview AS co "
            "CROSS JOIN (VALUES ('masters'), ('audit')) AS m (slug)",
        )
        conn.execute(
            "INSERT INTO enrolldb.program_enrollments_program "
            "(program_uuid, authoring_organization_key, title) "
            "SELECT ('00000000-0000-4000-8000-' || lpad(p::text, 12, '0'))::uuid, "
            "%(org)s, 'P' || p FROM generate_series(1, 2) AS p",
            params,
        )
        conn.execute(
            "INSERT INTO enrolldb.auth_user (username, email) "
            "SELECT 'learner_' || i, 'learner_' || i || '@example.com' "
            "FROM generate_series(1, %(n)s) AS i",
            params,
        )
        conn.execute(
            "INSERT INTO enrolldb.student_courseenrollment (user_id, course_id, mode) "
            "SELECT u.id, 'course-v1:BenchU+C1+2024_T1', 'audit' FROM enrolldb.auth_user AS u "
            "WHERE u.id %% 10 = 3",
            params,
        )
        conn.execute(
            "INSERT INTO enrolldb.program_enrollments_programenrollment "
            "(external_user_key, program_uuid, curriculum_uuid, status) "
            "SELECT 'KEY-' || i, ('00000000-0000-4000-8000-' || lpad(p::text, 12, '0'))::uuid, "
            "%(curriculum)s, 'enrolled' "
            "FROM generate_series(1, %(n)s) AS i CROSS JOIN generate_series(1, 2) AS p "
            "WHERE p = 1 OR i %% 10 = 7 ORDER BY p, i",
            params,
        )
        conn.execute(
            "INSERT INTO enrolldb.program_enrollments_programcourseenrollment "
            "(program_enrollment_id, course_key, status) "
            "SELECT pe.id, 'course-v1:BenchU+C' || c.course || '+2024_T1', c.status "
            "FROM enrolldb.program_enrollments_programenrollment AS pe "
            "JOIN (VALUES (1, 1, 'active'), (1, 2, 'active'), (2, 2, 'inactive'), "
            "             (2, 3, 'active')) AS c (program, course, status) "
            "ON pe.program_uuid = ('00000000-0000-4000-8000-' || lpad(c.program::text, 12, '0'))"
            "::uuid ORDER BY pe.id, c.course",
        )
    conn.execute("ANALYZE")


#: What the three link paths must agree on: every live row, in a form that does not depend
#: on the order in which course enrollments were created (their ids) or on timestamps.
FINAL_STATE_QUERIES = {
    "program enrollments": (
        "SELECT id, user_id, external_user_key, program_uuid, status "
        "FROM enrolldb.program_enrollments_programenrollment ORDER BY id"
    ),
    "program course enrollments": (
        "SELECT pce.id, pce.program_enrollment_id, pce.course_key, pce.status, "
        "ce.user_id, ce.course_id FROM enrolldb.program_enrollments_programcourseenrollment "
        "AS pce LEFT JOIN enrolldb.student_courseenrollment AS ce "
        "ON ce.id = pce.course_enrollment_id ORDER BY pce.id"
    ),
    "course enrollments": (
        "SELECT user_id, course_id, is_active, mode FROM enrolldb.student_courseenrollment "
        "ORDER BY user_id, course_id"
    ),
    "waiting learners": (
        "SELECT program_course_enrollment_id, organization_key, lower_external_user_key, "
        "course_key FROM enrolldb.waiting_learner_active_course ORDER BY 1"
    ),
}


def final_state(conn: Conn) -> dict[str, list[tuple[Any, ...]]]:
    return {name: conn.execute(query).fetchall() for name, query in FINAL_STATE_QUERIES.items()}
