"""Inactive program course enrollments are inert on unlink and relink (docs/reference.md,
unlink_program_enrollment).

Why: linking never changes the course enrollment an inactive row points at (the learner may
have bought it herself). 0.1.0 still deactivated it on unlink and relink: alice, who paid for
'verified' in course S, lost her access when program A's inactive row for S was unlinked.
"""

from __future__ import annotations

from typing import Any

import enrolldb
from builders import (
    add_course,
    add_course_enrollment,
    add_program,
    add_user,
    add_waiting,
    course_enrollment,
    course_enrollments,
    integrity,
    pce,
    pe,
)
from pgtypes import Conn

S = "course-v1:GTx+S+2024_T1"
T = "course-v1:GTx+T+2024_T1"


def own_history(db: Conn, ce_id: int) -> int:
    row = db.execute(
        "SELECT count(*) FROM enrolldb.student_courseenrollment_history WHERE id = %s", (ce_id,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def alice_bought_verified(db: Conn) -> tuple[Any, ...]:
    """Program A: key K with S inactive and T active; alice holds S in 'verified' herself."""
    add_course(db, S, modes=("audit", "verified"))
    add_course(db, T, modes=("audit", "verified"))
    alice = add_user(db, "alice")
    bob = add_user(db, "bob")
    own = add_course_enrollment(db, alice, S, mode="verified")
    program = add_program(db)
    pe_id, rows = add_waiting(db, program, "K", {S: "inactive", T: "active"})
    return alice, bob, own, program, pe_id, rows


def test_link_then_unlink_leaves_her_own_enrollment(db: Conn) -> None:
    alice, _bob, own, program, pe_id, rows = alice_bought_verified(db)
    mine = course_enrollment(db, own)
    assert (mine.user_id, mine.is_active, mine.mode) == (alice, True, "verified")

    assert enrolldb.link(db, program, [("K", "alice")])[0].result == "linked"
    assert course_enrollment(db, own) == mine
    assert pce(db, rows[S]).course_enrollment_id == own
    assert integrity(db) == []

    before = own_history(db, own)
    enrolldb.unlink_program_enrollment(db, pe_id)

    assert course_enrollment(db, own) == mine  # still active, still verified
    assert pce(db, rows[S]).course_enrollment_id is None
    t_ce = course_enrollments(db, alice)[T]  # the active row's enrollment is deactivated
    assert (t_ce.is_active, t_ce.mode) == (False, "audit")
    assert pe(db, pe_id).user_id is None
    assert own_history(db, own) == before  # not even written with the same values
    assert integrity(db) == []


def test_relink_to_bob_leaves_her_own_enrollment(db: Conn) -> None:
    alice, bob, own, program, pe_id, rows = alice_bought_verified(db)
    mine = course_enrollment(db, own)
    assert enrolldb.link(db, program, [("K", "alice")])[0].result == "linked"

    assert enrolldb.link(db, program, [("K", "bob")])[0].result == "relinked"

    assert course_enrollment(db, own) == mine
    assert pe(db, pe_id).user_id == bob
    bobs = course_enrollments(db, bob)
    assert pce(db, rows[S]).course_enrollment_id == bobs[S].id
    assert (bobs[S].is_active, bobs[S].mode) == (False, "masters")
    assert (bobs[T].is_active, bobs[T].mode) == (True, "masters")
    t_ce = course_enrollments(db, alice)[T]
    assert (t_ce.is_active, t_ce.mode) == (False, "audit")
    assert integrity(db) == []
