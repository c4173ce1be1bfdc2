"""Property test: random histories of registrar writes, links, relinks, matriculations and
unlinks over three programs of one organization sharing courses never leave
``check_integrity()`` non-empty, and raise nothing but documented errors (docs/reference.md,
Functions, check_integrity).

The registrar's writes are done here by direct SQL, as docs/reference.md,
write_program_course_enrollments describes them: a key is
enrolled into a program with course rows active or inactive (a second *active* row for one
learner and course across programs is refused, as ``conflict``), programs are canceled and
course rows deactivated; for a realized learner the course enrollment follows the row's
status as linking does. Everything else goes through the client.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import enrolldb
from builders import (
    ORG,
    add_course,
    add_program,
    add_user,
    integrity,
)
from pgtypes import Conn

COURSES = ["course-v1:GTx+Shared1+2024", "course-v1:GTx+Shared2+2024"]
KEYS = ["GT-K0", "GT-K1", "GT-K2"]
USERS = ["u0", "u1", "u2"]  # u2 is an inactive LMS user

TABLES = (
    "enrolldb.program_enrollments_courseaccessroleassignment, "
    "enrolldb.program_enrollments_programcourseenrollment, "
    "enrolldb.program_enrollments_programenrollment, "
    "enrolldb.program_enrollments_learneridentity, "
    "enrolldb.program_enrollments_program, "
    "enrolldb.student_courseaccessrole, enrolldb.student_courseenrollment, "
    "enrolldb.course_modes_coursemode, enrolldb.course_overviews_courseoverview, "
    "enrolldb.auth_user, "
    "enrolldb.program_enrollments_historicalprogramenrollment, "
    "enrolldb.program_enrollments_historicalprogramcourseenrollment, "
    "enrolldb.student_courseenrollment_history"
)

#: Every per-element error docs/reference.md, link_program_enrollments documents.
DOCUMENTED_ERRORS = [
    re.compile(p, re.DOTALL)
    for p in (
        r"^Invalid external user key ",
        r"^external user key .* provided multiple times$",
        r"^No user found with username ",
        r"^No program enrollment found for program uuid=[0-9a-f-]{36} and external student key=",
        r"^Program enrollment with external_student_key=.* is already linked to target account "
        r"username=",
        r"^ConflictError: \S+ already has an active program course enrollment for \S+ in "
        r"program uuid=[0-9a-f-]{36}$",
        r"^NonExistentCourseError: ",
        r"^IntegrityError: ",
    )
]


def spell(key: str, variant: int) -> str:
    """The caller's spelling of a key: as stored, other case, or padded with whitespace."""
    return [key, key.lower(), f"\u00a0{key.lower()} \u3000"][variant]


key_i = st.integers(0, len(KEYS) - 1)
user_i = st.integers(0, len(USERS) - 1)
prog_i = st.integers(0, 2)
course_i = st.integers(0, len(COURSES) - 1)
variant = st.integers(0, 2)

OPS = st.one_of(
    st.tuples(
        st.just("enroll"), key_i, prog_i, course_i, st.sampled_from(["active", "inactive"]),
        st.booleans(),
    ),
    st.tuples(st.just("cancel"), key_i, prog_i),
    st.tuples(st.just("deactivate"), key_i, prog_i, course_i),
    st.tuples(
        st.just("link"),
        prog_i,
        st.lists(st.tuples(key_i, user_i, variant), min_size=1, max_size=3),
    ),
    st.tuples(st.just("matriculate"), user_i, key_i, variant),
    st.tuples(st.just("unlink"), key_i, prog_i),
)  # fmt: skip


class World:
    """The fixed catalog of one example: three programs of one org, shared courses, users."""

    def __init__(self, conn: Conn) -> None:
        conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
        for course in COURSES:
            add_course(conn, course, modes=("audit", "verified"))
        self.programs = [add_program(conn, ORG, title=f"P{i}") for i in range(3)]
        self.curricula = [uuid.uuid4() for _ in range(3)]
        self.users = [add_user(conn, name, is_active=name != "u2") for name in USERS]


def find_pe(conn: Conn, program: uuid.UUID, key: str) -> tuple[int, int | None] | None:
    row = conn.execute(
        "SELECT id, user_id FROM enrolldb.program_enrollments_programenrollment "
        "WHERE program_uuid = %s AND lower(external_user_key) = lower(%s)",
        (program, key),
    ).fetchone()
    return None if row is None else (int(row[0]), row[1])


