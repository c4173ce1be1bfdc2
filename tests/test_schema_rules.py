"""docs/reference.md, Schema table rules, one or more tests per rule, straight against the schema.

Why these tests: services in other languages and DBAs' scripts write to these tables without
going through the API functions, so every rule of §3 must hold in the database itself. Each
test asserts the exact refusal (SQLSTATE via the psycopg exception class, and the constraint
name the Python client maps errors by) and the accepted neighbour case, so that a rule made
too strict fails here as loudly as a rule that went missing.

The row builders (``Data``, the ``data`` fixture) and ``refused`` are in tests/builders.py.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from psycopg import errors

from builders import EDX_COURSE_1 as COURSE_1
from builders import EDX_COURSE_2 as COURSE_2
from builders import MATCH_CK, Data, refused
from pgtypes import Conn

ACTIVE_UQ = "programcourseenrollment_active_course_enrollment_uq"


def scalar(conn: Conn, query: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row[0]


def count(conn: Conn, table: str, where: str = "true", params: tuple[Any, ...] = ()) -> int:
    n: int = scalar(conn, f"SELECT count(*) FROM enrolldb.{table} WHERE {where}", params)
    return n


PE_INSERT = (
    "INSERT INTO enrolldb.program_enrollments_programenrollment "
    "(user_id, external_user_key, program_uuid, curriculum_uuid, status) "
    "VALUES (%s, %s, %s, %s, %s)"
)
PCE_INSERT = (
    "INSERT INTO enrolldb.program_enrollments_programcourseenrollment "
    "(program_enrollment_id, course_enrollment_id, course_key, status) VALUES (%s, %s, %s, %s)"
)


# --- auth_user ---------------------------------------------------------------------------------


def test_username_unique_and_case_sensitive(db: Conn, data: Data) -> None:
    data.user("alice")
    refused(
        db,
        errors.UniqueViolation,
        "auth_user_username_uq",
        "INSERT INTO enrolldb.auth_user (username) VALUES ('alice')",
    )
    data.user("Alice")  # exact comparison, as Django: another user
    rows = db.execute("SELECT username FROM enrolldb.auth_user ORDER BY username").fetchall()
    assert rows == [("Alice",), ("alice",)]


def test_auth_user_defaults(db: Conn) -> None:
    row = db.execute(
        "INSERT INTO enrolldb.auth_user (username) VALUES ('bob') "
        "RETURNING email, is_active, date_joined IS NOT NULL"
    ).fetchone()
    assert row == ("", True, True)


# --- courses ---------------------------------------------------------------------------------


def test_course_mode_unique_per_course_slug_currency(db: Conn, data: Data) -> None:
    data.course(COURSE_1)
    data.course(COURSE_2)
    insert = (
        "INSERT INTO enrolldb.course_modes_coursemode (course_id, mode_slug, currency) "
        "VALUES (%s, %s, %s)"
    )
    db.execute(insert, (COURSE_1, "verified", "usd"))
    refused(
        db,
        errors.UniqueViolation,
        "coursemode_course_mode_currency_uq",
        insert,
        (COURSE_1, "verified", "usd"),
    )
    db.execute(insert, (COURSE_1, "verified", "eur"))
    db.execute(insert, (COURSE_1, "audit", "usd"))
    db.execute(insert, (COURSE_2, "verified", "usd"))
    assert count(db, "course_modes_coursemode") == 4
    assert (
        count(
            db, "course_modes_coursemode", "course_id = %s AND mode_slug = 'verified'", (COURSE_1,)
        )
        == 2
    )


def test_course_mode_needs_known_course(db: Conn) -> None:
    refused(
        db,
        errors.ForeignKeyViolation,
        "coursemode_course_fk",
        "INSERT INTO enrolldb.course_modes_coursemode (course_id, mode_slug) "
        "VALUES ('course-v1:nope+nope+nope', 'audit')",
    )
    assert count(db, "course_modes_coursemode") == 0


def test_course_enrollment_unique_per_user_and_course(db: Conn, data: Data) -> None:
    alice, bob = data.user("alice"), data.user("bob")
    data.course(COURSE_1)
    data.course(COURSE_2)
    data.ce(alice, COURSE_1)
    refused(
        db,
        errors.UniqueViolation,
        "courseenrollment_user_course_uq",
        "INSERT INTO enrolldb.student_courseenrollment (user_id, course_id, is_active) "
        "VALUES (%s, %s, false)",
        (alice, COURSE_1),
    )
    data.ce(alice, COURSE_2)
    data.ce(bob, COURSE_1)
    rows = db.execute(
        "SELECT user_id, course_id FROM enrolldb.student_courseenrollment ORDER BY id"
    ).fetchall()
    assert rows == [(alice, COURSE_1), (alice, COURSE_2), (bob, COURSE_1)]


def test_course_enrollment_foreign_keys(db: Conn, data: Data) -> None:
    alice = data.user("alice")
    data.course(COURSE_1)
    insert = "INSERT INTO enrolldb.student_courseenrollment (user_id, course_id) VALUES (%s, %s)"
    refused(db, errors.ForeignKeyViolation, "courseenrollment_course_fk", insert, (alice, "x"))
    refused(db, errors.ForeignKeyViolation, "courseenrollment_user_fk", insert, (-1, COURSE_1))
    db.execute(insert, (alice, COURSE_1))
    assert db.execute(
        "SELECT is_active, mode, created IS NOT NULL FROM enrolldb.student_courseenrollment"
    ).fetchall() == [(True, "audit", True)]


def test_course_access_role_unique(db: Conn, data: Data) -> None:
    alice = data.user("alice")
    insert = (
        "INSERT INTO enrolldb.student_courseaccessrole (user_id, org, course_id, role) "
        "VALUES (%s, %s, %s, %s)"
    )
    db.execute(insert, (alice, "edX", COURSE_1, "staff"))
    refused(
        db,
        errors.UniqueViolation,
        "courseaccessrole_user_org_course_role_uq",
        insert,
        (alice, "edX", COURSE_1, "staff"),
    )
    db.execute(insert, (alice, "edX", COURSE_1, "instructor"))
    db.execute(insert, (alice, "edX", "", "staff"))  # an org-wide role is another row
    assert count(db, "student_courseaccessrole", "user_id = %s", (alice,)) == 3
    refused(
        db,
        errors.ForeignKeyViolation,
        "courseaccessrole_user_fk",
        insert,
        (-1, "edX", COURSE_1, "staff"),
    )


# --- program enrollments ---------------------------------------------------------------------


@pytest.mark.parametrize("status", ["enrolled", "pending", "suspended", "canceled", "ended"])
def test_program_enrollment_status_accepted(db: Conn, data: Data, status: str) -> None:
    program = data.program()
    pe_id = data.pe(program, key="k-1", status=status)
    assert (
        scalar(
            db,
            "SELECT status FROM enrolldb.program_enrollments_programenrollment WHERE id = %s",
            (pe_id,),
        )
        == status
    )


@pytest.mark.parametrize("status", ["Enrolled", "active", "", "cancelled"])
def test_program_enrollment_status_refused(db: Conn, data: Data, status: str) -> None:
    program = data.program()
    refused(
        db,
        errors.CheckViolation,
        "programenrollment_status_ck",
        PE_INSERT,
        (None, "k-1", program, uuid.uuid4(), status),
    )
    pe_id = data.pe(program, key="k-1")
    refused(
        db,
        errors.CheckViolation,
        "programenrollment_status_ck",
        "UPDATE enrolldb.program_enrollments_programenrollment SET status = %s WHERE id = %s",
        (status, pe_id),
    )
    assert count(db, "program_enrollments_programenrollment", "status = 'enrolled'") == 1


def test_program_enrollment_unique_user_program_curriculum(db: Conn, data: Data) -> None:
    alice = data.user("alice")
    program, other_program = data.program(), data.program()
    curriculum = uuid.uuid4()
    data.pe(program, user_id=alice, curriculum_uuid=curriculum)
    refused(
        db,
        errors.UniqueViolation,
        "programenrollment_user_program_curriculum_uq",
        PE_INSERT,
        (alice, None, program, curriculum, "pending"),
    )
    data.pe(program, user_id=alice, curriculum_uuid=uuid.uuid4())  # another curriculum
    data.pe(other_program, user_id=alice, curriculum_uuid=curriculum)  # another program
    # two waiting enrollments (user_id NULL) in one curriculum do not collide on user_id
    data.pe(program, key="k-1", curriculum_uuid=curriculum)
    data.pe(program, key="k-2", curriculum_uuid=curriculum)
    assert count(db, "program_enrollments_programenrollment", "user_id = %s", (alice,)) == 3
    assert count(db, "program_enrollments_programenrollment", "user_id IS NULL") == 2


def test_external_keys_differing_only_in_case_collide(db: Conn, data: Data) -> None:
    program, other_program = data.program(), data.program()
    curriculum = uuid.uuid4()
    data.pe(program, key="GT-Abc-123", curriculum_uuid=curriculum)
    for key in ("gt-abc-123", "GT-ABC-123", "GT-Abc-123"):
        refused(
            db,
            errors.UniqueViolation,
            "programenrollment_key_program_curriculum_uq",
            PE_INSERT,
            (None, key, program, curriculum, "enrolled"),
        )
    # the same key in another curriculum of the program, or in another program: accepted
    data.pe(program, key="gt-abc-123", curriculum_uuid=uuid.uuid4())
    data.pe(other_program, key="GT-ABC-123", curriculum_uuid=curriculum)
    keys = db.execute(
        "SELECT external_user_key FROM enrolldb.program_enrollments_programenrollment ORDER BY id"
    ).fetchall()
    assert keys == [("GT-Abc-123",), ("gt-abc-123",), ("GT-ABC-123",)]


def test_external_key_case_collision_on_update(db: Conn, data: Data) -> None:
    program = data.program()
    curriculum = uuid.uuid4()
    data.pe(program, key="abc", curriculum_uuid=curriculum)
    other = data.pe(program, key="xyz", curriculum_uuid=curriculum)
    refused(
        db,
        errors.UniqueViolation,
        "programenrollment_key_program_curriculum_uq",
        "UPDATE enrolldb.program_enrollments_programenrollment "
        "SET external_user_key = 'ABC' WHERE id = %s",
        (other,),
    )
    assert count(db, "program_enrollments_programenrollment", "external_user_key = 'xyz'") == 1


def test_program_enrollment_user_or_key(db: Conn, data: Data) -> None:
    alice = data.user("alice")
    program = data.program()
    refused(
        db,
        errors.CheckViolation,
        "programenrollment_user_or_key_ck",
        PE_INSERT,
        (None, None, program, uuid.uuid4(), "enrolled"),
    )
    only_user = data.pe(program, user_id=alice)
    only_key = data.pe(program, key="k-1")
    both = data.pe(program, user_id=alice, key="k-2")
    refused(
        db,
        errors.CheckViolation,
        "programenrollment_user_or_key_ck",
        "UPDATE enrolldb.program_enrollments_programenrollment SET user_id = NULL WHERE id = %s",
        (only_user,),
    )
    rows = db.execute(
        "SELECT id, user_id, external_user_key FROM enrolldb.program_enrollments_programenrollment"
        " ORDER BY id"
    ).fetchall()
    assert rows == [(only_user, alice, None), (only_key, None, "k-1"), (both, alice, "k-2")]


NON_CANONICAL_KEYS = {
    "trailing NBSP": "abc\u00a0",
    "leading NBSP": "\u00a0abc",
    "leading space": " abc",
    "trailing space": "abc ",
    "trailing tab": "abc\t",
    "trailing newline": "abc\n",
    "leading ideographic space": "\u3000abc",
    "leading zero-width space": "\u200babc",
    "trailing zero-width space": "abc\u200b",
    "leading BOM U+FEFF": "\ufeffabc",
    "trailing BOM U+FEFF": "abc\ufeff",
    "trailing word joiner U+2060": "abc\u2060",
    "non-NFC e + U+0301": "caf" + "e\u0301",
    "only whitespace": " \u00a0 ",
    "empty": "",
}

CANONICAL_KEYS = {
    "255 characters": "k" * 255,
    "inner spaces": "john  smith 42",
    "inner NBSP": "a\u00a0b",
    "NFC e-acute": "caf\u00e9",
    "non-latin": "学生-ключ-7",
    "one character": "x",
}


@pytest.mark.parametrize("key", NON_CANONICAL_KEYS.values(), ids=NON_CANONICAL_KEYS.keys())
def test_non_canonical_external_key_refused(db: Conn, data: Data, key: str) -> None:
    program = data.program()
    refused(
        db,
        errors.CheckViolation,
        "programenrollment_key_canonical_ck",
        PE_INSERT,
        (None, key, program, uuid.uuid4(), "enrolled"),
    )
    pe_id = data.pe(program, key="fine")
    refused(
        db,
        errors.CheckViolation,
        "programenrollment_key_canonical_ck",
        "UPDATE enrolldb.program_enrollments_programenrollment "
        "SET external_user_key = %s WHERE id = %s",
        (key, pe_id),
    )
    alice = data.user("alice")
    refused(
        db,
        errors.CheckViolation,
        "learneridentity_key_canonical_ck",
        "INSERT INTO enrolldb.program_enrollments_learneridentity "
        "(organization_key, external_user_key, user_id) VALUES ('gtx', %s, %s)",
        (key, alice),
    )
    assert scalar(db, "SELECT enrolldb.is_canonical_external_key(%s)", (key,)) is False
    rows = db.execute(
        "SELECT external_user_key FROM enrolldb.program_enrollments_programenrollment"
    ).fetchall()
    assert rows == [("fine",)]
    assert count(db, "program_enrollments_learneridentity") == 0


@pytest.mark.parametrize("key", CANONICAL_KEYS.values(), ids=CANONICAL_KEYS.keys())
def test_canonical_external_key_accepted(db: Conn, data: Data, key: str) -> None:
    program = data.program()
    pe_id = data.pe(program, key=key)
    alice = data.user("alice")
    db.execute(
        "INSERT INTO enrolldb.program_enrollments_learneridentity "
        "(organization_key, external_user_key, user_id) VALUES ('gtx', %s, %s)",
        (key, alice),
    )
    stored = scalar(
        db,
        "SELECT external_user_key FROM enrolldb.program_enrollments_programenrollment "
        "WHERE id = %s",
        (pe_id,),
    )
    assert stored == key
    assert count(db, "program_enrollments_learneridentity", "external_user_key = %s", (key,)) == 1


def test_external_key_of_256_characters_refused(db: Conn, data: Data) -> None:
    program = data.program()
    # varchar(255) refuses it before the CHECK sees it: no constraint name
    refused(
        db,
        errors.StringDataRightTruncation,
        None,
        PE_INSERT,
        (None, "k" * 256, program, uuid.uuid4(), "enrolled"),
    )
    # and the CHECK itself refuses it too (it must not rely on the column type alone)
    assert scalar(db, "SELECT enrolldb.is_canonical_external_key(repeat('k', 256))") is False
    assert scalar(db, "SELECT enrolldb.is_canonical_external_key(repeat('k', 255))") is True
    assert count(db, "program_enrollments_programenrollment") == 0


def test_canonical_external_key_function(db: Conn) -> None:
    assert (
        scalar(
            db,
            "SELECT enrolldb.canonical_external_key(%s)",
            ("\ufeff\u200b ca" + "fe\u0301 x\u00a0",),
        )
        == "caf\u00e9 x"
    )


def test_program_enrollment_needs_known_program_and_user(db: Conn, data: Data) -> None:
    refused(
        db,
        errors.ForeignKeyViolation,
        "programenrollment_program_fk",
        PE_INSERT,
        (None, "k-1", uuid.uuid4(), uuid.uuid4(), "enrolled"),
    )
    program = data.program()
    refused(
        db,
        errors.ForeignKeyViolation,
        "programenrollment_user_fk",
        PE_INSERT,
        (-1, "k-1", program, uuid.uuid4(), "enrolled"),
    )
    data.pe(program, key="k-1")
    assert count(db, "program_enrollments_programenrollment", "program_uuid = %s", (program,)) == 1


# --- program course enrollments --------------------------------------------------------------


@pytest.mark.parametrize("status", ["Active", "enrolled", "", "canceled"])
def test_program_course_enrollment_status(db: Conn, data: Data, status: str) -> None:
    pe_id = data.pe(data.program(), key="k-1")
    refused(
        db,
        errors.CheckViolation,
        "programcourseenrollment_status_ck",
        PCE_INSERT,
        (pe_id, None, COURSE_1, status),
    )
    data.pce(pe_id, COURSE_1, status="active")
    data.pce(pe_id, COURSE_2, status="inactive")
    rows = db.execute(
        "SELECT course_key, status FROM enrolldb.program_enrollments_programcourseenrollment "
        "ORDER BY id"
    ).fetchall()
    assert rows == [(COURSE_1, "active"), (COURSE_2, "inactive")]


def test_program_course_enrollment_unique_per_program_enrollment_and_course(
    db: Conn, data: Data
) -> None:
    program = data.program()
    pe_id = data.pe(program, key="k-1")
    other_pe = data.pe(program, key="k-2")
    data.pce(pe_id, COURSE_1)
    refused(
        db,
        errors.UniqueViolation,
        "programcourseenrollment_enrollment_course_uq",
        PCE_INSERT,
        (pe_id, None, COURSE_1, "inactive"),
    )
    data.pce(pe_id, COURSE_2)
    data.pce(other_pe, COURSE_1)
    assert count(db, "program_enrollments_programcourseenrollment") == 3


def test_program_course_enrollment_foreign_keys(db: Conn, data: Data) -> None:
    pe_id = data.pe(data.program(), key="k-1")
    refused(
        db,
        errors.ForeignKeyViolation,
        "programcourseenrollment_program_enrollment_fk",
        PCE_INSERT,
        (-1, None, COURSE_1, "active"),
    )
    refused(
        db,
        errors.ForeignKeyViolation,
        "programcourseenrollment_course_enrollment_fk",
        PCE_INSERT,
        (pe_id, -1, COURSE_1, "active"),
    )
    # a waiting row needs no course run in the catalog and no course enrollment
    data.pce(pe_id, "course-v1:not+in+catalog")
    assert count(db, "program_enrollments_programcourseenrollment") == 1


class SharedCourseRun:
    """docs/reference.md, What it is: one learner, one course run shared by programs A and B (and
    C)."""

    def __init__(self, data: Data) -> None:
        self.user = data.user("learner")
        data.course(COURSE_1)
        data.course(COURSE_2)
        self.ce = data.ce(self.user, COURSE_1)
        self.pe_a = data.pe(data.program(), user_id=self.user, key="gt-1")
        self.pe_b = data.pe(data.program(), user_id=self.user, key="gt-1")
        self.pe_c = data.pe(data.program(), user_id=self.user, key="gt-1")


def test_second_active_program_course_enrollment_on_one_course_enrollment(
    db: Conn, data: Data
) -> None:
    s = SharedCourseRun(data)
    pce_b = data.pce(s.pe_b, COURSE_1, s.ce, "active")
    refused(db, errors.UniqueViolation, ACTIVE_UQ, PCE_INSERT, (s.pe_a, s.ce, COURSE_1, "active"))
    # A's inactive row may share the course enrollment, and so may C's
    pce_a = data.pce(s.pe_a, COURSE_1, s.ce, "inactive")
    pce_c = data.pce(s.pe_c, COURSE_1, s.ce, "inactive")
    # ... but may not become active while B's is
    refused(
        db,
        errors.UniqueViolation,
        ACTIVE_UQ,
        "UPDATE enrolldb.program_enrollments_programcourseenrollment SET status = 'active' "
        "WHERE id = %s",
        (pce_a,),
    )
    rows = db.execute(
        "SELECT id, course_enrollment_id, status "
        "FROM enrolldb.program_enrollments_programcourseenrollment ORDER BY id"
    ).fetchall()
    assert rows == [(pce_b, s.ce, "active"), (pce_a, s.ce, "inactive"), (pce_c, s.ce, "inactive")]


def test_active_swaps_between_program_course_enrollments(db: Conn, data: Data) -> None:
    s = SharedCourseRun(data)
    pce_a = data.pce(s.pe_a, COURSE_1, s.ce, "active")
    pce_b = data.pce(s.pe_b, COURSE_1, s.ce, "inactive")
    # moving the active row from A to B: deactivate A first, then activate B
    db.execute(
        "UPDATE enrolldb.program_enrollments_programcourseenrollment SET status = 'inactive' "
        "WHERE id = %s",
        (pce_a,),
    )
    db.execute(
        "UPDATE enrolldb.program_enrollments_programcourseenrollment SET status = 'active' "
        "WHERE id = %s",
        (pce_b,),
    )
    rows = db.execute(
        "SELECT id, status FROM enrolldb.program_enrollments_programcourseenrollment ORDER BY id"
    ).fetchall()
    assert rows == [(pce_a, "inactive"), (pce_b, "active")]
    # several active rows with no course enrollment yet (waiting) do not collide
    data.pce(s.pe_a, COURSE_2, None, "active")
    data.pce(s.pe_b, COURSE_2, None, "active")
    assert (
        count(
            db,
            "program_enrollments_programcourseenrollment",
            "course_enrollment_id IS NULL AND status = 'active'",
        )
        == 2
    )


def test_program_course_enrollment_points_at_another_users_course_enrollment(
    db: Conn, data: Data
) -> None:
    s = SharedCourseRun(data)
    mallory = data.user("mallory")
    mallory_ce = data.ce(mallory, COURSE_1)
    refused(
        db, errors.CheckViolation, MATCH_CK, PCE_INSERT, (s.pe_a, mallory_ce, COURSE_1, "active")
    )
    refused(
        db, errors.CheckViolation, MATCH_CK, PCE_INSERT, (s.pe_a, mallory_ce, COURSE_1, "inactive")
    )
    pce_a = data.pce(s.pe_a, COURSE_1, s.ce, "active")
    refused(
        db,
        errors.CheckViolation,
        MATCH_CK,
        "UPDATE enrolldb.program_enrollments_programcourseenrollment "
        "SET course_enrollment_id = %s WHERE id = %s",
        (mallory_ce, pce_a),
    )
    # moving the row to another user's program enrollment, keeping the course enrollment
    mallory_pe = data.pe(data.program(), user_id=mallory, key="m-1")
    refused(
        db,
        errors.CheckViolation,
        MATCH_CK,
        "UPDATE enrolldb.program_enrollments_programcourseenrollment "
        "SET program_enrollment_id = %s WHERE id = %s",
        (mallory_pe, pce_a),
    )
    mallory_pce = data.pce(mallory_pe, COURSE_1, mallory_ce, "active")
    assert db.execute(
        "SELECT id, program_enrollment_id, course_enrollment_id "
        "FROM enrolldb.program_enrollments_programcourseenrollment ORDER BY id"
    ).fetchall() == [(pce_a, s.pe_a, s.ce), (mallory_pce, mallory_pe, mallory_ce)]


def test_program_course_enrollment_points_at_course_enrollment_of_another_course(
    db: Conn, data: Data
) -> None:
    s = SharedCourseRun(data)
    ce_2 = data.ce(s.user, COURSE_2)
    refused(db, errors.CheckViolation, MATCH_CK, PCE_INSERT, (s.pe_a, ce_2, COURSE_1, "active"))
    pce_a = data.pce(s.pe_a, COURSE_1, s.ce, "active")
    refused(
        db,
        errors.CheckViolation,
        MATCH_CK,
        "UPDATE enrolldb.program_enrollments_programcourseenrollment "
        "SET course_key = %s WHERE id = %s",
        (COURSE_2, pce_a),
    )
    refused(
        db,
        errors.CheckViolation,
        MATCH_CK,
        "UPDATE enrolldb.program_enrollments_programcourseenrollment "
        "SET course_enrollment_id = %s WHERE id = %s",
        (ce_2, pce_a),
    )
    # both changed together: consistent again, accepted
    db.execute(
        "UPDATE enrolldb.program_enrollments_programcourseenrollment "
        "SET course_enrollment_id = %s, course_key = %s WHERE id = %s",
        (ce_2, COURSE_2, pce_a),
    )
    assert db.execute(
        "SELECT course_enrollment_id, course_key "
        "FROM enrolldb.program_enrollments_programcourseenrollment WHERE id = %s",
        (pce_a,),
    ).fetchall() == [(ce_2, COURSE_2)]


def test_waiting_program_enrollment_cannot_point_at_a_course_enrollment(
    db: Conn, data: Data
) -> None:
    s = SharedCourseRun(data)
    waiting = data.pe(data.program(), key="gt-1")
    refused(db, errors.CheckViolation, MATCH_CK, PCE_INSERT, (waiting, s.ce, COURSE_1, "inactive"))
    data.pce(waiting, COURSE_1, None, "active")
    assert (
        count(
            db,
            "program_enrollments_programcourseenrollment",
            "program_enrollment_id = %s",
            (waiting,),
        )
        == 1
    )


def test_match_rule_checks_every_row_of_a_multi_row_insert(db: Conn, data: Data) -> None:
    s = SharedCourseRun(data)
    mallory_ce = data.ce(data.user("mallory"), COURSE_1)
    exc = refused(
        db,
        errors.CheckViolation,
        MATCH_CK,
        "INSERT INTO enrolldb.program_enrollments_programcourseenrollment "
        "(program_enrollment_id, course_enrollment_id, course_key, status) "
        "VALUES (%s, %s, %s, 'active'), (%s, %s, %s, 'inactive')",
        (s.pe_a, s.ce, COURSE_1, s.pe_b, mallory_ce, COURSE_1),
    )
    assert exc.diag.table_name == "program_enrollments_programcourseenrollment"
    assert count(db, "program_enrollments_programcourseenrollment") == 0


def test_changing_program_enrollment_user_under_a_linked_row(db: Conn, data: Data) -> None:
    s = SharedCourseRun(data)
    bob = data.user("bob")
    data.pce(s.pe_a, COURSE_1, s.ce, "inactive")
    update = "UPDATE enrolldb.program_enrollments_programenrollment SET user_id = %s WHERE id = %s"
    exc = refused(db, errors.CheckViolation, MATCH_CK, update, (bob, s.pe_a))
    assert exc.diag.table_name == "program_enrollments_programenrollment"
    refused(db, errors.CheckViolation, MATCH_CK, update, (None, s.pe_a))
    # a program enrollment whose rows point at no course enrollment may change user
    data.pce(s.pe_b, COURSE_1, None, "active")
    db.execute(update, (bob, s.pe_b))
    db.execute(update, (bob, s.pe_c))
    rows = db.execute(
        "SELECT id, user_id FROM enrolldb.program_enrollments_programenrollment ORDER BY id"
    ).fetchall()
    assert rows == [(s.pe_a, s.user), (s.pe_b, bob), (s.pe_c, bob)]


def test_changing_course_enrollment_under_a_pointing_row(db: Conn, data: Data) -> None:
    s = SharedCourseRun(data)
    bob = data.user("bob")
    data.pce(s.pe_a, COURSE_1, s.ce, "inactive")
    update_user = "UPDATE enrolldb.student_courseenrollment SET user_id = %s WHERE id = %s"
    exc = refused(db, errors.CheckViolation, MATCH_CK, update_user, (bob, s.ce))
    assert exc.diag.table_name == "student_courseenrollment"
    refused(
        db,
        errors.CheckViolation,
        MATCH_CK,
        "UPDATE enrolldb.student_courseenrollment SET course_id = %s WHERE id = %s",
        (COURSE_2, s.ce),
    )
    # other columns may change; an unreferenced course enrollment may change user and course
    db.execute(
        "UPDATE enrolldb.student_courseenrollment SET is_active = false, mode = 'audit' "
        "WHERE id = %s",
        (s.ce,),
    )
    free_ce = data.ce(s.user, COURSE_2)
    db.execute(update_user, (bob, free_ce))
    rows = db.execute(
        "SELECT id, user_id, course_id, is_active, mode FROM enrolldb.student_courseenrollment "
        "ORDER BY id"
    ).fetchall()
    assert rows == [
        (s.ce, s.user, COURSE_1, False, "audit"),
        (free_ce, bob, COURSE_2, True, "masters"),
    ]


def run_blocked(
    db: Conn, conn: Conn, query: str, params: tuple[Any, ...]
) -> tuple[threading.Thread, list[BaseException]]:
    """Start ``query`` on ``conn`` in a thread and return once it waits for a lock."""
    failures: list[BaseException] = []

    def target() -> None:
        try:
            conn.execute(query, params)
            conn.commit()
        except BaseException as exc:
            failures.append(exc)
            conn.rollback()

    pid = conn.info.backend_pid
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        waiting = db.execute(
            "SELECT wait_event_type = 'Lock' FROM pg_catalog.pg_stat_activity WHERE pid = %s",
            (pid,),
        ).fetchone()
        if waiting == (True,) or not thread.is_alive():
            break
        time.sleep(0.02)
    assert thread.is_alive(), f"expected the statement to wait for a lock: {failures}"
    return thread, failures


def match_failure(failures: list[BaseException]) -> None:
    assert len(failures) == 1, failures
    exc = failures[0]
    assert isinstance(exc, errors.CheckViolation), repr(exc)
    assert exc.diag.constraint_name == MATCH_CK


def test_match_rule_holds_when_both_sides_change_concurrently_pce_first(
    db: Conn, data: Data, connect: Callable[..., Conn]
) -> None:
    """A links a row to the course enrollment while B moves that enrollment to another user."""
    s = SharedCourseRun(data)
    bob = data.user("bob")
    first, second = connect(autocommit=False), connect(autocommit=False)
    for conn in (first, second):
        conn.execute("SET lock_timeout = '20s'")
        conn.commit()
    first.execute(PCE_INSERT, (s.pe_a, s.ce, COURSE_1, "active"))
    thread, failures = run_blocked(
        db,
        second,
        "UPDATE enrolldb.student_courseenrollment SET user_id = %s WHERE id = %s",
        (bob, s.ce),
    )
    first.commit()
    thread.join(20)
    match_failure(failures)
    assert db.execute(
        "SELECT user_id FROM enrolldb.student_courseenrollment WHERE id = %s", (s.ce,)
    ).fetchall() == [(s.user,)]
    assert (
        count(
            db, "program_enrollments_programcourseenrollment", "course_enrollment_id = %s", (s.ce,)
        )
        == 1
    )


def test_match_rule_holds_when_both_sides_change_concurrently_ce_first(
    db: Conn, data: Data, connect: Callable[..., Conn]
) -> None:
    """B moves the course enrollment to another user first; A's link then waits and fails."""
    s = SharedCourseRun(data)
    bob = data.user("bob")
    first, second = connect(autocommit=False), connect(autocommit=False)
    for conn in (first, second):
        conn.execute("SET lock_timeout = '20s'")
        conn.commit()
    second.execute(
        "UPDATE enrolldb.student_courseenrollment SET user_id = %s WHERE id = %s", (bob, s.ce)
    )
    thread, failures = run_blocked(db, first, PCE_INSERT, (s.pe_a, s.ce, COURSE_1, "active"))
    second.commit()
    thread.join(20)
    match_failure(failures)
    assert db.execute(
        "SELECT user_id FROM enrolldb.student_courseenrollment WHERE id = %s", (s.ce,)
    ).fetchall() == [(bob,)]
    assert count(db, "program_enrollments_programcourseenrollment") == 0


