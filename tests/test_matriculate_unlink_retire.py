"""matriculate_learner (docs/reference.md, matriculate_learner), unlink_program_enrollment
(unlink_program_enrollment), retire_user (retire_user) and
check_integrity (§4.7), through SQL and the Python client; each test asserts the rows left."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import psycopg.errors
import pytest

import enrolldb
from builders import (
    ORG,
    TwoPrograms,
    add_course,
    add_course_enrollment,
    add_program,
    add_program_course_enrollment,
    add_program_enrollment,
    add_realized,
    add_role_assignment,
    add_user,
    add_waiting,
    course_enrollment,
    course_enrollments,
    history,
    history_count,
    history_reasons,
    integrity,
    learner_identities,
    pce,
    pces,
    pe,
    roles,
    state,
    two_programs,
)
from pgtypes import Conn

C1 = "course-v1:GTx+C1+2024"
C2 = "course-v1:GTx+C2+2024"
MISSING = "course-v1:GTx+Nowhere+2024"
NOW = datetime.now(timezone.utc)


def matriculate_rows(conn: Conn, user_id: int, org: str, key: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT program_enrollment_id, program_uuid, error "
        "FROM enrolldb.matriculate_learner(%s::integer, %s::text, %s::text)",
        (user_id, org, key),
    ).fetchall()


# --- matriculate_learner ---------------------------------------------------------------------


def test_matriculate_links_waiting_enrollments_of_the_organization(db: Conn) -> None:
    add_course(db, C1)
    add_course(db, C2)
    alice, bob = add_user(db, "alice"), add_user(db, "bob")
    p1, p2, p3 = add_program(db), add_program(db), add_program(db)
    p_lower, p_other = add_program(db, "gtx"), add_program(db, "MITx")
    # Created so that id order differs from program creation order.
    pe_p2, _ = add_waiting(db, p2, "ABC-1", {C2: "active", C1: "inactive"})
    pe_p1, _ = add_waiting(db, p1, "abc-1", [C1], curriculum_uuid=uuid.uuid4())
    pe_p1b, _ = add_waiting(db, p1, "Abc-1", [], curriculum_uuid=uuid.uuid4())
    pe_lower, _ = add_waiting(db, p_lower, "ABC-1", [C1])
    pe_other, _ = add_waiting(db, p_other, "ABC-1", [C1])
    pe_bob, _ = add_realized(db, p3, "ABC-1", bob, {C2: "inactive"})
    untouched = {i: pe(db, i) for i in (pe_lower, pe_other, pe_bob)}
    before = history_count(db)

    result = enrolldb.matriculate_learner(db, alice, ORG, "\u00a0abc-1 ")

    assert result == [
        enrolldb.MatriculationResult(pe_p2, p2, None),
        enrolldb.MatriculationResult(pe_p1, p1, None),
        enrolldb.MatriculationResult(pe_p1b, p1, None),
    ]
    for pe_id in (pe_p2, pe_p1, pe_p1b):
        assert pe(db, pe_id).user_id == alice
    assert {i: pe(db, i) for i in untouched} == untouched  # other orgs, already linked
    ces = course_enrollments(db, alice)
    assert (ces[C2].is_active, ces[C2].mode) == (True, "masters")
    assert (ces[C1].is_active, ces[C1].mode) == (True, "masters")
    assert pces(db, pe_p2)[C1].course_enrollment_id == ces[C1].id
    assert pces(db, pe_p2)[C1].status == "inactive"
    assert pces(db, pe_p1)[C1].course_enrollment_id == ces[C1].id
    assert pe(db, pe_p2).external_user_key == "ABC-1"  # stored spelling kept
    assert learner_identities(db) == [(ORG, "abc-1", alice)]
    assert history_reasons(db, before) == {"matriculate_learner"}
    assert integrity(db) == []


def test_matriculate_org_match_is_exact(db: Conn) -> None:
    add_course(db, C1)
    alice = add_user(db, "alice")
    program = add_program(db, "GTx")
    pe_id, _ = add_waiting(db, program, "K1", [C1])
    before = state(db)

    assert matriculate_rows(db, alice, "gtx", "K1") == []
    assert matriculate_rows(db, alice, "GTx ", "K1") == []

    assert pe(db, pe_id).user_id is None
    assert course_enrollments(db, alice) == {}
    assert state(db)["programenrollment"] == before["programenrollment"]
    assert matriculate_rows(db, alice, "GTx", "k1") == [(pe_id, program, None)]


def test_matriculate_failure_does_not_stop_others_nor_abort_transaction(
    db: Conn, connect: Any
) -> None:
    add_course(db, C1)
    add_course(db, C2)
    alice = add_user(db, "alice")
    p1, p2, p3, p4 = (add_program(db) for _ in range(4))
    q_pe, _ = add_realized(db, p4, "ALICE-Q", alice, [C1])
    bad_course, _ = add_waiting(db, p1, "K", {C2: "inactive", MISSING: "active"})
    conflict, _ = add_waiting(db, p2, "K", [C1])
    good, _ = add_waiting(db, p3, "K", [C2])
    before = state(db)
    tx: Conn = connect(autocommit=False)

    # Plain SQL, no client savepoint: the function itself must not abort the transaction.
    rows = matriculate_rows(tx, alice, ORG, "k")
    assert tx.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert tx.execute("SELECT 1").fetchone() == (1,)
    tx.commit()

    assert rows == [
        (bad_course, p1, f"NonExistentCourseError: {MISSING} does not exist"),
        (
            conflict,
            p2,
            f"ConflictError: alice already has an active program course enrollment for {C1} "
            f"in program uuid={p4}",
        ),
        (good, p3, None),
    ]
    after = state(db)
    for failed in (bad_course, conflict):
        assert [r for r in after["programenrollment"] if r[0] == failed] == [
            r for r in before["programenrollment"] if r[0] == failed
        ]
        assert [r for r in after["programcourseenrollment"] if r[2] == failed] == [
            r for r in before["programcourseenrollment"] if r[2] == failed
        ]
    assert pe(db, good).user_id == alice
    ces = course_enrollments(db, alice)
    assert sorted(ces) == [C1, C2]
    assert pces(db, good)[C2].course_enrollment_id == ces[C2].id
    assert pces(db, q_pe)[C1].course_enrollment_id == ces[C1].id
    assert ces[C1].is_active
    assert learner_identities(db) == [(ORG, "k", alice)]
    assert integrity(db) == []


def test_matriculate_three_enrollments_second_fails_in_one_pass(db: Conn) -> None:
    """The fast path links all waiting enrollments in one pass; the result must equal linking
    them one by one in id order: the 2nd fails alone, the 1st and 3rd are linked, the 3rd's
    active row reactivates the inactive course enrollment the 1st's inactive row created, the
    3rd's inactive row points at what the 1st's active row created; every history row of the
    call says matriculate_learner."""
    add_course(db, C1)
    add_course(db, C2)
    alice = add_user(db, "alice")
    p1, p2, p3 = (add_program(db) for _ in range(3))
    first, first_rows = add_waiting(db, p1, "K-3", {C1: "active", C2: "inactive"})
    second, _ = add_waiting(db, p2, "K-3", {MISSING: "active"})
    third, third_rows = add_waiting(db, p3, "k-3", {C2: "active", C1: "inactive"})
    before = state(db)
    since = history_count(db)

    rows = matriculate_rows(db, alice, ORG, "K-3")

    assert rows == [
        (first, p1, None),
        (second, p2, f"NonExistentCourseError: {MISSING} does not exist"),
        (third, p3, None),
    ]
    assert (pe(db, first).user_id, pe(db, second).user_id, pe(db, third).user_id) == (
        alice,
        None,
        alice,
    )
    after = state(db)
    assert [r for r in after["programcourseenrollment"] if r[2] == second] == [
        r for r in before["programcourseenrollment"] if r[2] == second
    ]
    ces = course_enrollments(db, alice)
    assert {c: (ce.is_active, ce.mode) for c, ce in ces.items()} == {
        C1: (True, "masters"),
        C2: (True, "masters"),
    }
    assert pce(db, first_rows[C1]).course_enrollment_id == ces[C1].id
    assert pce(db, first_rows[C2]).course_enrollment_id == ces[C2].id
    assert pce(db, third_rows[C2]).course_enrollment_id == ces[C2].id
    assert pce(db, third_rows[C1]).course_enrollment_id == ces[C1].id
    assert history_reasons(db, since) == {"matriculate_learner"}
    assert history_count(db)["programenrollment"] - since["programenrollment"] == 2
    assert learner_identities(db) == [(ORG, "K-3", alice)]
    assert integrity(db) == []


def test_matriculate_client_logs_and_returns_failures(
    db: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    add_course(db, C1)
    alice = add_user(db, "alice")
    program = add_program(db)
    pe_id, _ = add_waiting(db, program, "K", [MISSING])
    result = enrolldb.matriculate_learner(db, alice, ORG, "K")
    assert result == [
        enrolldb.MatriculationResult(
            pe_id, program, f"NonExistentCourseError: {MISSING} does not exist"
        )
    ]
    assert any(MISSING in r.getMessage() for r in caplog.records)
    assert pe(db, pe_id).user_id is None


def test_matriculate_records_and_moves_identity(db: Conn) -> None:
    alice, bob = add_user(db, "alice"), add_user(db, "bob")

    assert matriculate_rows(db, alice, ORG, " K-9\u3000") == []
    assert learner_identities(db) == [(ORG, "K-9", alice)]
    assert matriculate_rows(db, alice, ORG, "k-9") == []  # same identity, not a second row
    assert learner_identities(db) == [(ORG, "K-9", alice)]

    assert matriculate_rows(db, bob, ORG, "k-9") == []
    ids = learner_identities(db)
    assert len(ids) == 1
    assert (ids[0][0], ids[0][1].lower(), ids[0][2]) == (ORG, "k-9", bob)

    assert matriculate_rows(db, alice, "MITx", "K-9") == []
    assert sorted((o, u) for o, _, u in learner_identities(db)) == [("GTx", bob), ("MITx", alice)]


def test_matriculate_identity_moves_and_links_for_new_user(db: Conn) -> None:
    add_course(db, C1)
    alice, bob = add_user(db, "alice"), add_user(db, "bob")
    program = add_program(db)
    first, _ = add_waiting(db, program, "K", [C1])
    assert matriculate_rows(db, alice, ORG, "K") == [(first, program, None)]
    # A second enrollment appears later; the key now signs in as bob.
    other = add_program(db)
    second, _ = add_waiting(db, other, "K", {C1: "inactive"})

    assert matriculate_rows(db, bob, ORG, "K") == [(second, other, None)]

    assert pe(db, first).user_id == alice  # realized enrollments are not waiting: untouched
    assert pe(db, second).user_id == bob
    assert learner_identities(db) == [(ORG, "K", bob)]
    assert integrity(db) == []


@pytest.mark.parametrize("position", [0, 1, 2])
def test_matriculate_null_argument(db: Conn, position: int) -> None:
    alice = add_user(db, "alice")
    args: list[Any] = [alice, ORG, "K"]
    args[position] = None
    before = state(db)
    with pytest.raises(psycopg.errors.NullValueNotAllowed) as raw:
        matriculate_rows(db, *args)
    assert raw.value.sqlstate == "22004"
    with pytest.raises(enrolldb.NullArgumentError) as client:
        enrolldb.matriculate_learner(db, *args)
    assert client.value.sqlstate == "22004"
    assert isinstance(client.value.__cause__, psycopg.errors.NullValueNotAllowed)
    assert state(db) == before


def test_matriculate_unknown_user(db: Conn) -> None:
    add_course(db, C1)
    program = add_program(db)
    pe_id, _ = add_waiting(db, program, "K", [C1])
    before = state(db)
    with pytest.raises(psycopg.errors.ForeignKeyViolation) as raw:
        matriculate_rows(db, 424242, ORG, "K")
    assert raw.value.sqlstate == "23503"
    assert "424242" in str(raw.value)
    with pytest.raises(enrolldb.UnknownUserError) as client:
        enrolldb.matriculate_learner(db, 424242, ORG, "K")
    assert client.value.sqlstate == "23503"
    assert state(db) == before
    assert pe(db, pe_id).user_id is None


# --- unlink_program_enrollment ---------------------------------------------------------------

MODES = [
    pytest.param((), "audit", id="no modes"),
    pytest.param(("audit", "verified"), "audit", id="audit"),
    pytest.param((("audit", NOW + timedelta(days=3)),), "audit", id="audit expiring later"),
    pytest.param(("verified",), "masters", id="verified only"),
    pytest.param((("audit", NOW - timedelta(days=3)), "verified"), "masters", id="audit expired"),
]


@pytest.mark.parametrize(("modes", "old_mode"), MODES)
def test_unlink_deactivates_and_clears(
    db: Conn, modes: tuple[str | tuple[str, datetime], ...], old_mode: str
) -> None:
    add_course(db, C1, modes=modes)
    add_course(db, C2, modes=modes)
    alice = add_user(db, "alice")
    program = add_program(db)
    pe_id, rows = add_waiting(db, program, "K1", {C1: "active", C2: "inactive"})
    assert enrolldb.link(db, program, [("K1", "alice")])[0].result == "linked"
    ces = course_enrollments(db, alice)
    before = history_count(db)

    enrolldb.unlink_program_enrollment(db, pe_id)

    got = pe(db, pe_id)
    assert (got.user_id, got.external_user_key, got.status) == (None, "K1", "enrolled")
    for course in (C1, C2):
        assert pce(db, rows[course]).course_enrollment_id is None
    # The active row's course enrollment is deactivated; the inactive row's (created inactive
    # in 'masters' by the link) is never changed (docs/reference.md, unlink_program_enrollment).
    ce = course_enrollment(db, ces[C1].id)
    assert (ce.user_id, ce.is_active, ce.mode) == (alice, False, old_mode)
    assert course_enrollment(db, ces[C2].id) == ces[C2]
    assert (pce(db, rows[C1]).status, pce(db, rows[C2]).status) == ("active", "inactive")
    assert history_reasons(db, before) == {"unlink_program_enrollment"}
    assert history(db, "programenrollment", pe_id)[-1].row["user_id"] is None
    assert integrity(db) == []


@pytest.mark.parametrize("a_first", [True, False])
def test_unlink_leaves_course_enrollment_another_active_row_uses(db: Conn, a_first: bool) -> None:
    s = two_programs(db, a_first=a_first)
    linked_both(db, s)
    ce_id = course_enrollments(db, s.user_id)[s.course].id
    ce_hist = history(db, "courseenrollment", ce_id)

    enrolldb.unlink_program_enrollment(db, s.pe_a)

    ce = course_enrollment(db, ce_id)
    assert (ce.is_active, ce.mode) == (True, "masters")
    assert history(db, "courseenrollment", ce_id) == ce_hist  # not touched
    assert pce(db, s.pce_a).course_enrollment_id is None
    assert pe(db, s.pe_a).user_id is None
    assert pce(db, s.pce_b).course_enrollment_id == ce_id
    assert integrity(db) == []

    enrolldb.unlink_program_enrollment(db, s.pe_b)

    ce = course_enrollment(db, ce_id)
    assert (ce.is_active, ce.mode) == (False, "audit")
    assert pce(db, s.pce_b).course_enrollment_id is None
    assert integrity(db) == []


def test_unlink_active_row_deactivates_even_if_inactive_rows_point_at_it(db: Conn) -> None:
    s = two_programs(db)
    linked_both(db, s)
    ce_id = course_enrollments(db, s.user_id)[s.course].id

    enrolldb.unlink_program_enrollment(db, s.pe_b)

    ce = course_enrollment(db, ce_id)
    assert (ce.is_active, ce.mode) == (False, "audit")
    assert pce(db, s.pce_a).course_enrollment_id == ce_id  # A's inactive row still linked
    assert pe(db, s.pe_b).user_id is None
    assert integrity(db) == []


def linked_both(conn: Conn, s: TwoPrograms) -> None:
    rows = enrolldb.matriculate_learner(conn, s.user_id, s.org, s.key)
    assert [r.error for r in rows] == [None, None]


def test_unlink_keeps_granted_roles(db: Conn) -> None:
    add_course(db, C1)
    alice = add_user(db, "alice")
    program = add_program(db)
    pe_id, rows = add_waiting(db, program, "K1", [C1])
    add_role_assignment(db, rows[C1])
    enrolldb.link(db, program, [("K1", "alice")])
    granted = roles(db, alice)
    assert granted == [(alice, ORG, C1, "staff")]

    enrolldb.unlink_program_enrollment(db, pe_id)

    assert roles(db, alice) == granted
    assert pe(db, pe_id).user_id is None


def test_unlink_waiting_enrollment_is_a_no_op(db: Conn) -> None:
    add_course(db, C1)
    program = add_program(db)
    pe_id, _ = add_waiting(db, program, "K1", [C1])
    before = state(db)
    enrolldb.unlink_program_enrollment(db, pe_id)
    assert state(db) == before


def test_unlink_argument_errors(db: Conn) -> None:
    before = state(db)
    with pytest.raises(psycopg.errors.NullValueNotAllowed):
        db.execute("SELECT enrolldb.unlink_program_enrollment(NULL::integer)")
    with pytest.raises(enrolldb.NullArgumentError) as null:
        enrolldb.unlink_program_enrollment(db, None)  # type: ignore[arg-type]
    assert null.value.sqlstate == "22004"
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        db.execute("SELECT enrolldb.unlink_program_enrollment(424242)")
    with pytest.raises(enrolldb.InvalidArgumentError) as unknown:
        enrolldb.unlink_program_enrollment(db, 424242)
    assert unknown.value.sqlstate == "22023"
    assert state(db) == before


# --- retire_user -----------------------------------------------------------------------------

RETIRED = re.compile(r"^retired_external_key_[0-9a-f]{64}$")


def all_keys(conn: Conn) -> list[str]:
    rows = conn.execute(
        "SELECT external_user_key FROM enrolldb.program_enrollments_programenrollment "
        "UNION ALL SELECT external_user_key "
        "FROM enrolldb.program_enrollments_historicalprogramenrollment"
    ).fetchall()
    return [str(r[0]) for r in rows if r[0] is not None]


def test_retire_rewrites_live_and_history_rows(db: Conn) -> None:
    add_course(db, C1)
    alice = add_user(db, "alice")
    add_user(db, "bob")
    p1, p2 = add_program(db), add_program(db)
    a1, _ = add_waiting(db, p1, "GT-RET-1", [C1])
    a2, _ = add_waiting(db, p2, "gt-ret-1", {C1: "inactive"})
    # Same key in another organization's program: another learner, never linked to alice.
    stranger, _ = add_waiting(db, add_program(db, "OtherU"), "GT-RET-1", [C1])
    b1, _ = add_waiting(db, p1, "GT-BOB", [C1])
    assert enrolldb.link(db, p1, [("GT-RET-1", "alice"), ("GT-BOB", "bob")])[0].error is None
    enrolldb.unlink_program_enrollment(db, a1)
    assert enrolldb.link(db, p1, [("GT-RET-1", "alice")])[0].error is None
    assert enrolldb.link(db, p2, [("GT-RET-1", "alice")])[0].error is None
    bob_hist = history(db, "programenrollment", b1)
    stranger_hist = history(db, "programenrollment", stranger)

    assert enrolldb.retire_user(db, alice) is True

    for pe_id, key in ((a1, "GT-RET-1"), (a2, "gt-ret-1")):
        live = pe(db, pe_id)
        assert live.user_id == alice
        assert live.external_user_key is not None
        assert RETIRED.match(live.external_user_key), live.external_user_key
        unsalted = hashlib.sha256(key.encode()).hexdigest()
        assert live.external_user_key != f"retired_external_key_{unsalted}"
        rows = history(db, "programenrollment", pe_id)
        assert len(rows) >= 3
        assert {h.row["external_user_key"] for h in rows} == {live.external_user_key}
        assert rows[-1].history_change_reason == "retire_user"
    assert pe(db, a1).external_user_key != pe(db, a2).external_user_key
    # Only the stranger's enrollment (not alice's) still carries the key.
    assert pe(db, stranger).external_user_key == "GT-RET-1"
    assert history(db, "programenrollment", stranger) == stranger_hist
    keyed = [k for k in all_keys(db) if k.lower() == "gt-ret-1"]
    assert len(keyed) == 1 + len(stranger_hist)
    assert pe(db, b1).external_user_key == "GT-BOB"
    assert history(db, "programenrollment", b1) == bob_hist
    assert pe(db, a1).user_id == alice  # still enrolled, only the key is gone
    assert course_enrollments(db, alice)[C1].is_active
    assert integrity(db) == []


def test_retire_is_idempotent(db: Conn) -> None:
    add_course(db, C1)
    alice = add_user(db, "alice")
    program = add_program(db)
    pe_id, _ = add_waiting(db, program, "GT-RET-2", [C1])
    enrolldb.link(db, program, [("GT-RET-2", "alice")])
    assert enrolldb.retire_user(db, alice) is True
    retired = pe(db, pe_id).external_user_key
    before = state(db)
    hist = history(db, "programenrollment", pe_id)

    assert enrolldb.retire_user(db, alice) is True

    assert state(db) == before  # no row, no history row written
    assert history(db, "programenrollment", pe_id) == hist
    assert pe(db, pe_id).external_user_key == retired


def test_retire_user_without_enrollments(db: Conn) -> None:
    add_course(db, C1)
    alice, bob = add_user(db, "alice"), add_user(db, "bob")
    program = add_program(db)
    add_realized(db, program, "GT-BOB", bob, [C1])
    before = state(db)
    assert enrolldb.retire_user(db, alice) is False
    assert enrolldb.retire_user(db, 424242) is False
    row = db.execute("SELECT enrolldb.retire_user(%s)", (alice,)).fetchone()
    assert row == (False,)
    assert state(db) == before


def test_retire_null_argument(db: Conn) -> None:
    with pytest.raises(psycopg.errors.NullValueNotAllowed):
        db.execute("SELECT enrolldb.retire_user(NULL::integer)")
    with pytest.raises(enrolldb.NullArgumentError):
        enrolldb.retire_user(db, None)  # type: ignore[arg-type]


# --- check_integrity -------------------------------------------------------------------------


def healthy(conn: Conn) -> TwoPrograms:
    s = two_programs(conn)
    linked_both(conn, s)
    add_user(conn, "bob")
    add_course(conn, C2)
    assert integrity(conn) == []
    assert enrolldb.check_integrity(conn) == []
    return s


def ce_of(conn: Conn, s: TwoPrograms) -> int:
    return course_enrollments(conn, s.user_id)[s.course].id


def bob_id(conn: Conn) -> int:
    row = conn.execute("SELECT id FROM enrolldb.auth_user WHERE username = 'bob'").fetchone()
    assert row is not None
    return int(row[0])


def plant_inactive_course_enrollment(conn: Conn, s: TwoPrograms) -> set[tuple[Any, ...]]:
    ce_id = ce_of(conn, s)
    conn.execute(
        "UPDATE enrolldb.student_courseenrollment SET is_active = false WHERE id = %s", (ce_id,)
    )
    return {("active_enrollment_without_access", s.pe_b, s.pce_b, ce_id)}


def plant_unbacked_masters(conn: Conn, s: TwoPrograms) -> set[tuple[Any, ...]]:
    ce_id = add_course_enrollment(conn, bob_id(conn), s.course, mode="masters")
    return {("unbacked_masters_enrollment", None, None, ce_id)}


def plant_double_active_user(conn: Conn, s: TwoPrograms) -> set[tuple[Any, ...]]:
    program_c = add_program(conn)
    pe_c = add_program_enrollment(conn, program_c, s.key, user_id=s.user_id)
    pce_c = add_program_course_enrollment(conn, pe_c, s.course, "active")
    return {
        ("double_active_course", s.pe_b, s.pce_b, ce_of(conn, s)),
        ("double_active_course", pe_c, pce_c, None),
        ("realized_without_course_enrollment", pe_c, pce_c, None),
    }


def plant_double_active_waiting(conn: Conn, s: TwoPrograms) -> set[tuple[Any, ...]]:
    # The constraint waitinglearneractivecourse_learner_course_uq refuses this state; plant it
    # with its tracking trigger off, as a careless bulk load could.
    table = "enrolldb.program_enrollments_programcourseenrollment"
    trigger = "programcourseenrollment_track_waiting_insert"
    conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
    try:
        pe1, rows1 = add_waiting(conn, s.program_a, "W-1", [s.course])
        pe2, rows2 = add_waiting(conn, s.program_b, "w-1", [s.course])
    finally:
        conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")
    return {
        ("double_active_course", pe1, rows1[s.course], None),
        ("double_active_course", pe2, rows2[s.course], None),
    }


def plant_realized_without_course_enrollment(conn: Conn, s: TwoPrograms) -> set[tuple[Any, ...]]:
    pce_id = add_program_course_enrollment(conn, s.pe_a, C2, "inactive")
    return {("realized_without_course_enrollment", s.pe_a, pce_id, None)}


def plant_mismatch(conn: Conn, s: TwoPrograms) -> set[tuple[Any, ...]]:
    bob_ce = add_course_enrollment(conn, bob_id(conn), s.course, mode="audit", is_active=False)
    conn.execute("SET session_replication_role = replica")
    try:
        conn.execute(
            "UPDATE enrolldb.program_enrollments_programcourseenrollment "
            "SET course_enrollment_id = %s WHERE id = %s",
            (bob_ce, s.pce_a),
        )
    finally:
        conn.execute("SET session_replication_role = origin")
    return {
        ("course_enrollment_mismatch", s.pe_a, s.pce_a, bob_ce),
        ("history_out_of_date", s.pe_a, s.pce_a, bob_ce),
    }


def plant_shared_active(conn: Conn, s: TwoPrograms) -> set[tuple[Any, ...]]:
    conn.execute("DROP INDEX enrolldb.programcourseenrollment_active_course_enrollment_uq")
    conn.execute(
        "UPDATE enrolldb.program_enrollments_programcourseenrollment SET status = 'active' "
        "WHERE id = %s",
        (s.pce_a,),
    )
    ce_id = ce_of(conn, s)
    return {
        ("shared_active_course_enrollment", None, s.pce_a, ce_id),
        ("shared_active_course_enrollment", None, s.pce_b, ce_id),
        ("double_active_course", s.pe_a, s.pce_a, ce_id),
        ("double_active_course", s.pe_b, s.pce_b, ce_id),
    }


def plant_noncanonical_key(conn: Conn, s: TwoPrograms) -> set[tuple[Any, ...]]:
    conn.execute(
        "ALTER TABLE enrolldb.program_enrollments_programenrollment "
        "DROP CONSTRAINT programenrollment_key_canonical_ck"
    )
    pe_id = add_program_enrollment(conn, s.program_a, " padded\u00a0")
    return {("noncanonical_external_key", pe_id, None, None)}


def plant_unfulfilled_role(conn: Conn, s: TwoPrograms) -> set[tuple[Any, ...]]:
    add_role_assignment(conn, s.pce_b)
    return {("unfulfilled_role_assignment", s.pe_b, s.pce_b, ce_of(conn, s))}


def plant_history_gap(conn: Conn, s: TwoPrograms) -> set[tuple[Any, ...]]:
    conn.execute("SET session_replication_role = replica")
    try:
        conn.execute(
            "UPDATE enrolldb.program_enrollments_programenrollment SET status = 'ended' "
            "WHERE id = %s",
            (s.pe_b,),
        )
    finally:
        conn.execute("SET session_replication_role = origin")
    return {("history_out_of_date", s.pe_b, None, None)}


PLANTS: dict[str, Callable[[Conn, TwoPrograms], set[tuple[Any, ...]]]] = {
    "active_enrollment_without_access": plant_inactive_course_enrollment,
    "unbacked_masters_enrollment": plant_unbacked_masters,
    "double_active_course (user)": plant_double_active_user,
    "double_active_course (waiting key)": plant_double_active_waiting,
    "realized_without_course_enrollment": plant_realized_without_course_enrollment,
    "course_enrollment_mismatch": plant_mismatch,
    "shared_active_course_enrollment": plant_shared_active,
    "noncanonical_external_key": plant_noncanonical_key,
    "unfulfilled_role_assignment": plant_unfulfilled_role,
    "history_out_of_date": plant_history_gap,
}


@pytest.mark.parametrize("kind", list(PLANTS))
def test_check_integrity_reports_planted_violation(db: Conn, kind: str) -> None:
    s = healthy(db)

    expected = PLANTS[kind](db, s)

    found = {tuple(r[:4]) for r in integrity(db)}
    assert found == expected
    violations = enrolldb.check_integrity(db)
    assert {
        (
            v.violation,
            v.program_enrollment_id,
            v.program_course_enrollment_id,
            v.course_enrollment_id,
        )
        for v in violations
    } == expected
    assert all(v.detail for v in violations)


def test_check_integrity_empty_after_every_api_call(db: Conn) -> None:
    s = healthy(db)
    bob = bob_id(db)
    enrolldb.link(db, s.program_a, [(s.key, "bob")])
    assert integrity(db) == []
    enrolldb.unlink_program_enrollment(db, s.pe_b)
    assert integrity(db) == []
    enrolldb.matriculate_learner(db, bob, s.org, s.key)
    assert pe(db, s.pe_b).user_id == bob
    assert integrity(db) == []
    assert enrolldb.retire_user(db, bob) is True
    assert integrity(db) == []
