"""The one-active rule for waiting learners as a schema constraint (migration 0005).

A waiting learner is (program's organization, lowered external key); it may hold at most one
active program course enrollment per course, whoever writes: the API or a direct script.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

import enrolldb
from builders import add_course, add_program, add_realized, add_user, add_waiting
from pgtypes import Conn

C1 = "course-v1:GTx+W1+2026"
C2 = "course-v1:GTx+W2+2026"
RULE = "waitinglearneractivecourse_learner_course_uq"


def side_rows(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT program_course_enrollment_id, organization_key, lower_external_user_key,"
        " course_key FROM enrolldb.waiting_learner_active_course"
        " ORDER BY program_course_enrollment_id"
    ).fetchall()


def pce_count(conn: Conn) -> int:
    row = conn.execute(
        "SELECT count(*) FROM enrolldb.program_enrollments_programcourseenrollment"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_second_active_row_of_a_waiting_learner_is_refused(db: Conn) -> None:
    add_course(db, C1)
    a, b = add_program(db), add_program(db)
    _, rows = add_waiting(db, a, "GT-1", [C1])
    assert side_rows(db) == [(rows[C1], "GTx", "gt-1", C1)]
    before = pce_count(db)
    with pytest.raises(psycopg.errors.UniqueViolation) as caught:
        add_waiting(db, b, "gt-1", [C1])
    assert caught.value.diag.constraint_name == RULE
    assert pce_count(db) == before


def test_inactive_rows_other_courses_and_other_organizations_are_accepted(db: Conn) -> None:
    add_course(db, C1)
    add_course(db, C2)
    a, b = add_program(db), add_program(db)
    other_org = add_program(db, "OtherU")
    add_waiting(db, a, "GT-2", [C1])
    _, inactive = add_waiting(db, b, "gt-2", {C1: "inactive", C2: "active"})
    _, elsewhere = add_waiting(db, other_org, "GT-2", [C1])
    keys = {(r[1], r[2], r[3]) for r in side_rows(db)}
    assert keys == {("GTx", "gt-2", C1), ("GTx", "gt-2", C2), ("OtherU", "gt-2", C1)}
    assert inactive[C1] not in {r[0] for r in side_rows(db)}
    assert elsewhere[C1] in {r[0] for r in side_rows(db)}


def test_activating_the_second_row_is_refused(db: Conn) -> None:
    add_course(db, C1)
    a, b = add_program(db), add_program(db)
    add_waiting(db, a, "GT-3", [C1])
    _, rows = add_waiting(db, b, "GT-3", {C1: "inactive"})
    with pytest.raises(psycopg.errors.UniqueViolation) as caught:
        db.execute(
            "UPDATE enrolldb.program_enrollments_programcourseenrollment"
            " SET status = 'active' WHERE id = %s",
            (rows[C1],),
        )
    assert caught.value.diag.constraint_name == RULE
    status = db.execute(
        "SELECT status FROM enrolldb.program_enrollments_programcourseenrollment WHERE id = %s",
        (rows[C1],),
    ).fetchone()
    assert status == ("inactive",)


def test_linking_realizes_and_unlinking_makes_waiting_again(db: Conn) -> None:
    add_course(db, C1)
    add_user(db, "alice")
    a = add_program(db)
    pe_id, rows = add_waiting(db, a, "GT-4", [C1])
    assert [r[0] for r in side_rows(db)] == [rows[C1]]
    assert enrolldb.link(db, a, [("GT-4", "alice")])[0].error is None
    assert side_rows(db) == []
    enrolldb.unlink_program_enrollment(db, pe_id)
    assert side_rows(db) == [(rows[C1], "GTx", "gt-4", C1)]


def test_unlink_that_would_give_a_waiting_learner_two_active_rows_is_refused(db: Conn) -> None:
    """Realized in A (known by user) and waiting in B with the same key are two identities to
    the schema; unlinking A would merge them into one waiting learner with two active rows."""
    add_course(db, C1)
    alice = add_user(db, "alice")
    a, b = add_program(db), add_program(db)
    realized, _ = add_realized(db, a, "GT-5", alice, [C1])
    add_waiting(db, b, "GT-5", [C1])
    with pytest.raises(enrolldb.WaitingLearnerActiveCourseError) as caught:
        enrolldb.unlink_program_enrollment(db, realized)
    assert caught.value.constraint == RULE
    user = db.execute(
        "SELECT user_id FROM enrolldb.program_enrollments_programenrollment WHERE id = %s",
        (realized,),
    ).fetchone()
    assert user == (alice,)


def test_relink_never_passes_through_waiting(db: Conn) -> None:
    """A relink moves user_id from user to user: one history row, and no side-table
    collision even when the key waits with an active row for the course elsewhere."""
    add_course(db, C1)
    alice, bob = add_user(db, "alice"), add_user(db, "bob")
    a, b = add_program(db), add_program(db)
    realized, _ = add_realized(db, a, "GT-6", alice, [C1])
    add_waiting(db, b, "GT-6", {C1: "inactive"})
    [result] = enrolldb.link(db, a, [("GT-6", "bob")])
    assert (result.result, result.error) == ("relinked", None)
    users = db.execute(
        "SELECT user_id FROM enrolldb.program_enrollments_historicalprogramenrollment"
        " WHERE id = %s ORDER BY history_id",
        (realized,),
    ).fetchall()
    assert users[-1] == (bob,)
    assert (None,) not in users[1:]
    assert enrolldb.check_integrity(db) == []


def test_program_organization_change_rekeys_waiting_learners(db: Conn) -> None:
    add_course(db, C1)
    a = add_program(db)
    add_waiting(db, a, "GT-7", [C1])
    db.execute(
        "UPDATE enrolldb.program_enrollments_program SET authoring_organization_key = 'NewU'"
        " WHERE program_uuid = %s",
        (a,),
    )
    assert [r[1] for r in side_rows(db)] == ["NewU"]