def test_match_rule_holds_when_program_enrollment_user_changes_concurrently(
    db: Conn, data: Data, connect: Callable[..., Conn]
) -> None:
    """B relinks the program enrollment to another user while A links its course row."""
    s = SharedCourseRun(data)
    bob = data.user("bob")
    first, second = connect(autocommit=False), connect(autocommit=False)
    for conn in (first, second):
        conn.execute("SET lock_timeout = '20s'")
        conn.commit()
    first.execute(PCE_INSERT, (s.pe_a, s.ce, COURSE_1, "active"))
    thread, failures = run_blocked(
        db,
        second,
        "UPDATE enrolldb.program_enrollments_programenrollment SET user_id = %s WHERE id = %s",
        (bob, s.pe_a),
    )
    first.commit()
    thread.join(20)
    match_failure(failures)
    assert db.execute(
        "SELECT user_id FROM enrolldb.program_enrollments_programenrollment WHERE id = %s",
        (s.pe_a,),
    ).fetchall() == [(s.user,)]


# --- learner identities and role assignments ----------------------------------------------------


def test_learner_identity_unique_per_org_and_lowercased_key(db: Conn, data: Data) -> None:
    alice, bob = data.user("alice"), data.user("bob")
    insert = (
        "INSERT INTO enrolldb.program_enrollments_learneridentity "
        "(organization_key, external_user_key, user_id) VALUES (%s, %s, %s)"
    )
    db.execute(insert, ("gtx", "GT-Abc", alice))
    for key in ("GT-Abc", "gt-abc", "GT-ABC"):
        refused(db, errors.UniqueViolation, "learneridentity_org_key_uq", insert, ("gtx", key, bob))
    db.execute(insert, ("purduex", "gt-abc", bob))  # another organization
    db.execute(insert, ("gtx", "GT-Abd", bob))
    refused(db, errors.ForeignKeyViolation, "learneridentity_user_fk", insert, ("gtx", "new", -1))
    rows = db.execute(
        "SELECT organization_key, external_user_key, user_id "
        "FROM enrolldb.program_enrollments_learneridentity ORDER BY id"
    ).fetchall()
    assert rows == [("gtx", "GT-Abc", alice), ("purduex", "gt-abc", bob), ("gtx", "GT-Abd", bob)]


