"""Faults in the middle of a call (issue 9, "Faults"): a backend terminated, a
``statement_timeout`` and a ``lock_timeout`` firing inside a link and inside a registrar
write. Nothing partial remains, the client raises a documented exception
(:mod:`enrolldb.errors`), and a retry succeeds.

How "in the middle" is made certain without sleeps: another connection holds a table lock
on a *history* table. The call takes its own locks, writes the live rows, and then its
statement-level history trigger waits for that lock: the call is past its first writes when
the fault hits. The waiting is observed through ``pg_blocking_pids`` and ``pg_locks``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

import enrolldb
from builders import (
    add_course,
    add_program,
    add_user,
    add_waiting,
    course_enrollments,
    integrity,
    pe,
    state,
)
from pgtypes import Conn

C1 = "course-v1:GTx+FAULT1+2024"
PE_HISTORY = "enrolldb.program_enrollments_historicalprogramenrollment"
PCE_HISTORY = "enrolldb.program_enrollments_historicalprogramcourseenrollment"


@contextmanager
def history_locked(connect: Any, table: str) -> Iterator[int]:
    """Hold ``table`` in EXCLUSIVE mode (writers wait, readers do not); yield the pid."""
    holder: Conn = connect(autocommit=False)
    holder.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
    try:
        yield int(holder.info.backend_pid)
    finally:
        holder.rollback()


def wait_until_blocked_on(db: Conn, pid: int, by: int, table: str) -> None:
    """Poll until backend ``pid`` waits for ``by`` on a lock of ``table``."""
    for _ in range(3000):
        row = db.execute(
            "SELECT %s = ANY(pg_catalog.pg_blocking_pids(%s)), EXISTS ("
            "  SELECT FROM pg_catalog.pg_locks AS l"
            "  WHERE l.pid = %s AND NOT l.granted AND l.relation = %s::regclass)",
            (by, pid, pid, table),
        ).fetchone()
        if row == (True, True):
            return
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} never waited for {by} on {table}")


class CallThread(threading.Thread):
    """Runs ``fn`` in a thread and keeps its result or exception."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.fn = fn
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:
            self.error = exc


def world(db: Conn) -> tuple[uuid.UUID, int]:
    add_course(db, C1)
    add_user(db, "alice")
    program = add_program(db)
    pe_id, _ = add_waiting(db, program, "GT-F1", [C1])
    add_waiting(db, program, "GT-F2", [C1])
    return program, pe_id


def link_two(conn: Conn, program: uuid.UUID) -> list[enrolldb.LinkResult]:
    return enrolldb.link(conn, program, [("GT-F1", "alice"), ("GT-F2", "nobody")])


def assert_linked_once(db: Conn, program: uuid.UUID, pe_id: int, results: Any) -> None:
    assert [(r.result, r.error is None) for r in results] == [("linked", True), ("failed", False)]
    user_id = pe(db, pe_id).user_id
    assert user_id is not None
    assert course_enrollments(db, user_id)[C1].mode == "masters"
    assert integrity(db) == []


# --- a backend terminated in the middle of a link -------------------------------------------


def test_backend_terminated_during_a_link(db: Conn, db_dsn: str, connect: Any) -> None:
    program, pe_id = world(db)
    before = state(db)
    client: Conn = psycopg.connect(db_dsn, autocommit=True)
    client_pid = int(client.info.backend_pid)
    with history_locked(connect, PE_HISTORY) as holder:
        call = CallThread(lambda: link_two(client, program))
        call.start()
        wait_until_blocked_on(db, client_pid, holder, PE_HISTORY)
        assert db.execute("SELECT pg_catalog.pg_terminate_backend(%s)", (client_pid,)).fetchone()
        call.join(60)
    assert not call.is_alive()

    assert isinstance(call.error, enrolldb.ConnectionTerminatedError), repr(call.error)
    assert call.error.sqlstate == "57P01"
    assert client.closed
    assert state(db) == before  # nothing partial: no live row, no history row
    with psycopg.connect(db_dsn, autocommit=True) as again:
        assert_linked_once(db, program, pe_id, link_two(again, program))


# --- statement_timeout and lock_timeout inside a link and inside a registrar write ----------

TIMEOUTS = {
    "statement_timeout": enrolldb.StatementTimeoutError,
    "lock_timeout": enrolldb.LockTimeoutError,
}


def fire(
    db: Conn,
    connect: Any,
    setting: str,
    table: str,
    call: Callable[[Conn], Any],
    *,
    autocommit: bool,
) -> tuple[BaseException | None, Conn]:
    """Run ``call`` on a fresh connection with ``setting`` = 300 ms while ``table`` is held;
    return the exception it raised and the (still open) connection."""
    client: Conn = connect(autocommit=autocommit)
    client.execute(f"SET {setting} = '300ms'")
    if not autocommit:
        client.commit()
    with history_locked(connect, table):
        runner = CallThread(lambda: call(client))
        runner.start()
        runner.join(60)
    assert not runner.is_alive()
    client.execute(f"RESET {setting}")
    return runner.error, client


@pytest.mark.parametrize("setting", sorted(TIMEOUTS))
@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "in-transaction"])
def test_timeout_inside_a_link(db: Conn, connect: Any, setting: str, autocommit: bool) -> None:
    program, pe_id = world(db)
    before = state(db)

    error, client = fire(
        db, connect, setting, PE_HISTORY, lambda c: link_two(c, program), autocommit=autocommit
    )

    assert isinstance(error, TIMEOUTS[setting]), repr(error)
    assert isinstance(error, enrolldb.CallInterruptedError)
    assert error.__cause__ is not None
    if not autocommit:
        # The caller's transaction survives the call (its savepoint was rolled back).
        assert client.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert client.execute("SELECT 1").fetchone() == (1,)
        client.rollback()
    assert state(db) == before
    results = link_two(client, program)
    if not autocommit:
        client.commit()
    assert_linked_once(db, program, pe_id, results)


def write_new_learner(conn: Conn, program: uuid.UUID) -> dict[str, str]:
    return enrolldb.write_program_enrollments(
        conn,
        program,
        [{"external_user_key": "GT-NEW", "status": "enrolled", "curriculum_uuid": uuid.uuid4()}],
        create=True,
        update=False,
    )


def write_course(conn: Conn, program: uuid.UUID) -> dict[str, str]:
    return enrolldb.write_program_course_enrollments(
        conn,
        program,
        C1,
        [{"external_user_key": "GT-F1", "status": "inactive", "course_staff": True}],
        create=False,
        update=True,
    )


@pytest.mark.parametrize("setting", sorted(TIMEOUTS))
def test_timeout_inside_a_registrar_write(db: Conn, connect: Any, setting: str) -> None:
    program, _ = world(db)
    before = state(db)

    error, client = fire(
        db, connect, setting, PE_HISTORY, lambda c: write_new_learner(c, program), autocommit=True
    )
    assert isinstance(error, TIMEOUTS[setting]), repr(error)
    assert state(db) == before

    error, client = fire(
        db, connect, setting, PCE_HISTORY, lambda c: write_course(c, program), autocommit=True
    )
    assert isinstance(error, TIMEOUTS[setting]), repr(error)
    assert state(db) == before

    assert write_new_learner(client, program) == {"GT-NEW": "enrolled"}
    assert write_course(client, program) == {"GT-F1": "inactive"}
    assert db.execute(
        "SELECT count(*) FROM enrolldb.program_enrollments_programenrollment "
        "WHERE external_user_key = 'GT-NEW'"
    ).fetchone() == (1,)
    assert integrity(db) == []
