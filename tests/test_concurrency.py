"""Concurrent calls end in a state that some serial order of the same calls produces
(docs/reference.md, Qualities).

How these tests order sessions without sleeping: the first call runs in an explicit
transaction that stays open; the second call runs in a thread on another connection; the
test polls ``pg_blocking_pids`` until the second session is waiting on the first, and only
then commits the first. A second call that never waits fails the test: waiting is the
evidence that the lock order serialises the two calls.

How "equals a serial state" is checked: before racing, the same calls are run one after
the other in one transaction on a separate connection, the outcome (every call's result and
the rows that matter) is recorded, and the transaction is rolled back. Rows are compared
without generated course enrollment ids (a rolled back sequence value is not reused), a
program course enrollment's course enrollment is named by its (user, course) instead.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import errors as pgerrors

import enrolldb
from enrolldb import calls
from enrolldb.linking import LinkResult, MatriculationResult
from pgtypes import Call, Conn, Connect, State

Outcome = tuple[tuple[object, ...], State]

ORG = "GTx"
CURRICULUM = uuid.UUID("00000000-0000-4000-8000-0000000000c1")
COURSE = "course-v1:GTx+CS6035+2024_T1"
COURSE_2 = "course-v1:GTx+CS6200+2024_T1"

#: How long a test waits for a session to block, or for a blocked call to finish.
WAIT_SECONDS = 30.0


# --------------------------------------------------------------------------------------
# Building states with direct inserts (the test connection owns the tables).


def add_program(db: Conn, org: str = ORG) -> uuid.UUID:
    program = uuid.uuid4()
    db.execute(
        "INSERT INTO enrolldb.program_enrollments_program "
        "(program_uuid, authoring_organization_key, title) VALUES (%s, %s, 'program')",
        (program, org),
    )
    return program


def add_course(db: Conn, course_key: str, *, audit_mode: bool = True) -> None:
    db.execute(
        "INSERT INTO enrolldb.course_overviews_courseoverview (id, org) VALUES (%s, %s)",
        (course_key, ORG),
    )
    modes = ["masters", "audit"] if audit_mode else ["masters"]
    for mode in modes:
        db.execute(
            "INSERT INTO enrolldb.course_modes_coursemode (course_id, mode_slug) VALUES (%s, %s)",
            (course_key, mode),
        )


def add_user(db: Conn, username: str) -> int:
    row = db.execute(
        "INSERT INTO enrolldb.auth_user (username) VALUES (%s) RETURNING id", (username,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_program_enrollment(
    db: Conn, program: uuid.UUID, key: str, *, status: str = "enrolled", user_id: int | None = None
) -> int:
    row = db.execute(
        "INSERT INTO enrolldb.program_enrollments_programenrollment "
        "(user_id, external_user_key, program_uuid, curriculum_uuid, status) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (user_id, key, program, CURRICULUM, status),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_course_row(db: Conn, program_enrollment_id: int, course_key: str, status: str) -> int:
    row = db.execute(
        "INSERT INTO enrolldb.program_enrollments_programcourseenrollment "
        "(program_enrollment_id, course_key, status) VALUES (%s, %s, %s) RETURNING id",
        (program_enrollment_id, course_key, status),
    ).fetchone()
    assert row is not None
    return int(row[0])


@dataclass(frozen=True)
class TwoPrograms:
    """docs/reference.md, What it is: key K canceled out of program A (course row inactive),
    enrolled in program
    B (course row active), same course, same organization; the LMS user exists."""

    program_a: uuid.UUID
    program_b: uuid.UUID
    pe_a: int
    pe_b: int
    pce_a: int
    pce_b: int
    key: str
    username: str
    user_id: int


def two_programs(db: Conn, *, created_first: str = "A") -> TwoPrograms:
    add_course(db, COURSE)
    program_a, program_b = add_program(db), add_program(db)
    key = "gt-learner-0001"
    rows: dict[str, tuple[int, int]] = {}
    for name in (created_first, "B" if created_first == "A" else "A"):
        if name == "A":
            pe = add_program_enrollment(db, program_a, key, status="canceled")
            rows["A"] = (pe, add_course_row(db, pe, COURSE, "inactive"))
        else:
            pe = add_program_enrollment(db, program_b, key, status="enrolled")
            rows["B"] = (pe, add_course_row(db, pe, COURSE, "active"))
    user_id = add_user(db, "alice")
    return TwoPrograms(
        program_a=program_a,
        program_b=program_b,
        pe_a=rows["A"][0],
        pe_b=rows["B"][0],
        pce_a=rows["A"][1],
        pce_b=rows["B"][1],
        key=key,
        username="alice",
        user_id=user_id,
    )


# --------------------------------------------------------------------------------------
# Reading states back.

STATE_QUERIES = {
    "programenrollment": (
        "SELECT id, user_id, external_user_key, program_uuid, status "
        "FROM enrolldb.program_enrollments_programenrollment ORDER BY id"
    ),
    "programcourseenrollment": (
        "SELECT pce.id, pce.program_enrollment_id, pce.course_key, pce.status, "
        "ce.user_id, ce.course_id "
        "FROM enrolldb.program_enrollments_programcourseenrollment AS pce "
        "LEFT JOIN enrolldb.student_courseenrollment AS ce ON ce.id = pce.course_enrollment_id "
        "ORDER BY pce.id"
    ),
    "courseenrollment": (
        "SELECT user_id, course_id, is_active, mode FROM enrolldb.student_courseenrollment "
        "ORDER BY user_id, course_id"
    ),
    "learneridentity": (
        "SELECT organization_key, external_user_key, user_id "
        "FROM enrolldb.program_enrollments_learneridentity ORDER BY 1, 2"
    ),
    "courseaccessrole": (
        "SELECT user_id, org, course_id, role FROM enrolldb.student_courseaccessrole "
        "ORDER BY 1, 2, 3, 4"
    ),
}


def state(conn: Conn) -> State:
    return {name: conn.execute(query).fetchall() for name, query in STATE_QUERIES.items()}


def assert_healthy(conn: Conn) -> None:
    violations = conn.execute(
        "SELECT violation, program_enrollment_id, program_course_enrollment_id, "
        "course_enrollment_id, detail FROM enrolldb.check_integrity()"
    ).fetchall()
    assert violations == []


def course_enrollment(conn: Conn, user_id: int, course_key: str) -> tuple[Any, ...] | None:
    return conn.execute(
        "SELECT id, is_active, mode FROM enrolldb.student_courseenrollment "
        "WHERE user_id = %s AND course_id = %s",
        (user_id, course_key),
    ).fetchone()


def course_row(conn: Conn, pce_id: int) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT status, course_enrollment_id "
        "FROM enrolldb.program_enrollments_programcourseenrollment WHERE id = %s",
        (pce_id,),
    ).fetchone()
    assert row is not None
    return row


# --------------------------------------------------------------------------------------
# Serial outcomes and races.


def serial_outcome(conn: Conn, order: Sequence[Call]) -> Outcome:
    """Run ``order`` one call after the other in one transaction on ``conn`` (not in
    autocommit), record the outcome, roll back."""
    assert not conn.autocommit
    try:
        results = tuple(call(conn) for call in order)
        return results, state(conn)
    finally:
        conn.rollback()


def wait_until_blocked(
    observer: Conn, waiter_pid: int, holder_pid: int, pending: Future[Any] | None = None
) -> None:
    """Poll until ``waiter_pid`` waits for a lock that ``holder_pid`` holds."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if pending is not None and pending.done():
            pending.result()  # re-raises the call's own error, if any
            raise AssertionError(
                "the second call finished without waiting for the first one's locks"
            )
        row = observer.execute("SELECT pg_blocking_pids(%s)", (waiter_pid,)).fetchone()
        assert row is not None
        if holder_pid in row[0]:
            return
        time.sleep(0.005)
    raise AssertionError(f"session {waiter_pid} never waited for session {holder_pid}")


