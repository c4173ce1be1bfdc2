"""The learner key locks of the calls that do not write keys (016_key_lock_guards.sql).

Why: ``retire_user`` racing a registrar create that is realized at once left the clear key on
the retired user (neither took a lock the other waited on); a bulk link or an unlink under
REPEATABLE READ acted on a snapshot that missed a course enrollment committed by a write of
the same key, and left rows ``check_integrity`` reports. Now retire_user takes the key lock of
every key its user is known by, and link/unlink take their keys' locks when the isolation
level is not READ COMMITTED, so the stale snapshot gets 40001. Real connections; the second
call waits on the first (``pg_blocking_pids``), in both orders.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from psycopg import errors as pgerrors

from builders import (
    CURRICULUM_A,
    CURRICULUM_B,
    OTHER_ORG_PROGRAM,
    PROGRAM_A,
    PROGRAM_B,
    WAIT_SECONDS,
    add_user,
    assert_healthy,
    catalog,
    course_rows,
    program_enrollment_requests,
    user_course_enrollment,
    wait_until_blocked,
)
from builders import REGISTRAR_COURSE as COURSE
from builders import REGISTRAR_COURSE_2 as COURSE_2
from builders import REGISTRAR_ORG as ORG
from pgtypes import Conn, Connect

RETIRED = "retired_external_key_%"


def app(connect: Connect, *, autocommit: bool) -> Conn:
    conn: Conn = connect(autocommit=autocommit, role="enrolldb_app")
    conn.execute(f"SET lock_timeout = '{int(WAIT_SECONDS)}s'")  # never hang the suite
    if not autocommit:
        conn.commit()
    return conn


WRITE_PE = "SELECT enrolldb.write_program_enrollments(%s, %s::jsonb, true, true)"


def pe_request(key: str, curriculum: uuid.UUID) -> str:
    """One create request of ``key``, enrolled in ``curriculum``, as the JSON text sent."""
    return json.dumps(program_enrollment_requests((key, "enrolled"), curriculum=curriculum))


def write_pe(conn: Conn, program: uuid.UUID, key: str, curriculum: uuid.UUID) -> Any:
    row = conn.execute(WRITE_PE, (program, pe_request(key, curriculum))).fetchone()
    assert row is not None
    return row[0]


def write_pce(conn: Conn, program: uuid.UUID, course: str, key: str) -> Any:
    row = conn.execute(
        "SELECT enrolldb.write_program_course_enrollments(%s, %s, %s::jsonb, true, true)",
        (program, course, json.dumps([{"external_user_key": key, "status": "active"}])),
    ).fetchone()
    assert row is not None
    return row[0]


def pe_rows(db: Conn) -> list[tuple[Any, ...]]:
    """(program, user_id, key retired?, key if clear) of every program enrollment."""
    return db.execute(
        "SELECT program_uuid, user_id, external_user_key LIKE %s,"
        " CASE WHEN external_user_key NOT LIKE %s THEN external_user_key END"
        " FROM enrolldb.program_enrollments_programenrollment ORDER BY program_uuid",
        (RETIRED, RETIRED),
    ).fetchall()


def identities(db: Conn) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT organization_key, external_user_key, user_id"
        " FROM enrolldb.program_enrollments_learneridentity"
    ).fetchall()


def in_thread_after_block(db: Conn, holder: Conn, waiter: Conn, sql: str, params: Any) -> Any:
    """Run ``sql`` on ``waiter`` in a thread; it must wait for ``holder``, which then commits."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(lambda: waiter.execute(sql, params).fetchall())
        try:
            wait_until_blocked(db, waiter.info.backend_pid, holder.info.backend_pid, pending)
        except BaseException:
            holder.rollback()
            raise
        holder.commit()
        return pending.result(timeout=WAIT_SECONDS)


@pytest.fixture
def signed_in(db: Conn, connect: Connect) -> int:
    """K1 enrolled in program A and signed in (gtx/K1 -> u1), which realized it."""
    catalog(db)
    user = add_user(db, "u1")
    conn = app(connect, autocommit=True)
    write_pe(conn, PROGRAM_A, "K1", CURRICULUM_A)
    conn.execute("SELECT * FROM enrolldb.matriculate_learner(%s, %s, 'K1')", (user, ORG))
    assert pe_rows(db) == [(PROGRAM_A, user, False, "K1")]
    return user


def test_create_realized_at_once_then_retire_retires_it(
    db: Conn, connect: Connect, signed_in: int
) -> None:
    """Create first: retire_user waits for it, then retires B's enrollment too."""
    holder = app(connect, autocommit=False)
    waiter = app(connect, autocommit=True)
    write_pe(holder, PROGRAM_B, "K1", CURRICULUM_B)  # realized at once to u1 (open)
    result = in_thread_after_block(
        db, holder, waiter, "SELECT enrolldb.retire_user(%s)", (signed_in,)
    )
    assert result == [(True,)]
    assert pe_rows(db) == [(PROGRAM_A, signed_in, True, None), (PROGRAM_B, signed_in, True, None)]
    assert identities(db) == []
    assert_healthy(db)