def test_course_access_role_assignment_role_and_uniqueness(db: Conn, data: Data) -> None:
    pe_id = data.pe(data.program(), key="k-1")
    pce_1 = data.pce(pe_id, COURSE_1)
    pce_2 = data.pce(pe_id, COURSE_2)
    insert = (
        "INSERT INTO enrolldb.program_enrollments_courseaccessroleassignment "
        "(role, enrollment_id) VALUES (%s, %s)"
    )
    for role in ("instructor", "Staff", ""):
        refused(
            db, errors.CheckViolation, "courseaccessroleassignment_role_ck", insert, (role, pce_1)
        )
    db.execute(insert, ("staff", pce_1))
    refused(
        db,
        errors.UniqueViolation,
        "courseaccessroleassignment_role_enrollment_uq",
        insert,
        ("staff", pce_1),
    )
    db.execute(insert, ("staff", pce_2))
    refused(
        db,
        errors.ForeignKeyViolation,
        "courseaccessroleassignment_enrollment_fk",
        insert,
        ("staff", -1),
    )
    rows = db.execute(
        "SELECT role, enrollment_id FROM enrolldb.program_enrollments_courseaccessroleassignment "
        "ORDER BY id"
    ).fetchall()
    assert rows == [("staff", pce_1), ("staff", pce_2)]