def race(connect: Connect, observer: Conn, first: Call, second: Call) -> tuple[object, object]:
    """``first`` runs and keeps its transaction open; ``second`` starts in a thread, must
    block on ``first``'s locks, and finishes after ``first`` commits."""
    holder = connect(autocommit=False)
    waiter = connect(autocommit=True)
    waiter.execute(f"SET lock_timeout = '{int(WAIT_SECONDS)}s'")  # never hang the suite
    first_result = first(holder)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(second, waiter)
        try:
            wait_until_blocked(observer, waiter.info.backend_pid, holder.info.backend_pid, pending)
        except BaseException:
            holder.rollback()  # let the thread finish before the pool is shut down
            raise
        holder.commit()
        second_result = pending.result(timeout=WAIT_SECONDS)
    return first_result, second_result


def after_barrier(barrier: threading.Barrier, call: Call, conn: Conn) -> object:
    barrier.wait(timeout=WAIT_SECONDS)
    return call(conn)


def count_attempts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the attempts ``run_call`` makes (one per try of a client call), from any thread."""
    attempts: list[int] = []
    real_once = calls._once

    def counting_once(conn: Conn, call: Callable[[psycopg.Cursor[Any]], object]) -> object:
        attempts.append(1)
        return real_once(conn, call)

    monkeypatch.setattr(calls, "_once", counting_once)
    return attempts


def link_call(program: uuid.UUID, pairs: Sequence[tuple[str, str]]) -> Call:
    def call(conn: Conn) -> list[LinkResult]:
        return enrolldb.link(conn, program, pairs)

    return call


def matriculate_call(user_id: int, key: str, org: str = ORG) -> Call:
    def call(conn: Conn) -> list[MatriculationResult]:
        return enrolldb.matriculate_learner(conn, user_id, org, key)

    return call


def assert_serial(connect: Connect, db: Conn, first: Call, second: Call) -> tuple[object, object]:
    """Race ``first`` (holding) against ``second`` (blocked) and check that results and rows
    are exactly those of running ``first`` then ``second`` serially."""
    expected_results, expected_state = serial_outcome(connect(autocommit=False), [first, second])
    results = race(connect, db, first, second)
    assert results == expected_results
    assert state(db) == expected_state
    assert_healthy(db)
    return results


# --------------------------------------------------------------------------------------
# (a) Two SSO sign-ins of one learner at once.


@pytest.mark.parametrize("spelling", ["gt-learner-0001", "GT-Learner-0001"])
def test_two_sign_ins_of_one_learner(connect: Connect, db: Conn, spelling: str) -> None:
    s = two_programs(db)
    first = matriculate_call(s.user_id, s.key)
    second = matriculate_call(s.user_id, spelling)

    r1, r2 = assert_serial(connect, db, first, second)

    # The first links both enrollments, in id order; the second finds nothing waiting.
    assert r1 == [
        MatriculationResult(s.pe_a, s.program_a, None),
        MatriculationResult(s.pe_b, s.program_b, None),
    ]
    assert r2 == []
    ce = course_enrollment(db, s.user_id, COURSE)
    assert ce is not None and ce[1:] == (True, "masters")
    assert course_row(db, s.pce_a) == ("inactive", ce[0])
    assert course_row(db, s.pce_b) == ("active", ce[0])
    identities = state(db)["learneridentity"]
    assert identities == [(ORG, s.key, s.user_id)]


# --------------------------------------------------------------------------------------
# (b) A bulk link racing a matriculation of the same key.


def one_program_learner(db: Conn) -> tuple[uuid.UUID, int, dict[str, int]]:
    """Program P with key k-0001 waiting (course 1 active, course 2 inactive), and users."""
    add_course(db, COURSE)
    add_course(db, COURSE_2)
    program = add_program(db)
    pe = add_program_enrollment(db, program, "k-0001")
    add_course_row(db, pe, COURSE, "active")
    add_course_row(db, pe, COURSE_2, "inactive")
    users = {name: add_user(db, name) for name in ("alice", "bob")}
    return program, pe, users


@pytest.mark.parametrize("sso_user", ["alice", "bob"])
def test_bulk_link_holds_then_matriculation_proceeds(
    connect: Connect, db: Conn, sso_user: str
) -> None:
    program, pe, users = one_program_learner(db)
    link = link_call(program, [("k-0001", "alice")])
    sign_in = matriculate_call(users[sso_user], "K-0001")

    r_link, r_sign_in = assert_serial(connect, db, link, sign_in)

    assert r_link == [LinkResult("k-0001", "alice", "linked", None)]
    assert r_sign_in == []  # nothing is waiting any more: the link won
    assert state(db)["programenrollment"][0][:2] == (pe, users["alice"])
    assert state(db)["learneridentity"] == [(ORG, "K-0001", users[sso_user])]


@pytest.mark.parametrize("link_user", ["alice", "bob"])
def test_matriculation_holds_then_bulk_link_proceeds(
    connect: Connect, db: Conn, link_user: str
) -> None:
    program, pe, users = one_program_learner(db)
    sign_in = matriculate_call(users["alice"], "k-0001")
    link = link_call(program, [("k-0001", link_user)])

    r_sign_in, r_link = assert_serial(connect, db, sign_in, link)

    assert r_sign_in == [MatriculationResult(pe, program, None)]
    assert isinstance(r_link, list) and len(r_link) == 1
    if link_user == "alice":
        assert r_link[0].result == "failed"
        assert r_link[0].error == (
            "Program enrollment with external_student_key=k-0001 is already linked to "
            "target account username=alice"
        )
    else:
        assert r_link[0] == LinkResult("k-0001", "bob", "relinked", None)
    assert state(db)["programenrollment"][0][:2] == (pe, users[link_user])


# --------------------------------------------------------------------------------------
# (c) Two bulk links sharing learners, opposite input orders.


def shared_learners(db: Conn) -> tuple[uuid.UUID, list[str], list[str], list[str]]:
    """Program P with 9 waiting keys (course 1 active, course 2 inactive each); users u1..u9
    and v1..v9. Call 1 links keys 1-6 to u*, call 2 keys 4-9 to v*, in reverse order."""
    add_course(db, COURSE)
    add_course(db, COURSE_2, audit_mode=False)
    program = add_program(db)
    keys = [f"k-{n:04d}" for n in range(1, 10)]
    for key in keys:
        pe = add_program_enrollment(db, program, key)
        add_course_row(db, pe, COURSE, "active")
        add_course_row(db, pe, COURSE_2, "inactive")
    us = [f"u{n}" for n in range(1, 10)]
    vs = [f"v{n}" for n in range(1, 10)]
    for name in us + vs:
        add_user(db, name)
    return program, keys, us, vs


def shared_calls(program: uuid.UUID, keys: list[str], us: list[str], vs: list[str]) -> list[Call]:
    first = list(zip(keys[:6], us[:6], strict=True))
    second = list(reversed(list(zip(keys[3:], vs[3:], strict=True))))
    return [link_call(program, first), link_call(program, second)]


def test_two_bulk_links_sharing_learners_serialise(connect: Connect, db: Conn) -> None:
    program, keys, us, vs = shared_learners(db)
    first, second = shared_calls(program, keys, us, vs)

    r1, r2 = assert_serial(connect, db, first, second)

    assert isinstance(r1, list) and isinstance(r2, list)
    assert [r.result for r in r1] == ["linked"] * 6
    # Input order kept; the shared keys (4-6, last in call 2's input) were relinked.
    assert [(r.external_user_key, r.result) for r in r2] == [
        ("k-0009", "linked"),
        ("k-0008", "linked"),
        ("k-0007", "linked"),
        ("k-0006", "relinked"),
        ("k-0005", "relinked"),
        ("k-0004", "relinked"),
    ]


def test_two_bulk_links_racing_freely_never_deadlock(
    connect: Connect, db: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ordering imposed: both calls start together, several rounds, each round from the
    state the previous one left. Every round must match one of the two serial orders."""
    program, keys, us, vs = shared_learners(db)
    first, second = shared_calls(program, keys, us, vs)
    # Round 2 onwards also relinks u -> v and back, so unlinking takes part in the race.
    swap_first, swap_second = shared_calls(program, keys, vs, us)
    conns = [connect(autocommit=True), connect(autocommit=True)]
    serial = connect(autocommit=False)
    attempts = count_attempts(monkeypatch)
    for one, two in itertools.islice(
        itertools.cycle([(first, second), (swap_second, swap_first)]), 8
    ):
        serial_12 = serial_outcome(serial, [one, two])
        r21 = serial_outcome(serial, [two, one])
        attempts.clear()
        serial_21 = ((r21[0][1], r21[0][0]), r21[1])
        barrier = threading.Barrier(2)

        with ThreadPoolExecutor(max_workers=2) as pool:
            f1 = pool.submit(after_barrier, barrier, one, conns[0])
            f2 = pool.submit(after_barrier, barrier, two, conns[1])
            # A deadlock or a lost serialisation surfaces here as an exception.
            outcome = ((f1.result(WAIT_SECONDS), f2.result(WAIT_SECONDS)), state(db))
        assert outcome in (serial_12, serial_21)
        assert len(attempts) == 2, "a call was retried: the lock order let a deadlock happen"
        assert_healthy(db)


