"""docs/reference.md, Schema history: every insert, update and delete of program enrollments,
program course
enrollments and course enrollments leaves the right history row.

Why these tests: the history tables are the audit trail support staff use to reconstruct
what happened to a learner (the §1 defect was diagnosed from them). A missing row, a row with
the values from the wrong side of the change, or a missing change reason makes that
impossible. The triggers are statement-level with transition tables, so multi-row statements
and cascades are tested as well as single rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from psycopg import errors

from builders import EDX_COURSE_1 as COURSE_1
from builders import EDX_COURSE_2 as COURSE_2
from builders import MATCH_CK, Data, refused
from pgtypes import Conn

HISTORY_COLUMNS = ("history_id", "history_date", "history_type", "history_change_reason")


@dataclass(frozen=True)
class Tracked:
    table: str
    history: str


PE = Tracked(
    "program_enrollments_programenrollment", "program_enrollments_historicalprogramenrollment"
)
PCE = Tracked(
    "program_enrollments_programcourseenrollment",
    "program_enrollments_historicalprogramcourseenrollment",
)
CE = Tracked("student_courseenrollment", "student_courseenrollment_history")
TRACKED = {"programenrollment": PE, "programcourseenrollment": PCE, "courseenrollment": CE}


def columns(db: Conn, table: str) -> list[str]:
    rows = db.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'enrolldb' AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [r[0] for r in rows]


def current(db: Conn, t: Tracked, row_id: int) -> dict[str, Any]:
    cols = columns(db, t.table)
    row = db.execute(
        f"SELECT {', '.join(cols)} FROM enrolldb.{t.table} WHERE id = %s", (row_id,)
    ).fetchone()
    assert row is not None
    return dict(zip(cols, row, strict=True))


def tracked_history(db: Conn, t: Tracked, row_id: int | None = None) -> list[dict[str, Any]]:
    """History rows (oldest first) as dicts of the tracked columns plus type and reason."""
    cols = [*columns(db, t.table), "history_type", "history_change_reason"]
    where, params = ("id = %s", (row_id,)) if row_id is not None else ("true", ())
    rows = db.execute(
        f"SELECT {', '.join(cols)} FROM enrolldb.{t.history} WHERE {where} ORDER BY history_id",
        params,
    ).fetchall()
    return [dict(zip(cols, r, strict=True)) for r in rows]


def entry(row: dict[str, Any], history_type: str, reason: str | None = None) -> dict[str, Any]:
    return {**row, "history_type": history_type, "history_change_reason": reason}


class Linked:
    """One linked learner: a course enrollment, a program enrollment, a program course one."""

    def __init__(self, data: Data) -> None:
        data.course(COURSE_1)
        data.course(COURSE_2)
        self.program = data.program()
        self.user = data.user("learner")
        self.ce = data.ce(self.user, COURSE_1)
        self.pe = data.pe(self.program, user_id=self.user, key="key-learner")
        self.pce = data.pce(self.pe, COURSE_1, self.ce, "active")

    def ids(self) -> dict[str, int]:
        return {
            "programenrollment": self.pe,
            "programcourseenrollment": self.pce,
            "courseenrollment": self.ce,
        }


UPDATES = {
    "programenrollment": "UPDATE enrolldb.program_enrollments_programenrollment "
    "SET status = 'suspended' WHERE id = %s",
    "programcourseenrollment": "UPDATE enrolldb.program_enrollments_programcourseenrollment "
    "SET status = 'inactive' WHERE id = %s",
    "courseenrollment": "UPDATE enrolldb.student_courseenrollment "
    "SET is_active = false, mode = 'audit' WHERE id = %s",
}


def test_history_tables_carry_every_column_of_their_table(db: Conn) -> None:
    for t in TRACKED.values():
        assert columns(db, t.history) == [*columns(db, t.table), *HISTORY_COLUMNS], t.history


@pytest.mark.parametrize("name", TRACKED)
def test_insert_update_delete_each_leave_one_history_row(db: Conn, data: Data, name: str) -> None:
    t = TRACKED[name]
    s = Linked(data)
    row_id = s.ids()[name]
    inserted = current(db, t, row_id)
    assert tracked_history(db, t, row_id) == [entry(inserted, "+")]

    db.execute(UPDATES[name], (row_id,))
    updated = current(db, t, row_id)
    assert updated != inserted
    assert tracked_history(db, t, row_id) == [entry(inserted, "+"), entry(updated, "~")]

    if name == "programenrollment":  # its program course enrollments go with it
        db.execute("DELETE FROM enrolldb.program_enrollments_programcourseenrollment")
    db.execute(f"DELETE FROM enrolldb.{t.table} WHERE id = %s", (row_id,))
    assert tracked_history(db, t, row_id) == [
        entry(inserted, "+"),
        entry(updated, "~"),
        entry(updated, "-"),  # the row as it was before the delete
    ]


def test_history_dates_follow_the_changes(db: Conn, data: Data) -> None:
    s = Linked(data)
    db.execute(UPDATES["programenrollment"], (s.pe,))
    dates = db.execute(
        "SELECT history_date, history_date <= clock_timestamp() "
        "FROM enrolldb.program_enrollments_historicalprogramenrollment "
        "WHERE id = %s ORDER BY history_id",
        (s.pe,),
    ).fetchall()
    assert [d[1] for d in dates] == [True, True]
    assert dates[0][0] < dates[1][0]


@pytest.mark.parametrize("name", TRACKED)
def test_change_reason_comes_from_the_transaction_setting(db: Conn, data: Data, name: str) -> None:
    t = TRACKED[name]
    s = Linked(data)
    row_id = s.ids()[name]
    with db.transaction():
        db.execute("SET LOCAL enrolldb.history_change_reason = 'x'")
        db.execute(UPDATES[name], (row_id,))
    after_x = current(db, t, row_id)
    # SET LOCAL ends with the transaction: the next direct write has no reason again
    db.execute(
        f"UPDATE enrolldb.{t.table} SET id = id WHERE id = %s",
        (row_id,),
    )
    rows = tracked_history(db, t, row_id)
    assert [(r["history_type"], r["history_change_reason"]) for r in rows] == [
        ("+", None),
        ("~", "x"),
        ("~", None),
    ]
    assert rows[1] == entry(after_x, "~", "x")


def test_change_reason_on_insert_and_delete(db: Conn, data: Data) -> None:
    data.course(COURSE_1)
    program = data.program()
    with db.transaction():
        db.execute("SET LOCAL enrolldb.history_change_reason = 'registrar_write'")
        pe_id = data.pe(program, key="k-1")
    with db.transaction():
        db.execute("SET LOCAL enrolldb.history_change_reason = 'cleanup'")
        db.execute(
            "DELETE FROM enrolldb.program_enrollments_programenrollment WHERE id = %s", (pe_id,)
        )
    rows = tracked_history(db, PE, pe_id)
    assert [(r["history_type"], r["history_change_reason"]) for r in rows] == [
        ("+", "registrar_write"),
        ("-", "cleanup"),
    ]


def test_empty_change_reason_is_null_and_a_long_one_is_cut_to_100(db: Conn, data: Data) -> None:
    data.course(COURSE_1)
    program = data.program()
    with db.transaction():
        db.execute("SET LOCAL enrolldb.history_change_reason = ''")
        first = data.pe(program, key="k-1")
    with db.transaction():
        db.execute("SELECT set_config('enrolldb.history_change_reason', %s, true)", ("r" * 150,))
        second = data.pe(program, key="k-2")
    assert tracked_history(db, PE, first)[0]["history_change_reason"] is None
    assert tracked_history(db, PE, second)[0]["history_change_reason"] == "r" * 100


def test_multi_row_statements_write_one_history_row_per_row(db: Conn, data: Data) -> None:
    data.course(COURSE_1)
    program = data.program()
    curriculum = uuid.uuid4()
    inserted = db.execute(
        "INSERT INTO enrolldb.program_enrollments_programenrollment "
        "(external_user_key, program_uuid, curriculum_uuid, status) "
        "SELECT 'key-' || i, %s, %s, 'pending' FROM generate_series(1, 5) AS i RETURNING id",
        (program, curriculum),
    ).fetchall()
    ids = sorted(r[0] for r in inserted)
    with db.transaction():
        db.execute("SET LOCAL enrolldb.history_change_reason = 'bulk'")
        cur = db.execute(
            "UPDATE enrolldb.program_enrollments_programenrollment SET status = 'enrolled' "
            "WHERE id <> %s",
            (ids[0],),
        )
        assert cur.rowcount == 4
    # an update that touches no row writes nothing
    db.execute("UPDATE enrolldb.program_enrollments_programenrollment SET status = 'x' WHERE false")
    rows = tracked_history(db, PE)
    assert [(r["id"], r["history_type"], r["history_change_reason"]) for r in rows] == [
        *[(i, "+", None) for i in ids],
        *[(i, "~", "bulk") for i in ids[1:]],
    ]
    for i in ids[1:]:
        assert tracked_history(db, PE, i)[-1] == entry(current(db, PE, i), "~", "bulk")
    db.execute("DELETE FROM enrolldb.program_enrollments_programenrollment")
    deletes = [r for r in tracked_history(db, PE) if r["history_type"] == "-"]
    assert sorted(r["id"] for r in deletes) == ids
    assert {r["status"] for r in deletes if r["id"] == ids[0]} == {"pending"}


def test_cascaded_deletes_are_recorded(db: Conn, data: Data) -> None:
    s = Linked(data)
    before = {name: current(db, t, s.ids()[name]) for name, t in TRACKED.items()}
    with db.transaction():
        db.execute("SET LOCAL enrolldb.history_change_reason = 'retire'")
        db.execute("DELETE FROM enrolldb.auth_user WHERE id = %s", (s.user,))
    for name, t in TRACKED.items():
        rows = tracked_history(db, t, s.ids()[name])
        deletes = [r for r in rows if r["history_type"] == "-"]
        # a program course enrollment is reached twice (via its program enrollment and via its
        # course enrollment) but deleted once
        assert deletes == [entry(before[name], "-", "retire")], name


def test_refused_statement_leaves_no_history(db: Conn, data: Data) -> None:
    s = Linked(data)
    mallory_ce = data.ce(data.user("mallory"), COURSE_2)
    counts_before = {name: len(tracked_history(db, t)) for name, t in TRACKED.items()}
    refused(
        db,
        errors.CheckViolation,
        MATCH_CK,
        "UPDATE enrolldb.program_enrollments_programcourseenrollment "
        "SET course_enrollment_id = %s, course_key = %s WHERE id = %s",
        (mallory_ce, COURSE_2, s.pce),
    )
    assert {name: len(tracked_history(db, t)) for name, t in TRACKED.items()} == counts_before