# --- ON DELETE rules --------------------------------------------------------------------------


def counts(db: Conn) -> dict[str, int]:
    tables = (
        "auth_user",
        "student_courseenrollment",
        "student_courseaccessrole",
        "program_enrollments_programenrollment",
        "program_enrollments_programcourseenrollment",
        "program_enrollments_learneridentity",
        "program_enrollments_courseaccessroleassignment",
    )
    return {t: count(db, t) for t in tables}


class Populated:
    """Two learners, each fully linked in one program, with everything that hangs off a user."""

    def __init__(self, db: Conn, data: Data) -> None:
        data.course(COURSE_1)
        self.program = data.program()
        self.users: list[int] = []
        self.pces: list[int] = []
        self.ces: list[int] = []
        self.pes: list[int] = []
        for name in ("alice", "bob"):
            uid = data.user(name)
            ce = data.ce(uid, COURSE_1)
            pe = data.pe(self.program, user_id=uid, key=f"key-{name}")
            pce = data.pce(pe, COURSE_1, ce)
            db.execute(
                "INSERT INTO enrolldb.student_courseaccessrole (user_id, org, course_id, role) "
                "VALUES (%s, 'edX', %s, 'staff')",
                (uid, COURSE_1),
            )
            db.execute(
                "INSERT INTO enrolldb.program_enrollments_learneridentity "
                "(organization_key, external_user_key, user_id) VALUES ('gtx', %s, %s)",
                (f"key-{name}", uid),
            )
            db.execute(
                "INSERT INTO enrolldb.program_enrollments_courseaccessroleassignment "
                "(role, enrollment_id) VALUES ('staff', %s)",
                (pce,),
            )
            self.users.append(uid)
            self.ces.append(ce)
            self.pes.append(pe)
            self.pces.append(pce)


