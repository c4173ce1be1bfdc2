"""An SSO sign-in racing a registrar write of the same (organization, key) (docs/reference.md,
matriculate_learner, Qualities).

Why: a sign-in that records an identity while a registrar creates the learner's enrollment
must end as one of the two serial orders would: the enrollment linked to the learner, never
left waiting while the identity names its user. Both paths take the learner key lock
(a row of ``learner_key_lock``) before anything else, so whichever comes second waits, and
then, under READ COMMITTED, sees what the first committed. Each test fails on 0.1.0, where
the sign-in took no key lock (and the registrar's key locks were advisory locks).
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg import errors as pgerrors

import enrolldb
from builders import (
    CURRICULUM,
    ORG,
    WAIT_SECONDS,
    add_course,
    add_program,
    add_user,
    assert_healthy,
    matriculate_call,
    race,
    race_state,
    serial_outcome,
)
from enrolldb.linking import MatriculationResult
from enrolldb.registrar import write_program_course_enrollments, write_program_enrollments
from pgtypes import Call, Conn, Connect

COURSE_A = "course-v1:GTx+RACE1+2024"
COURSE_B = "course-v1:GTx+RACE2+2024"


def create_call(program: uuid.UUID, key: str, *, with_course: bool = False) -> Call:
    """The registrar creates ``key``'s enrollment in ``program`` (and, optionally, its active
    row in COURSE_A) in the caller's transaction."""

    def call(conn: Conn) -> object:
        outcome: list[object] = [
            write_program_enrollments(
                conn,
                program,
                [{"external_user_key": key, "status": "enrolled", "curriculum_uuid": CURRICULUM}],
                create=True,
                update=False,
            )
        ]
        if with_course:
            outcome.append(
                write_program_course_enrollments(
                    conn,
                    program,
                    COURSE_A,
                    [{"external_user_key": key, "status": "active"}],
                    create=True,
                    update=False,
                )
            )
        return outcome

    return call