def set_course_row(
    conn: Conn, pe_id: int, user_id: int | None, course: str, status: str, staff: bool
) -> None:
    """The registrar's write of one program course enrollment (docs/reference.md,
    write_program_course_enrollments, by hand)."""
    row = conn.execute(
        "SELECT id, status, course_enrollment_id "
        "FROM enrolldb.program_enrollments_programcourseenrollment "
        "WHERE program_enrollment_id = %s AND course_key = %s",
        (pe_id, course),
    ).fetchone()
    if status == "active":
        # The one-active rule: no other active row for this course of the same key (any
        # program of the org) or, when realized, of the same user.
        taken = conn.execute(
            "SELECT 1 FROM enrolldb.program_enrollments_programcourseenrollment o "
            "JOIN enrolldb.program_enrollments_programenrollment ope "
            "ON ope.id = o.program_enrollment_id "
            "JOIN enrolldb.program_enrollments_programenrollment me ON me.id = %(pe)s "
            "WHERE o.course_key = %(course)s AND o.status = 'active' "
            "AND o.program_enrollment_id <> %(pe)s "
            "AND (lower(ope.external_user_key) = lower(me.external_user_key) "
            "OR ope.user_id = me.user_id)",
            {"pe": pe_id, "course": course},
        ).fetchone()
        if taken:
            return  # 'conflict'
    if row is None:
        ins = conn.execute(
            "INSERT INTO enrolldb.program_enrollments_programcourseenrollment "
            "(program_enrollment_id, course_key, status) VALUES (%s, %s, %s) RETURNING id",
            (pe_id, course, status),
        ).fetchone()
        assert ins is not None
        pce_id, old_status, ce_id = int(ins[0]), None, None
    else:
        pce_id, old_status, ce_id = int(row[0]), row[1], row[2]
        if old_status != status:
            conn.execute(
                "UPDATE enrolldb.program_enrollments_programcourseenrollment SET status = %s "
                "WHERE id = %s",
                (status, pce_id),
            )
    if user_id is None:
        if staff and status == "active":
            conn.execute(
                "INSERT INTO enrolldb.program_enrollments_courseaccessroleassignment "
                "(role, enrollment_id) VALUES ('staff', %s) ON CONFLICT DO NOTHING",
                (pce_id,),
            )
        return
    # Realized: the course enrollment follows the status as linking does.
    if status == "active":
        conn.execute(
            "INSERT INTO enrolldb.student_courseenrollment (user_id, course_id, mode, is_active) "
            "VALUES (%s, %s, 'masters', true) "
            "ON CONFLICT (user_id, course_id) DO UPDATE SET is_active = true, mode = 'masters' "
            "WHERE NOT student_courseenrollment.is_active "
            "OR student_courseenrollment.mode IN ('audit', 'honor')",
            (user_id, course),
        )
        active_user = conn.execute(
            "SELECT is_active FROM enrolldb.auth_user WHERE id = %s", (user_id,)
        ).fetchone()
        if active_user and active_user[0]:
            conn.execute(
                "INSERT INTO enrolldb.student_courseaccessrole (user_id, org, course_id, role) "
                "SELECT %(u)s, co.org, co.id, a.role "
                "FROM enrolldb.program_enrollments_courseaccessroleassignment a "
                "JOIN enrolldb.course_overviews_courseoverview co ON co.id = %(c)s "
                "WHERE a.enrollment_id = %(p)s ON CONFLICT DO NOTHING",
                {"u": user_id, "c": course, "p": pce_id},
            )
            conn.execute(
                "DELETE FROM enrolldb.program_enrollments_courseaccessroleassignment "
                "WHERE enrollment_id = %s",
                (pce_id,),
            )
    else:
        conn.execute(
            "INSERT INTO enrolldb.student_courseenrollment (user_id, course_id, mode, is_active) "
            "VALUES (%s, %s, 'masters', false) ON CONFLICT (user_id, course_id) DO NOTHING",
            (user_id, course),
        )
        if old_status == "active" and ce_id is not None:
            conn.execute(
                "UPDATE enrolldb.student_courseenrollment ce SET is_active = false "
                "WHERE ce.id = %s AND ce.is_active AND NOT EXISTS ("
                "SELECT 1 FROM enrolldb.program_enrollments_programcourseenrollment o "
                "WHERE o.course_enrollment_id = ce.id AND o.status = 'active')",
                (ce_id,),
            )
    conn.execute(
        "UPDATE enrolldb.program_enrollments_programcourseenrollment pce "
        "SET course_enrollment_id = ce.id FROM enrolldb.student_courseenrollment ce "
        "WHERE pce.id = %s AND ce.user_id = %s AND ce.course_id = %s "
        "AND pce.course_enrollment_id IS DISTINCT FROM ce.id",
        (pce_id, user_id, course),
    )


