"""Data set-up helpers for the registrar-write tests (direct inserts as the owner).

Only catalog rows (users, courses, programs, SSO identities) are inserted directly; every
enrollment in the tests is written through the API functions.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pgtypes import Conn

ORG = "gtx"
PROGRAM_A = UUID("aaaaaaaa-0000-4000-8000-000000000001")
PROGRAM_B = UUID("bbbbbbbb-0000-4000-8000-000000000002")
OTHER_ORG_PROGRAM = UUID("cccccccc-0000-4000-8000-000000000003")
CURRICULUM_A = UUID("aaaaaaaa-1111-4000-8000-000000000001")
CURRICULUM_A2 = UUID("aaaaaaaa-2222-4000-8000-000000000001")
CURRICULUM_B = UUID("bbbbbbbb-1111-4000-8000-000000000002")
COURSE = "course-v1:gtx+CS101+2024"
COURSE_2 = "course-v1:gtx+CS102+2024"


def add_user(conn: Conn, username: str, *, is_active: bool = True) -> int:
    row = conn.execute(
        "INSERT INTO enrolldb.auth_user (username, is_active) VALUES (%s, %s) RETURNING id",
        (username, is_active),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_course(conn: Conn, course_key: str, org: str = ORG) -> None:
    conn.execute(
        "INSERT INTO enrolldb.course_overviews_courseoverview (id, org) VALUES (%s, %s)",
        (course_key, org),
    )


def add_program(conn: Conn, program_uuid: UUID, org: str = ORG) -> None:
    conn.execute(
        "INSERT INTO enrolldb.program_enrollments_program"
        " (program_uuid, authoring_organization_key) VALUES (%s, %s)",
        (program_uuid, org),
    )


def add_identity(conn: Conn, org: str, key: str, user_id: int) -> None:
    conn.execute(
        "INSERT INTO enrolldb.program_enrollments_learneridentity"
        " (organization_key, external_user_key, user_id) VALUES (%s, %s, %s)",
        (org, key, user_id),
    )


def catalog(conn: Conn) -> None:
    """Two programs of one organization sharing two courses, and a program of another one."""
    add_program(conn, PROGRAM_A)
    add_program(conn, PROGRAM_B)
    add_program(conn, OTHER_ORG_PROGRAM, org="other")
    add_course(conn, COURSE)
    add_course(conn, COURSE_2)


def program_enrollments(conn: Conn, program_uuid: UUID) -> list[tuple[Any, ...]]:
    """(external_user_key, user_id, curriculum_uuid, status) of the program, by key."""
    return conn.execute(
        "SELECT external_user_key, user_id, curriculum_uuid, status"
        " FROM enrolldb.program_enrollments_programenrollment"
        " WHERE program_uuid = %s ORDER BY external_user_key, curriculum_uuid",
        (program_uuid,),
    ).fetchall()


def course_rows(conn: Conn, program_uuid: UUID, course_key: str) -> list[tuple[Any, ...]]:
    """(external_user_key, status, course_enrollment_id) of a program's rows for a course."""
    return conn.execute(
        "SELECT pe.external_user_key, pce.status, pce.course_enrollment_id"
        " FROM enrolldb.program_enrollments_programcourseenrollment AS pce"
        " JOIN enrolldb.program_enrollments_programenrollment AS pe"
        "   ON pe.id = pce.program_enrollment_id"
        " WHERE pe.program_uuid = %s AND pce.course_key = %s ORDER BY pe.external_user_key",
        (program_uuid, course_key),
    ).fetchall()


def course_enrollment(conn: Conn, user_id: int, course_key: str) -> tuple[Any, ...] | None:
    """(id, is_active, mode) of the user's course enrollment, if any."""
    return conn.execute(
        "SELECT id, is_active, mode FROM enrolldb.student_courseenrollment"
        " WHERE user_id = %s AND course_id = %s",
        (user_id, course_key),
    ).fetchone()


def integrity(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT * FROM enrolldb.check_integrity()").fetchall()


def history_reasons(conn: Conn, table: str) -> list[tuple[Any, ...]]:
    """(history_type, history_change_reason) of a history table, in order."""
    allowed = {
        "program_enrollments_historicalprogramenrollment",
        "program_enrollments_historicalprogramcourseenrollment",
        "student_courseenrollment_history",
    }
    assert table in allowed
    return conn.execute(
        f"SELECT history_type, history_change_reason FROM enrolldb.{table} ORDER BY history_id"
    ).fetchall()