def test_retire_locks_the_keys_of_every_organization(
    db: Conn, connect: Connect, signed_in: int
) -> None:
    """The user also signed in with another organization's key: a create realized at once
    there makes retire_user wait too, and is retired."""
    app(connect, autocommit=True).execute(
        "SELECT * FROM enrolldb.matriculate_learner(%s, 'other', 'O-7')", (signed_in,)
    )
    holder = app(connect, autocommit=False)
    write_pe(holder, OTHER_ORG_PROGRAM, "O-7", CURRICULUM_B)  # realized at once (open)
    result = in_thread_after_block(
        db, holder, app(connect, autocommit=True), "SELECT enrolldb.retire_user(%s)", (signed_in,)
    )
    assert result == [(True,)]
    assert sorted(pe_rows(db)) == sorted(
        [(PROGRAM_A, signed_in, True, None), (OTHER_ORG_PROGRAM, signed_in, True, None)]
    )
    assert identities(db) == []
    assert_healthy(db)


def test_retire_then_create_creates_a_waiting_enrollment(
    db: Conn, connect: Connect, signed_in: int
) -> None:
    """Retire first: the create waits for it, finds the identity gone and creates B waiting
    with the clear key (a later sign-in links it)."""
    holder = app(connect, autocommit=False)
    waiter = app(connect, autocommit=True)
    holder.execute("SELECT enrolldb.retire_user(%s)", (signed_in,))
    [(outcome,)] = in_thread_after_block(
        db, holder, waiter, WRITE_PE, (PROGRAM_B, pe_request("K1", CURRICULUM_B))
    )
    assert outcome == {"K1": "enrolled"}
    assert pe_rows(db) == [(PROGRAM_A, signed_in, True, None), (PROGRAM_B, None, False, "K1")]
    assert identities(db) == []
    assert_healthy(db)


def test_retire_user_under_read_committed_takes_no_lock_of_other_users_keys(
    db: Conn, connect: Connect, signed_in: int
) -> None:
    """Only the user's own keys are locked: a write of another learner's key goes through
    while a retirement is open."""
    holder = app(connect, autocommit=False)
    other = app(connect, autocommit=True)
    other.execute("SET lock_timeout = '5s'")
    holder.execute("SELECT enrolldb.retire_user(%s)", (signed_in,))
    assert write_pe(other, PROGRAM_B, "K2", CURRICULUM_B) == {"K2": "enrolled"}
    holder.commit()
    assert_healthy(db)


LINK_FORMS = {
    "jsonb": ("SELECT enrolldb.link_program_enrollments(%s, %s::jsonb)", '{"K1": "u1"}'),
    "json": ("SELECT enrolldb.link_program_enrollments(%s, %s::json)", '{"K1": "u1"}'),
    "array": (
        "SELECT * FROM enrolldb.link_program_enrollments(%s, %s::text[], ARRAY['u1'])",
        ["K1"],
    ),
}
SNAPSHOT_LEVELS = ["REPEATABLE READ", "SERIALIZABLE"]


@pytest.fixture
def waiting_k1(db: Conn, connect: Connect) -> int:
    """K1 enrolled in program A, waiting; user u1 exists."""
    catalog(db)
    user = add_user(db, "u1")
    write_pe(app(connect, autocommit=True), PROGRAM_A, "K1", CURRICULUM_A)
    return user


def stale_snapshot(connect: Connect, level: str) -> Conn:
    conn = app(connect, autocommit=False)
    conn.execute(f"BEGIN ISOLATION LEVEL {level}")
    conn.execute("SELECT count(*) FROM enrolldb.auth_user").fetchone()
    return conn


@pytest.mark.parametrize("level", SNAPSHOT_LEVELS)
@pytest.mark.parametrize("form", sorted(LINK_FORMS))
def test_link_on_a_snapshot_older_than_a_course_write_is_40001(
    db: Conn, connect: Connect, waiting_k1: int, level: str, form: str
) -> None:
    session = stale_snapshot(connect, level)
    write_pce(app(connect, autocommit=True), PROGRAM_A, COURSE, "K1")
    sql, arg = LINK_FORMS[form]
    with pytest.raises(pgerrors.SerializationFailure):
        session.execute(sql, (PROGRAM_A, arg))
    session.rollback()
    # The retried transaction sees the course row and gives it its course enrollment.
    session.execute(f"BEGIN ISOLATION LEVEL {level}")
    session.execute(sql, (PROGRAM_A, arg))
    session.commit()
    ce = user_course_enrollment(db, waiting_k1, COURSE)
    assert ce is not None
    assert course_rows(db, PROGRAM_A, COURSE) == [("K1", "active", ce[0])]
    assert_healthy(db)


