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
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg import errors as pgerrors

import enrolldb
from builders import (
    COURSE,
    ORG,
    WAIT_SECONDS,
    add_course,
    add_program,
    add_program_course_enrollment,
    add_program_enrollment,
    add_user,
    assert_healthy,
    link_call,
    matriculate_call,
    race,
    race_state,
    serial_outcome,
    two_programs,
    user_course_enrollment,
    wait_until_blocked,
)
from enrolldb import calls
from enrolldb.linking import LinkResult, MatriculationResult
from pgtypes import Call, Conn, Connect

COURSE_2 = "course-v1:GTx+CS6200+2024_T1"
#: The course modes of the courses these tests create: linking picks masters.
BOTH_MODES = ("masters", "audit")
#: The learner of :func:`builders.two_programs` in these tests.
KEY, USERNAME = "gt-learner-0001", "alice"


# --------------------------------------------------------------------------------------
# Reading states back (builders has the writers and the race helpers).


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


def assert_serial(connect: Connect, db: Conn, first: Call, second: Call) -> tuple[object, object]:
    """Race ``first`` (holding) against ``second`` (blocked) and check that results and rows
    are exactly those of running ``first`` then ``second`` serially."""
    expected_results, expected_state = serial_outcome(connect(autocommit=False), [first, second])
    results = race(connect, db, first, second)
    assert results == expected_results
    assert race_state(db) == expected_state
    assert_healthy(db)
    return results


# --------------------------------------------------------------------------------------
# (a) Two SSO sign-ins of one learner at once.


@pytest.mark.parametrize("spelling", ["gt-learner-0001", "GT-Learner-0001"])
def test_two_sign_ins_of_one_learner(connect: Connect, db: Conn, spelling: str) -> None:
    s = two_programs(db, key=KEY, username=USERNAME, modes=BOTH_MODES)
    first = matriculate_call(s.user_id, s.key)
    second = matriculate_call(s.user_id, spelling)

    r1, r2 = assert_serial(connect, db, first, second)

    # The first links both enrollments, in id order; the second finds nothing waiting.
    assert r1 == [
        MatriculationResult(s.pe_a, s.program_a, None),
        MatriculationResult(s.pe_b, s.program_b, None),
    ]
    assert r2 == []
    ce = user_course_enrollment(db, s.user_id, COURSE)
    assert ce is not None and ce[1:] == (True, "masters")
    assert course_row(db, s.pce_a) == ("inactive", ce[0])
    assert course_row(db, s.pce_b) == ("active", ce[0])
    identities = race_state(db)["learneridentity"]
    assert identities == [(ORG, s.key, s.user_id)]


# --------------------------------------------------------------------------------------
# (b) A bulk link racing a matriculation of the same key.


def one_program_learner(db: Conn) -> tuple[uuid.UUID, int, dict[str, int]]:
    """Program P with key k-0001 waiting (course 1 active, course 2 inactive), and users."""
    add_course(db, COURSE, modes=BOTH_MODES)
    add_course(db, COURSE_2, modes=BOTH_MODES)
    program = add_program(db)
    pe = add_program_enrollment(db, program, "k-0001")
    add_program_course_enrollment(db, pe, COURSE, "active")
    add_program_course_enrollment(db, pe, COURSE_2, "inactive")
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
    assert race_state(db)["programenrollment"][0][:2] == (pe, users["alice"])
    assert race_state(db)["learneridentity"] == [(ORG, "K-0001", users[sso_user])]


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
    assert race_state(db)["programenrollment"][0][:2] == (pe, users[link_user])


# --------------------------------------------------------------------------------------
# (c) Two bulk links sharing learners, opposite input orders.