# --------------------------------------------------------------------------------------
# (d) The two-program learner linked in two sessions at once.


@pytest.mark.parametrize("created_first", ["A", "B"])
@pytest.mark.parametrize("holder", ["A", "B"])
def test_two_program_learner_linked_in_two_sessions(
    connect: Connect, db: Conn, holder: str, created_first: str
) -> None:
    s = two_programs(db, created_first=created_first)
    pairs = [(s.key, s.username)]
    link_a, link_b = link_call(s.program_a, pairs), link_call(s.program_b, pairs)
    first, second = (link_a, link_b) if holder == "A" else (link_b, link_a)

    r1, r2 = assert_serial(connect, db, first, second)

    linked = [LinkResult(s.key, s.username, "linked", None)]
    assert r1 == linked and r2 == linked
    ce = course_enrollment(db, s.user_id, COURSE)
    assert ce is not None and ce[1:] == (True, "masters")
    assert course_row(db, s.pce_b) == ("active", ce[0])
    assert course_row(db, s.pce_a) == ("inactive", ce[0])


# --------------------------------------------------------------------------------------
# (e) Relinking A's key to another user racing the link of B.


@pytest.mark.parametrize("holder", ["relink A", "link B"])
def test_relink_of_a_never_deactivates_what_b_uses(connect: Connect, db: Conn, holder: str) -> None:
    s = two_programs(db)
    bob = add_user(db, "bob")
    # A is already linked to alice: its inactive row points at her inactive masters enrollment.
    assert enrolldb.link(db, s.program_a, [(s.key, s.username)])[0].error is None
    relink_a = link_call(s.program_a, [(s.key, "bob")])
    link_b = link_call(s.program_b, [(s.key, s.username)])
    first, second = (relink_a, link_b) if holder == "relink A" else (link_b, relink_a)

    r1, r2 = assert_serial(connect, db, first, second)

    results = {holder: r1, "other": r2}
    assert [LinkResult(s.key, "bob", "relinked", None)] in results.values()
    assert [LinkResult(s.key, s.username, "linked", None)] in results.values()
    ce = course_enrollment(db, s.user_id, COURSE)
    assert ce is not None and ce[1:] == (True, "masters")
    assert course_row(db, s.pce_b) == ("active", ce[0])
    bob_ce = course_enrollment(db, bob, COURSE)
    assert bob_ce is not None and bob_ce[1:] == (False, "masters")
    assert course_row(db, s.pce_a) == ("inactive", bob_ce[0])


