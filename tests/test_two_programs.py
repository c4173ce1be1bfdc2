"""The defect enrolldb exists for (docs/reference.md, What it is, reference §2.9), made impossible.

Program A's program course enrollment is ``inactive``, program B's ``active``, same course,
same learner key. Whatever the path (bulk link or SSO matriculation), the order (A then B,
B then A) and which enrollment was created first, the learner ends with one active
'masters' course enrollment that B's row points at, A's row still ``inactive`` and pointing
at it too, no error, and ``check_integrity()`` empty.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import enrolldb
from builders import (
    TwoPrograms,
    add_course,
    add_course_enrollment,
    add_user,
    add_waiting,
    course_enrollment,
    course_enrollments,
    history,
    history_count,
    history_reasons,
    integrity,
    pce,
    pe,
    two_programs,
)
from pgtypes import Conn

COMPAT_QUERY = """
select distinct pe1.external_user_key
from program_enrollments_programcourseenrollment pce1
join program_enrollments_programenrollment pe1 on pe1.id=pce1.program_enrollment_id
join program_enrollments_programenrollment pe2 on pe1.external_user_key=pe2.external_user_key and pe1.program_uuid <> pe2.program_uuid
join program_enrollments_programcourseenrollment pce2 on pce2.program_enrollment_id=pe2.id
where pce1.course_key = pce2.course_key
"""  # noqa: E501  (verbatim from docs/reference.md, Schema)

NOW = datetime.now(timezone.utc)


def link_a(conn: Conn, s: TwoPrograms) -> None:
    result = enrolldb.link(conn, s.program_a, [(s.key, s.username)])
    assert result == [enrolldb.LinkResult(s.key, s.username, "linked", None)]


def link_b(conn: Conn, s: TwoPrograms) -> None:
    result = enrolldb.link(conn, s.program_b, [(s.key, s.username)])
    assert result == [enrolldb.LinkResult(s.key, s.username, "linked", None)]


def link_a_then_b(conn: Conn, s: TwoPrograms) -> None:
    link_a(conn, s)
    link_b(conn, s)


def link_b_then_a(conn: Conn, s: TwoPrograms) -> None:
    link_b(conn, s)
    link_a(conn, s)


def link_jsonb_b_then_a(conn: Conn, s: TwoPrograms) -> None:
    for program in (s.program_b, s.program_a):
        row = conn.execute(
            "SELECT enrolldb.link_program_enrollments(%s::uuid, %s::jsonb)",
            (program, f'{{"{s.key.lower()}": "{s.username}"}}'),
        ).fetchone()
        assert row is not None
        assert row[0] == {}


def link_both_in_one_transaction(conn: Conn, s: TwoPrograms) -> None:
    with conn.transaction():
        link_b(conn, s)
        link_a(conn, s)


def matriculate(conn: Conn, s: TwoPrograms) -> None:
    result = enrolldb.matriculate_learner(conn, s.user_id, s.org, s.key.lower())
    assert sorted(result, key=lambda r: r.program_enrollment_id) == sorted(
        [
            enrolldb.MatriculationResult(s.pe_a, s.program_a, None),
            enrolldb.MatriculationResult(s.pe_b, s.program_b, None),
        ],
        key=lambda r: r.program_enrollment_id,
    )
    # In id order, one row per enrollment attempted.
    assert [r.program_enrollment_id for r in result] == sorted([s.pe_a, s.pe_b])


def matriculate_after_link_a(conn: Conn, s: TwoPrograms) -> None:
    link_a(conn, s)
    result = enrolldb.matriculate_learner(conn, s.user_id, s.org, s.key)
    assert result == [enrolldb.MatriculationResult(s.pe_b, s.program_b, None)]


def matriculate_after_link_b(conn: Conn, s: TwoPrograms) -> None:
    link_b(conn, s)
    result = enrolldb.matriculate_learner(conn, s.user_id, s.org, s.key)
    assert result == [enrolldb.MatriculationResult(s.pe_a, s.program_a, None)]


PATHS: dict[str, Callable[[Conn, TwoPrograms], None]] = {
    "link A then B": link_a_then_b,
    "link B then A": link_b_then_a,
    "jsonb link B then A": link_jsonb_b_then_a,
    "link B and A in one transaction": link_both_in_one_transaction,
    "matriculate": matriculate,
    "link A, matriculate": matriculate_after_link_a,
    "link B, matriculate": matriculate_after_link_b,
}


def assert_learner_keeps_access(conn: Conn, s: TwoPrograms) -> int:
    """The expected end state; returns the course enrollment id."""
    ces = course_enrollments(conn, s.user_id)
    assert list(ces) == [s.course]
    ce = ces[s.course]
    assert (ce.is_active, ce.mode) == (True, "masters")
    row_a, row_b = pce(conn, s.pce_a), pce(conn, s.pce_b)
    assert (row_b.status, row_b.course_enrollment_id) == ("active", ce.id)
    assert (row_a.status, row_a.course_enrollment_id) == ("inactive", ce.id)
    pe_a, pe_b = pe(conn, s.pe_a), pe(conn, s.pe_b)
    assert (pe_a.user_id, pe_a.status) == (s.user_id, "canceled")
    assert (pe_b.user_id, pe_b.status) == (s.user_id, "enrolled")
    # Once active, the course enrollment was never deactivated on the way (the upstream
    # defect); before that it may have been inactive (A linked first, or an old enrollment).
    states = [h.row["is_active"] for h in history(conn, "courseenrollment", ce.id)]
    assert all(states[states.index(True) :])
    assert integrity(conn) == []
    assert enrolldb.check_integrity(conn) == []
    return ce.id


@pytest.mark.parametrize("a_first", [True, False], ids=["A created first", "B created first"])
@pytest.mark.parametrize("path", list(PATHS))
def test_two_programs_learner_keeps_access(db: Conn, a_first: bool, path: str) -> None:
    s = two_programs(db, a_first=a_first)

    PATHS[path](db, s)

    assert_learner_keeps_access(db, s)


@pytest.mark.parametrize("a_first", [True, False], ids=["A created first", "B created first"])
@pytest.mark.parametrize(
    "existing",
    [("audit", True), ("audit", False), ("honor", True), ("masters", False), ("verified", False)],
)
@pytest.mark.parametrize("path", ["link A then B", "link B then A", "matriculate"])
def test_two_programs_with_existing_course_enrollment(
    db: Conn, a_first: bool, existing: tuple[str, bool], path: str
) -> None:
    """The learner already had a course enrollment (e.g. audited the course before)."""
    s = two_programs(db, a_first=a_first)
    ce_id = add_course_enrollment(db, s.user_id, s.course, mode=existing[0], is_active=existing[1])

    PATHS[path](db, s)

    assert assert_learner_keeps_access(db, s) == ce_id


@pytest.mark.parametrize("a_first", [True, False], ids=["A created first", "B created first"])
def test_relinking_a_keeps_the_course_enrollment_b_uses(db: Conn, a_first: bool) -> None:
    s = two_programs(db, a_first=a_first)
    bob = add_user(db, "bob")
    link_b_then_a(db, s)
    ce_id = assert_learner_keeps_access(db, s)
    before = history_count(db)
    ce_hist = history(db, "courseenrollment", ce_id)

    assert enrolldb.link(db, s.program_a, [(s.key, "bob")]) == [
        enrolldb.LinkResult(s.key, "bob", "relinked", None)
    ]

    ce = course_enrollment(db, ce_id)
    assert (ce.is_active, ce.mode) == (True, "masters")  # B's active row still uses it
    assert history(db, "courseenrollment", ce_id) == ce_hist  # not touched at all
    assert (pce(db, s.pce_b).status, pce(db, s.pce_b).course_enrollment_id) == ("active", ce_id)
    assert pe(db, s.pe_b).user_id == s.user_id
    assert pe(db, s.pe_a).user_id == bob
    bob_ce = course_enrollments(db, bob)[s.course]
    assert (bob_ce.is_active, bob_ce.mode) == (False, "masters")  # A's row is inactive
    assert (pce(db, s.pce_a).status, pce(db, s.pce_a).course_enrollment_id) == (
        "inactive",
        bob_ce.id,
    )
    assert history_reasons(db, before) == {"link_program_enrollments"}
    assert integrity(db) == []


IN_A_MONTH = NOW + timedelta(days=30)
A_MONTH_AGO = NOW - timedelta(days=30)


@pytest.mark.parametrize(
    ("modes", "old_mode"),
    [
        pytest.param((), "audit", id="no modes"),
        pytest.param((("audit", None),), "audit", id="audit"),
        pytest.param((("audit", IN_A_MONTH), ("verified", None)), "audit", id="audit expiring"),
        pytest.param((("verified", None),), "masters", id="verified only"),
        pytest.param((("audit", A_MONTH_AGO), ("verified", None)), "masters", id="audit expired"),
        pytest.param((("masters", None), ("honor", None)), "masters", id="masters and honor"),
    ],
)
@pytest.mark.parametrize("a_first", [True, False], ids=["A created first", "B created first"])
def test_relinking_b_deactivates_the_course_enrollment(
    db: Conn, modes: tuple[tuple[str, datetime | None], ...], old_mode: str, a_first: bool
) -> None:
    s = two_programs(db, a_first=a_first, modes=modes)
    bob = add_user(db, "bob")
    matriculate(db, s)
    ce_id = assert_learner_keeps_access(db, s)

    assert enrolldb.link(db, s.program_b, [(s.key, "bob")]) == [
        enrolldb.LinkResult(s.key, "bob", "relinked", None)
    ]

    ce = course_enrollment(db, ce_id)
    assert (ce.user_id, ce.is_active, ce.mode) == (s.user_id, False, old_mode)
    # A's inactive row (still the learner's) keeps pointing at the deactivated enrollment.
    assert (pce(db, s.pce_a).status, pce(db, s.pce_a).course_enrollment_id) == ("inactive", ce_id)
    assert pe(db, s.pe_a).user_id == s.user_id
    bob_ce = course_enrollments(db, bob)[s.course]
    assert (bob_ce.is_active, bob_ce.mode) == (True, "masters")
    assert (pce(db, s.pce_b).status, pce(db, s.pce_b).course_enrollment_id) == (
        "active",
        bob_ce.id,
    )
    assert pe(db, s.pe_b).user_id == bob
    assert history(db, "courseenrollment", ce_id)[-1].history_change_reason == (
        "link_program_enrollments"
    )
    assert integrity(db) == []


def compat_keys(conn: Conn) -> list[Any]:
    with conn.transaction():
        conn.execute("SET LOCAL search_path = enrolldb, public")
        return [r[0] for r in conn.execute(COMPAT_QUERY).fetchall()]


@pytest.mark.parametrize("a_first", [True, False], ids=["A created first", "B created first"])
def test_compatibility_query_finds_the_learner(db: Conn, a_first: bool) -> None:
    s = two_programs(db, a_first=a_first)
    # Noise: a learner in both programs but in different courses, one in a single program.
    other = add_course(db, "course-v1:GTx+Other+2024")
    add_waiting(db, s.program_a, "GT-OTHER", [s.course])
    add_waiting(db, s.program_b, "GT-OTHER", [other])
    add_waiting(db, s.program_b, "GT-SINGLE", [s.course, other])

    assert compat_keys(db) == [s.key]

    link_b_then_a(db, s)
    assert compat_keys(db) == [s.key]


def test_compatibility_query_runs_with_session_search_path(db: Conn) -> None:
    s = two_programs(db)
    db.execute("SET search_path = enrolldb, public")
    assert [r[0] for r in db.execute(COMPAT_QUERY).fetchall()] == [s.key]
