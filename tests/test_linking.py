"""link_program_enrollments (docs/reference.md, link_program_enrollments), both SQL forms, and its
Python client (docs/reference.md, Python client).

Every test asserts the rows the call leaves behind, not only what it returns.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
import psycopg.errors
import pytest
from psycopg.types.json import Jsonb

import enrolldb
from builders import (
    add_course,
    add_course_access_role,
    add_course_enrollment,
    add_program,
    add_realized,
    add_role_assignment,
    add_user,
    add_waiting,
    assignments,
    course_enrollment,
    course_enrollments,
    history,
    history_count,
    history_reasons,
    integrity,
    pces,
    pe,
    pes,
    roles,
    state,
)
from pgtypes import Conn

C1 = "course-v1:GTx+C1+2024"
C2 = "course-v1:GTx+C2+2024"
MISSING = "course-v1:GTx+Nowhere+2024"
REASON = "link_program_enrollments"


@dataclass(frozen=True)
class World:
    program: UUID
    other: UUID
    alice: int
    bob: int
    carol: int


@pytest.fixture
def w(db: Conn) -> World:
    add_course(db, C1)
    add_course(db, C2)
    return World(
        program=add_program(db, title="P"),
        other=add_program(db, title="Q"),
        alice=add_user(db, "alice"),
        bob=add_user(db, "bob"),
        carol=add_user(db, "carol"),
    )


def link_rows(conn: Conn, program: UUID, pairs: list[tuple[str, str]]) -> list[tuple[Any, ...]]:
    """The array form in plain SQL: (external_user_key, username, result, error) rows."""
    return conn.execute(
        "SELECT external_user_key, username, result, error "
        "FROM enrolldb.link_program_enrollments(%s::uuid, %s::text[], %s::text[])",
        (program, [k for k, _ in pairs], [u for _, u in pairs]),
    ).fetchall()


def link_json(conn: Conn, program: UUID, obj: Any) -> Any:
    row = conn.execute(
        "SELECT enrolldb.link_program_enrollments(%s::uuid, %s::jsonb)", (program, Jsonb(obj))
    ).fetchone()
    assert row is not None
    return row[0]


def no_user_msg(username: str) -> str:
    return f"No user found with username {username}"


def no_pe_msg(program: UUID, key: str) -> str:
    return f"No program enrollment found for program uuid={program} and external student key={key}"


def already_msg(stored_key: str, username: str) -> str:
    return (
        f"Program enrollment with external_student_key={stored_key} is already linked to "
        f"target account username={username}"
    )


# --- success: rows written -------------------------------------------------------------------


def test_link_realizes_enrollment_and_writes_history(db: Conn, w: World) -> None:
    pe_id, rows = add_waiting(db, w.program, "K1", {C1: "active", C2: "inactive"})
    before = history_count(db)

    assert link_rows(db, w.program, [("K1", "alice")]) == [("K1", "alice", "linked", None)]

    got = pe(db, pe_id)
    assert (got.user_id, got.external_user_key, got.status) == (w.alice, "K1", "enrolled")
    ces = course_enrollments(db, w.alice)
    assert (ces[C1].is_active, ces[C1].mode) == (True, "masters")
    assert (ces[C2].is_active, ces[C2].mode) == (False, "masters")
    after = pces(db, pe_id)
    assert after[C1].course_enrollment_id == ces[C1].id
    assert after[C2].course_enrollment_id == ces[C2].id
    assert (after[C1].status, after[C2].status) == ("active", "inactive")

    pe_hist = history(db, "programenrollment", pe_id)
    assert [h.history_type for h in pe_hist] == ["+", "~"]
    assert pe_hist[-1].history_change_reason == REASON
    assert pe_hist[-1].row["user_id"] == w.alice
    for course in (C1, C2):
        last = history(db, "programcourseenrollment", rows[course])[-1]
        assert (last.history_type, last.history_change_reason) == ("~", REASON)
        assert last.row["course_enrollment_id"] == ces[course].id
        ce_hist = history(db, "courseenrollment", ces[course].id)
        assert [(h.history_type, h.history_change_reason) for h in ce_hist] == [("+", REASON)]
    assert history_reasons(db, before) == {REASON}
    assert integrity(db) == []


# (pce status, existing course enrollment (mode, is_active) or None, expected (mode, is_active))
CE_RULES = [
    ("active", None, ("masters", True)),
    ("active", ("audit", False), ("masters", True)),
    ("active", ("verified", False), ("masters", True)),
    ("active", ("masters", False), ("masters", True)),
    ("active", ("audit", True), ("masters", True)),
    ("active", ("honor", True), ("masters", True)),
    ("active", ("verified", True), ("verified", True)),
    ("active", ("professional", True), ("professional", True)),
    ("inactive", None, ("masters", False)),
    ("inactive", ("audit", True), ("audit", True)),
    ("inactive", ("verified", True), ("verified", True)),
    ("inactive", ("audit", False), ("audit", False)),
    ("inactive", ("honor", False), ("honor", False)),
]


@pytest.mark.parametrize(("status", "existing", "expected"), CE_RULES)
def test_course_enrollment_rules(
    db: Conn,
    w: World,
    status: str,
    existing: tuple[str, bool] | None,
    expected: tuple[str, bool],
) -> None:
    ce_id = None
    if existing is not None:
        ce_id = add_course_enrollment(db, w.alice, C1, mode=existing[0], is_active=existing[1])
    pe_id, _ = add_waiting(db, w.program, "K1", {C1: status})
    ce_hist_before = history(db, "courseenrollment", ce_id) if ce_id else []

    assert link_rows(db, w.program, [("K1", "alice")]) == [("K1", "alice", "linked", None)]

    ces = course_enrollments(db, w.alice)
    assert list(ces) == [C1]
    ce = ces[C1]
    assert (ce.mode, ce.is_active) == expected
    if ce_id is not None:
        assert ce.id == ce_id  # the learner's one row for the course, never a second one
    row = pces(db, pe_id)[C1]
    assert (row.course_enrollment_id, row.status) == (ce.id, status)
    if ce_id is not None and existing == expected:
        # Left as it is: not even a no-op update (no history row).
        assert history(db, "courseenrollment", ce_id) == ce_hist_before
    assert integrity(db) == []


# --- per-element rules, in order -------------------------------------------------------------


def test_rule1_invalid_key(db: Conn, w: World) -> None:
    long_ok = "L" * 255
    add_waiting(db, w.program, long_ok, [C1])
    before = state(db)
    bad = ["", "   ", "\u200b\u3000\t", "x" * 256, " " + "y" * 256 + " "]
    pairs = [(k, "alice") for k in bad]

    result = link_rows(db, w.program, pairs)

    # '' and '   ' compare equal, but rule 1 is checked before rule 2 (first match wins).
    assert result == [(k, "alice", "failed", f"Invalid external user key {k}") for k in bad]
    assert state(db) == before

    # 255 characters is fine, and surrounding whitespace is not counted.
    padded = "\u3000" + long_ok.lower() + " \n"
    assert link_rows(db, w.program, [(padded, "bob")]) == [(padded, "bob", "linked", None)]
    assert [p.user_id for p in pes(db, w.program)] == [w.bob]


def test_rule2_duplicates_fail_every_occurrence(db: Conn, w: World) -> None:
    dup_pe, _ = add_waiting(db, w.program, "K-DUP", [C1])
    nfc_pe, _ = add_waiting(db, w.program, "Jos\u00e9", [C1])
    ok_pe, _ = add_waiting(db, w.program, "K-OK", [C1])
    pairs = [
        ("K-DUP", "alice"),
        ("Jos\u00e9", "alice"),
        ("K-OK", "bob"),
        ("k-dup", "alice"),
        ("\u00a0K-DUP ", "carol"),
        ("jose\u0301", "carol"),  # NFD spelling, other case: the same stored key
        ("K-X", "nobody"),  # duplicate (rule 2) wins over the unknown user (rule 3)
        ("k-x", "nobody"),
    ]

    result = link_rows(db, w.program, pairs)

    expected: list[tuple[str, str, str, str | None]] = [
        (k, u, "failed", f"external user key {k} provided multiple times") for k, u in pairs
    ]
    expected[2] = ("K-OK", "bob", "linked", None)
    assert result == expected
    assert pe(db, dup_pe).user_id is None
    assert pe(db, nfc_pe).user_id is None
    assert pe(db, ok_pe).user_id == w.bob
    assert course_enrollments(db, w.alice) == {}
    assert course_enrollments(db, w.carol) == {}


def test_rule3_unknown_username_is_exact(db: Conn, w: World) -> None:
    pe_id, _ = add_waiting(db, w.program, "K1", [C1])
    before = state(db)
    pairs = [("K1", "Alice"), ("K-NONE", "nobody")]  # rule 3 is checked before rule 4

    result = link_rows(db, w.program, pairs)

    assert result == [(k, u, "failed", no_user_msg(u)) for k, u in pairs]
    assert state(db) == before
    assert pe(db, pe_id).user_id is None


def test_rule4_no_enrollment_in_this_program(db: Conn, w: World) -> None:
    other_pe, _ = add_waiting(db, w.other, "K-OTHER", [C1])
    add_waiting(db, w.program, "K1", [C1])
    before = state(db)
    pairs = [(" k-other\u00a0", "alice"), ("unknown", "bob")]

    result = link_rows(db, w.program, pairs)

    assert result == [(k, u, "failed", no_pe_msg(w.program, k)) for k, u in pairs]
    assert state(db) == before
    assert pe(db, other_pe).user_id is None


def test_rule5_already_linked_is_a_pure_no_op(db: Conn, w: World) -> None:
    pe_id, _ = add_waiting(db, w.program, "Stored-Key", [C1])
    assert link_rows(db, w.program, [("Stored-Key", "alice")])[0][2] == "linked"
    before = state(db)  # includes modified and every history id

    result = link_rows(db, w.program, [("stored-KEY", "alice")])

    assert result == [("stored-KEY", "alice", "failed", already_msg("Stored-Key", "alice"))]
    assert state(db) == before
    assert pe(db, pe_id).user_id == w.alice


def test_rule5_every_curriculum_must_be_linked(db: Conn, w: World) -> None:
    """A key with two curricula, one already linked to the user: the other is linked, the
    linked one is not written again."""
    cur1, cur2 = uuid.uuid4(), uuid.uuid4()
    linked_pe, _ = add_realized(db, w.program, "K1", w.alice, [C1], curriculum_uuid=cur1)
    waiting_pe, _ = add_waiting(db, w.program, "K1", [C2], curriculum_uuid=cur2)
    linked_hist = history(db, "programenrollment", linked_pe)

    assert link_rows(db, w.program, [("k1", "alice")]) == [("k1", "alice", "linked", None)]

    assert pe(db, waiting_pe).user_id == w.alice
    assert pe(db, linked_pe).user_id == w.alice
    assert history(db, "programenrollment", linked_pe) == linked_hist
    ces = course_enrollments(db, w.alice)
    assert pces(db, waiting_pe)[C2].course_enrollment_id == ces[C2].id
    assert (ces[C2].is_active, ces[C2].mode) == (True, "masters")
    assert integrity(db) == []


def test_rule6_links_every_curriculum(db: Conn, w: World) -> None:
    pe1, _ = add_waiting(db, w.program, "K1", [C1], curriculum_uuid=uuid.uuid4())
    pe2, _ = add_waiting(db, w.program, "K1", {C1: "inactive", C2: "active"})

    assert link_rows(db, w.program, [("K1", "alice")]) == [("K1", "alice", "linked", None)]

    assert pe(db, pe1).user_id == pe(db, pe2).user_id == w.alice
    ces = course_enrollments(db, w.alice)
    assert (ces[C1].is_active, ces[C1].mode) == (True, "masters")
    assert pces(db, pe1)[C1].course_enrollment_id == ces[C1].id
    assert pces(db, pe2)[C1].course_enrollment_id == ces[C1].id
    assert pces(db, pe2)[C1].status == "inactive"
    assert integrity(db) == []


@pytest.mark.parametrize(
    ("modes", "old_mode"),
    [((), "audit"), (("audit", "verified"), "audit"), (("verified",), "masters")],
)
def test_relink_takes_enrollment_from_other_user(
    db: Conn, modes: tuple[str, ...], old_mode: str
) -> None:
    add_course(db, C1, modes=modes)
    program = add_program(db)
    alice, bob = add_user(db, "alice"), add_user(db, "bob")
    pe_id, _ = add_waiting(db, program, "K1", [C1])
    assert link_rows(db, program, [("K1", "alice")])[0][2] == "linked"
    alice_ce = course_enrollments(db, alice)[C1]
    before = history_count(db)

    assert link_rows(db, program, [("k1", "bob")]) == [("k1", "bob", "relinked", None)]

    assert pe(db, pe_id).user_id == bob
    old = course_enrollment(db, alice_ce.id)
    assert (old.is_active, old.mode) == (False, old_mode)
    new = course_enrollments(db, bob)[C1]
    assert (new.is_active, new.mode) == (True, "masters")
    assert pces(db, pe_id)[C1].course_enrollment_id == new.id
    # The unlink inside the relink is part of link_program_enrollments.
    assert history_reasons(db, before) == {REASON}
    assert history(db, "courseenrollment", alice_ce.id)[-1].history_change_reason == REASON
    assert integrity(db) == []


# --- failures that appear while writing: the learner leaves no trace -------------------------


def test_conflict_error_leaves_no_trace(db: Conn, w: World) -> None:
    q_pe, _ = add_realized(db, w.other, "Q-KEY", w.alice, [C1])
    k1_pe, _ = add_waiting(db, w.program, "K1", [C2, C1])  # C2 alone would link fine
    k2_pe, _ = add_waiting(db, w.program, "K2", [C1])
    before = state(db)
    alice_ces = course_enrollments(db, w.alice)

    result = link_rows(db, w.program, [("K1", "alice"), ("K2", "bob")])

    assert result == [
        (
            "K1",
            "alice",
            "failed",
            f"ConflictError: alice already has an active program course enrollment for {C1} "
            f"in program uuid={w.other}",
        ),
        ("K2", "bob", "linked", None),
    ]
    after = state(db)
    assert learner_rows(after, k1_pe) == learner_rows(before, k1_pe)
    assert course_enrollments(db, w.alice) == alice_ces  # no C2 row created, C1 unchanged
    assert pces(db, q_pe)[C1].course_enrollment_id == alice_ces[C1].id
    assert history(db, "programenrollment", k1_pe)[-1].history_type == "+"
    assert pe(db, k2_pe).user_id == w.bob
    assert integrity(db) == []


def learner_rows(snapshot: dict[str, list[tuple[Any, ...]]], pe_id: int) -> list[tuple[Any, ...]]:
    """A program enrollment's row and its program course enrollments' rows (with modified)
    in a state() snapshot."""
    return [r for r in snapshot["programenrollment"] if r[0] == pe_id] + [
        r for r in snapshot["programcourseenrollment"] if r[2] == pe_id
    ]


def test_nonexistent_course_leaves_no_trace(db: Conn, w: World) -> None:
    bad_pe, _ = add_waiting(db, w.program, "K1", [C1, MISSING])
    ok_pe, _ = add_waiting(db, w.program, "K2", [C1])
    role_pce = pces(db, bad_pe)[C1].id
    add_role_assignment(db, role_pce)
    before = state(db)
    hist_before = {
        "pe": history(db, "programenrollment", bad_pe),
        "pce": [history(db, "programcourseenrollment", p.id) for p in pces(db, bad_pe).values()],
    }

    result = link_rows(db, w.program, [("K1", "alice"), ("K2", "bob")])

    assert result == [
        ("K1", "alice", "failed", f"NonExistentCourseError: {MISSING} does not exist"),
        ("K2", "bob", "linked", None),
    ]
    assert learner_rows(state(db), bad_pe) == learner_rows(before, bad_pe)
    assert course_enrollments(db, w.alice) == {}
    assert roles(db, w.alice) == []
    assert assignments(db, role_pce) == ["staff"]
    assert history(db, "programenrollment", bad_pe) == hist_before["pe"]
    assert [
        history(db, "programcourseenrollment", p.id) for p in pces(db, bad_pe).values()
    ] == hist_before["pce"]
    # The other learner of the call linked.
    assert pe(db, ok_pe).user_id == w.bob
    assert course_enrollments(db, w.bob)[C1].is_active


def test_integrity_error_user_already_in_program_curriculum(db: Conn, w: World) -> None:
    curriculum = uuid.uuid4()
    add_realized(db, w.program, "A-OLD", w.alice, [C1], curriculum_uuid=curriculum)
    new_pe, _ = add_waiting(db, w.program, "A-NEW", [C2], curriculum_uuid=curriculum)
    ok_pe, _ = add_waiting(db, w.program, "K2", [C2])
    alice_ces = course_enrollments(db, w.alice)
    new_hist = history(db, "programenrollment", new_pe)

    result = link_rows(db, w.program, [("A-NEW", "alice"), ("K2", "bob")])

    assert result[0][:3] == ("A-NEW", "alice", "failed")
    assert result[0][3].startswith("IntegrityError: ")
    assert result[1] == ("K2", "bob", "linked", None)
    assert pe(db, new_pe).user_id is None
    assert pces(db, new_pe)[C2].course_enrollment_id is None
    assert course_enrollments(db, w.alice) == alice_ces
    assert history(db, "programenrollment", new_pe) == new_hist
    assert pe(db, ok_pe).user_id == w.bob


def test_failure_does_not_depend_on_input_order(db: Conn, w: World) -> None:
    add_waiting(db, w.program, "K1", [C1, MISSING])
    add_waiting(db, w.program, "K2", [C1])
    forward = [("K1", "alice"), ("K2", "bob")]
    with db.transaction(force_rollback=True):
        first = link_rows(db, w.program, forward)
    second = link_rows(db, w.program, forward[::-1])
    assert second == first[::-1]


# --- roles -----------------------------------------------------------------------------------


def test_roles_fulfilled_only_for_active_rows_of_active_users(db: Conn) -> None:
    add_course(db, C1, org="GTx-Courses")
    add_course(db, C2, org="GTx-Courses")
    program = add_program(db)
    alice, bob = add_user(db, "alice"), add_user(db, "bob")
    dave = add_user(db, "dave", is_active=False)
    _, a_rows = add_waiting(db, program, "KA", {C1: "active", C2: "inactive"})
    _, b_rows = add_waiting(db, program, "KB", [C1])
    d_pe, d_rows = add_waiting(db, program, "KD", [C1])
    for pce_id in (*a_rows.values(), b_rows[C1], d_rows[C1]):
        add_role_assignment(db, pce_id)
    add_course_access_role(db, bob, C1, org="GTx-Courses")  # already granted: kept as it is

    result = link_rows(db, program, [("KA", "alice"), ("KB", "bob"), ("KD", "dave")])

    assert [r[2] for r in result] == ["linked"] * 3
    assert roles(db, alice) == [(alice, "GTx-Courses", C1, "staff")]
    assert assignments(db, a_rows[C1]) == []
    assert assignments(db, a_rows[C2]) == ["staff"]  # inactive row: stays pending
    assert roles(db, bob) == [(bob, "GTx-Courses", C1, "staff")]
    assert assignments(db, b_rows[C1]) == []
    assert roles(db, dave) == []  # inactive user: linked, role stays pending
    assert assignments(db, d_rows[C1]) == ["staff"]
    assert pe(db, d_pe).user_id == dave
    assert course_enrollments(db, dave)[C1].is_active
    assert integrity(db) == []


# --- key matching ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "given"),
    [
        ("ABC-1", "abc-1"),
        ("abc-1", "ABC-1"),
        ("Jos\u00e9-7", "JOSE\u0301-7"),  # NFD input, other case
        ("Jose\u0301-8".replace("e\u0301", "\u00e9"), "jos\u00e9-8"),
        ("\u00c9cole-9", "\u00e9COLE-9"),
        ("KW-1", "\u00a0\u2003kw-1\u200b\ufeff\n"),
        ("KW-2", "\t\u3000KW-2\u2029 "),
    ],
)
def test_keys_match_case_nfc_and_whitespace_insensitively(
    db: Conn, w: World, stored: str, given: str
) -> None:
    pe_id, _ = add_waiting(db, w.program, stored, [C1])

    assert link_rows(db, w.program, [(given, "alice")]) == [(given, "alice", "linked", None)]

    got = pe(db, pe_id)
    assert (got.user_id, got.external_user_key) == (w.alice, stored)  # stored spelling kept
    assert course_enrollments(db, w.alice)[C1].mode == "masters"
    # The jsonb form reports the already-linked error under the caller's spelling.
    assert link_json(db, w.program, {given: "alice"}) == {given: already_msg(stored, "alice")}


# --- forms: array and jsonb ------------------------------------------------------------------


def test_array_form_one_row_per_element_in_input_order(db: Conn, w: World) -> None:
    add_waiting(db, w.program, "K1", [C1])
    add_waiting(db, w.program, "K2", [C2])
    pairs = [(" k2 ", "bob"), ("K1", "alice"), ("nope", "carol"), ("K3", "nobody")]

    result = link_rows(db, w.program, pairs)

    assert result == [
        (" k2 ", "bob", "linked", None),
        ("K1", "alice", "linked", None),
        ("nope", "carol", "failed", no_pe_msg(w.program, "nope")),
        ("K3", "nobody", "failed", no_user_msg("nobody")),
    ]
    assert course_enrollments(db, w.bob)[C2].is_active
    assert course_enrollments(db, w.alice)[C1].is_active


def test_jsonb_form_returns_empty_object_on_success(db: Conn, w: World) -> None:
    pe1, _ = add_waiting(db, w.program, "K1", [C1])
    pe2, _ = add_waiting(db, w.program, "K2", [C1])

    assert link_json(db, w.program, {"K1": "alice", "k2": "bob"}) == {}

    assert (pe(db, pe1).user_id, pe(db, pe2).user_id) == (w.alice, w.bob)
    assert history(db, "programenrollment", pe1)[-1].history_change_reason == REASON


def test_jsonb_form_returns_failures_only(db: Conn, w: World) -> None:
    pe1, _ = add_waiting(db, w.program, "K1", [C1])
    add_waiting(db, w.program, "K2", [C1])

    result = link_json(db, w.program, {"K1": "alice", " K2": "nobody", "K9": "bob"})

    assert result == {" K2": no_user_msg("nobody"), "K9": no_pe_msg(w.program, "K9")}
    assert pe(db, pe1).user_id == w.alice


def test_empty_input_does_nothing(db: Conn, w: World) -> None:
    add_waiting(db, w.program, "K1", [C1])
    before = state(db)
    assert link_rows(db, w.program, []) == []
    assert link_json(db, w.program, {}) == {}
    assert enrolldb.link(db, w.program, []) == []
    assert enrolldb.link_program_enrollments(db, w.program, {}) == {}
    assert state(db) == before


# --- whole-call errors -----------------------------------------------------------------------

ARRAY_SQL = "SELECT * FROM enrolldb.link_program_enrollments(%s::uuid, %s::text[], %s::text[])"
JSON_SQL = "SELECT enrolldb.link_program_enrollments(%s::uuid, %s::jsonb)"
KNOWN = "known"  # replaced by the fixture's program uuid
UNKNOWN = "00000000-0000-0000-0000-000000000000"

WHOLE_CALL_ERRORS: list[tuple[str, str, tuple[Any, ...], type[psycopg.Error]]] = [
    ("null program", ARRAY_SQL, (None, ["K1"], ["alice"]), psycopg.errors.NullValueNotAllowed),
    ("null keys", ARRAY_SQL, (KNOWN, None, ["alice"]), psycopg.errors.NullValueNotAllowed),
    ("null usernames", ARRAY_SQL, (KNOWN, ["K1"], None), psycopg.errors.NullValueNotAllowed),
    (
        "null key inside",
        ARRAY_SQL,
        (KNOWN, ["K1", None], ["alice", "bob"]),
        psycopg.errors.NullValueNotAllowed,
    ),
    (
        "null username inside",
        ARRAY_SQL,
        (KNOWN, ["K1", "K2"], ["alice", None]),
        psycopg.errors.NullValueNotAllowed,
    ),
    (
        "lengths differ",
        ARRAY_SQL,
        (KNOWN, ["K1", "K2"], ["alice"]),
        psycopg.errors.InvalidParameterValue,
    ),
    (
        "two-dimensional",
        ARRAY_SQL,
        (KNOWN, [["K1"], ["K2"]], [["alice"], ["bob"]]),
        psycopg.errors.InvalidParameterValue,
    ),
    (
        "unknown program",
        ARRAY_SQL,
        (UNKNOWN, ["K1"], ["alice"]),
        psycopg.errors.InvalidParameterValue,
    ),
    ("json null program", JSON_SQL, (None, {"K1": "alice"}), psycopg.errors.NullValueNotAllowed),
    ("json sql null", JSON_SQL, (KNOWN, None), psycopg.errors.NullValueNotAllowed),
    (
        "json null username",
        JSON_SQL,
        (KNOWN, {"K1": "alice", "K2": None}),
        psycopg.errors.NullValueNotAllowed,
    ),
    ("json array", JSON_SQL, (KNOWN, [["K1", "alice"]]), psycopg.errors.InvalidParameterValue),
    ("json string", JSON_SQL, (KNOWN, "K1"), psycopg.errors.InvalidParameterValue),
    ("json json-null", JSON_SQL, (KNOWN, "null"), psycopg.errors.InvalidParameterValue),
    (
        "json number username",
        JSON_SQL,
        (KNOWN, {"K1": "alice", "K2": 7}),
        psycopg.errors.InvalidParameterValue,
    ),
    (
        "json unknown program",
        JSON_SQL,
        (UNKNOWN, {"K1": "alice"}),
        psycopg.errors.InvalidParameterValue,
    ),
]


@pytest.mark.parametrize(
    ("sql", "args", "error"),
    [pytest.param(s, a, e, id=name) for name, s, a, e in WHOLE_CALL_ERRORS],
)
def test_whole_call_errors_raw_sql(
    db: Conn, w: World, sql: str, args: tuple[Any, ...], error: type[psycopg.Error]
) -> None:
    add_waiting(db, w.program, "K1", [C1])
    add_waiting(db, w.program, "K2", [C1])
    before = state(db)
    params: list[Any] = [w.program if a == KNOWN else a for a in args]
    if sql == JSON_SQL:
        if args[1] == "null":
            params[1] = Jsonb(None)
        elif params[1] is not None:
            params[1] = Jsonb(params[1])

    with pytest.raises(error) as info:
        db.execute(sql, params)

    assert info.value.sqlstate == (
        "22004" if error is psycopg.errors.NullValueNotAllowed else "22023"
    )
    assert state(db) == before


def test_whole_call_errors_client(db: Conn, w: World) -> None:
    pe_id, _ = add_waiting(db, w.program, "K1", [C1])
    before = state(db)
    unknown = UUID(UNKNOWN)

    with pytest.raises(enrolldb.InvalidArgumentError) as invalid:
        enrolldb.link(db, unknown, [("K1", "alice")])
    assert invalid.value.sqlstate == "22023"
    assert isinstance(invalid.value.__cause__, psycopg.errors.InvalidParameterValue)

    with pytest.raises(enrolldb.InvalidArgumentError):
        enrolldb.link_program_enrollments(db, unknown, {"K1": "alice"})

    with pytest.raises(enrolldb.NullArgumentError) as null:
        enrolldb.link(db, w.program, [("K1", "alice"), (None, "bob")])  # type: ignore[list-item]
    assert null.value.sqlstate == "22004"
    assert isinstance(null.value.__cause__, psycopg.errors.NullValueNotAllowed)

    with pytest.raises(enrolldb.NullArgumentError):
        enrolldb.link(db, w.program, [("K1", None)])  # type: ignore[list-item]

    assert state(db) == before
    assert pe(db, pe_id).user_id is None


# --- the Python client -----------------------------------------------------------------------


@pytest.mark.parametrize("mapping", [{None: "alice"}, {"K1": "alice", "K2": None}])
def test_client_value_error_on_none(db: Conn, w: World, mapping: dict[Any, Any]) -> None:
    add_waiting(db, w.program, "K1", [C1])
    before = state(db)
    with pytest.raises(ValueError):
        enrolldb.link_program_enrollments(db, w.program, mapping)
    assert state(db) == before


def test_client_returns_errors_and_logs_warnings(
    db: Conn, w: World, caplog: pytest.LogCaptureFixture
) -> None:
    pe1, _ = add_waiting(db, w.program, "K1", [C1])
    caplog.set_level(logging.WARNING)

    errors = enrolldb.link_program_enrollments(
        db, str(w.program), {"K1": "alice", "k9": "bob", "K2": "nobody"}
    )

    assert errors == {"k9": no_pe_msg(w.program, "k9"), "K2": no_user_msg("nobody")}
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sorted(warned) == sorted(errors.values())
    assert pe(db, pe1).user_id == w.alice


def test_client_link_results(db: Conn, w: World) -> None:
    add_waiting(db, w.program, "K1", [C1])
    add_realized(db, w.program, "K2", w.carol, [C2])

    results = enrolldb.link(db, w.program, [("K1", "alice"), ("K2", "bob"), ("K3", "bob")])

    assert results == [
        enrolldb.LinkResult("K1", "alice", "linked", None),
        enrolldb.LinkResult("K2", "bob", "relinked", None),
        enrolldb.LinkResult("K3", "bob", "failed", no_pe_msg(w.program, "K3")),
    ]
    assert course_enrollments(db, w.bob)[C2].is_active
    assert not course_enrollments(db, w.carol)[C2].is_active


def test_client_joins_callers_transaction(db: Conn, w: World, connect: Any) -> None:
    pe_id, _ = add_waiting(db, w.program, "K1", [C1])
    before = state(db)
    tx: Conn = connect(autocommit=False)

    assert enrolldb.link_program_enrollments(tx, w.program, {"K1": "alice"}) == {}
    # Visible inside the caller's transaction, not outside it: the client did not commit.
    assert pe(tx, pe_id).user_id == w.alice
    assert pe(db, pe_id).user_id is None
    tx.rollback()

    assert state(db) == before
    assert course_enrollments(db, w.alice) == {}

    assert enrolldb.link(tx, w.program, [("K1", "alice")])[0].result == "linked"
    tx.commit()
    assert pe(db, pe_id).user_id == w.alice


def test_client_failure_keeps_callers_transaction_usable(db: Conn, w: World, connect: Any) -> None:
    pe_id, _ = add_waiting(db, w.program, "K1", [C1])
    tx: Conn = connect(autocommit=False)
    assert enrolldb.link(tx, w.program, [("K1", "alice")])[0].result == "linked"
    with pytest.raises(enrolldb.InvalidArgumentError):
        enrolldb.link(tx, UUID(UNKNOWN), [("K1", "bob")])
    tx.commit()  # the earlier link of the same transaction survives the failed call
    assert pe(db, pe_id).user_id == w.alice


def test_chunked_link_equals_one_call(db: Conn, w: World, connect: Any) -> None:
    users = ["alice", "bob", "carol"] + [f"u{i}" for i in range(6)]
    for name in users[3:]:
        add_user(db, name)
    for i in range(8):
        add_waiting(db, w.program, f"K{i}", [C1] if i % 2 else {C1: "inactive", C2: "active"})
    pairs = [
        ("K0", "alice"),
        ("K1", "bob"),
        ("K2", "carol"),
        ("K3", "u0"),
        ("K4", "nobody"),
        ("K5", "u1"),
        ("K6", "u2"),
        (" k0", "u3"),  # duplicate of the first pair, far apart in the input
        ("K7", "u4"),
        ("K99", "u5"),
    ]
    tx: Conn = connect(autocommit=False)

    chunked = enrolldb.link(tx, w.program, pairs, chunk_size=2)
    chunked_state = semantic_state(tx)
    tx.rollback()
    single = enrolldb.link(tx, w.program, pairs)
    single_state = semantic_state(tx)
    tx.commit()

    assert chunked == single
    assert chunked_state == single_state
    assert [r.external_user_key for r in single] == [k for k, _ in pairs]
    assert single[0].error == "external user key K0 provided multiple times"
    assert single[7].error == "external user key  k0 provided multiple times"
    assert [r.result for r in single] == [
        "failed", "linked", "linked", "linked", "failed", "linked", "linked", "failed",
        "linked", "failed",
    ]  # fmt: skip
    assert integrity(db) == []


def semantic_state(conn: Conn) -> list[tuple[Any, ...]]:
    """Who holds which program course enrollment and course enrollment, ids left out
    (identity values are not rolled back)."""
    return conn.execute(
        "SELECT pe.external_user_key, pce.course_key, pce.status, u.username, ce.is_active, "
        "ce.mode "
        "FROM enrolldb.program_enrollments_programcourseenrollment pce "
        "JOIN enrolldb.program_enrollments_programenrollment pe "
        "ON pe.id = pce.program_enrollment_id "
        "LEFT JOIN enrolldb.auth_user u ON u.id = pe.user_id "
        "LEFT JOIN enrolldb.student_courseenrollment ce ON ce.id = pce.course_enrollment_id "
        "ORDER BY 1, 2"
    ).fetchall()


def test_failing_relink_leaves_old_user_linked(db: Conn, w: World) -> None:
    pe_id, _ = add_waiting(db, w.program, "K1", [C1])
    assert link_rows(db, w.program, [("K1", "alice")])[0][2] == "linked"
    add_realized(db, w.other, "BOB-Q", w.bob, [C1])  # bob's C1 is taken by program Q
    before = state(db)

    result = link_rows(db, w.program, [("K1", "bob")])

    assert result == [
        (
            "K1",
            "bob",
            "failed",
            f"ConflictError: bob already has an active program course enrollment for {C1} "
            f"in program uuid={w.other}",
        )
    ]
    assert state(db) == before  # alice keeps the enrollment and her access
    assert pe(db, pe_id).user_id == w.alice
    assert course_enrollments(db, w.alice)[C1].is_active


def test_swap_two_learners_in_one_call(db: Conn, w: World) -> None:
    curriculum = uuid.uuid4()
    pe1, _ = add_waiting(db, w.program, "K1", [C1], curriculum_uuid=curriculum)
    pe2, _ = add_waiting(db, w.program, "K2", [C1], curriculum_uuid=curriculum)
    assert [r[2] for r in link_rows(db, w.program, [("K1", "alice"), ("K2", "bob")])] == [
        "linked",
        "linked",
    ]
    alice_ce = course_enrollments(db, w.alice)[C1].id
    bob_ce = course_enrollments(db, w.bob)[C1].id

    result = link_rows(db, w.program, [("K1", "bob"), ("K2", "alice")])

    assert result == [("K1", "bob", "relinked", None), ("K2", "alice", "relinked", None)]
    assert (pe(db, pe1).user_id, pe(db, pe2).user_id) == (w.bob, w.alice)
    assert pces(db, pe1)[C1].course_enrollment_id == bob_ce
    assert pces(db, pe2)[C1].course_enrollment_id == alice_ce
    for ce_id in (alice_ce, bob_ce):
        ce = course_enrollment(db, ce_id)
        assert (ce.is_active, ce.mode) == (True, "masters")
    assert integrity(db) == []


def test_jsonb_keys_differing_by_case_are_duplicates(db: Conn, w: World) -> None:
    pe_id, _ = add_waiting(db, w.program, "K1", [C1])
    before = state(db)

    result = link_json(db, w.program, {"K1": "alice", "k1": "bob"})

    assert result == {
        "K1": "external user key K1 provided multiple times",
        "k1": "external user key k1 provided multiple times",
    }
    assert state(db) == before
    assert pe(db, pe_id).user_id is None


def test_two_keys_to_one_user_in_one_call_both_fail(db: Conn, w: World) -> None:
    """Neither wins by its position in the input (docs/reference.md, link_program_enrollments:
    success never depends on
    input order)."""
    curriculum = uuid.uuid4()
    add_waiting(db, w.program, "K1", [C1])
    add_waiting(db, w.program, "K2", [C1])
    add_waiting(db, w.program, "K3", [C2], curriculum_uuid=curriculum)
    add_waiting(db, w.program, "K4", [C2], curriculum_uuid=curriculum)
    before = state(db)
    conflict = (
        f"ConflictError: alice already has an active program course enrollment for {C1} "
        f"in program uuid={w.program}"
    )

    result = link_rows(db, w.program, [("K1", "alice"), ("K2", "alice")])
    assert result == [("K1", "alice", "failed", conflict), ("K2", "alice", "failed", conflict)]

    result = link_rows(db, w.program, [("K3", "bob"), ("K4", "bob")])
    assert [r[2] for r in result] == ["failed", "failed"]
    assert all(r[3].startswith("IntegrityError: ") for r in result)
    assert state(db) == before


def test_client_none_program_is_a_value_error(db: Conn, w: World) -> None:
    """A None program uuid is a whole-call NULL (docs/reference.md, link_program_enrollments:
    22004), not a uuid parse error."""
    add_waiting(db, w.program, "K1", [C1])
    before = state(db)
    with pytest.raises(ValueError):
        enrolldb.link(db, None, [("K1", "alice")])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        enrolldb.link_program_enrollments(db, None, {"K1": "alice"})  # type: ignore[arg-type]
    assert state(db) == before