@pytest.mark.parametrize("holder", ["relink A", "link B"])
def test_relink_of_a_racing_link_of_b_from_linked_state(
    connect: Connect, db: Conn, holder: str
) -> None:
    """B already linked and active; A (inactive row, same course enrollment) relinked to
    bob while B is relinked to alice's second account: the shared course enrollment is
    deactivated only by B's own unlink, never by A's."""
    s = two_programs(db)
    bob = add_user(db, "bob")
    alice2 = add_user(db, "alice2")
    assert enrolldb.link(db, s.program_b, [(s.key, s.username)])[0].error is None
    assert enrolldb.link(db, s.program_a, [(s.key, s.username)])[0].error is None
    relink_a = link_call(s.program_a, [(s.key, "bob")])
    relink_b = link_call(s.program_b, [(s.key, "alice2")])
    first, second = (relink_a, relink_b) if holder == "relink A" else (relink_b, relink_a)

    assert_serial(connect, db, first, second)

    # Alice keeps nothing active in masters; alice2 has B's access; bob only A's pointer.
    old = course_enrollment(db, s.user_id, COURSE)
    assert old is not None and old[1:] == (False, "audit")
    new = course_enrollment(db, alice2, COURSE)
    assert new is not None and new[1:] == (True, "masters")
    assert course_row(db, s.pce_b) == ("active", new[0])
    bob_ce = course_enrollment(db, bob, COURSE)
    assert bob_ce is not None and bob_ce[1:] == (False, "masters")


