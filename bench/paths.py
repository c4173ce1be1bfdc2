"""The three ways of linking one program that the benchmark compares.

* ``enrolldb``: the client's ``enrolldb.link`` (chunks of 10,000, one committed SQL call each).
* ``upstream``: the Django sequence of ``link_program_enrollments`` re-enacted row by row over
  psycopg (three bulk reads per call, then one transaction per learner with about 23 round
  trips for a learner with two course rows: the queries of the reference notes, section 2 and
  6). The history rows Django writes with separate INSERTs are written by our triggers inside
  each UPDATE/INSERT, which saves upstream those round trips: this flatters upstream.
* ``floor``: the fewest set-based statements that write the same final rows, with the same
  triggers, in one transaction: no checks, no locks, no error reporting. Nothing correct can
  be faster; the ratio to it is the price of the rules.

Each returns the number of learners linked. The benchmark checks that all three leave
identical rows (``world.final_state``).
"""

from __future__ import annotations

from typing import Any

import psycopg

import enrolldb

Conn = psycopg.Connection[tuple[Any, ...]]


def link_enrolldb(conn: Conn, program: str, pairs: list[tuple[str, str]]) -> int:
    results = enrolldb.link(conn, program, pairs)
    return sum(1 for r in results if r.result in ("linked", "relinked"))


def link_floor(conn: Conn, program: str, pairs: list[tuple[str, str]]) -> int:
    keys = [k for k, _ in pairs]
    usernames = [u for _, u in pairs]
    with conn.transaction():
        cur = conn.execute(
            "UPDATE enrolldb.program_enrollments_programenrollment AS pe SET user_id = u.id "
            "FROM unnest(%s::text[], %s::text[]) AS i (k, username) "
            "JOIN enrolldb.auth_user AS u ON u.username = i.username "
            "WHERE pe.program_uuid = %s AND lower(pe.external_user_key) = lower(i.k)",
            (keys, usernames, program),
        )
        linked = cur.rowcount
        conn.execute(
            "INSERT INTO enrolldb.student_courseenrollment (user_id, course_id, mode, is_active) "
            "SELECT pe.user_id, pce.course_key, 'masters', bool_or(pce.status = 'active') "
            "FROM enrolldb.program_enrollments_programcourseenrollment AS pce "
            "JOIN enrolldb.program_enrollments_programenrollment AS pe "
            "ON pe.id = pce.program_enrollment_id "
            "WHERE pe.program_uuid = %s AND pe.user_id IS NOT NULL "
            "AND pce.course_enrollment_id IS NULL "
            "GROUP BY pe.user_id, pce.course_key "
            "ON CONFLICT ON CONSTRAINT courseenrollment_user_course_uq DO NOTHING",
            (program,),
        )
        conn.execute(
            "UPDATE enrolldb.student_courseenrollment AS ce SET is_active = true, "
            "mode = 'masters' "
            "FROM enrolldb.program_enrollments_programcourseenrollment AS pce "
            "JOIN enrolldb.program_enrollments_programenrollment AS pe "
            "ON pe.id = pce.program_enrollment_id "
            "WHERE pe.program_uuid = %s AND pce.status = 'active' "
            "AND pce.course_enrollment_id IS NULL "
            "AND ce.user_id = pe.user_id AND ce.course_id = pce.course_key "
            "AND (NOT ce.is_active OR ce.mode IN ('audit', 'honor'))",
            (program,),
        )
        conn.execute(
            "UPDATE enrolldb.program_enrollments_programcourseenrollment AS pce "
            "SET course_enrollment_id = ce.id "
            "FROM enrolldb.program_enrollments_programenrollment AS pe, "
            "enrolldb.student_courseenrollment AS ce "
            "WHERE pe.id = pce.program_enrollment_id AND pe.program_uuid = %s "
            "AND pce.course_enrollment_id IS NULL "
            "AND ce.user_id = pe.user_id AND ce.course_id = pce.course_key",
            (program,),
        )
    return linked