def test_deleting_a_user_deletes_everything_that_hangs_off_it(db: Conn, data: Data) -> None:
    p = Populated(db, data)
    assert set(counts(db).values()) == {2}
    db.execute("DELETE FROM enrolldb.auth_user WHERE id = %s", (p.users[0],))
    assert set(counts(db).values()) == {1}
    bob = p.users[1]
    assert count(db, "student_courseenrollment", "user_id = %s", (bob,)) == 1
    assert count(db, "program_enrollments_programenrollment", "user_id = %s", (bob,)) == 1
    assert count(db, "program_enrollments_programcourseenrollment", "id = %s", (p.pces[1],)) == 1
    assert (
        count(
            db, "program_enrollments_courseaccessroleassignment", "enrollment_id = %s", (p.pces[1],)
        )
        == 1
    )


def test_deleting_a_program_enrollment_deletes_its_course_enrollments_rows(
    db: Conn, data: Data
) -> None:
    p = Populated(db, data)
    db.execute(
        "DELETE FROM enrolldb.program_enrollments_programenrollment WHERE id = %s", (p.pes[0],)
    )
    assert counts(db) == {
        "auth_user": 2,
        "student_courseenrollment": 2,  # the LMS course enrollment stays
        "student_courseaccessrole": 2,
        "program_enrollments_programenrollment": 1,
        "program_enrollments_programcourseenrollment": 1,
        "program_enrollments_learneridentity": 2,
        "program_enrollments_courseaccessroleassignment": 1,
    }