# --------------------------------------------------------------------------------------
# (f) The client retries deadlocks, bounded, without disturbing the caller's transaction.


RAISE_DEADLOCK = "DO $$BEGIN RAISE EXCEPTION 'provoked' USING ERRCODE = '40P01'; END$$"


def start_caller_transaction(conn: Conn) -> None:
    """Some work of the caller's own, to check that retries leave it alone."""
    conn.execute("CREATE TEMP TABLE caller_work (n integer)")
    conn.execute("INSERT INTO caller_work VALUES (1)")


def caller_work(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT n FROM caller_work").fetchall()


@pytest.mark.parametrize("autocommit", [False, True])
def test_run_call_retries_a_server_deadlock_once(connect: Connect, autocommit: bool) -> None:
    conn = connect(autocommit=autocommit)
    start_caller_transaction(conn)
    attempts: list[int] = []

    def call(cur: psycopg.Cursor[Any]) -> int:
        attempts.append(1)
        if len(attempts) == 1:
            cur.execute(RAISE_DEADLOCK)
        cur.execute("INSERT INTO caller_work VALUES (2)")
        row = cur.execute("SELECT count(*) FROM caller_work").fetchone()
        assert row is not None
        return int(row[0])

    assert calls.run_call(conn, call) == 2
    assert len(attempts) == 2
    if not autocommit:
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert caller_work(conn) == [(1,), (2,)]


@pytest.mark.parametrize("autocommit", [False, True])
def test_run_call_gives_up_after_max_attempts(connect: Connect, autocommit: bool) -> None:
    conn = connect(autocommit=autocommit)
    start_caller_transaction(conn)
    attempts: list[int] = []

    def call(cur: psycopg.Cursor[Any]) -> None:
        attempts.append(1)
        cur.execute("INSERT INTO caller_work VALUES (2)")
        cur.execute(RAISE_DEADLOCK)

    with pytest.raises(enrolldb.TransientConflictError) as caught:
        calls.run_call(conn, call)
    assert len(attempts) == calls.MAX_ATTEMPTS
    assert isinstance(caught.value.__cause__, pgerrors.DeadlockDetected)
    assert caught.value.sqlstate == "40P01"
    if not autocommit:
        # The caller's transaction is usable, its own work intact, the call's undone.
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert caller_work(conn) == [(1,)]


def test_client_retries_a_real_deadlock(
    connect: Connect, db: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A raw transaction holds key 2's program enrollment; a client link of keys 1 and 2
    locks key 1's and waits; the raw transaction then asks for key 1's: a real deadlock.
    The client's session, whose wait started first, runs the deadlock check first (its
    ``deadlock_timeout`` is far shorter), so the client call is the victim; it must retry
    and link, inside the caller's still-open transaction."""
    add_course(db, COURSE)
    program = add_program(db)
    pe1 = add_program_enrollment(db, program, "k-0001")
    pe2 = add_program_enrollment(db, program, "k-0002")
    add_course_row(db, pe1, COURSE, "active")
    add_course_row(db, pe2, COURSE, "active")
    alice, bob = add_user(db, "alice"), add_user(db, "bob")

    attempts = count_attempts(monkeypatch)

    raw = connect(autocommit=False)
    raw.execute("SET deadlock_timeout = '60s'")
    raw.commit()
    client = connect(autocommit=False)
    client.execute("SET deadlock_timeout = '2s'")
    client.commit()
    start_caller_transaction(client)

    lock = "SELECT id FROM enrolldb.program_enrollments_programenrollment WHERE id = %s FOR UPDATE"
    raw.execute(lock, (pe2,))
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(
            enrolldb.link, client, program, [("k-0001", "alice"), ("k-0002", "bob")]
        )
        try:
            wait_until_blocked(db, client.info.backend_pid, raw.info.backend_pid, pending)
            # Blocks until the client's deadlock check aborts the client's attempt.
            raw.execute(lock, (pe1,))
        finally:
            raw.commit()
        results = pending.result(timeout=WAIT_SECONDS)

    assert results == [
        LinkResult("k-0001", "alice", "linked", None),
        LinkResult("k-0002", "bob", "linked", None),
    ]
    assert len(attempts) == 2
    assert client.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert caller_work(client) == [(1,)]
    client.commit()
    assert [row[:2] for row in state(db)["programenrollment"]] == [(pe1, alice), (pe2, bob)]
    assert_healthy(db)