def shared_learners(db: Conn) -> tuple[uuid.UUID, list[str], list[str], list[str]]:
    """Program P with 9 waiting keys (course 1 active, course 2 inactive each); users u1..u9
    and v1..v9. Call 1 links keys 1-6 to u*, call 2 keys 4-9 to v*, in reverse order."""
    add_course(db, COURSE, modes=BOTH_MODES)
    add_course(db, COURSE_2, modes=("masters",))
    program = add_program(db)
    keys = [f"k-{n:04d}" for n in range(1, 10)]
    for key in keys:
        pe = add_program_enrollment(db, program, key)
        add_program_course_enrollment(db, pe, COURSE, "active")
        add_program_course_enrollment(db, pe, COURSE_2, "inactive")
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
            outcome = ((f1.result(WAIT_SECONDS), f2.result(WAIT_SECONDS)), race_state(db))
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
    s = two_programs(db, key=KEY, username=USERNAME, modes=BOTH_MODES, a_first=created_first == "A")
    pairs = [(s.key, s.username)]
    link_a, link_b = link_call(s.program_a, pairs), link_call(s.program_b, pairs)
    first, second = (link_a, link_b) if holder == "A" else (link_b, link_a)

    r1, r2 = assert_serial(connect, db, first, second)

    linked = [LinkResult(s.key, s.username, "linked", None)]
    assert r1 == linked and r2 == linked
    ce = user_course_enrollment(db, s.user_id, COURSE)
    assert ce is not None and ce[1:] == (True, "masters")
    assert course_row(db, s.pce_b) == ("active", ce[0])
    assert course_row(db, s.pce_a) == ("inactive", ce[0])


# --------------------------------------------------------------------------------------
# (e) Relinking A's key to another user racing the link of B.


@pytest.mark.parametrize("holder", ["relink A", "link B"])
def test_relink_of_a_never_deactivates_what_b_uses(connect: Connect, db: Conn, holder: str) -> None:
    s = two_programs(db, key=KEY, username=USERNAME, modes=BOTH_MODES)
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
    ce = user_course_enrollment(db, s.user_id, COURSE)
    assert ce is not None and ce[1:] == (True, "masters")
    assert course_row(db, s.pce_b) == ("active", ce[0])
    bob_ce = user_course_enrollment(db, bob, COURSE)
    assert bob_ce is not None and bob_ce[1:] == (False, "masters")
    assert course_row(db, s.pce_a) == ("inactive", bob_ce[0])


@pytest.mark.parametrize("holder", ["relink A", "link B"])
def test_relink_of_a_racing_link_of_b_from_linked_state(
    connect: Connect, db: Conn, holder: str
) -> None:
    """B already linked and active; A (inactive row, same course enrollment) relinked to
    bob while B is relinked to alice's second account: the shared course enrollment is
    deactivated only by B's own unlink, never by A's."""
    s = two_programs(db, key=KEY, username=USERNAME, modes=BOTH_MODES)
    bob = add_user(db, "bob")
    alice2 = add_user(db, "alice2")
    assert enrolldb.link(db, s.program_b, [(s.key, s.username)])[0].error is None
    assert enrolldb.link(db, s.program_a, [(s.key, s.username)])[0].error is None
    relink_a = link_call(s.program_a, [(s.key, "bob")])
    relink_b = link_call(s.program_b, [(s.key, "alice2")])
    first, second = (relink_a, relink_b) if holder == "relink A" else (relink_b, relink_a)

    assert_serial(connect, db, first, second)

    # Alice keeps nothing active in masters; alice2 has B's access; bob only A's pointer.
    old = user_course_enrollment(db, s.user_id, COURSE)
    assert old is not None and old[1:] == (False, "audit")
    new = user_course_enrollment(db, alice2, COURSE)
    assert new is not None and new[1:] == (True, "masters")
    assert course_row(db, s.pce_b) == ("active", new[0])
    bob_ce = user_course_enrollment(db, bob, COURSE)
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
    add_course(db, COURSE, modes=BOTH_MODES)
    program = add_program(db)
    pe1 = add_program_enrollment(db, program, "k-0001")
    pe2 = add_program_enrollment(db, program, "k-0002")
    add_program_course_enrollment(db, pe1, COURSE, "active")
    add_program_course_enrollment(db, pe2, COURSE, "active")
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
    assert [row[:2] for row in race_state(db)["programenrollment"]] == [(pe1, alice), (pe2, bob)]
    assert_healthy(db)