def test_deleting_a_course_enrollment_deletes_the_rows_pointing_at_it(db: Conn, data: Data) -> None:
    p = Populated(db, data)
    db.execute("DELETE FROM enrolldb.student_courseenrollment WHERE id = %s", (p.ces[0],))
    assert count(db, "program_enrollments_programcourseenrollment", "id = %s", (p.pces[0],)) == 0
    assert count(db, "program_enrollments_programcourseenrollment", "id = %s", (p.pces[1],)) == 1
    assert count(db, "program_enrollments_programenrollment") == 2
    assert count(db, "program_enrollments_courseaccessroleassignment") == 1


def test_program_and_course_with_dependents_cannot_be_deleted(db: Conn, data: Data) -> None:
    p = Populated(db, data)
    data.course(COURSE_2)
    db.execute(
        "INSERT INTO enrolldb.course_modes_coursemode (course_id, mode_slug) VALUES (%s, 'audit')",
        (COURSE_2,),
    )
    refused(
        db,
        errors.ForeignKeyViolation,
        "programenrollment_program_fk",
        "DELETE FROM enrolldb.program_enrollments_program WHERE program_uuid = %s",
        (p.program,),
    )
    refused(
        db,
        errors.ForeignKeyViolation,
        "courseenrollment_course_fk",
        "DELETE FROM enrolldb.course_overviews_courseoverview WHERE id = %s",
        (COURSE_1,),
    )
    refused(
        db,
        errors.ForeignKeyViolation,
        "coursemode_course_fk",
        "DELETE FROM enrolldb.course_overviews_courseoverview WHERE id = %s",
        (COURSE_2,),
    )
    unused = data.program()
    db.execute(
        "DELETE FROM enrolldb.program_enrollments_program WHERE program_uuid = %s", (unused,)
    )
    assert count(db, "program_enrollments_program") == 1
    assert count(db, "course_overviews_courseoverview") == 2
    assert set(counts(db).values()) == {2}


