"""The SSO fast path equals linking the same enrollments one by one, in id order.

Why: ``matriculate_learner`` handles a learner's waiting enrollments in one pass with
statements of its own (one user, cached plans) instead of the bulk linking machinery.
docs/reference.md
(matriculate_learner) defines it as linking each enrollment atomically in id order, as
link_program_enrollments does. So each world
below is signed in once with ``matriculate_learner`` and once, in a rolled back transaction,
by calling ``link_program_enrollments`` for each program in the enrollments' id order; the
error texts and every row a link may touch must be the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from builders import (
    ORG,
    add_course,
    add_course_enrollment,
    add_program,
    add_realized,
    add_role_assignment,
    add_user,
    add_waiting,
    integrity,
)
from pgtypes import Conn

C1, C2, C3 = (f"course-v1:GTx+FP{i}+2024" for i in (1, 2, 3))
MISSING = "course-v1:GTx+Nowhere+2024"

ROWS = {
    "pe": "SELECT id, user_id FROM enrolldb.program_enrollments_programenrollment ORDER BY id",
    "pce": (
        "SELECT pce.id, ce.user_id, ce.course_id FROM"
        " enrolldb.program_enrollments_programcourseenrollment AS pce"
        " LEFT JOIN enrolldb.student_courseenrollment AS ce ON ce.id = pce.course_enrollment_id"
        " ORDER BY pce.id"
    ),
    "ce": (
        "SELECT user_id, course_id, is_active, mode FROM enrolldb.student_courseenrollment"
        " ORDER BY 1, 2"
    ),
    "roles": (
        "SELECT user_id, org, course_id, role FROM enrolldb.student_courseaccessrole"
        " ORDER BY 1, 2, 3, 4"
    ),
    "assignments": (
        "SELECT enrollment_id, role FROM enrolldb.program_enrollments_courseaccessroleassignment"
        " ORDER BY 1"
    ),
}


def rows(conn: Conn) -> dict[str, list[tuple[Any, ...]]]:
    return {name: conn.execute(query).fetchall() for name, query in ROWS.items()}


def world_modes(db: Conn) -> tuple[int, str]:
    """Existing course enrollments in audit, verified and inactive honor; active and inactive
    rows across three programs."""
    alice = add_user(db, "alice")
    add_course_enrollment(db, alice, C1, mode="audit")
    add_course_enrollment(db, alice, C2, mode="verified")
    add_course_enrollment(db, alice, C3, mode="honor", is_active=False)
    p1, p2, p3 = (add_program(db) for _ in range(3))
    add_waiting(db, p1, "K", {C1: "active", C2: "inactive"})
    add_waiting(db, p2, "K", {C2: "active", C3: "inactive"})
    add_waiting(db, p3, "k", {C3: "active", C1: "inactive"})
    return alice, "alice"


def world_failures(db: Conn) -> tuple[int, str]:
    """A missing course, a conflict with another program's active row, a (program,
    curriculum) the user already holds, between enrollments that succeed."""
    alice = add_user(db, "alice")
    p0, p1, p2, p3, p4 = (add_program(db) for _ in range(5))
    add_realized(db, p0, "ALICE-OLD", alice, [C1])
    add_waiting(db, p1, "K", {C2: "active", MISSING: "inactive"})
    add_waiting(db, p2, "K", {C3: "active"})
    add_waiting(db, p3, "K", {C1: "active"})
    curriculum = uuid.uuid4()
    add_realized(db, p4, "ALICE-P4", alice, [], curriculum_uuid=curriculum)
    # Same program and curriculum as alice's own: collides.
    add_waiting(db, p4, "K", {C2: "inactive"}, curriculum_uuid=curriculum)
    return alice, "alice"


def world_roles(db: Conn, *, active_user: bool) -> tuple[int, str]:
    """Pending staff assignments on active and inactive rows."""
    alice = add_user(db, "alice", is_active=active_user)
    p1, p2 = add_program(db), add_program(db)
    _, rows1 = add_waiting(db, p1, "K", {C1: "active", C2: "inactive"})
    _, rows2 = add_waiting(db, p2, "K", {C3: "active"})
    for pce_id in (rows1[C1], rows1[C2], rows2[C3]):
        add_role_assignment(db, pce_id)
    return alice, "alice"


WORLDS: dict[str, Callable[[Conn], tuple[int, str]]] = {
    "modes": world_modes,
    "failures": world_failures,
    "roles-active-user": lambda db: world_roles(db, active_user=True),
    "roles-inactive-user": lambda db: world_roles(db, active_user=False),
}


@pytest.mark.parametrize("world", sorted(WORLDS))
def test_fast_path_equals_linking_one_by_one(db: Conn, connect: Any, world: str) -> None:
    for course in (C1, C2, C3):
        add_course(db, course, modes=["audit"])
    user_id, username = WORLDS[world](db)

    serial: Conn = connect(autocommit=False)
    waiting = serial.execute(
        "SELECT pe.id, pe.program_uuid FROM enrolldb.program_enrollments_programenrollment AS pe"
        " WHERE lower(pe.external_user_key) = 'k' AND pe.user_id IS NULL ORDER BY pe.id"
    ).fetchall()
    assert len(waiting) >= 2
    expected_errors = []
    for pe_id, program in waiting:
        (error,) = serial.execute(
            "SELECT error FROM enrolldb.link_program_enrollments(%s, ARRAY['K'], ARRAY[%s])",
            (program, username),
        ).fetchone() or (None,)
        expected_errors.append((pe_id, program, error))
    expected_rows = rows(serial)
    serial.rollback()

    got = db.execute(
        "SELECT program_enrollment_id, program_uuid, error"
        " FROM enrolldb.matriculate_learner(%s, %s, 'K')",
        (user_id, ORG),
    ).fetchall()
    assert got == expected_errors
    assert rows(db) == expected_rows
    assert integrity(db) == []
    if world == "failures":
        assert [e is None for _, _, e in got] == [False, True, False, False]
    if world.startswith("roles"):
        assert (rows(db)["roles"] != []) is (world == "roles-active-user")


def test_fast_path_never_aborts_the_callers_transaction(db: Conn, connect: Any) -> None:
    add_course(db, C1)
    alice = add_user(db, "alice")
    add_waiting(db, add_program(db), "K", {MISSING: "active"})
    tx: Conn = connect(autocommit=False)
    got = tx.execute("SELECT error FROM enrolldb.matriculate_learner(%s, %s, 'K')", (alice, ORG))
    assert got.fetchall() == [(f"NonExistentCourseError: {MISSING} does not exist",)]
    assert tx.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    tx.commit()