def apply(conn: Conn, w: World, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "enroll":
        _, k, p, c, status, staff = op
        with conn.transaction():
            found = find_pe(conn, w.programs[p], KEYS[k])
            if found is None:
                ins = conn.execute(
                    "INSERT INTO enrolldb.program_enrollments_programenrollment "
                    "(external_user_key, program_uuid, curriculum_uuid, status) "
                    "VALUES (%s, %s, %s, 'enrolled') RETURNING id",
                    (KEYS[k], w.programs[p], w.curricula[p]),
                ).fetchone()
                assert ins is not None
                found = (int(ins[0]), None)
            else:
                conn.execute(
                    "UPDATE enrolldb.program_enrollments_programenrollment SET status = 'enrolled' "
                    "WHERE id = %s AND status <> 'enrolled'",
                    (found[0],),
                )
            set_course_row(conn, found[0], found[1], COURSES[c], status, staff)
    elif kind in ("cancel", "deactivate"):
        k, p = op[1], op[2]
        with conn.transaction():
            found = find_pe(conn, w.programs[p], KEYS[k])
            if found is None:
                return
            courses = COURSES if kind == "cancel" else [COURSES[op[3]]]
            if kind == "cancel":
                conn.execute(
                    "UPDATE enrolldb.program_enrollments_programenrollment SET status = 'canceled' "
                    "WHERE id = %s",
                    (found[0],),
                )
            for course in courses:
                exists = conn.execute(
                    "SELECT 1 FROM enrolldb.program_enrollments_programcourseenrollment "
                    "WHERE program_enrollment_id = %s AND course_key = %s",
                    (found[0], course),
                ).fetchone()
                if exists:
                    set_course_row(conn, found[0], found[1], course, "inactive", False)
    elif kind == "link":
        _, p, pairs = op
        given = [(spell(KEYS[k], v), USERS[u]) for k, u, v in pairs]
        results = enrolldb.link(conn, w.programs[p], given)
        note(f"  -> {[(r.result, r.error) for r in results]}")
        assert [(r.external_user_key, r.username) for r in results] == given
        for r in results:
            assert_documented(r.error)
            assert (r.result == "failed") == (r.error is not None)
    elif kind == "matriculate":
        _, u, k, v = op
        rows = enrolldb.matriculate_learner(conn, w.users[u], ORG, spell(KEYS[k], v))
        note(f"  -> {[(r.program_enrollment_id, r.error) for r in rows]}")
        for row in rows:
            assert_documented(row.error)
    elif kind == "unlink":
        _, k, p = op
        found = find_pe(conn, w.programs[p], KEYS[k])
        if found is not None:
            enrolldb.unlink_program_enrollment(conn, found[0])
            assert find_pe(conn, w.programs[p], KEYS[k]) == (found[0], None)
    else:  # pragma: no cover
        raise AssertionError(kind)


def assert_documented(error: str | None) -> None:
    if error is not None:
        assert any(p.match(error) for p in DOCUMENTED_ERRORS), error


def dump(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT pe.id, pe.external_user_key, pe.user_id, pe.status, pce.course_key, pce.status, "
        "ce.id, ce.user_id, ce.is_active, ce.mode "
        "FROM enrolldb.program_enrollments_programenrollment pe "
        "LEFT JOIN enrolldb.program_enrollments_programcourseenrollment pce "
        "ON pce.program_enrollment_id = pe.id "
        "LEFT JOIN enrolldb.student_courseenrollment ce ON ce.id = pce.course_enrollment_id "
        "ORDER BY pe.id, pce.course_key"
    ).fetchall()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(OPS, min_size=1, max_size=14))
def test_random_histories_stay_healthy(db: Conn, ops: list[tuple[Any, ...]]) -> None:
    w = World(db)
    for step, op in enumerate(ops):
        note(f"step {step}: {op}")
        try:
            apply(db, w, op)
        except (enrolldb.EnrollDBError, psycopg.Error) as exc:  # pragma: no cover
            raise AssertionError(f"step {step} {op} raised {exc!r}") from exc
        problems = integrity(db)
        if problems:  # pragma: no cover
            note(f"state: {dump(db)}")
        assert problems == [], f"after step {step} {op}"
    assert enrolldb.check_integrity(db) == []