def without_ids(snapshot: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """The rows with generated enrollment ids dropped: the serial run is rolled back, and a
    rolled back sequence value is not reused."""
    out = dict(snapshot)
    out["programenrollment"] = [r[1:] for r in snapshot["programenrollment"]]
    out["programcourseenrollment"] = [r[2:] for r in snapshot["programcourseenrollment"]]
    return out


def without_result_ids(results: tuple[object, ...]) -> list[object]:
    return [
        [(r.program_uuid, r.error) for r in result]
        if isinstance(result, list) and result and isinstance(result[0], MatriculationResult)
        else result
        for result in results
    ]


def assert_serial(connect: Connect, db: Conn, first: Call, second: Call) -> tuple[object, object]:
    """``second`` waits for ``first``; results and rows equal running them one after the
    other."""
    expected_results, expected = serial_outcome(connect(autocommit=False), [first, second])
    results = race(connect, db, first, second)
    assert without_result_ids(results) == without_result_ids(expected_results)
    assert without_ids(race_state(db)) == without_ids(expected)
    assert_healthy(db)
    return results


def enrollment(conn: Conn, program: uuid.UUID, key: str) -> tuple[Any, ...] | None:
    return conn.execute(
        "SELECT user_id, external_user_key FROM enrolldb.program_enrollments_programenrollment"
        " WHERE program_uuid = %s AND lower(external_user_key) = lower(%s)",
        (program, key),
    ).fetchone()


def waiting_with_known_identity(conn: Conn) -> list[tuple[Any, ...]]:
    """Waiting enrollments whose organization's identity knows their key: lost links."""
    return conn.execute(
        "SELECT pe.id, pe.external_user_key, li.user_id"
        " FROM enrolldb.program_enrollments_programenrollment AS pe"
        " JOIN enrolldb.program_enrollments_program AS p USING (program_uuid)"
        " JOIN enrolldb.program_enrollments_learneridentity AS li"
        "   ON li.organization_key = p.authoring_organization_key"
        "  AND lower(li.external_user_key) = lower(pe.external_user_key)"
        " WHERE pe.user_id IS NULL ORDER BY pe.id"
    ).fetchall()


@pytest.fixture
def world(db: Conn) -> tuple[uuid.UUID, int]:
    add_course(db, COURSE_A, modes=("masters", "audit"))
    add_course(db, COURSE_B, modes=("masters", "audit"))
    return add_program(db), add_user(db, "alice")


@pytest.mark.parametrize("sign_in_key", ["RACE-1", "race-1"])
def test_sign_in_holds_then_registrar_create_is_realized(
    connect: Connect, db: Conn, world: tuple[uuid.UUID, int], sign_in_key: str
) -> None:
    """The issue's reproduction: the sign-in (nothing to link yet) stays open, the create
    waits for it, then sees the identity and realizes the enrollment at once."""
    program, alice = world
    first, second = matriculate_call(alice, sign_in_key), create_call(program, "RACE-1")
    results = assert_serial(connect, db, first, second)
    assert results == ([], [{"RACE-1": "enrolled"}])
    assert enrollment(db, program, "RACE-1") == (alice, "RACE-1")
    assert waiting_with_known_identity(db) == []


@pytest.mark.parametrize("with_course", [False, True])
def test_registrar_create_holds_then_sign_in_links(
    connect: Connect, db: Conn, world: tuple[uuid.UUID, int], with_course: bool
) -> None:
    """The reverse order: the create (and its course row) stays open, the sign-in waits,
    then finds the committed enrollment and links it, course enrollment included."""
    program, alice = world
    first = create_call(program, "RACE-1", with_course=with_course)
    second = matriculate_call(alice, "race-1")
    _, linked = assert_serial(connect, db, first, second)
    assert isinstance(linked, list) and len(linked) == 1 and linked[0].error is None
    assert enrollment(db, program, "RACE-1") == (alice, "RACE-1")
    ce = db.execute(
        "SELECT is_active, mode FROM enrolldb.student_courseenrollment WHERE user_id = %s",
        (alice,),
    ).fetchall()
    assert ce == ([(True, "masters")] if with_course else [])
    assert waiting_with_known_identity(db) == []


def test_course_write_holds_then_sign_in_links_the_new_row(
    connect: Connect, db: Conn, world: tuple[uuid.UUID, int]
) -> None:
    """A course write on a waiting learner and the learner's sign-in serialise too."""
    program, alice = world
    create_call(program, "RACE-1")(db)

    def course_call(conn: Conn) -> object:
        return write_program_course_enrollments(
            conn,
            program,
            COURSE_B,
            [{"external_user_key": "RACE-1", "status": "active"}],
            create=True,
            update=False,
        )

    assert_serial(connect, db, course_call, matriculate_call(alice, "RACE-1"))
    row = db.execute(
        "SELECT ce.user_id, ce.course_id, ce.is_active"
        " FROM enrolldb.program_enrollments_programcourseenrollment AS pce"
        " JOIN enrolldb.student_courseenrollment AS ce ON ce.id = pce.course_enrollment_id"
    ).fetchall()
    assert row == [(alice, COURSE_B, True)]


def test_simultaneous_pairs_lose_no_link(connect: Connect, db: Conn) -> None:
    """Many sign-ins and creates of the same keys started together, in both orders (0.1.0
    lost 209 of 300): afterwards no enrollment waits whose identity is known, and every
    learner's enrollment belongs to that learner."""
    program = add_program(db)
    add_course(db, COURSE_A, modes=("masters", "audit"))
    pairs = 60
    users = [add_user(db, f"user-{i}") for i in range(pairs)]
    keys = [f"PAIR-{i}" for i in range(pairs)]
    workers = 3  # pairs of threads, each pair racing its share of the keys one by one
    barriers = [threading.Barrier(2) for _ in range(pairs)]

    def signer(worker: int) -> None:
        conn = connect(autocommit=True)
        for i in range(worker, pairs, workers):
            barriers[i].wait(timeout=WAIT_SECONDS)
            # Alternate the spelling: the lock is per lowered key.
            key = keys[i] if i % 2 else keys[i].lower()
            enrolldb.matriculate_learner(conn, users[i], ORG, key)

    def writer(worker: int) -> None:
        conn = connect(autocommit=True)
        for i in range(worker, pairs, workers):
            barriers[i].wait(timeout=WAIT_SECONDS)
            create_call(program, keys[i], with_course=i % 3 == 0)(conn)

    with ThreadPoolExecutor(max_workers=2 * workers) as pool:
        futures = [pool.submit(signer, w) for w in range(workers)]
        futures += [pool.submit(writer, w) for w in range(workers)]
        failures = [f.exception(timeout=10 * WAIT_SECONDS) for f in futures]
    # A failed call breaks its partner's barrier: report the call's own error first.
    real = [
        e for e in failures if e is not None and not isinstance(e, threading.BrokenBarrierError)
    ]
    assert real == [] and failures == [None] * len(futures)

    assert waiting_with_known_identity(db) == []
    rows = db.execute(
        "SELECT external_user_key, user_id FROM enrolldb.program_enrollments_programenrollment"
        " ORDER BY id"
    ).fetchall()
    assert sorted(rows) == sorted(zip(keys, users, strict=True))
    assert_healthy(db)


# REPEATABLE READ callers ---------------------------------------------------------------------


@pytest.mark.parametrize("key_known_before", [False, True])
def test_repeatable_read_sign_in_on_an_old_snapshot_gets_40001(
    connect: Connect, db: Conn, world: tuple[uuid.UUID, int], key_known_before: bool
) -> None:
    """A REPEATABLE READ sign-in whose snapshot predates a create's commit cannot see that
    enrollment: it gets a serialization failure (the create wrote the key's lock row),
    never a silent lost link; the retried transaction links."""
    program, alice = world
    other = add_program(db)
    if key_known_before:  # the lock row exists before the snapshot: the create updates it
        create_call(other, "RACE-1")(db)
    signer = connect(autocommit=False)
    signer.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    signer.execute("SELECT count(*) FROM enrolldb.auth_user").fetchone()  # the snapshot
    create_call(program, "RACE-1")(db)
    with pytest.raises(pgerrors.SerializationFailure):
        signer.execute(
            "SELECT * FROM enrolldb.matriculate_learner(%s, %s, %s)", (alice, ORG, "RACE-1")
        )
    signer.rollback()
    assert waiting_with_known_identity(db) == []
    signer.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    linked = signer.execute(
        "SELECT error FROM enrolldb.matriculate_learner(%s, %s, %s)", (alice, ORG, "RACE-1")
    ).fetchall()
    signer.commit()
    assert linked == [(None,)] * (2 if key_known_before else 1)
    assert enrollment(db, program, "RACE-1") == (alice, "RACE-1")


def test_repeatable_read_create_on_an_old_snapshot_gets_40001(
    connect: Connect, db: Conn, world: tuple[uuid.UUID, int]
) -> None:
    """The reverse: a REPEATABLE READ create whose snapshot predates a sign-in's commit."""
    program, alice = world
    writer = connect(autocommit=False)
    writer.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    writer.execute("SELECT count(*) FROM enrolldb.auth_user").fetchone()
    enrolldb.matriculate_learner(db, alice, ORG, "RACE-1")
    with pytest.raises(pgerrors.SerializationFailure):
        writer.execute(
            "SELECT enrolldb.write_program_enrollments(%s, %s::jsonb, true, false)",
            (
                program,
                f'[{{"external_user_key": "RACE-1", "status": "enrolled",'
                f' "curriculum_uuid": "{CURRICULUM}"}}]',
            ),
        )
    writer.rollback()
    assert enrollment(db, program, "RACE-1") is None


def test_client_does_not_retry_40001_inside_a_repeatable_read_transaction(
    connect: Connect, db: Conn, world: tuple[uuid.UUID, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's retry runs inside the caller's transaction; under REPEATABLE READ the
    snapshot stays old, so a retry would fail again: the caller gets the error after one
    attempt, its transaction still usable, and retries the whole transaction itself."""
    from enrolldb import calls

    attempts: list[int] = []
    original = calls._once

    def counting(conn: Any, call: Any) -> Any:
        attempts.append(1)
        return original(conn, call)

    monkeypatch.setattr(calls, "_once", counting)
    program, alice = world
    signer = connect(autocommit=False)
    signer.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    signer.execute("SELECT count(*) FROM enrolldb.auth_user").fetchone()  # the snapshot
    create_call(program, "RACE-1")(db)
    attempts.clear()
    with pytest.raises(enrolldb.TransientConflictError) as info:
        enrolldb.matriculate_learner(signer, alice, ORG, "RACE-1")
    assert info.value.sqlstate == "40001"
    assert attempts == [1]
    assert signer.execute("SELECT 1").fetchone() == (1,)  # rolled back to the savepoint only
    signer.rollback()
    results = enrolldb.matriculate_learner(signer, alice, ORG, "RACE-1")
    signer.commit()
    assert [r.error for r in results] == [None]
    assert enrollment(db, program, "RACE-1") == (alice, "RACE-1")


# Locks no other role can hold -----------------------------------------------------------------


@pytest.mark.parametrize("role", ["enrolldb_readonly", "enrolldb_app"])
def test_a_role_holding_every_lock_it_can_take_stalls_nothing(
    connect: Connect, db: Conn, world: tuple[uuid.UUID, int], role: str
) -> None:
    """0.1.0's registrar key locks were advisory locks (48203, 0..511) that any role could
    hold forever. Now a reader holding every advisory lock of that space, an ACCESS SHARE lock
    on every table it can read (the strongest table lock SELECT allows) and trying every row
    lock stalls neither a registrar write nor a sign-in."""
    program, alice = world
    create_call(program, "RACE-1")(db)  # the key's lock row and enrollment exist
    squatter = connect(autocommit=False, role=role)
    squatter.execute("SELECT count(pg_advisory_lock(48203, b)) FROM generate_series(0, 511) AS b")
    squatter.execute("SELECT pg_advisory_xact_lock(48203, 0)")
    tables = [
        r[0]
        for r in db.execute(
            "SELECT c.oid::regclass::text FROM pg_class AS c"
            " WHERE c.relnamespace = 'enrolldb'::regnamespace AND c.relkind = 'r'"
            "   AND has_table_privilege(%s, c.oid, 'SELECT')",
            (role,),
        ).fetchall()
    ]
    assert "enrolldb.program_enrollments_programenrollment" in tables
    assert "enrolldb.learner_key_lock" not in tables
    for table in tables:
        squatter.execute(f"LOCK TABLE {table} IN ACCESS SHARE MODE")
    for table in [*tables, "enrolldb.learner_key_lock"]:
        for clause in ("FOR KEY SHARE", "FOR SHARE", "FOR NO KEY UPDATE", "FOR UPDATE"):
            squatter.execute("SAVEPOINT try_lock")
            with pytest.raises(pgerrors.InsufficientPrivilege):
                squatter.execute(f"SELECT FROM {table} {clause}")
            squatter.execute("ROLLBACK TO SAVEPOINT try_lock")

    worker = connect(autocommit=True)
    worker.execute("SET lock_timeout = '10s'")  # a stall fails the test instead of hanging it
    assert create_call(program, "RACE-2", with_course=True)(worker) == [
        {"RACE-2": "enrolled"},
        {"RACE-2": "active"},
    ]
    assert [r.error for r in enrolldb.matriculate_learner(worker, alice, ORG, "race-1")] == [None]
    assert enrollment(db, program, "RACE-1") == (alice, "RACE-1")
    squatter.rollback()
    squatter.execute("SELECT pg_advisory_unlock_all()")


def test_no_api_function_uses_advisory_locks(db: Conn) -> None:
    """Any role with CONNECT can take an advisory lock: the API must not wait on one."""
    rows = db.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc AS p"
        " WHERE p.pronamespace = 'enrolldb'::regnamespace AND p.prosrc ~* 'pg_(try_)?advisory'"
    ).fetchall()
    assert rows == []


def test_the_key_lock_registry_is_owner_only(db: Conn, connect: Connect) -> None:
    for role in ("enrolldb_app", "enrolldb_readonly"):
        conn = connect(role=role)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM enrolldb.learner_key_lock")