@pytest.mark.parametrize("level", SNAPSHOT_LEVELS)
def test_link_under_snapshot_first_then_course_write_waits(
    db: Conn, connect: Connect, waiting_k1: int, level: str
) -> None:
    """The other order: the link holds K1's key lock; the course write waits and then finds
    the learner linked."""
    session = stale_snapshot(connect, level)
    session.execute(*LINK_FORMS["jsonb"][:1], (PROGRAM_A, LINK_FORMS["jsonb"][1]))
    [(outcome,)] = in_thread_after_block(
        db,
        session,
        app(connect, autocommit=True),
        "SELECT enrolldb.write_program_course_enrollments(%s, %s, %s::jsonb, true, true)",
        (PROGRAM_A, COURSE, json.dumps([{"external_user_key": "K1", "status": "active"}])),
    )
    assert outcome == {"K1": "active"}
    ce = user_course_enrollment(db, waiting_k1, COURSE)
    assert ce is not None
    assert course_rows(db, PROGRAM_A, COURSE) == [("K1", "active", ce[0])]
    assert_healthy(db)


def test_link_under_read_committed_takes_no_key_lock(
    db: Conn, connect: Connect, waiting_k1: int
) -> None:
    """READ COMMITTED: the bulk link writes no learner_key_lock row (its cost is unchanged)."""
    locks = "SELECT lock_id, xmin::text FROM enrolldb.learner_key_lock ORDER BY lock_id"
    before = db.execute(locks).fetchall()
    assert len(before) == 1  # the registrar's create of K1
    assert app(connect, autocommit=True).execute(
        LINK_FORMS["jsonb"][0], (PROGRAM_A, '{"K1": "u1"}')
    ).fetchall() == [({},)]
    assert db.execute(locks).fetchall() == before


@pytest.fixture
def linked_k1(db: Conn, connect: Connect, waiting_k1: int) -> int:
    """K1 of program A linked to u1, active in COURSE; returns the program enrollment id."""
    conn = app(connect, autocommit=True)
    write_pce(conn, PROGRAM_A, COURSE, "K1")
    conn.execute(LINK_FORMS["jsonb"][0], (PROGRAM_A, '{"K1": "u1"}'))
    row = db.execute(
        "SELECT id FROM enrolldb.program_enrollments_programenrollment WHERE user_id = %s",
        (waiting_k1,),
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("level", SNAPSHOT_LEVELS)
def test_unlink_on_a_snapshot_older_than_a_course_write_is_40001(
    db: Conn, connect: Connect, waiting_k1: int, linked_k1: int, level: str
) -> None:
    session = stale_snapshot(connect, level)
    write_pce(app(connect, autocommit=True), PROGRAM_A, COURSE_2, "K1")
    with pytest.raises(pgerrors.SerializationFailure):
        session.execute("SELECT enrolldb.unlink_program_enrollment(%s)", (linked_k1,))
    session.rollback()
    session.execute(f"BEGIN ISOLATION LEVEL {level}")
    session.execute("SELECT enrolldb.unlink_program_enrollment(%s)", (linked_k1,))
    session.commit()
    # Both course enrollments deactivated, the rows waiting with no pointer.
    assert course_rows(db, PROGRAM_A, COURSE) == [("K1", "active", None)]
    assert course_rows(db, PROGRAM_A, COURSE_2) == [("K1", "active", None)]
    for course in (COURSE, COURSE_2):
        ce = user_course_enrollment(db, waiting_k1, course)
        assert ce is not None and ce[1] is False, course
    assert_healthy(db)


@pytest.mark.parametrize("level", SNAPSHOT_LEVELS)
def test_unlink_under_snapshot_first_then_course_write_waits(
    db: Conn, connect: Connect, waiting_k1: int, linked_k1: int, level: str
) -> None:
    session = stale_snapshot(connect, level)
    session.execute("SELECT enrolldb.unlink_program_enrollment(%s)", (linked_k1,))
    [(outcome,)] = in_thread_after_block(
        db,
        session,
        app(connect, autocommit=True),
        "SELECT enrolldb.write_program_course_enrollments(%s, %s, %s::jsonb, true, true)",
        (PROGRAM_A, COURSE_2, json.dumps([{"external_user_key": "K1", "status": "active"}])),
    )
    assert outcome == {"K1": "active"}
    # K1 is waiting again: its new row waits too, with no course enrollment.
    assert course_rows(db, PROGRAM_A, COURSE_2) == [("K1", "active", None)]
    assert user_course_enrollment(db, waiting_k1, COURSE_2) is None
    assert_healthy(db)