def link_upstream(conn: Conn, program: str, pairs: list[tuple[str, str]]) -> int:
    """Django's link_program_enrollments, one learner at a time (no relinks in the data)."""
    keys = {k.lower(): (k, u) for k, u in pairs}
    # The three reads per call: program enrollments by key, their course rows, the users.
    enrollments = {
        str(key).lower(): (pe_id, user_id)
        for pe_id, key, user_id in conn.execute(
            "SELECT pe.id, pe.external_user_key, pe.user_id "
            "FROM enrolldb.program_enrollments_programenrollment AS pe "
            "LEFT JOIN enrolldb.auth_user AS u ON u.id = pe.user_id "
            "WHERE pe.program_uuid = %s AND lower(pe.external_user_key) = ANY(%s)",
            (program, list(keys)),
        )
    }
    course_rows: dict[int, list[tuple[int, str, str]]] = {}
    for pce_id, pe_id, course, status in conn.execute(
        "SELECT id, program_enrollment_id, course_key, status "
        "FROM enrolldb.program_enrollments_programcourseenrollment "
        "WHERE program_enrollment_id = ANY(%s) ORDER BY id",
        ([pe_id for pe_id, _ in enrollments.values()],),
    ):
        course_rows.setdefault(pe_id, []).append((pce_id, course, status))
    users: dict[str, int] = dict(
        conn.execute(
            "SELECT username, id FROM enrolldb.auth_user WHERE username = ANY(%s)",
            ([u for _, u in pairs],),
        ).fetchall()
    )
    linked = 0
    for low, (_key, username) in keys.items():
        user_id = users.get(username)
        found = enrollments.get(low)
        if user_id is None or found is None or found[1] == user_id:
            continue  # reported as an error, nothing written
        pe_id = found[0]
        with conn.transaction():
            conn.execute(
                "UPDATE enrolldb.program_enrollments_programenrollment SET user_id = %s "
                "WHERE id = %s",
                (user_id, pe_id),
            )
            for pce_id, course, status in course_rows.get(pe_id, []):
                ce_id = enroll_in_masters_track(conn, user_id, course, status)
                conn.execute(
                    "UPDATE enrolldb.program_enrollments_programcourseenrollment "
                    "SET course_enrollment_id = %s WHERE id = %s",
                    (ce_id, pce_id),
                )
                conn.execute(
                    "SELECT id, role FROM enrolldb.program_enrollments_courseaccessroleassignment "
                    "WHERE enrollment_id = %s",
                    (pce_id,),
                ).fetchall()
        linked += 1
    return linked


def enroll_in_masters_track(conn: Conn, user_id: int, course: str, status: str) -> int:
    """Upstream ``enroll_in_masters_track``: one query per step, as the ORM issues them."""
    conn.execute(
        "SELECT 1 FROM enrolldb.course_overviews_courseoverview WHERE id = %s", (course,)
    ).fetchone()  # _ensure_course_exists
    enrolled = conn.execute(
        "SELECT id, mode FROM enrolldb.student_courseenrollment "
        "WHERE user_id = %s AND course_id = %s AND is_active",
        (user_id, course),
    ).fetchone()  # CourseEnrollment.is_enrolled
    if enrolled is not None:
        ce_id, mode = enrolled
        if mode in ("audit", "honor"):
            conn.execute(
                "UPDATE enrolldb.student_courseenrollment SET mode = 'masters' WHERE id = %s",
                (ce_id,),
            )
        return int(ce_id)
    conn.execute(
        "SELECT id, org FROM enrolldb.course_overviews_courseoverview WHERE id = %s", (course,)
    ).fetchone()  # CourseOverview.get_from_id in CourseEnrollment.enroll
    row = conn.execute(
        "SELECT id FROM enrolldb.student_courseenrollment WHERE user_id = %s AND course_id = %s",
        (user_id, course),
    ).fetchone()  # get_or_create: get
    if row is None:
        with conn.transaction():  # get_or_create: SAVEPOINT, INSERT, RELEASE
            row = conn.execute(
                "INSERT INTO enrolldb.student_courseenrollment "
                "(user_id, course_id, is_active, mode) VALUES (%s, %s, false, 'audit') "
                "RETURNING id",
                (user_id, course),
            ).fetchone()
    assert row is not None
    ce_id = int(row[0])
    conn.execute(
        "UPDATE enrolldb.student_courseenrollment SET is_active = true, mode = 'masters' "
        "WHERE id = %s",
        (ce_id,),
    )  # update_enrollment(is_active=True, mode='masters')
    if status == "inactive":
        conn.execute(
            "UPDATE enrolldb.student_courseenrollment SET is_active = false WHERE id = %s",
            (ce_id,),
        )  # deactivate()
    return ce_id


PATHS = {"enrolldb": link_enrolldb, "floor": link_floor, "upstream": link_upstream}