# --- modified / created ---------------------------------------------------------------------

MODIFIED_TABLES = {
    "program_enrollments_programenrollment": "status = 'pending'",
    "program_enrollments_programcourseenrollment": "status = 'inactive'",
    "program_enrollments_learneridentity": "organization_key = 'gtx2'",
    "program_enrollments_courseaccessroleassignment": "role = 'staff'",
}


def populated_row(db: Conn, data: Data, table: str) -> int:
    p = Populated(db, data)
    ids = {
        "program_enrollments_programenrollment": p.pes[0],
        "program_enrollments_programcourseenrollment": p.pces[0],
    }
    if table in ids:
        return ids[table]
    row_id: int = scalar(db, f"SELECT min(id) FROM enrolldb.{table}")
    return row_id


@pytest.mark.parametrize("table", MODIFIED_TABLES)
def test_modified_moves_forward_within_one_transaction(db: Conn, data: Data, table: str) -> None:
    row_id = populated_row(db, data, table)
    select = f"SELECT created, modified FROM enrolldb.{table} WHERE id = %s"
    created0, modified0 = db.execute(select, (row_id,)).fetchall()[0]
    seen = [modified0]
    with db.transaction():
        for _ in range(3):
            db.execute(
                f"UPDATE enrolldb.{table} SET {MODIFIED_TABLES[table]}, "
                "created = '2000-01-01T00:00:00Z', modified = '2000-01-01T00:00:00Z' "
                "WHERE id = %s",
                (row_id,),
            )
            created, modified = db.execute(select, (row_id,)).fetchall()[0]
            assert created == created0
            seen.append(modified)
    assert seen == sorted(set(seen)), seen  # strictly increasing
    # and in a later transaction as well
    db.execute(f"UPDATE enrolldb.{table} SET {MODIFIED_TABLES[table]} WHERE id = %s", (row_id,))
    created, modified = db.execute(select, (row_id,)).fetchall()[0]
    assert created == created0
    assert modified > seen[-1]


