"""write_program_enrollments and write_program_course_enrollments (docs/reference.md,
write_program_enrollments, write_program_course_enrollments).

Every test asserts the resulting rows, not only the returned outcomes: the outcomes are what
the registrar sees, the rows are what the learner gets.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from builders import (
    CURRICULUM_A,
    CURRICULUM_A2,
    CURRICULUM_B,
    OTHER_ORG_PROGRAM,
    PROGRAM_A,
    PROGRAM_B,
    add_identity,
    add_user,
    course_rows,
    integrity,
    program_enrollments,
)
from builders import REGISTRAR_COURSE as COURSE
from builders import REGISTRAR_COURSE_2 as COURSE_2
from builders import REGISTRAR_ORG as ORG
from builders import enroll_in_course as enroll_course
from builders import enroll_in_program as enroll
from builders import history_changes as history_reasons
from builders import user_course_enrollment as course_enrollment
from enrolldb.errors import InvalidArgumentError, NullArgumentError
from enrolldb.registrar import (
    PROGRAM_COURSE_ENROLLMENT_STATUSES,
    PROGRAM_ENROLLMENT_STATUSES,
    ProgramCourseEnrollmentRequest,
    ProgramEnrollmentRequest,
    WriteResult,
    write_program_course_enrollment_rows,
    write_program_course_enrollments,
    write_program_enrollment_rows,
    write_program_enrollments,
)
from pgtypes import Conn

PE_HISTORY = "program_enrollments_historicalprogramenrollment"
PCE_HISTORY = "program_enrollments_historicalprogramcourseenrollment"
CE_HISTORY = "student_courseenrollment_history"


# write_program_enrollments -------------------------------------------------------------------


def test_create_outcomes_and_rows(cat: Conn) -> None:
    bob = add_user(cat, "bob")
    add_identity(cat, ORG, "Bob-Key", bob)
    result = write_program_enrollments(
        cat,
        PROGRAM_A,
        [
            {
                "external_user_key": " Ann ",
                "status": "enrolled",
                "curriculum_uuid": str(CURRICULUM_A),
            },
            {
                "external_user_key": "ANN",
                "status": "canceled",
                "curriculum_uuid": str(CURRICULUM_A),
            },
            {
                "external_user_key": "bob-KEY",
                "status": "pending",
                "curriculum_uuid": str(CURRICULUM_A),
            },
            {
                "external_user_key": "carl",
                "status": "withdrawn",
                "curriculum_uuid": str(CURRICULUM_A),
            },
            {
                "external_user_key": "   ",
                "status": "enrolled",
                "curriculum_uuid": str(CURRICULUM_A),
            },
            {"external_user_key": "x" * 256, "status": "enrolled"},
            {"external_user_key": "dora", "status": "enrolled"},
            {"external_user_key": "eve", "status": "enrolled", "curriculum_uuid": "not-a-uuid"},
        ],
        create=True,
        update=False,
    )
    assert result == {
        " Ann ": "enrolled",
        "ANN": "duplicated",
        "bob-KEY": "pending",
        "carl": "invalid-status",
        "   ": "invalid-key",
        "x" * 256: "invalid-key",
        "dora": "invalid-curriculum",
        "eve": "invalid-curriculum",
    }
    # Stored canonical (trimmed), realized at once when the organization knows the key.
    assert program_enrollments(cat, PROGRAM_A) == [
        ("Ann", None, CURRICULUM_A, "enrolled"),
        ("bob-KEY", bob, CURRICULUM_A, "pending"),
    ]
    assert history_reasons(cat, PE_HISTORY) == [("+", "write_program_enrollments")] * 2


def test_update_conflict_and_not_in_program(cat: Conn) -> None:
    enroll(cat, PROGRAM_A, ("ann", "enrolled"), ("bea", "enrolled"))
    only_update = write_program_enrollments(
        cat,
        PROGRAM_A,
        [
            ProgramEnrollmentRequest("ANN", "suspended"),
            ProgramEnrollmentRequest("bea", "enrolled"),
            ProgramEnrollmentRequest("new", "enrolled", CURRICULUM_A),
        ],
        create=False,
        update=True,
    )
    assert only_update == {"ANN": "suspended", "bea": "enrolled", "new": "not-in-program"}
    only_create = write_program_enrollments(
        cat,
        PROGRAM_A,
        [ProgramEnrollmentRequest("Ann", "ended", CURRICULUM_A2)],
        create=True,
        update=False,
    )
    assert only_create == {"Ann": "conflict"}
    assert program_enrollments(cat, PROGRAM_A) == [
        ("ann", None, CURRICULUM_A, "suspended"),
        ("bea", None, CURRICULUM_A, "enrolled"),
    ]
    # Two creations, one real change; the unchanged status wrote no history row.
    assert history_reasons(cat, PE_HISTORY) == [
        ("+", "write_program_enrollments"),
        ("+", "write_program_enrollments"),
        ("~", "write_program_enrollments"),
    ]


def test_realized_at_once_unless_the_user_already_has_the_curriculum(cat: Conn) -> None:
    ann = add_user(cat, "ann")
    add_identity(cat, ORG, "ann-1", ann)
    add_identity(cat, ORG, "ann-2", ann)
    add_identity(cat, "other", "ann-1", ann)
    # Two keys of one user in one curriculum: neither may take the user, both wait.
    assert enroll(cat, PROGRAM_A, ("ann-1", "enrolled"), ("ann-2", "enrolled")) == {
        "ann-1": "enrolled",
        "ann-2": "enrolled",
    }
    assert enroll(cat, PROGRAM_B, ("ANN-1", "enrolled"), curriculum=CURRICULUM_B) == {
        "ANN-1": "enrolled"
    }
    # The identity of another organization does not realize this one's key.
    assert enroll(cat, OTHER_ORG_PROGRAM, ("ann-2", "enrolled")) == {"ann-2": "enrolled"}
    assert program_enrollments(cat, PROGRAM_A) == [
        ("ann-1", None, CURRICULUM_A, "enrolled"),
        ("ann-2", None, CURRICULUM_A, "enrolled"),
    ]
    assert program_enrollments(cat, PROGRAM_B) == [("ANN-1", ann, CURRICULUM_B, "enrolled")]
    assert program_enrollments(cat, OTHER_ORG_PROGRAM) == [
        ("ann-2", None, CURRICULUM_A, "enrolled")
    ]
    assert integrity(cat) == []


def test_empty_requests_do_nothing(cat: Conn) -> None:
    assert write_program_enrollments(cat, PROGRAM_A, [], create=True, update=True) == {}
    assert (
        write_program_course_enrollments(cat, PROGRAM_A, COURSE, [], create=True, update=True) == {}
    )
    assert program_enrollments(cat, PROGRAM_A) == []


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("SELECT enrolldb.write_program_enrollments(NULL, '[]', true, true)", NullArgumentError),
        (
            'SELECT enrolldb.write_program_enrollments(%(a)s, \'[{"external_user_key": null,'
            ' "status": "enrolled"}]\', true, true)',
            NullArgumentError,
        ),
        (
            "SELECT enrolldb.write_program_enrollments(%(a)s, '[]', false, false)",
            InvalidArgumentError,
        ),
        (
            "SELECT enrolldb.write_program_enrollments(%(a)s, '{}', true, true)",
            InvalidArgumentError,
        ),
        (
            "SELECT enrolldb.write_program_enrollments(%(a)s, '[1]', true, true)",
            InvalidArgumentError,
        ),
        (
            'SELECT enrolldb.write_program_enrollments(%(a)s, \'[{"status": "enrolled"}]\', true,'
            " true)",
            InvalidArgumentError,
        ),
        (
            'SELECT enrolldb.write_program_enrollments(%(a)s, \'[{"external_user_key": "k",'
            ' "status": 3}]\', true, true)',
            InvalidArgumentError,
        ),
        (
            "SELECT enrolldb.write_program_enrollments('00000000-0000-0000-0000-000000000000',"
            " '[]', true, true)",
            InvalidArgumentError,
        ),
        (
            "SELECT enrolldb.write_program_course_enrollments(%(a)s, 'course-v1:no+such+run',"
            " '[]', true, true)",
            InvalidArgumentError,
        ),
        (
            "SELECT enrolldb.write_program_course_enrollments(%(a)s, %(c)s,"
            ' \'[{"external_user_key": "k", "status": "active", "course_staff": "yes"}]\','
            " true, true)",
            InvalidArgumentError,
        ),
        (
            "SELECT enrolldb.write_program_course_enrollments(%(a)s, NULL, '[]', true, true)",
            NullArgumentError,
        ),
    ],
)
def test_whole_call_errors(cat: Conn, sql: str, error: type[Exception]) -> None:
    from enrolldb.calls import run_call

    def call(cur: psycopg.Cursor[Any]) -> None:
        cur.execute(sql, {"a": PROGRAM_A, "c": COURSE})

    with pytest.raises(error):
        run_call(cat, call)
    assert program_enrollments(cat, PROGRAM_A) == []


# write_program_course_enrollments ------------------------------------------------------------


def test_course_outcomes(cat: Conn) -> None:
    enroll(cat, PROGRAM_A, ("Ann", "enrolled"), ("bea", "enrolled"), ("cid", "enrolled"))
    assert enroll_course(cat, PROGRAM_A, COURSE, ("bea", "active"), create=True, update=False) == {
        "bea": "active"
    }
    result = write_program_course_enrollments(
        cat,
        PROGRAM_A,
        COURSE,
        [
            ProgramCourseEnrollmentRequest("ANN", "inactive"),
            ProgramCourseEnrollmentRequest("ann ", "active"),
            ProgramCourseEnrollmentRequest("BEA", "inactive"),
            ProgramCourseEnrollmentRequest("cid", "enrolled"),
            ProgramCourseEnrollmentRequest("nobody", "active"),
            ProgramCourseEnrollmentRequest("", "active"),
        ],
        create=True,
        update=False,
    )
    assert result == {
        "ANN": "inactive",
        "ann ": "duplicated",
        "BEA": "conflict",
        "cid": "invalid-status",
        "nobody": "not-in-program",
        "": "invalid-key",
    }
    assert enroll_course(cat, PROGRAM_A, COURSE, ("cid", "active"), create=False) == {
        "cid": "not-found"
    }
    assert course_rows(cat, PROGRAM_A, COURSE) == [
        ("Ann", "inactive", None),
        ("bea", "active", None),
    ]
    assert history_reasons(cat, PCE_HISTORY) == [("+", "write_program_course_enrollments")] * 2


def test_one_active_rule_for_waiting_learners(cat: Conn) -> None:
    enroll(cat, PROGRAM_A, ("Ann", "enrolled"))
    enroll(cat, PROGRAM_B, ("aNN", "enrolled"), curriculum=CURRICULUM_B)
    enroll(cat, OTHER_ORG_PROGRAM, ("ann", "enrolled"))
    assert enroll_course(cat, PROGRAM_A, COURSE, ("ann", "active")) == {"ann": "active"}
    # Same organization, same key (any case), A's row active: B's activation is a conflict,
    # also when B's row already exists as inactive; inactive is always allowed.
    assert enroll_course(cat, PROGRAM_B, COURSE, ("ANN", "active")) == {"ANN": "conflict"}
    assert enroll_course(cat, PROGRAM_B, COURSE, ("ANN", "inactive")) == {"ANN": "inactive"}
    assert enroll_course(cat, PROGRAM_B, COURSE, ("ann", "active")) == {"ann": "conflict"}
    # Another course, or another organization's learner with the same key: no conflict.
    assert enroll_course(cat, PROGRAM_B, COURSE_2, ("ann", "active")) == {"ann": "active"}
    assert enroll_course(cat, OTHER_ORG_PROGRAM, COURSE, ("ann", "active")) == {"ann": "active"}
    assert course_rows(cat, PROGRAM_A, COURSE) == [("Ann", "active", None)]
    assert course_rows(cat, PROGRAM_B, COURSE) == [("aNN", "inactive", None)]
    assert course_rows(cat, PROGRAM_B, COURSE_2) == [("aNN", "active", None)]
    assert course_rows(cat, OTHER_ORG_PROGRAM, COURSE) == [("ann", "active", None)]
    assert integrity(cat) == []


def test_realized_course_enrollment_follows_status(cat: Conn) -> None:
    ann = add_user(cat, "ann")
    add_identity(cat, ORG, "ann", ann)
    enroll(cat, PROGRAM_A, ("ann", "enrolled"))
    assert enroll_course(cat, PROGRAM_A, COURSE, ("ANN", "active")) == {"ANN": "active"}
    ce = course_enrollment(cat, ann, COURSE)
    assert ce is not None and ce[1:] == (True, "masters")
    assert course_rows(cat, PROGRAM_A, COURSE) == [("ann", "active", ce[0])]

    assert enroll_course(cat, PROGRAM_A, COURSE, ("ann", "inactive")) == {"ann": "inactive"}
    assert course_enrollment(cat, ann, COURSE) == (ce[0], False, "masters")
    assert course_rows(cat, PROGRAM_A, COURSE) == [("ann", "inactive", ce[0])]

    # An inactive row of a learner without a course enrollment gets an inactive masters one.
    assert enroll_course(cat, PROGRAM_A, COURSE_2, ("ann", "inactive")) == {"ann": "inactive"}
    ce2 = course_enrollment(cat, ann, COURSE_2)
    assert ce2 is not None and ce2[1:] == (False, "masters")

    # Reactivation converts an active audit enrollment, and revives the inactive one.
    cat.execute(
        "UPDATE enrolldb.student_courseenrollment SET is_active = true, mode = 'audit'"
        " WHERE id = %s",
        (ce2[0],),
    )
    assert enroll_course(cat, PROGRAM_A, COURSE_2, ("ann", "active")) == {"ann": "active"}
    assert enroll_course(cat, PROGRAM_A, COURSE, ("ann", "active")) == {"ann": "active"}
    assert course_enrollment(cat, ann, COURSE) == (ce[0], True, "masters")
    assert course_enrollment(cat, ann, COURSE_2) == (ce2[0], True, "masters")
    reasons = {r for _, r in history_reasons(cat, CE_HISTORY)}
    assert reasons == {"write_program_course_enrollments", None}  # None: the audit UPDATE above
    assert integrity(cat) == []


def test_realized_user_conflict_and_in_call_conflict(cat: Conn) -> None:
    ann = add_user(cat, "ann")
    add_identity(cat, ORG, "ann-a", ann)
    add_identity(cat, ORG, "ann-b", ann)
    enroll(cat, PROGRAM_A, ("ann-a", "enrolled"))
    enroll(cat, PROGRAM_A, ("ann-b", "enrolled"), curriculum=CURRICULUM_A2)
    enroll(cat, PROGRAM_B, ("ann-b", "enrolled"), curriculum=CURRICULUM_B)
    # Two keys of one user in one call, both asking for active: neither wins by position, and
    # the shared course enrollment never raises the active-course-enrollment index.
    assert enroll_course(cat, PROGRAM_A, COURSE, ("ann-a", "active"), ("ann-b", "active")) == {
        "ann-a": "conflict",
        "ann-b": "conflict",
    }
    assert enroll_course(cat, PROGRAM_A, COURSE, ("ann-a", "active"), ("ann-b", "inactive")) == {
        "ann-a": "active",
        "ann-b": "inactive",
    }
    # Program B's enrollment is the same user under another key: found through the user.
    assert enroll_course(cat, PROGRAM_B, COURSE, ("ann-b", "active")) == {"ann-b": "conflict"}
    ce = course_enrollment(cat, ann, COURSE)
    assert ce is not None and ce[1:] == (True, "masters")
    assert course_rows(cat, PROGRAM_A, COURSE) == [
        ("ann-a", "active", ce[0]),
        ("ann-b", "inactive", ce[0]),
    ]
    assert course_rows(cat, PROGRAM_B, COURSE) == []
    assert integrity(cat) == []


def test_staff_for_waiting_and_realized_learners(cat: Conn) -> None:
    ann = add_user(cat, "ann")
    add_identity(cat, ORG, "ann", ann)
    enroll(cat, PROGRAM_A, ("ann", "enrolled"), ("Wes", "enrolled"))

    def staff(key: str, value: bool | None) -> dict[str, str]:
        return write_program_course_enrollments(
            cat,
            PROGRAM_A,
            COURSE,
            [{"external_user_key": key, "status": "active", "course_staff": value}],
            create=True,
            update=True,
        )

    def roles() -> list[tuple[Any, ...]]:
        return cat.execute(
            "SELECT user_id, org, course_id, role FROM enrolldb.student_courseaccessrole"
        ).fetchall()

    def pending() -> list[tuple[Any, ...]]:
        return cat.execute(
            "SELECT pe.external_user_key, a.role"
            " FROM enrolldb.program_enrollments_courseaccessroleassignment AS a"
            " JOIN enrolldb.program_enrollments_programcourseenrollment AS pce"
            "   ON pce.id = a.enrollment_id"
            " JOIN enrolldb.program_enrollments_programenrollment AS pe"
            "   ON pe.id = pce.program_enrollment_id"
        ).fetchall()

    assert staff("ANN", True) == {"ANN": "active"}
    assert staff("wes", True) == {"wes": "active"}
    assert roles() == [(ann, ORG, COURSE, "staff")]
    assert pending() == [("Wes", "staff")]
    assert staff("ann", None) == {"ann": "active"}
    assert staff("WES", None) == {"WES": "active"}
    assert roles() == [(ann, ORG, COURSE, "staff")]
    assert pending() == [("Wes", "staff")]
    assert staff("ann", False) == {"ann": "active"}
    assert staff("wes", False) == {"wes": "active"}
    assert roles() == []
    assert pending() == []
    # Pending again, then fulfilled when the waiting learner signs in.
    assert staff("wes", True) == {"wes": "active"}
    wes = add_user(cat, "wes")
    errors = cat.execute(
        "SELECT error FROM enrolldb.matriculate_learner(%s, %s, 'WES')", (wes, ORG)
    ).fetchall()
    assert errors == [(None,)]
    assert roles() == [(wes, ORG, COURSE, "staff")]
    assert pending() == []
    assert integrity(cat) == []


# The transfer from program A to program B ----------------------------------------------------


def transfer(conn: Conn, key_a: str, key_b: str) -> None:
    """Cancel A, deactivate A's course row, enroll into B, activate B's course row."""
    assert enroll(conn, PROGRAM_A, (key_a, "canceled")) == {key_a: "canceled"}
    assert enroll_course(conn, PROGRAM_A, COURSE, (key_a, "inactive")) == {key_a: "inactive"}
    assert enroll(conn, PROGRAM_B, (key_b, "enrolled"), curriculum=CURRICULUM_B) == {
        key_b: "enrolled"
    }
    assert enroll_course(conn, PROGRAM_B, COURSE, (key_b, "active")) == {key_b: "active"}


def test_transfer_of_a_waiting_learner_then_link(cat: Conn) -> None:
    ann = add_user(cat, "ann")
    enroll(cat, PROGRAM_A, ("GT-Ann", "enrolled"))
    assert enroll_course(cat, PROGRAM_A, COURSE, ("gt-ann", "active")) == {"gt-ann": "active"}
    # B's activation while A's row is still active: conflict, nothing written for B's row.
    enroll(cat, PROGRAM_B, ("gt-ANN", "enrolled"), curriculum=CURRICULUM_B)
    assert enroll_course(cat, PROGRAM_B, COURSE, ("GT-ANN", "active")) == {"GT-ANN": "conflict"}
    assert course_rows(cat, PROGRAM_B, COURSE) == []

    transfer(cat, "gt-ann", "GT-ann")
    assert course_rows(cat, PROGRAM_A, COURSE) == [("GT-Ann", "inactive", None)]
    assert course_rows(cat, PROGRAM_B, COURSE) == [("gt-ANN", "active", None)]

    # Link A first (its inactive row creates an inactive masters enrollment), then B.
    for program in (PROGRAM_A, PROGRAM_B):
        rows = cat.execute(
            "SELECT result, error FROM enrolldb.link_program_enrollments(%s, %s, %s)",
            (program, ["gt-ann"], ["ann"]),
        ).fetchall()
        assert rows == [("linked", None)]
    ce = course_enrollment(cat, ann, COURSE)
    assert ce is not None and ce[1:] == (True, "masters")
    assert course_rows(cat, PROGRAM_A, COURSE) == [("GT-Ann", "inactive", ce[0])]
    assert course_rows(cat, PROGRAM_B, COURSE) == [("gt-ANN", "active", ce[0])]
    assert integrity(cat) == []


def test_transfer_of_a_realized_learner_then_sign_in(cat: Conn) -> None:
    ann = add_user(cat, "ann")
    enroll(cat, PROGRAM_A, ("gt-ann", "enrolled"))
    enroll_course(cat, PROGRAM_A, COURSE, ("gt-ann", "active"))
    cat.execute("SELECT FROM enrolldb.matriculate_learner(%s, %s, 'GT-ANN')", (ann, ORG))
    ce = course_enrollment(cat, ann, COURSE)
    assert ce is not None and ce[1:] == (True, "masters")

    enroll(cat, PROGRAM_B, ("Gt-Ann", "enrolled"), curriculum=CURRICULUM_B)
    assert program_enrollments(cat, PROGRAM_B) == [("Gt-Ann", ann, CURRICULUM_B, "enrolled")]
    assert enroll_course(cat, PROGRAM_B, COURSE, ("gt-ann", "active")) == {"gt-ann": "conflict"}

    transfer(cat, "GT-ANN", "gt-ANN")
    assert course_enrollment(cat, ann, COURSE) == (ce[0], True, "masters")
    assert course_rows(cat, PROGRAM_A, COURSE) == [("gt-ann", "inactive", ce[0])]
    assert course_rows(cat, PROGRAM_B, COURSE) == [("Gt-Ann", "active", ce[0])]
    # The course enrollment went inactive with A's row and active again with B's.
    assert [r for _, r in history_reasons(cat, CE_HISTORY)] == [
        "matriculate_learner",
        "write_program_course_enrollments",
        "write_program_course_enrollments",
    ]
    # Signing in again changes nothing.
    assert (
        cat.execute(
            "SELECT * FROM enrolldb.matriculate_learner(%s, %s, 'gt-ann')", (ann, ORG)
        ).fetchall()
        == []
    )
    assert course_enrollment(cat, ann, COURSE) == (ce[0], True, "masters")
    assert integrity(cat) == []


def test_transfer_as_the_application_role(cat: Conn, connect: Any) -> None:
    ann = add_user(cat, "ann")
    app = connect(role="enrolldb_app")
    a, b = str(PROGRAM_A), str(PROGRAM_B)

    def call(sql: str, *params: Any) -> Any:
        row = app.execute(sql, params).fetchone()
        assert row is not None
        return row[0]

    def pe(program: str, key: str, status: str, curriculum: Any) -> Any:
        return call(
            "SELECT enrolldb.write_program_enrollments(%s::uuid, %s::jsonb, true, true)",
            program,
            psycopg.types.json.Jsonb(
                [{"external_user_key": key, "status": status, "curriculum_uuid": str(curriculum)}]
            ),
        )

    def pce(program: str, key: str, status: str) -> Any:
        return call(
            "SELECT enrolldb.write_program_course_enrollments(%s::uuid, %s, %s::jsonb, true, true)",
            program,
            COURSE,
            psycopg.types.json.Jsonb([{"external_user_key": key, "status": status}]),
        )

    assert pe(a, "k", "enrolled", CURRICULUM_A) == {"k": "enrolled"}
    assert pce(a, "k", "active") == {"k": "active"}
    assert pe(b, "K", "enrolled", CURRICULUM_B) == {"K": "enrolled"}
    assert pce(b, "K", "active") == {"K": "conflict"}
    assert pe(a, "k", "canceled", CURRICULUM_A) == {"k": "canceled"}
    assert pce(a, "k", "inactive") == {"k": "inactive"}
    assert pce(b, "K", "active") == {"K": "active"}
    assert app.execute(
        "SELECT error FROM enrolldb.matriculate_learner(%s, %s, 'K')", (ann, ORG)
    ).fetchall() == [(None,), (None,)]
    ce = course_enrollment(cat, ann, COURSE)
    assert ce is not None and ce[1:] == (True, "masters")
    assert course_rows(cat, PROGRAM_B, COURSE) == [("K", "active", ce[0])]
    assert app.execute("SELECT * FROM enrolldb.check_integrity()").fetchall() == []

    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute(
            "INSERT INTO enrolldb.program_enrollments_programcourseenrollment"
            " (program_enrollment_id, course_key, status)"
            " SELECT id, %s, 'active' FROM enrolldb.program_enrollments_programenrollment LIMIT 1",
            (COURSE_2,),
        )
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("UPDATE enrolldb.program_enrollments_programenrollment SET status = 'enrolled'")
    assert course_rows(cat, PROGRAM_A, COURSE_2) == []
    assert program_enrollments(cat, PROGRAM_A) == [("k", ann, CURRICULUM_A, "canceled")]


# The rows form: one result per request, in input order, with applied ------------------------


def test_rows_are_in_input_order_with_applied(cat: Conn) -> None:
    """Each request answered at its own position; applied is the database's word, and the
    first of two identically spelled keys is the applied one (the object form can only say
    duplicated for that spelling)."""
    enroll(cat, PROGRAM_A, ("zed", "enrolled"))
    requests = [
        {"external_user_key": "zed", "status": "suspended"},
        {"external_user_key": "amy", "status": "pending", "curriculum_uuid": str(CURRICULUM_A)},
        {"external_user_key": "amy", "status": "ended", "curriculum_uuid": str(CURRICULUM_A)},
        {"external_user_key": "  ", "status": "pending"},
        {"external_user_key": "ZED", "status": "ended"},
        {"external_user_key": "bo", "status": "withdrawn"},
        {"external_user_key": "cy", "status": "enrolled"},
    ]
    rows = write_program_enrollment_rows(cat, PROGRAM_A, requests, create=True, update=True)
    assert rows == [
        WriteResult(1, "zed", "suspended", True),
        WriteResult(2, "amy", "pending", True),
        WriteResult(3, "amy", "duplicated", False),
        WriteResult(4, "  ", "invalid-key", False),
        WriteResult(5, "ZED", "duplicated", False),
        WriteResult(6, "bo", "invalid-status", False),
        WriteResult(7, "cy", "invalid-curriculum", False),
    ]
    assert program_enrollments(cat, PROGRAM_A) == [
        ("amy", None, CURRICULUM_A, "pending"),
        ("zed", None, CURRICULUM_A, "suspended"),
    ]
    # The object form of the same call: one entry per spelling, the later occurrence's.
    again = write_program_enrollments(cat, PROGRAM_A, requests, create=True, update=True)
    assert again == {
        "zed": "suspended",
        "amy": "duplicated",
        "  ": "invalid-key",
        "ZED": "duplicated",
        "bo": "invalid-status",
        "cy": "invalid-curriculum",
    }


def test_course_rows_are_in_input_order_with_applied(cat: Conn) -> None:
    enroll(cat, PROGRAM_A, ("ann", "enrolled"), ("bob", "enrolled"))
    enroll_course(cat, PROGRAM_A, COURSE, ("bob", "inactive"))
    requests: list[dict[str, Any]] = [
        {"external_user_key": "nobody", "status": "active"},
        {"external_user_key": "bob", "status": "active"},
        {"external_user_key": "ann", "status": "active", "course_staff": True},
        {"external_user_key": "ann", "status": "inactive"},
        {"external_user_key": "bob", "status": "paused"},
    ]
    rows = write_program_course_enrollment_rows(
        cat, PROGRAM_A, COURSE, requests, create=True, update=False
    )
    assert rows == [
        WriteResult(1, "nobody", "not-in-program", False),
        WriteResult(2, "bob", "conflict", False),
        WriteResult(3, "ann", "active", True),
        WriteResult(4, "ann", "duplicated", False),
        WriteResult(5, "bob", "duplicated", False),
    ]
    assert course_rows(cat, PROGRAM_A, COURSE) == [
        ("ann", "active", None),
        ("bob", "inactive", None),
    ]
    assert cat.execute(
        "SELECT a.role, pe.external_user_key"
        " FROM enrolldb.program_enrollments_courseaccessroleassignment AS a"
        " JOIN enrolldb.program_enrollments_programcourseenrollment AS pce"
        " ON pce.id = a.enrollment_id"
        " JOIN enrolldb.program_enrollments_programenrollment AS pe"
        " ON pe.id = pce.program_enrollment_id"
    ).fetchall() == [("staff", "ann")]
    assert (
        write_program_course_enrollment_rows(cat, PROGRAM_A, COURSE, [], create=True, update=True)
        == []
    )


def test_rows_form_as_the_application_role(cat: Conn, connect: Any) -> None:
    """The rows functions are API: granted to enrolldb_app, whose errors name the write."""
    app = connect(role="enrolldb_app")
    rows = app.execute(
        "SELECT request_number, external_user_key, outcome, applied"
        " FROM enrolldb.write_program_enrollment_rows(%s, %s::jsonb, true, true)",
        (
            PROGRAM_A,
            psycopg.types.json.Jsonb(
                [
                    {"external_user_key": "k", "status": "enrolled", "curriculum_uuid": None},
                    {"external_user_key": "k", "status": "enrolled"},
                ]
            ),
        ),
    ).fetchall()
    assert rows == [(1, "k", "invalid-curriculum", False), (2, "k", "duplicated", False)]
    with pytest.raises(psycopg.errors.InvalidParameterValue) as raised:
        app.execute(
            "SELECT * FROM enrolldb.write_program_course_enrollment_rows(%s, 'no-course',"
            " '[]'::jsonb, true, true)",
            (PROGRAM_A,),
        )
    assert raised.value.diag.message_primary == (
        "write_program_course_enrollments: course no-course does not exist"
    )


# Status values: defined once, in the database -------------------------------------------------


@pytest.mark.parametrize(
    ("enum", "values"),
    [
        ("program_enrollment_status", PROGRAM_ENROLLMENT_STATUSES),
        ("program_course_enrollment_status", PROGRAM_COURSE_ENROLLMENT_STATUSES),
    ],
)
def test_python_status_lists_are_the_catalogs(db: Conn, enum: str, values: tuple[str, ...]) -> None:
    rows = db.execute(
        "SELECT e.enumlabel FROM pg_catalog.pg_enum AS e"
        " JOIN pg_catalog.pg_type AS t ON t.oid = e.enumtypid"
        " WHERE t.typnamespace = 'enrolldb_internal'::regnamespace AND t.typname = %s"
        " ORDER BY e.enumsortorder",
        (enum,),
    ).fetchall()
    assert tuple(label for (label,) in rows) == values


def test_a_status_added_to_the_catalog_is_accepted_everywhere(cat: Conn) -> None:
    """The table constraint and the writes read the one list: a value added to the enum is
    accepted by both at once, with nothing else edited (it was refused before)."""
    enroll(cat, PROGRAM_A, ("ann", "enrolled"))
    assert enroll_course(cat, PROGRAM_A, COURSE, ("ann", "paused")) == {"ann": "invalid-status"}
    cat.commit()
    cat.autocommit = True
    cat.execute("ALTER TYPE enrolldb_internal.program_course_enrollment_status ADD VALUE 'paused'")
    assert enroll_course(cat, PROGRAM_A, COURSE, ("ann", "paused")) == {"ann": "paused"}
    assert course_rows(cat, PROGRAM_A, COURSE) == [("ann", "paused", None)]
    constraints = cat.execute(
        "SELECT c.conname, pg_catalog.pg_get_constraintdef(c.oid) FROM pg_catalog.pg_constraint"
        " AS c WHERE c.conname LIKE '%status_ck' ORDER BY c.conname"
    ).fetchall()
    assert [name for name, _ in constraints] == [
        "programcourseenrollment_status_ck",
        "programenrollment_status_ck",
    ]
    for _, definition in constraints:
        assert "enum_range(NULL::enrolldb_internal.program_" in definition
        assert "'active'" not in definition and "'enrolled'" not in definition