def test_modified_moves_forward_for_each_row_of_a_multi_row_update(db: Conn, data: Data) -> None:
    p = Populated(db, data)
    before: dict[int, Any] = dict(
        db.execute(
            "SELECT id, modified FROM enrolldb.program_enrollments_programcourseenrollment"
        ).fetchall()
    )
    db.execute(
        "UPDATE enrolldb.program_enrollments_programcourseenrollment SET course_key = course_key"
    )
    after: dict[int, Any] = dict(
        db.execute(
            "SELECT id, modified FROM enrolldb.program_enrollments_programcourseenrollment"
        ).fetchall()
    )
    assert set(after) == set(p.pces)
    assert all(after[i] > before[i] for i in p.pces)


# --- docs/reference.md, Schema compatibility query
# ---------------------------------------------------------------

# Verbatim from docs/reference.md, Schema, line for line (the fourth line is split only to fit 100
# columns).
COMPATIBILITY_QUERY = (
    "select distinct pe1.external_user_key\n"
    "from program_enrollments_programcourseenrollment pce1\n"
    "join program_enrollments_programenrollment pe1 on pe1.id=pce1.program_enrollment_id\n"
    "join program_enrollments_programenrollment pe2 on pe1.external_user_key=pe2.external_user_key"
    " and pe1.program_uuid <> pe2.program_uuid\n"
    "join program_enrollments_programcourseenrollment pce2 on pce2.program_enrollment_id=pe2.id\n"
    "where pce1.course_key = pce2.course_key\n"
)


def test_compatibility_query_finds_learners_with_one_course_in_two_programs(
    db: Conn, data: Data
) -> None:
    data.course(COURSE_1)
    data.course(COURSE_2)
    program_a, program_b = data.program("gtx"), data.program("gtx")
    curriculum_a, curriculum_b = uuid.uuid4(), uuid.uuid4()

    def enroll(program: uuid.UUID, curriculum: uuid.UUID, key: str, *courses: str) -> int:
        pe_id = data.pe(program, key=key, curriculum_uuid=curriculum)
        for course in courses:
            data.pce(pe_id, course, status="inactive" if program == program_a else "active")
        return pe_id

    enroll(program_a, curriculum_a, "only-in-a", COURSE_1)
    enroll(program_b, curriculum_b, "only-in-b", COURSE_1, COURSE_2)
    enroll(program_a, curriculum_a, "same-course", COURSE_1)
    enroll(program_b, curriculum_b, "same-course", COURSE_1)
    enroll(program_a, curriculum_a, "different-courses", COURSE_1)
    enroll(program_b, curriculum_b, "different-courses", COURSE_2)
    # two curricula of ONE program with the same course: not the §1 defect
    enroll(program_a, curriculum_a, "two-curricula", COURSE_2)
    enroll(program_a, uuid.uuid4(), "two-curricula", COURSE_2)
    # the §1 scenario, linked: A's inactive and B's active row share one course enrollment
    learner = data.user("learner")
    ce = data.ce(learner, COURSE_1)
    pe_a = data.pe(program_a, user_id=learner, key="linked", curriculum_uuid=curriculum_a)
    pe_b = data.pe(program_b, user_id=learner, key="linked", curriculum_uuid=curriculum_b)
    data.pce(pe_a, COURSE_1, ce, "inactive")
    data.pce(pe_b, COURSE_1, ce, "active")

    db.execute("SET search_path = enrolldb, public")
    rows = db.execute(COMPATIBILITY_QUERY).fetchall()
    assert sorted(rows) == [("linked",), ("same-course",)]
